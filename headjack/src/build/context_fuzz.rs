//! Property tests of the build context's path handling: whatever names a context holds (any
//! Unicode, spaces, leading dots, names longer than a tar header's 100 bytes, deep nesting), the
//! tar sends exactly the files of the tree, each under its own relative path, and nothing that
//! could land outside the context.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Component;

use proptest::prelude::*;

use super::context::Context;

/// One path segment: printable, no `/` or NUL, never `.` or `..`.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 ._~#%+=@,-]{1,12}",
        "\\PC{1,6}",
        "[a-z]{101,140}", // longer than the classic tar name field
    ]
    .prop_map(|s| s.replace(['/', '\0'], "_"))
    .prop_filter("not . or ..", |s| s != "." && s != ".." && !s.is_empty())
}

fn tree() -> impl Strategy<Value = Vec<Vec<String>>> {
    prop::collection::vec(prop::collection::vec(segment(), 1..4), 1..8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_tar_holds_exactly_the_tree(files in tree()) {
        let dir = tempfile::tempdir().unwrap();
        let mut want = BTreeSet::new();
        for segs in &files {
            let rel = segs.join("/");
            // A path whose prefix is already a file cannot also be a directory: skip it.
            let full = dir.path().join(&rel);
            if std::fs::create_dir_all(full.parent().unwrap()).is_err()
                || std::fs::write(&full, rel.as_bytes()).is_err()
            {
                continue;
            }
            want.insert(rel);
        }
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        want.insert("Dockerfile".to_string());
        // Files only: directories created on the way are entries too, but carry no content.
        let ctx = Context::walk(dir.path(), &dir.path().join("Dockerfile")).unwrap();
        let mut tar_bytes = Vec::new();
        ctx.write_tar(&mut tar_bytes).unwrap();
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let mut got = BTreeSet::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().into_owned();
            prop_assert!(
                path.components().all(|c| matches!(c, Component::Normal(_))),
                "entry {} could leave the context", path.display()
            );
            if entry.header().entry_type().is_file() {
                let mut content = Vec::new();
                entry.read_to_end(&mut content).unwrap();
                let rel = path.to_str().unwrap().to_string();
                if rel != "Dockerfile" {
                    prop_assert_eq!(content, rel.as_bytes(), "content of {}", rel);
                }
                got.insert(rel);
            }
        }
        prop_assert_eq!(got, want);
    }
}
