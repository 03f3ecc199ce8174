use super::*;
use std::collections::BTreeMap;

/// Creates `files` (path → content; a trailing `/` makes a directory) under a new tempdir.
pub(crate) fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), files);
    dir
}

/// Writes `files` under `root` (see [`tree`]).
pub(crate) fn write_tree(root: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        let full = root.join(path);
        if path.ends_with('/') {
            fs::create_dir_all(&full).unwrap();
        } else {
            fs::create_dir_all(full.parent().unwrap()).unwrap();
            fs::write(&full, content).unwrap();
        }
    }
}

fn paths(ctx: &Context) -> Vec<&str> {
    ctx.entries().iter().map(|e| e.rel_path.as_str()).collect()
}

fn walk(dir: &Path) -> Context {
    Context::walk(dir, &dir.join("Dockerfile")).unwrap()
}

/// The tar's entries as (path, type, mode, uid, gid, mtime, content or link).
fn tar_listing(tar: &[u8]) -> Vec<(String, char, u32, String)> {
    let mut archive = tar::Archive::new(tar);
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        assert_eq!(header.uid().unwrap(), 0);
        assert_eq!(header.gid().unwrap(), 0);
        assert_eq!(header.mtime().unwrap(), TAR_MTIME);
        assert_eq!(header.username().unwrap(), Some(""));
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let kind = match header.entry_type() {
            tar::EntryType::Regular => 'f',
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            other => panic!("unexpected {other:?}"),
        };
        let body = if kind == 'l' {
            entry
                .link_name()
                .unwrap()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        } else {
            let mut s = String::new();
            entry.read_to_string(&mut s).unwrap();
            s
        };
        out.push((path, kind, header.mode().unwrap(), body));
    }
    out
}

#[test]
fn walk_applies_dockerignore_and_keeps_build_files() {
    let ignore = "*.md\n!README*.md\nnode_modules\nDockerfile\n.dockerignore\nsub/Dockerfile.x\n";
    let dir = tree(&[
        ("Dockerfile", "FROM scratch\n"),
        (".dockerignore", ignore),
        ("a.md", "x"),
        ("README.md", "r"),
        ("node_modules/x/y.js", "y"),
        ("src/main.rs", "fn main() {}"),
        ("src/notes.md", "n"),
        ("empty/", ""),
    ]);
    let ctx = walk(dir.path());
    assert_eq!(
        paths(&ctx),
        [
            ".dockerignore",
            "Dockerfile",
            "README.md",
            "empty",
            "src",
            "src/main.rs",
            "src/notes.md"
        ]
    );
    assert!(ctx.dockerfile_in_context());
    assert_eq!(ctx.dockerfile_name_in_tar(), "Dockerfile");
    assert_eq!(ctx.file_count(), 5);
    let sent = ["FROM scratch\n", ignore, "r", "fn main() {}", "n"];
    assert_eq!(
        ctx.total_size(),
        sent.iter().map(|s| s.len() as u64).sum::<u64>()
    );
    let digest = ctx.entries()[5].digest.unwrap();
    assert_eq!(
        hex::encode(digest),
        hex::encode(Sha256::digest(b"fn main() {}"))
    );
}

#[test]
fn excluded_dirs_are_skipped_unless_an_exception_names_a_path_below() {
    let files = [
        ("Dockerfile", "FROM scratch\n"),
        ("dir/keep", "k"),
        ("dir/drop", "d"),
        ("dir/sub/keep", "k"),
    ];
    let dir = tree(&files);
    fs::write(dir.path().join(".dockerignore"), "dir\n!dir/keep\n").unwrap();
    // The excluded directory itself is not sent, only the rescued file.
    assert_eq!(
        paths(&walk(dir.path())),
        [".dockerignore", "Dockerfile", "dir/keep"]
    );
    // "!**/keep" does not make Docker look inside an excluded "dir".
    fs::write(dir.path().join(".dockerignore"), "dir\n!**/keep\n").unwrap();
    assert_eq!(paths(&walk(dir.path())), [".dockerignore", "Dockerfile"]);
    // Without exceptions, "*" leaves only the always-sent files.
    fs::write(dir.path().join(".dockerignore"), "*\n").unwrap();
    assert_eq!(paths(&walk(dir.path())), [".dockerignore", "Dockerfile"]);
}

#[test]
fn dockerfile_in_an_excluded_subdirectory_is_still_sent() {
    let dir = tree(&[
        ("ci/Dockerfile", "FROM scratch\n"),
        ("ci/other", "o"),
        (".dockerignore", "ci\n"),
        ("src/a", "a"),
    ]);
    let ctx = Context::walk(dir.path(), &dir.path().join("ci/Dockerfile")).unwrap();
    assert_eq!(
        paths(&ctx),
        [".dockerignore", "ci/Dockerfile", "src", "src/a"]
    );
    assert_eq!(ctx.dockerfile_name_in_tar(), "ci/Dockerfile");
}

#[test]
fn ignore_file_precedence() {
    let dir = tree(&[
        ("Dockerfile", "FROM scratch\n"),
        ("dev.Dockerfile", "FROM scratch\n"),
        ("dev.Dockerfile.dockerignore", "a\n"),
        (".dockerignore", "b\n"),
        (".containerignore", "c\n"),
        ("a", ""),
        ("b", ""),
        ("c", ""),
    ]);
    let root = dir.path();
    let names = |ctx: &Context| {
        let p = paths(ctx);
        ["a", "b", "c"]
            .iter()
            .filter(|n| !p.contains(n))
            .copied()
            .collect::<Vec<_>>()
    };
    let ctx = Context::walk(root, &root.join("dev.Dockerfile")).unwrap();
    assert_eq!(names(&ctx), ["a"]);
    assert_eq!(
        ctx.ignore_file().unwrap().file_name().unwrap(),
        "dev.Dockerfile.dockerignore"
    );
    assert_eq!(names(&walk(root)), ["b"]);
    fs::remove_file(root.join(".dockerignore")).unwrap();
    assert_eq!(names(&walk(root)), ["c"]);
    fs::remove_file(root.join(".containerignore")).unwrap();
    let ctx = walk(root);
    assert!(names(&ctx).is_empty());
    assert!(ctx.ignore_file().is_none());
}

#[test]
fn outside_dockerfile_gets_a_reserved_name_without_collision() {
    let outside = tree(&[("Dockerfile", "FROM alpine\n")]);
    let ctx_dir = tree(&[
        ("a", "a"),
        (".headjack-dockerfile", "mine"),
        (".headjack-dockerfile.1/x", ""),
    ]);
    let ctx = Context::walk(ctx_dir.path(), &outside.path().join("Dockerfile")).unwrap();
    assert!(!ctx.dockerfile_in_context());
    assert_eq!(ctx.dockerfile_name_in_tar(), ".headjack-dockerfile.2");
    let mut tar = Vec::new();
    ctx.write_tar(&mut tar).unwrap();
    let listing = tar_listing(&tar);
    let last = listing.last().unwrap();
    assert_eq!(
        (last.0.as_str(), last.1, last.2, last.3.as_str()),
        (".headjack-dockerfile.2", 'f', 0o644, "FROM alpine\n")
    );
    let plain = tree(&[("a", "a")]);
    let ctx = Context::walk(plain.path(), &outside.path().join("Dockerfile")).unwrap();
    assert_eq!(ctx.dockerfile_name_in_tar(), OUTSIDE_DOCKERFILE_NAME);
}

#[cfg(unix)]
#[test]
fn tar_is_deterministic_and_keeps_links_and_modes() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::time::{Duration, SystemTime};
    let files = [
        ("Dockerfile", "FROM scratch\n"),
        ("bin/run", "#!/bin/sh\n"),
        ("data/x", "x"),
        ("data/y", "yy"),
    ];
    let make = |mtime: SystemTime, mode: u32| {
        let dir = tree(&files);
        let set = |p: &str, m: u32| {
            fs::set_permissions(dir.path().join(p), fs::Permissions::from_mode(m)).unwrap()
        };
        for (p, m) in [
            ("Dockerfile", 0o644),
            ("bin/run", 0o4750),
            ("data/y", 0o664),
            ("bin", 0o755),
            ("data", 0o1770),
        ] {
            set(p, m);
        }
        set("data/x", mode);
        symlink("../data/x", dir.path().join("bin/link")).unwrap();
        for p in ["Dockerfile", "bin/run", "data/x", "data/y"] {
            File::options()
                .write(true)
                .open(dir.path().join(p))
                .unwrap()
                .set_modified(mtime)
                .unwrap();
        }
        dir
    };
    let a = make(
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
        0o600,
    );
    let b = make(SystemTime::now(), 0o600);
    let c = make(SystemTime::now(), 0o644);
    let (mut tar_a, mut tar_b, mut tar_c) = (Vec::new(), Vec::new(), Vec::new());
    walk(a.path()).write_tar(&mut tar_a).unwrap();
    walk(b.path()).write_tar(&mut tar_b).unwrap();
    walk(c.path()).write_tar(&mut tar_c).unwrap();
    assert!(tar_a == tar_b, "tars differ between locations/mtimes");
    assert!(tar_a != tar_c, "a mode change did not reach the tar");
    let listing = tar_listing(&tar_a);
    let summary: Vec<_> = listing
        .iter()
        .map(|(p, k, m, body)| (p.as_str(), *k, *m, body.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("Dockerfile", 'f', 0o644, "FROM scratch\n"),
            ("bin/", 'd', 0o755, ""),
            ("bin/link", 'l', 0o777, "../data/x"),
            ("bin/run", 'f', 0o4750, "#!/bin/sh\n"),
            ("data/", 'd', 0o1770, ""),
            ("data/x", 'f', 0o600, "x"),
            ("data/y", 'f', 0o664, "yy"),
        ]
    );
}

#[cfg(unix)]
#[test]
fn session_dirs_hold_what_the_rules_select() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tree(&[
        ("Dockerfile", "FROM scratch\n"),
        (
            ".dockerignore",
            "Dockerfile\n.dockerignore\nskip\n!skip/keep\n",
        ),
        ("a.txt", "a"),
        ("skip/drop", "d"),
        ("skip/keep", "k"),
    ]);
    fs::set_permissions(dir.path().join("skip"), fs::Permissions::from_mode(0o750)).unwrap();
    let ctx = walk(dir.path());
    // The tar has the Dockerfile and the ignore file (the classic builder needs them).
    assert!(paths(&ctx).contains(&"Dockerfile") && paths(&ctx).contains(&".dockerignore"));
    let generated = [Generated {
        path: "copy-1/EOF".into(),
        mode: 0o644,
        data: b"doc".to_vec(),
    }];
    let dirs = ctx.sync_dirs(b"FROM scratch\n# rewritten\n".to_vec(), &generated);
    let context: Vec<(&str, u32)> = dirs.dirs["context"]
        .iter()
        .map(|e| (e.path.as_str(), e.mode))
        .collect();
    let gen_mode = 0o755;
    assert_eq!(
        context,
        [
            (".headjack-heredocs", gen_mode),
            (".headjack-heredocs/copy-1", gen_mode),
            (".headjack-heredocs/copy-1/EOF", 0o644),
            (
                "a.txt",
                fs::metadata(dir.path().join("a.txt"))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o7777
            ),
            ("skip", 0o750),
            (
                "skip/keep",
                fs::metadata(dir.path().join("skip/keep"))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o7777
            ),
        ]
    );
    let df = &dirs.dirs["dockerfile"];
    assert_eq!(df.len(), 1);
    assert_eq!(df[0].path, "Dockerfile");
    match &df[0].kind {
        SyncKind::File {
            content: Content::Memory(b),
            ..
        } => assert_eq!(&b[..], b"FROM scratch\n# rewritten\n"),
        other => panic!("{other:?}"),
    }
    // Include patterns as BuildKit sends them select subtrees.
    let m = (dirs.matcher)(&["skip".to_string()]).unwrap();
    assert!(m("skip/keep") && m("skip") && !m("a.txt"));
    // One directory, one shared key.
    assert_eq!(
        walk(dir.path()).sync_dirs(vec![], &[]).shared_key,
        dirs.shared_key
    );
}

#[test]
fn translated_dockerfile_and_generated_files_go_into_the_tar() {
    let dir = tree(&[
        ("Dockerfile", "FROM scratch\n"),
        ("a", "a"),
        (".headjack-heredocs", "taken"),
    ]);
    #[cfg(unix)]
    for p in ["Dockerfile", "a", ".headjack-heredocs"] {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir.path().join(p), fs::Permissions::from_mode(0o644)).unwrap();
    }
    let ctx = walk(dir.path());
    assert_eq!(ctx.generated_dir(), ".headjack-heredocs.1");
    let generated = [
        Generated {
            path: "run-1/EOF".into(),
            mode: 0o755,
            data: b"#!/bin/sh\n".to_vec(),
        },
        Generated {
            path: "copy-2/CONF".into(),
            mode: 0o644,
            data: b"k=v\n".to_vec(),
        },
    ];
    let mut tar = Vec::new();
    ctx.write_tar_with(&mut tar, Some(b"FROM scratch\n\n"), &generated)
        .unwrap();
    let listing = tar_listing(&tar);
    let summary: Vec<_> = listing
        .iter()
        .map(|(p, k, m, body)| (p.as_str(), *k, *m, body.as_str()))
        .collect();
    assert_eq!(summary[0], (".headjack-heredocs", 'f', 0o644, "taken"));
    assert_eq!(summary[1], ("Dockerfile", 'f', 0o644, "FROM scratch\n\n"));
    assert_eq!(summary[2], ("a", 'f', 0o644, "a"));
    assert_eq!(
        &summary[3..],
        [
            (".headjack-heredocs.1/", 'd', 0o755, ""),
            (".headjack-heredocs.1/copy-2/", 'd', 0o755, ""),
            (".headjack-heredocs.1/run-1/", 'd', 0o755, ""),
            (".headjack-heredocs.1/run-1/EOF", 'f', 0o755, "#!/bin/sh\n"),
            (".headjack-heredocs.1/copy-2/CONF", 'f', 0o644, "k=v\n"),
        ]
    );
}

#[cfg(unix)]
#[test]
fn long_paths_and_link_targets_use_gnu_long_names() {
    use std::os::unix::fs::symlink;
    let long_dir = format!("{}/{}", "d".repeat(80), "e".repeat(80));
    let long_file = format!("{long_dir}/{}.txt", "f".repeat(90));
    let dir = tree(&[
        ("Dockerfile", "FROM scratch\n"),
        (long_file.as_str(), "deep"),
    ]);
    let long_target = format!("{}/{}", "../".repeat(10), "t".repeat(120));
    symlink(&long_target, dir.path().join("link")).unwrap();
    let mut tar = Vec::new();
    walk(dir.path()).write_tar(&mut tar).unwrap();
    let listing = tar_listing(&tar);
    assert!(
        listing
            .iter()
            .any(|(p, k, _, b)| *p == long_file && *k == 'f' && b == "deep")
    );
    assert!(
        listing
            .iter()
            .any(|(p, k, _, _)| *p == format!("{long_dir}/") && *k == 'd')
    );
    assert!(
        listing
            .iter()
            .any(|(p, k, _, b)| p == "link" && *k == 'l' && *b == long_target)
    );
}

#[cfg(unix)]
#[test]
fn non_utf8_names_are_an_error_only_when_sent() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tree(&[("Dockerfile", "FROM scratch\n")]);
    let bad = dir.path().join(OsStr::from_bytes(b"caf\xe9.txt"));
    fs::write(&bad, "x").unwrap();
    let err = Context::walk(dir.path(), &dir.path().join("Dockerfile")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(
        err.message().contains("caf") && err.message().contains("UTF-8"),
        "{err}"
    );
    fs::write(dir.path().join(".dockerignore"), "caf*\n").unwrap();
    assert_eq!(paths(&walk(dir.path())), [".dockerignore", "Dockerfile"]);
}

#[cfg(unix)]
#[test]
fn special_files_are_skipped_and_unreadable_files_are_errors() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tree(&[("Dockerfile", "FROM scratch\n"), ("secret", "s")]);
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let _sock = std::os::unix::net::UnixListener::bind(dir.path().join("sock")).unwrap();
    assert_eq!(paths(&walk(dir.path())), ["Dockerfile", "secret"]);

    fs::set_permissions(dir.path().join("secret"), fs::Permissions::from_mode(0o000)).unwrap();
    if File::open(dir.path().join("secret")).is_ok() {
        return; // running as root: permissions do not stop reads
    }
    let err = Context::walk(dir.path(), &dir.path().join("Dockerfile")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.message().contains("secret"), "{err}");
    // Excluded, it is not read.
    fs::write(dir.path().join(".dockerignore"), "secret\n").unwrap();
    walk(dir.path());
}

#[test]
fn missing_context_or_dockerfile_is_invalid_base() {
    let dir = tree(&[("a", "")]);
    let err = Context::walk(&dir.path().join("nope"), &dir.path().join("Dockerfile")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidBase);
    let err = Context::walk(dir.path(), &dir.path().join("Dockerfile")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidBase);
    assert!(err.message().contains("Dockerfile"));
}

#[test]
fn bad_ignore_pattern_names_file_and_line() {
    let dir = tree(&[
        ("Dockerfile", "FROM scratch\n"),
        (".dockerignore", "ok\n[oops\n"),
    ]);
    let err = Context::walk(dir.path(), &dir.path().join("Dockerfile")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(
        err.message().contains(".dockerignore") && err.message().contains("line 2"),
        "{err}"
    );
}

#[test]
fn write_tar_detects_a_file_changed_since_the_walk() {
    let dir = tree(&[("Dockerfile", "FROM scratch\n"), ("a", "before")]);
    let ctx = walk(dir.path());
    fs::write(dir.path().join("a"), "after!").unwrap();
    let err = ctx.write_tar(Vec::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.message().contains("changed"), "{err}");
}

#[test]
fn parallel_and_serial_hashing_agree() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = BTreeMap::new();
    for i in 0..200 {
        files.insert(format!("d{}/f{i}", i % 7), "x".repeat(i * 13));
    }
    for (p, c) in &files {
        write_tree(dir.path(), &[(p.as_str(), c.as_str())]);
    }
    fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let ctx = walk(dir.path());
    for e in ctx
        .entries()
        .iter()
        .filter(|e| e.kind == EntryKind::File && e.rel_path != "Dockerfile")
    {
        let want: [u8; 32] = Sha256::digest(files[&e.rel_path].as_bytes()).into();
        assert_eq!(e.digest, Some(want), "{}", e.rel_path);
        assert_eq!(e.size, files[&e.rel_path].len() as u64);
    }
}
