//! Builds the two static binaries the library embeds and leaves them in `OUT_DIR`, so
//! `cargo build`, `pip install ./headjack-py` and libheadjack all carry them with no extra step:
//!
//! - the in-container agent (`headjack-agent`, embedded by `src/agent/delivery.rs`);
//!   `HEADJACK_AGENT_BINARY=/path` embeds a prebuilt one, `HEADJACK_NO_AGENT=1` none (every exec
//!   then uses the engine's exec path);
//! - the egress proxy (`headjack-egress`, built into the proxy image by `src/egress/` the first
//!   time an instance asks for an egress policy); `HEADJACK_EGRESS_BINARY=/path` embeds a
//!   prebuilt one, `HEADJACK_NO_EGRESS=1` none (a spawn with an egress policy is then an
//!   `Unsupported` error).
//!
//! Each is built by a nested `cargo build` of its workspace package with a profile of its own and
//! `+crt-static` (no musl target needed: neither calls an NSS function), into a target directory
//! beside the outer one, so it is built once, not once per profile.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One binary to embed.
struct StaticBinary {
    /// Package and binary name; also the file name in `OUT_DIR`.
    name: &'static str,
    /// What it is, for messages.
    what: &'static str,
    /// The cargo profile it is built with.
    profile: &'static str,
    /// The variable naming a prebuilt binary.
    prebuilt_var: &'static str,
    /// The variable that embeds none.
    none_var: &'static str,
    /// What happens without it, for messages.
    without: &'static str,
}

fn main() {
    embed(&StaticBinary {
        name: "headjack-agent",
        what: "the in-container agent",
        profile: "agent",
        prebuilt_var: "HEADJACK_AGENT_BINARY",
        none_var: "HEADJACK_NO_AGENT",
        without: "every exec then goes through the engine",
    });
    embed(&StaticBinary {
        name: "headjack-egress",
        what: "the egress proxy",
        profile: "egress-static",
        prebuilt_var: "HEADJACK_EGRESS_BINARY",
        none_var: "HEADJACK_NO_EGRESS",
        without: "egress policies are then refused",
    });
}

/// Leaves `bin` in `OUT_DIR/<name>`: prebuilt, built, or empty (none wanted, or not Linux).
fn embed(bin: &StaticBinary) {
    println!("cargo:rerun-if-env-changed={}", bin.prebuilt_var);
    println!("cargo:rerun-if-env-changed={}", bin.none_var);
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dest = out_dir.join(bin.name);
    let empty = || {
        std::fs::write(&dest, b"").unwrap_or_else(|e| panic!("writing OUT_DIR/{}: {e}", bin.name));
    };

    if env::var_os(bin.none_var).is_some_and(|v| !v.is_empty() && v != "0") {
        return empty();
    }
    if let Some(prebuilt) = env::var_os(bin.prebuilt_var) {
        let prebuilt = PathBuf::from(prebuilt);
        println!("cargo:rerun-if-changed={}", prebuilt.display());
        std::fs::copy(&prebuilt, &dest).unwrap_or_else(|e| {
            panic!(
                "{}={}: cannot copy it: {e}",
                bin.prebuilt_var,
                prebuilt.display()
            )
        });
        return;
    }
    let target = env::var("TARGET").expect("cargo sets TARGET");
    if !target.contains("linux") {
        // Containers run Linux: on another OS the binary would be built for nothing.
        return empty();
    }

    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("the core lives in the workspace");
    let package = workspace.join(bin.name);
    for watched in ["src", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", package.join(watched).display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );

    let target_dir = outer_target_dir(&out_dir)
        .map(|t| t.join(format!("{}-static", bin.name)))
        .unwrap_or_else(|| out_dir.join(format!("{}-target", bin.name)));
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace)
        .args(["build", "--quiet", "--offline", "--profile", bin.profile])
        .args(["-p", bin.name, "--bin", bin.name])
        .args(["--target", &target])
        .arg("--target-dir")
        .arg(&target_dir)
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        // The outer build's flags and wrappers are not this binary's (clippy sets a wrapper).
        .env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+crt-static")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run cargo to build {}: {e}; set {} or {}=1",
                bin.what, bin.prebuilt_var, bin.none_var
            )
        });
    assert!(
        status.success(),
        "building {} ({}) failed ({status}); fix it, or set {}=/path/to/a/static/{}, or {}=1 to \
         build without it ({})",
        bin.what,
        bin.name,
        bin.prebuilt_var,
        bin.name,
        bin.none_var,
        bin.without
    );
    let built = target_dir.join(&target).join(bin.profile).join(bin.name);
    std::fs::copy(&built, &dest)
        .unwrap_or_else(|e| panic!("copying {} into OUT_DIR: {e}", built.display()));
}

/// The outer build's target directory: the ancestor of `OUT_DIR` that cargo marked with
/// `CACHEDIR.TAG`.
fn outer_target_dir(out_dir: &Path) -> Option<PathBuf> {
    out_dir
        .ancestors()
        .find(|a| a.join("CACHEDIR.TAG").is_file())
        .map(Path::to_path_buf)
}
