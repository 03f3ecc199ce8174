//! Walking the context directory: the ignore file, the entries sent, their names.

use super::*;

/// Finds and parses the ignore file that applies (see [`Context::walk`]).
pub(super) fn read_ignore_file(
    root: &Path,
    dockerfile: &Path,
) -> Result<(IgnoreRules, Option<PathBuf>)> {
    let mut candidates = Vec::with_capacity(3);
    if let Some(name) = dockerfile.file_name() {
        let mut specific = name.to_os_string();
        specific.push(".dockerignore");
        candidates.push(dockerfile.with_file_name(specific));
    }
    candidates.push(root.join(".dockerignore"));
    candidates.push(root.join(".containerignore"));
    for path in candidates {
        if !path.is_file() {
            continue;
        }
        let bytes = fs::read(&path)
            .map_err(|e| Error::io(format!("cannot read ignore file {}", path.display()), e))?;
        let rules = IgnoreRules::parse(&String::from_utf8_lossy(&bytes))
            .map_err(|e| e.context(path.display()))?;
        return Ok((rules, Some(path)));
    }
    Ok((IgnoreRules::default(), None))
}

/// Walks the tree and returns the entries that are sent, files not hashed yet.
pub(super) fn collect_entries(
    root: &Path,
    rules: &IgnoreRules,
    forced: &[String],
) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    // parents[d - 1]: the match results of the directory at depth d on the current path.
    let mut parents: Vec<MatchInfo> = Vec::new();
    let mut walk = WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1)
        .into_iter();
    while let Some(next) = walk.next() {
        let dent = next.map_err(|e| {
            let path = e
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            Error::io(
                format!("cannot read {path} in the build context"),
                io::Error::from(e),
            )
        })?;
        let depth = dent.depth();
        parents.truncate(depth - 1);
        let rel_os = dent.path().strip_prefix(root).map_err(|_| {
            Error::internal(format!(
                "walked outside the context: {}",
                dent.path().display()
            ))
        })?;
        let utf8 = rel_os.to_str();
        // Matching a non-UTF-8 name uses its lossy form; it is an error only if it is sent.
        let rel: std::borrow::Cow<'_, str> = match utf8 {
            Some(s) => s.into(),
            None => rel_os.to_string_lossy(),
        };
        let file_type = dent.file_type();

        let is_forced = forced.iter().any(|f| *f == rel);
        let (mut excluded, info) = if rules.is_empty() {
            (false, MatchInfo::default())
        } else {
            rules.matches_with_parent(&rel, parents.last())
        };
        // Sent because the builder reads it, although the rules exclude it.
        let only_forced = is_forced && excluded;
        if is_forced {
            excluded = false;
        }
        if file_type.is_dir() {
            parents.push(info);
        }
        if excluded {
            if file_type.is_dir() {
                // Docker descends into an excluded directory only when an exception names a path
                // below it; we also descend towards the Dockerfile and the ignore file.
                let leads_to_forced = forced.iter().any(|f| {
                    f.starts_with(rel.as_ref()) && f.as_bytes().get(rel.len()) == Some(&b'/')
                });
                if !(leads_to_forced || rules.exception_may_match_under(&rel)) {
                    walk.skip_current_dir();
                }
            }
            continue;
        }

        let kind = if file_type.is_dir() {
            EntryKind::Dir
        } else if file_type.is_symlink() {
            EntryKind::Symlink
        } else if file_type.is_file() {
            EntryKind::File
        } else {
            tracing::debug!(path = %dent.path().display(), "skipping special file in the build context");
            continue;
        };
        let rel_path = match utf8 {
            Some(s) => s.to_string(),
            None => return Err(non_utf8(dent.path())),
        };
        let mut entry = Entry {
            rel_path,
            kind,
            mode: 0,
            size: 0,
            digest: None,
            link_target: None,
            abs_path: dent.path().to_path_buf(),
            only_forced,
        };
        // A file's size and mode are read when it is hashed, from the open file, so that the
        // stat calls run on the hashing threads too.
        match kind {
            EntryKind::File => {}
            EntryKind::Dir => {
                let meta = dent.metadata().map_err(|e| {
                    Error::io(
                        format!("cannot read {} in the build context", dent.path().display()),
                        io::Error::from(e),
                    )
                })?;
                entry.mode = permission_bits(&meta);
            }
            EntryKind::Symlink => {
                let target = fs::read_link(dent.path()).map_err(|e| {
                    Error::io(format!("cannot read link {}", dent.path().display()), e)
                })?;
                match target.to_str() {
                    Some(t) => entry.link_target = Some(t.to_string()),
                    None => {
                        return Err(
                            non_utf8(&target).context(format!("link {}", dent.path().display()))
                        );
                    }
                }
            }
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// The relative path as a `/`-separated string, or the error for a non-UTF-8 path that is sent.
pub(super) fn utf8_rel(rel: &Path, full: &Path) -> Result<String> {
    rel.to_str()
        .map(str::to_string)
        .ok_or_else(|| non_utf8(full))
}

/// The error for a path that must be sent but is not UTF-8.
pub(super) fn non_utf8(path: &Path) -> Error {
    Error::invalid_argument(format!(
        "{} is not valid UTF-8 and cannot be part of a build context; rename it or add it to the \
         .dockerignore file",
        path.display()
    ))
}

/// The permission bits the tar and the key keep (`mode & 0o7777`).
#[cfg(unix)]
pub(super) fn permission_bits(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

/// Without Unix modes: what `docker build` sends from Windows (0755 directories, 0644 files).
#[cfg(not(unix))]
pub(super) fn permission_bits(meta: &fs::Metadata) -> u32 {
    if meta.is_dir() { 0o755 } else { 0o644 }
}

/// The reserved tar name for an outside Dockerfile that no entry uses.
pub(super) fn reserved_name(entries: &[Entry]) -> String {
    let taken: Vec<&str> = entries.iter().map(|e| e.rel_path.as_str()).collect();
    free_name(OUTSIDE_DOCKERFILE_NAME, &taken)
}

/// `base`, or `base.1`, `base.2`, … : the first that is neither one of `taken` nor a directory
/// above one of them.
pub(super) fn free_name(base: &str, taken: &[&str]) -> String {
    let used = |name: &str| {
        taken.iter().any(|t| {
            *t == name || (t.starts_with(name) && t.as_bytes().get(name.len()) == Some(&b'/'))
        })
    };
    let mut name = base.to_string();
    let mut n = 1;
    while used(&name) {
        name = format!("{base}.{n}");
        n += 1;
    }
    name
}
