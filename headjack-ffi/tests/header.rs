//! `include/headjack.h` is generated from this crate by cbindgen and committed. This test
//! regenerates it and fails when the committed file differs. To update it after changing the
//! ABI:
//!
//! ```text
//! HEADJACK_BLESS=1 cargo test -p headjack-ffi --test header
//! ```

use std::path::Path;

#[test]
fn committed_header_matches_a_fresh_generation() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("reading cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header");
    let mut fresh = Vec::new();
    bindings.write(&mut fresh);
    let header = crate_dir.join("../include/headjack.h");
    if std::env::var_os("HEADJACK_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&header, &fresh).expect("writing include/headjack.h");
        eprintln!("wrote {}", header.display());
        return;
    }
    let committed = std::fs::read(&header).unwrap_or_default();
    if committed != fresh {
        let old = String::from_utf8_lossy(&committed);
        let new = String::from_utf8_lossy(&fresh);
        let first = old
            .lines()
            .zip(new.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(old.lines().count().min(new.lines().count()));
        panic!(
            "include/headjack.h is out of date (first difference at line {}:\n  committed: {:?}\n  generated: {:?});\n\
             regenerate it with: HEADJACK_BLESS=1 cargo test -p headjack-ffi --test header",
            first + 1,
            old.lines().nth(first).unwrap_or("<end of file>"),
            new.lines().nth(first).unwrap_or("<end of file>"),
        );
    }
}

/// The version defines in the header are the crate's version, and the ABI define is the one the
/// library reports.
#[test]
fn header_version_defines_are_current() {
    let header = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../include/headjack.h"),
    )
    .expect("reading include/headjack.h");
    let define = |name: &str| -> String {
        header
            .lines()
            .find_map(|l| l.strip_prefix(&format!("#define {name} ")))
            .unwrap_or_else(|| panic!("{name} is not defined in include/headjack.h"))
            .trim()
            .to_string()
    };
    let version = format!(
        "{}.{}.{}",
        define("HEADJACK_VERSION_MAJOR"),
        define("HEADJACK_VERSION_MINOR"),
        define("HEADJACK_VERSION_PATCH")
    );
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    assert!(define("HEADJACK_ABI_VERSION").parse::<u32>().is_ok());
}
