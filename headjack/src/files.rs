//! Moving files in and out of an instance as tar archives, without letting any entry escape
//! its target.

use std::io::{Read, Seek, Write};
use std::path::{Component, Path, PathBuf};

use tokio::io::{AsyncRead, AsyncReadExt};

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

/// Reads the single regular file of the tar the engine streams for `path`, refusing (before
/// reading its content) a file larger than `limit` bytes or one that is not a regular file.
/// Only the tar headers and the file's own bytes are read: memory stays within the limit.
pub(crate) async fn read_single_file<R: AsyncRead + Unpin>(
    mut tar: R,
    path: &str,
    limit: u64,
) -> Result<Vec<u8>> {
    let io = |e: std::io::Error| Error::io(format!("reading {path}"), e);
    let mut block = [0u8; 512];
    loop {
        if !read_block(&mut tar, &mut block).await.map_err(io)? {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("{path} was not found in the container"),
            ));
        }
        let header = tar::Header::from_byte_slice(&block);
        let size = header.entry_size().map_err(io)?;
        match header.entry_type() {
            // Extended headers (long names, PAX attributes) come before the entry they describe.
            tar::EntryType::XHeader
            | tar::EntryType::XGlobalHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => {
                skip(&mut tar, padded(size)).await.map_err(io)?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if size > limit {
                    return Err(Error::invalid_argument(format!(
                        "{path} is {} ({size} bytes), more than the read limit of {} ({limit} \
                         bytes); copy it out to disk with copy_out, or raise the limit",
                        crate::spec::human_bytes(size),
                        crate::spec::human_bytes(limit),
                    )));
                }
                let mut data = vec![0u8; size as usize];
                tar.read_exact(&mut data).await.map_err(io)?;
                return Ok(data);
            }
            tar::EntryType::Directory => {
                return Err(Error::invalid_argument(format!(
                    "{path} is a directory; use copy_out to copy directories"
                )));
            }
            tar::EntryType::Symlink => {
                let target = header
                    .link_name()
                    .ok()
                    .flatten()
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                return Err(Error::invalid_argument(format!(
                    "{path} is a symbolic link to {target}; read the target instead"
                )));
            }
            other => {
                return Err(Error::invalid_argument(format!(
                    "{path} is not a regular file ({other:?})"
                )));
            }
        }
    }
}

/// Reads one 512-byte tar block; `false` at a clean end (end of stream or the zero block).
async fn read_block<R: AsyncRead + Unpin>(
    r: &mut R,
    block: &mut [u8; 512],
) -> std::io::Result<bool> {
    let mut got = 0;
    while got < block.len() {
        let n = r.read(&mut block[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(false)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        got += n;
    }
    Ok(block.iter().any(|b| *b != 0))
}

async fn skip<R: AsyncRead + Unpin>(r: &mut R, n: u64) -> std::io::Result<()> {
    let copied = tokio::io::copy(&mut r.take(n), &mut tokio::io::sink()).await?;
    if copied < n {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// `n` rounded up to whole tar blocks.
fn padded(n: u64) -> u64 {
    n.div_ceil(512) * 512
}

/// Copies `from` into `file`, leaving runs of zero bytes as holes: a sparse file streamed out of
/// a container (the engine sends its holes as zeros) stays sparse on the host, and the copy never
/// holds more than one buffer in memory.
pub(crate) async fn copy_sparse<R: AsyncRead + Unpin>(
    mut from: R,
    file: &mut tokio::fs::File,
) -> std::io::Result<u64> {
    use tokio::io::{AsyncSeekExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 << 10];
    let mut len = 0u64;
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().all(|b| *b == 0) {
            file.seek(std::io::SeekFrom::Current(n as i64)).await?;
        } else {
            file.write_all(&buf[..n]).await?;
        }
        len += n as u64;
    }
    file.flush().await?;
    file.set_len(len).await?;
    Ok(len)
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

/// Unpacks the tar in `archive` into host directory `dest`, refusing any entry that would land
/// outside it: absolute paths, `..` components, links (symbolic or hard) pointing outside, and
/// paths that run through a symbolic link (one already in `dest`, or one the archive makes) or
/// through a file where a directory is needed. Everything is checked before anything is written:
/// a refused copy writes nothing. Runs of zero bytes in regular files are left as holes (sparse
/// files stay sparse), and no file is ever held in memory.
pub(crate) fn unpack_safely<A: Read + Seek>(mut archive: A, dest: &Path) -> Result<Vec<PathBuf>> {
    let read_err = |e: std::io::Error| Error::io("reading the archive", e);
    // First pass: check every entry against the archive's own links and the destination.
    let mut links: Vec<PathBuf> = Vec::new();
    let mut files: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
    let mut regular: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
    {
        let mut tar = tar::Archive::new(&mut archive);
        for entry in tar.entries().map_err(read_err)? {
            let entry = entry.map_err(read_err)?;
            let path = entry.path().map_err(read_err)?.into_owned();
            check_relative(&path, &path)?;
            // An archive of a container path never needs `..`; refusing it keeps every entry's
            // place in the destination what its name says.
            if path.components().any(|c| matches!(c, Component::ParentDir)) {
                return Err(escape_error(&path, "has a .. component"));
            }
            if normalize_relative(&path).as_os_str().is_empty()
                && !entry.header().entry_type().is_dir()
            {
                return Err(escape_error(
                    &path,
                    "would replace the destination directory",
                ));
            }
            if let Some(link) = links.iter().find(|l| path.starts_with(l) && path != **l) {
                return Err(escape_error(
                    &path,
                    &format!(
                        "runs through {}, a symbolic link the archive makes",
                        link.display()
                    ),
                ));
            }
            let kind = entry.header().entry_type();
            if let Some(file) = path.ancestors().skip(1).find(|a| files.contains(*a)) {
                return Err(Error::invalid_argument(format!(
                    "refusing to copy: archive entry {} lies under {}, a file of the same archive; \
                     nothing was written",
                    path.display(),
                    file.display()
                )));
            }
            if !kind.is_dir() {
                files.insert(normalize_relative(&path));
            }
            if kind.is_file() {
                regular.insert(normalize_relative(&path));
            }
            check_destination(dest, &path, kind)?;
            if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name()
                    .map_err(read_err)?
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                if kind.is_hard_link() {
                    check_relative(&target, &path)?;
                    // Hard links in an archive point to a file it held before.
                    if !regular.contains(&normalize_relative(&target)) {
                        return Err(escape_error(
                            &path,
                            &format!(
                                "is a hard link to {}, which is not a file earlier in the archive",
                                target.display()
                            ),
                        ));
                    }
                } else {
                    if target.is_absolute() {
                        return Err(escape_error(
                            &path,
                            &format!("links to absolute path {}", target.display()),
                        ));
                    }
                    let joined = path.parent().unwrap_or(Path::new("")).join(&target);
                    check_relative(&joined, &path)?;
                    links.push(path.clone());
                }
            }
        }
    }
    // Second pass: write.
    archive.rewind().map_err(read_err)?;
    std::fs::create_dir_all(dest)
        .map_err(|e| Error::io(format!("creating {}", dest.display()), e))?;
    let mut tar = tar::Archive::new(&mut archive);
    tar.set_preserve_permissions(true);
    tar.set_overwrite(true);
    let mut written = Vec::new();
    for entry in tar.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let rel = normalize_relative(&entry.path().map_err(read_err)?);
        let target = dest.join(&rel);
        let write_err = |e: std::io::Error| Error::io(format!("writing {}", target.display()), e);
        if entry.header().entry_type().is_file() {
            write_sparse(&mut entry, &target).map_err(write_err)?;
        } else {
            // unpack_in refuses paths that escape `dest` (including through existing symlinks).
            let ok = entry.unpack_in(dest).map_err(write_err)?;
            if !ok {
                return Err(escape_error(
                    &rel,
                    "would be written outside the destination",
                ));
            }
        }
        written.push(target);
    }
    Ok(written)
}

/// Refuses an entry whose path in `dest` runs through an existing symbolic link, or needs a
/// directory where a file is (or replaces a directory with something else).
fn check_destination(dest: &Path, rel: &Path, kind: tar::EntryType) -> Result<()> {
    let mut at = dest.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for (i, part) in parts.iter().enumerate() {
        at.push(part);
        let Ok(meta) = std::fs::symlink_metadata(&at) else {
            return Ok(()); // nothing there yet: the copy creates it
        };
        let last = i + 1 == parts.len();
        if meta.file_type().is_symlink() && !(last && kind.is_symlink()) {
            return Err(escape_error(
                rel,
                &format!(
                    "would be written through {}, a symbolic link in the destination",
                    at.display()
                ),
            ));
        }
        if !last && !meta.is_dir() {
            return Err(Error::invalid_argument(format!(
                "refusing to copy: {} is a file where {} needs a directory; nothing was written",
                at.display(),
                rel.display()
            )));
        }
        if last && meta.is_dir() && !kind.is_dir() {
            return Err(Error::invalid_argument(format!(
                "refusing to copy: {} is a directory and would be replaced by a file; nothing was \
                 written",
                at.display()
            )));
        }
    }
    Ok(())
}

/// Writes a regular file from the archive, seeking over runs of zeros (holes).
fn write_sparse<R: Read>(entry: &mut tar::Entry<'_, R>, target: &Path) -> std::io::Result<()> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if std::fs::symlink_metadata(target).is_ok_and(|m| m.file_type().is_symlink()) {
        std::fs::remove_file(target)?;
    }
    let mut file = std::fs::File::create(target)?;
    let mut buf = vec![0u8; 64 << 10];
    let mut len = 0u64;
    loop {
        let n = entry.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().all(|b| *b == 0) {
            file.seek(std::io::SeekFrom::Current(n as i64))?;
        } else {
            file.write_all(&buf[..n])?;
        }
        len += n as u64;
    }
    file.set_len(len)?;
    let header = entry.header();
    if let Ok(mode) = header.mode() {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))?;
    }
    if let Ok(mtime) = header.mtime() {
        let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
        let _ = file.set_times(std::fs::FileTimes::new().set_modified(when));
    }
    Ok(())
}

/// `p` without `.` components (entries are checked to have no `..` before this is used).
fn normalize_relative(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

fn check_relative(p: &Path, entry: &Path) -> Result<()> {
    let mut depth: i64 = 0;
    for c in p.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return Err(escape_error(entry, "climbs out of the destination with .."));
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(escape_error(entry, "is an absolute path"));
            }
        }
    }
    Ok(())
}

fn escape_error(entry: &Path, why: &str) -> Error {
    Error::invalid_argument(format!(
        "refusing to copy: archive entry {} {why}; nothing was written",
        entry.display()
    ))
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
