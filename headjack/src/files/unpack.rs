//! Unpacking an archive onto the host, checked whole before anything is written.

use std::io::{Read, Seek, Write};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

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
