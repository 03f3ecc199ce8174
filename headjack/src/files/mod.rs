//! Moving files in and out of an instance as tar archives, without letting any entry escape
//! its target: container paths and ownership here, reading the engine's archives in `read`,
//! unpacking one onto the host in `unpack`.

mod read;
mod unpack;

use std::path::Path;

pub(crate) use read::{copy_sparse, read_single_file};
pub(crate) use unpack::unpack_safely;

use crate::error::{Error, ErrorKind, Result};

/// Splits an absolute container path into (parent directory, file name), lexically normalised.
/// `..` that would climb above `/` is refused.
pub(crate) fn split_container_path(path: &str) -> Result<(String, String)> {
    let norm = normalize_container_path(path)?;
    let (parent, name) = norm.rsplit_once('/').unwrap_or(("", &norm));
    if name.is_empty() {
        return Err(Error::invalid_argument(format!(
            "{path:?} names a directory, not a file"
        )));
    }
    Ok((
        if parent.is_empty() {
            "/".into()
        } else {
            parent.to_string()
        },
        name.to_string(),
    ))
}

/// Normalises an absolute container path (`/a/./b/../c` → `/a/c`).
pub(crate) fn normalize_container_path(path: &str) -> Result<String> {
    if path.contains('\0') {
        return Err(Error::invalid_argument(
            "container paths cannot contain NUL bytes",
        ));
    }
    if !path.starts_with('/') {
        return Err(Error::invalid_argument(format!(
            "container path {path:?} must be absolute (start with /)"
        )));
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(Error::invalid_argument(format!(
                        "container path {path:?} climbs above /"
                    )));
                }
            }
            p => parts.push(p),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// Who files copied into a container belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ownership {
    /// root (uid 0, gid 0).
    Root,
    /// Numeric IDs, written into the tar headers.
    Ids(u64, u64),
    /// A user name: the engine resolves it in the container's passwd (`copyUIDGID`).
    Named,
}

impl Ownership {
    /// From a container's configured user (`name`, `uid`, `uid:gid`, `name:group`).
    pub(crate) fn of_user(user: Option<&str>) -> Ownership {
        let Some(user) = user.filter(|u| !u.is_empty()) else {
            return Ownership::Root;
        };
        let (u, g) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user, None),
        };
        match (u.parse::<u64>(), g.map(str::parse::<u64>)) {
            (Ok(0), None | Some(Ok(0))) => Ownership::Root,
            // Without a group, use the uid: images conventionally give each user its own group.
            (Ok(uid), None) => Ownership::Ids(uid, uid),
            (Ok(uid), Some(Ok(gid))) => Ownership::Ids(uid, gid),
            _ if u == "root" => Ownership::Root,
            _ => Ownership::Named,
        }
    }

    fn ids(self) -> (u64, u64) {
        match self {
            Ownership::Ids(u, g) => (u, g),
            _ => (0, 0),
        }
    }
}

/// Resolves `user` (`name`, `name:group`) to numeric IDs from a container's `/etc/passwd` and
/// `/etc/group` contents: the user's own group unless a group is named.
pub(crate) fn resolve_owner(user: &str, passwd: &[u8], group: &[u8]) -> Option<(u32, u32)> {
    let (name, group_name) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let field = |line: &str, i: usize| line.split(':').nth(i).map(str::to_string);
    let passwd = String::from_utf8_lossy(passwd);
    let entry = passwd
        .lines()
        .find(|l| field(l, 0).as_deref() == Some(name))?;
    let uid = field(entry, 2)?.parse().ok()?;
    let mut gid = field(entry, 3)?.parse().ok()?;
    if let Some(g) = group_name {
        gid = match g.parse() {
            Ok(n) => n,
            Err(_) => {
                let group = String::from_utf8_lossy(group);
                let line = group.lines().find(|l| field(l, 0).as_deref() == Some(g))?;
                field(line, 2)?.parse().ok()?
            }
        };
    }
    Some((uid, gid))
}

/// A tar holding one regular file.
pub(crate) fn single_file_tar(
    name: &str,
    data: &[u8],
    mode: u32,
    owner: Ownership,
) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::with_capacity(data.len() + 2048));
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    let (uid, gid) = owner.ids();
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mtime(now_secs());
    b.append_data(&mut h, name, data)
        .map_err(|e| Error::io("packing a file", e))?;
    b.into_inner().map_err(|e| Error::io("packing a file", e))
}

/// Packs host file or directory `src` as a tar whose top entry is named `name`, owned by
/// `owner`, keeping permission bits. Symlinks are kept as links, never followed.
pub(crate) fn pack_host_path(src: &Path, name: &str, owner: Ownership) -> Result<Vec<u8>> {
    std::fs::symlink_metadata(src).map_err(|e| {
        Error::new(
            ErrorKind::NotFound,
            format!("cannot copy {}: {e}", src.display()),
        )
        .with_source(e)
    })?;
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    let (uid, gid) = owner.ids();
    let what = |p: &Path| format!("packing {}", p.display());
    for entry in walkdir::WalkDir::new(src)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|e| {
            let path = e
                .path()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| src.to_path_buf());
            Error::io(what(&path), e.into())
        })?;
        let rel = entry.path().strip_prefix(src).unwrap_or(Path::new(""));
        let in_tar = Path::new(name).join(rel);
        let meta = entry
            .path()
            .symlink_metadata()
            .map_err(|e| Error::io(what(entry.path()), e))?;
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
        h.set_uid(uid);
        h.set_gid(gid);
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target =
                std::fs::read_link(entry.path()).map_err(|e| Error::io(what(entry.path()), e))?;
            b.append_link(&mut h, &in_tar, &target)
                .map_err(|e| Error::io(what(entry.path()), e))?;
        } else if ft.is_dir() {
            b.append_data(&mut h, &in_tar, std::io::empty())
                .map_err(|e| Error::io(what(entry.path()), e))?;
        } else if ft.is_file() {
            let f =
                std::fs::File::open(entry.path()).map_err(|e| Error::io(what(entry.path()), e))?;
            b.append_data(&mut h, &in_tar, f)
                .map_err(|e| Error::io(what(entry.path()), e))?;
        } else {
            tracing::debug!(path = %entry.path().display(), "skipping special file");
        }
    }
    b.into_inner().map_err(|e| Error::io(what(src), e))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn tar_with(entries: &[(&str, tar::EntryType, Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_size(if *kind == tar::EntryType::Regular {
                2
            } else {
                0
            });
            // Write the raw name so that unsafe names (absolute, ..) reach the archive.
            let raw = &mut h.as_old_mut().name;
            raw[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            h.set_cksum();
            let data: &[u8] = if *kind == tar::EntryType::Regular {
                b"hi"
            } else {
                b""
            };
            b.append(&h, data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn container_paths_are_normalised_and_checked() {
        assert_eq!(normalize_container_path("/a/./b/../c").unwrap(), "/a/c");
        assert!(normalize_container_path("relative").is_err());
        assert!(normalize_container_path("/../etc").is_err());
        assert_eq!(
            split_container_path("/tmp/x.json").unwrap(),
            ("/tmp".into(), "x.json".into())
        );
        assert_eq!(
            split_container_path("/x").unwrap(),
            ("/".into(), "x".into())
        );
        assert!(split_container_path("/").is_err());
    }

    #[test]
    fn owners_resolve_from_the_containers_files() {
        let passwd = b"root:x:0:0::/root:/bin/sh\nagent:x:1000:1000::/home/agent:/bin/bash\n";
        let group = b"root:x:0:\nstaff:x:50:agent\n";
        assert_eq!(resolve_owner("agent", passwd, group), Some((1000, 1000)));
        assert_eq!(
            resolve_owner("agent:staff", passwd, group),
            Some((1000, 50))
        );
        assert_eq!(resolve_owner("agent:7", passwd, group), Some((1000, 7)));
        assert_eq!(resolve_owner("nobody", passwd, group), None);
        assert_eq!(resolve_owner("agent:nogroup", passwd, group), None);
    }

    #[test]
    fn ownership_from_user_strings() {
        assert_eq!(Ownership::of_user(None), Ownership::Root);
        assert_eq!(Ownership::of_user(Some("root")), Ownership::Root);
        assert_eq!(Ownership::of_user(Some("0:0")), Ownership::Root);
        assert_eq!(Ownership::of_user(Some("1000")), Ownership::Ids(1000, 1000));
        assert_eq!(
            Ownership::of_user(Some("1000:50")),
            Ownership::Ids(1000, 50)
        );
        assert_eq!(Ownership::of_user(Some("agent")), Ownership::Named);
        assert_eq!(Ownership::of_user(Some("agent:staff")), Ownership::Named);
    }

    #[test]
    fn single_file_round_trip() {
        let t = single_file_tar("f.bin", &[0, 1, 2, 255], 0o600, Ownership::Ids(5, 6)).unwrap();
        let mut a = tar::Archive::new(&t[..]);
        let e = a.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(
            (e.header().uid().unwrap(), e.header().gid().unwrap()),
            (5, 6)
        );
        let read = |limit| {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(read_single_file(&t[..], "/f.bin", limit))
        };
        assert_eq!(read(4).unwrap(), vec![0, 1, 2, 255]);
        let e = read(3).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.message().contains("read limit"), "{e}");
    }

    #[test]
    fn escaping_entries_are_refused_and_nothing_written() {
        let dir = tempfile::tempdir().unwrap();
        let cases: Vec<Vec<u8>> = vec![
            tar_with(&[
                ("ok.txt", tar::EntryType::Regular, None),
                ("../evil", tar::EntryType::Regular, None),
            ]),
            tar_with(&[("/etc/evil", tar::EntryType::Regular, None)]),
            tar_with(&[("a/../../evil", tar::EntryType::Regular, None)]),
            tar_with(&[("link", tar::EntryType::Symlink, Some("/etc/passwd"))]),
            tar_with(&[("d/link", tar::EntryType::Symlink, Some("../../outside"))]),
            tar_with(&[("hard", tar::EntryType::Link, Some("../outside"))]),
        ];
        for (i, t) in cases.iter().enumerate() {
            let dest = dir.path().join(format!("case{i}"));
            let e = unpack_safely(std::io::Cursor::new(t), &dest).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "case {i}: {e}");
            assert!(
                !dest.join("ok.txt").exists(),
                "case {i} wrote a partial copy"
            );
        }
        assert!(!dir.path().join("evil").exists());
    }

    #[test]
    fn safe_links_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let t = tar_with(&[
            ("d/file", tar::EntryType::Regular, None),
            ("d/link", tar::EntryType::Symlink, Some("file")),
        ]);
        unpack_safely(std::io::Cursor::new(&t), dir.path()).unwrap();
        assert_eq!(
            std::fs::read_link(dir.path().join("d/link")).unwrap(),
            PathBuf::from("file")
        );
        assert_eq!(std::fs::read(dir.path().join("d/file")).unwrap(), b"hi");
    }

    use proptest::prelude::*;

    /// A path for a tar entry, hostile or not: `..`, absolute, `.`, empty segments.
    fn entry_path() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof!["[a-z]{1,3}", Just("..".to_string()), Just(".".to_string())],
            1..4,
        )
        .prop_flat_map(|segs| {
            (Just(segs.join("/")), any::<bool>())
                .prop_map(|(p, abs)| if abs { format!("/{p}") } else { p })
        })
    }

    fn entry_kind() -> impl Strategy<Value = tar::EntryType> {
        prop_oneof![
            Just(tar::EntryType::Regular),
            Just(tar::EntryType::Directory),
            Just(tar::EntryType::Symlink),
            Just(tar::EntryType::Link),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Whatever the archive holds, unpacking never panics and never writes outside the
        /// destination; a refusal writes nothing.
        #[test]
        fn unpacking_stays_inside_the_destination(
            entries in prop::collection::vec((entry_path(), entry_kind(), entry_path()), 1..6)
        ) {
            let root = tempfile::tempdir().unwrap();
            let dest = root.path().join("dest");
            let list: Vec<(&str, tar::EntryType, Option<&str>)> = entries
                .iter()
                .map(|(p, k, l)| (p.as_str(), *k, (k.is_symlink() || k.is_hard_link()).then_some(l.as_str())))
                .filter(|(p, _, _)| p.len() < 100)
                .collect();
            prop_assume!(!list.is_empty());
            let t = tar_with(&list);
            let result = unpack_safely(std::io::Cursor::new(&t), &dest);
            // Nothing appears next to the destination.
            let outside: Vec<_> = std::fs::read_dir(root.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .filter(|n| n != "dest")
                .collect();
            prop_assert!(outside.is_empty(), "written outside: {outside:?}");
            match result {
                Ok(written) => {
                    for w in written {
                        prop_assert!(w.starts_with(&dest), "{}", w.display());
                    }
                }
                Err(e) => {
                    prop_assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{}", e);
                    prop_assert!(
                        !dest.exists() || std::fs::read_dir(&dest).unwrap().count() == 0,
                        "a refused copy wrote something: {}", e
                    );
                }
            }
        }
    }
}
