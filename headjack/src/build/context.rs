//! The build context: which files are sent, their content hashes, and the deterministic tar.
//!
//! The file set is the one the docker CLI sends for the same directory and ignore file (see
//! [`IgnoreRules`]); the tar differs from the CLI's only in being reproducible: sorted entries,
//! a fixed mtime and owner 0:0 without names. Permission bits (including setuid, setgid and
//! sticky) are kept exactly, as `docker build` keeps them: a `chmod 600` key stays private in
//! the image.
//!
//! The mtime is fixed because the content, not the moment of the last edit, decides a build:
//! the cache key leaves mtimes out, so the tar must too, or two builds with one key could give
//! different images. Files copied into an image therefore carry that date (2006-07-24), not their
//! mtime on the host; tools in a build that compare mtimes across the copy (make) see old files.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use sha2::{Digest, Sha256};
use walkdir::WalkDir;

use super::ignore::{IgnoreRules, MatchInfo};
use crate::engine::{Content, SyncDirs, SyncEntry, SyncKind};
use crate::{Error, ErrorKind, Result};

/// The name under which a Dockerfile from outside the context is put into the tar.
///
/// Fixed (the docker CLI uses a random `.dockerfile.<hex>`) so that the tar is reproducible;
/// `.1`, `.2`, … are appended when the context itself holds that name.
pub(crate) const OUTSIDE_DOCKERFILE_NAME: &str = ".headjack-dockerfile";

/// The directory name for generated files (see [`Context::generated_dir`]).
pub(crate) const GENERATED_DIR_NAME: &str = ".headjack-heredocs";

/// The mtime of every tar entry (the one the `tar` crate's deterministic mode uses; some tools
/// mishandle 0).
const TAR_MTIME: u64 = 1_153_704_088;

/// Read buffer per hashing thread: large enough that big files need few syscalls.
const READ_BUFFER: usize = 256 * 1024;

/// Below this many files, hashing on one thread beats starting more.
const PARALLEL_MIN_FILES: usize = 16;

/// The kind of a context entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum EntryKind {
    /// A regular file (hard links are sent as independent files).
    File,
    /// A directory.
    Dir,
    /// A symbolic link, sent as a link (never followed).
    Symlink,
}

/// One file, directory or symlink that is sent to the engine.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Path relative to the context root, `/`-separated, no leading `./`.
    pub(crate) rel_path: String,
    /// File, directory or symlink.
    pub(crate) kind: EntryKind,
    /// Permission bits (`mode & 0o7777`) of files and directories; 0 for symlinks.
    pub(crate) mode: u32,
    /// Content length in bytes, for files (0 otherwise).
    pub(crate) size: u64,
    /// sha256 of the content, for files.
    pub(crate) digest: Option<[u8; 32]>,
    /// The link target as stored in the symlink, for symlinks.
    pub(crate) link_target: Option<String>,
    /// Where the entry is on disk.
    pub(crate) abs_path: PathBuf,
    /// The ignore rules exclude it, but it is sent because the builder reads it (the
    /// Dockerfile or the ignore file, as the docker CLI sends them).
    pub(crate) only_forced: bool,
}

/// Where the Dockerfile goes in the tar.
#[derive(Debug, Clone)]
enum DockerfilePlace {
    /// Inside the context: it is one of the entries, at this relative path.
    Inside(String),
    /// Outside the context: added to the tar under this reserved name.
    Outside(String),
}

/// A walked build context, ready to be hashed into a cache key or packed into a tar.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    /// Every entry sent, sorted by `rel_path` (byte order).
    entries: Vec<Entry>,
    dockerfile: DockerfilePlace,
    /// The Dockerfile as read during the walk (what an outside Dockerfile is sent as).
    dockerfile_bytes: Vec<u8>,
    /// The context directory, canonical.
    root: PathBuf,
    /// The ignore file that was applied, if any.
    #[cfg(test)]
    ignore_file: Option<PathBuf>,
}

impl Context {
    /// Walks `context_dir` for a build of `dockerfile`, applying the ignore file and hashing every
    /// file that is sent.
    ///
    /// The ignore file is `<dockerfile name>.dockerignore` next to the Dockerfile, else
    /// `.dockerignore`, else `.containerignore` in the context. The Dockerfile and the ignore file
    /// are always sent when they lie inside the context, whatever the patterns say (as the docker
    /// CLI does). Symlinks are not followed; sockets, fifos and devices are skipped.
    ///
    /// Errors: a missing context or Dockerfile is `InvalidBase`; an unreadable file or directory
    /// that would be sent is `Io`; a path that would be sent and is not UTF-8 is
    /// `InvalidArgument` (rename it or add it to the ignore file); a malformed ignore pattern is
    /// `InvalidArgument`.
    pub(crate) fn walk(context_dir: &Path, dockerfile: &Path) -> Result<Context> {
        let root = fs::canonicalize(context_dir).map_err(|e| {
            Error::new(
                ErrorKind::InvalidBase,
                format!(
                    "build context {} cannot be used: {e}",
                    context_dir.display()
                ),
            )
            .with_source(e)
        })?;
        if !root.is_dir() {
            return Err(Error::new(
                ErrorKind::InvalidBase,
                format!("build context {} is not a directory", context_dir.display()),
            ));
        }
        let dockerfile_abs = fs::canonicalize(dockerfile).map_err(|e| {
            Error::new(
                ErrorKind::InvalidBase,
                format!(
                    "cannot read Dockerfile {}: {e}; check the path",
                    dockerfile.display()
                ),
            )
            .with_source(e)
        })?;
        let dockerfile_bytes = fs::read(&dockerfile_abs).map_err(|e| {
            Error::new(
                ErrorKind::InvalidBase,
                format!("cannot read Dockerfile {}: {e}", dockerfile.display()),
            )
            .with_source(e)
        })?;
        let dockerfile_rel = match dockerfile_abs.strip_prefix(&root) {
            Ok(rel) => Some(utf8_rel(rel, &dockerfile_abs)?),
            Err(_) => None,
        };

        let (rules, ignore_file) = read_ignore_file(&root, dockerfile)?;
        // Paths sent whatever the patterns say (docker CLI: TrimBuildFilesFromExcludes).
        let mut forced: Vec<String> = dockerfile_rel.iter().cloned().collect();
        if let Some(path) = &ignore_file
            && let Ok(canonical) = fs::canonicalize(path)
            && let Ok(rel) = canonical.strip_prefix(&root)
        {
            forced.push(utf8_rel(rel, &canonical)?);
        }

        let mut entries = collect_entries(&root, &rules, &forced)?;
        hash_files(&mut entries)?;
        entries.sort_unstable_by(|a, b| a.rel_path.cmp(&b.rel_path));

        let dockerfile = match dockerfile_rel {
            Some(rel) => DockerfilePlace::Inside(rel),
            None => DockerfilePlace::Outside(reserved_name(&entries)),
        };
        #[cfg(not(test))]
        let _ = ignore_file;
        Ok(Context {
            entries,
            dockerfile,
            dockerfile_bytes,
            root,
            #[cfg(test)]
            ignore_file,
        })
    }

    /// Every entry that is sent, sorted by relative path (byte order).
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// How many regular files are sent.
    pub(crate) fn file_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.kind == EntryKind::File)
            .count()
    }

    /// The total size in bytes of the regular files sent.
    #[cfg(test)]
    pub(crate) fn total_size(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }

    /// Whether the Dockerfile lies inside the context (then it is one of the entries).
    pub(crate) fn dockerfile_in_context(&self) -> bool {
        matches!(self.dockerfile, DockerfilePlace::Inside(_))
    }

    /// The Dockerfile's path inside the tar: its relative path, or the reserved name when it lies
    /// outside the context. This is the `dockerfile` parameter of the build call.
    pub(crate) fn dockerfile_name_in_tar(&self) -> &str {
        match &self.dockerfile {
            DockerfilePlace::Inside(rel) | DockerfilePlace::Outside(rel) => rel,
        }
    }

    /// The Dockerfile's bytes as read during the walk.
    pub(crate) fn dockerfile_bytes(&self) -> &[u8] {
        &self.dockerfile_bytes
    }

    /// The ignore file that was applied, if any.
    #[cfg(test)]
    pub(crate) fn ignore_file(&self) -> Option<&Path> {
        self.ignore_file.as_deref()
    }

    /// The context as BuildKit reads it over a session, the way `docker build` sends a
    /// directory: `context` holds what the ignore rules select (the Dockerfile and the ignore
    /// file only when the rules keep them; parents of kept files always, as fsutil sends them)
    /// plus the `generated` files under [`Context::generated_dir`]; `dockerfile` holds the
    /// Dockerfile to build, as `Dockerfile`.
    pub(crate) fn sync_dirs(&self, dockerfile: Vec<u8>, generated: &[Generated]) -> SyncDirs {
        let mut context: Vec<SyncEntry> = Vec::with_capacity(self.entries.len());
        let mut dirs: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for e in self.entries.iter().filter(|e| !e.only_forced) {
            let kind = match e.kind {
                EntryKind::Dir => {
                    dirs.insert(&e.rel_path);
                    SyncKind::Dir
                }
                EntryKind::Symlink => SyncKind::Symlink {
                    target: e.link_target.clone().unwrap_or_default(),
                },
                EntryKind::File => SyncKind::File {
                    size: e.size,
                    content: Content::Disk {
                        path: e.abs_path.clone(),
                        digest: e.digest.unwrap_or_default(),
                    },
                },
            };
            context.push(SyncEntry {
                path: e.rel_path.clone(),
                mode: e.mode,
                kind,
            });
        }
        // Parents the rules exclude but a kept path lies under (`dir` for `!dir/keep`).
        let mut missing: Vec<String> = Vec::new();
        for e in context.iter() {
            let mut parent = Path::new(&e.path).parent();
            while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
                let name = p.to_string_lossy();
                if !dirs.contains(name.as_ref()) && !missing.iter().any(|m| *m == name) {
                    missing.push(name.into_owned());
                }
                parent = p.parent();
            }
        }
        for dir in missing {
            let mode = fs::symlink_metadata(self.root.join(&dir))
                .map(|m| permission_bits(&m))
                .unwrap_or(0o755);
            context.push(SyncEntry {
                path: dir,
                mode,
                kind: SyncKind::Dir,
            });
        }
        if !generated.is_empty() {
            let root = self.generated_dir();
            let mut gen_dirs = vec![root.clone()];
            for g in generated {
                let mut parent = Path::new(&g.path).parent();
                while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
                    gen_dirs.push(format!("{root}/{}", p.display()));
                    parent = p.parent();
                }
                context.push(SyncEntry {
                    path: format!("{root}/{}", g.path),
                    mode: g.mode,
                    kind: SyncKind::File {
                        size: g.data.len() as u64,
                        content: Content::Memory(g.data.as_slice().into()),
                    },
                });
            }
            gen_dirs.sort();
            gen_dirs.dedup();
            context.extend(gen_dirs.into_iter().map(|path| SyncEntry {
                path,
                mode: 0o755,
                kind: SyncKind::Dir,
            }));
        }
        SyncDirs::sort(&mut context);
        let dockerfile = vec![SyncEntry {
            path: "Dockerfile".into(),
            mode: 0o644,
            kind: SyncKind::File {
                size: dockerfile.len() as u64,
                content: Content::Memory(dockerfile.into()),
            },
        }];
        // Builds of one directory share the engine's copy of it: later transfers send only
        // what changed.
        let shared_key = hex::encode(Sha256::digest(
            format!("headjack:{}", self.root.display()).as_bytes(),
        ));
        SyncDirs {
            dirs: [
                ("context".to_string(), context),
                ("dockerfile".to_string(), dockerfile),
            ]
            .into_iter()
            .collect(),
            shared_key,
            matcher: Arc::new(|patterns: &[String]| {
                let rules = IgnoreRules::parse(&patterns.join("\n")).ok()?;
                Some(Box::new(move |path: &str| rules.is_excluded(path))
                    as Box<dyn Fn(&str) -> bool + Send>)
            }),
        }
    }

    /// A directory name at the root of the context that no entry uses, for files headjack
    /// generates for the build (`.headjack-heredocs`, then `.1`, `.2`, …).
    pub(crate) fn generated_dir(&self) -> String {
        let mut taken: Vec<&str> = self.entries.iter().map(|e| e.rel_path.as_str()).collect();
        if let DockerfilePlace::Outside(name) = &self.dockerfile {
            taken.push(name);
        }
        free_name(GENERATED_DIR_NAME, &taken)
    }

    /// Writes the context as an uncompressed, reproducible tar (see [`Context::write_tar_with`]).
    #[cfg(test)]
    pub(crate) fn write_tar(&self, out: impl Write) -> Result<()> {
        self.write_tar_with(out, None, &[])
    }

    /// Writes the context as an uncompressed, reproducible tar, with the Dockerfile's content
    /// replaced by `dockerfile` if given (a translation of the bytes read during the walk) and
    /// `generated` files added under [`Context::generated_dir`].
    ///
    /// Entries come in `rel_path` order with mtime fixed, uid/gid 0, no user or group names,
    /// the exact permission bits of files and directories (0777 for symlinks, as any tar has),
    /// long names as GNU long-name records; an outside Dockerfile comes next under
    /// [`dockerfile_name_in_tar`](Self::dockerfile_name_in_tar), generated files last. Every file
    /// is re-hashed while it is written: if it changed since the walk this is an `Io` error, so
    /// an image is never built from content other than the one its cache key names.
    pub(crate) fn write_tar_with(
        &self,
        out: impl Write,
        dockerfile: Option<&[u8]>,
        generated: &[Generated],
    ) -> Result<()> {
        let tar_err = |e: io::Error| Error::io("writing the build context tar", e);
        let mut builder = tar::Builder::new(out);
        for entry in &self.entries {
            let mut header = base_header();
            match entry.kind {
                EntryKind::Dir => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(entry.mode);
                    let name = format!("{}/", entry.rel_path);
                    builder
                        .append_data(&mut header, name, io::empty())
                        .map_err(tar_err)?;
                }
                EntryKind::Symlink => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    let target = entry.link_target.as_deref().unwrap_or_default();
                    builder
                        .append_link(&mut header, &entry.rel_path, target)
                        .map_err(tar_err)?;
                }
                EntryKind::File
                    if dockerfile.is_some()
                        && matches!(&self.dockerfile, DockerfilePlace::Inside(rel) if *rel == entry.rel_path) =>
                {
                    let bytes = dockerfile.unwrap_or_default();
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(entry.mode);
                    header.set_size(bytes.len() as u64);
                    builder
                        .append_data(&mut header, &entry.rel_path, bytes)
                        .map_err(tar_err)?;
                }
                EntryKind::File => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(entry.mode);
                    header.set_size(entry.size);
                    let file = open_regular(&entry.abs_path).map_err(|e| {
                        Error::io(format!("cannot read {}", entry.abs_path.display()), e)
                    })?;
                    let mut reader = HashingReader::new(file.take(entry.size));
                    builder
                        .append_data(&mut header, &entry.rel_path, &mut reader)
                        .map_err(|e| {
                            Error::io(format!("cannot read {}", entry.abs_path.display()), e)
                        })?;
                    let (count, digest) = reader.finish();
                    if count != entry.size || Some(digest) != entry.digest {
                        return Err(Error::new(
                            ErrorKind::Io,
                            format!(
                                "{} changed while the build context was being sent; retry",
                                entry.abs_path.display()
                            ),
                        ));
                    }
                }
            }
        }
        if let DockerfilePlace::Outside(name) = &self.dockerfile {
            let bytes = dockerfile.unwrap_or(&self.dockerfile_bytes);
            let mut header = base_header();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(bytes.len() as u64);
            builder
                .append_data(&mut header, name, bytes)
                .map_err(tar_err)?;
        }
        if !generated.is_empty() {
            let root = self.generated_dir();
            let mut dirs: Vec<String> = vec![root.clone()];
            for g in generated {
                let mut parent = Path::new(&g.path).parent();
                while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
                    dirs.push(format!("{root}/{}", p.display()));
                    parent = p.parent();
                }
            }
            dirs.sort();
            dirs.dedup();
            for dir in dirs {
                let mut header = base_header();
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                builder
                    .append_data(&mut header, format!("{dir}/"), io::empty())
                    .map_err(tar_err)?;
            }
            for g in generated {
                let mut header = base_header();
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(g.mode);
                header.set_size(g.data.len() as u64);
                builder
                    .append_data(&mut header, format!("{root}/{}", g.path), g.data.as_slice())
                    .map_err(tar_err)?;
            }
        }
        let mut out = builder.into_inner().map_err(tar_err)?;
        out.flush().map_err(tar_err)
    }
}

/// A GNU header with the fixed fields of every entry.
fn base_header() -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_mtime(TAR_MTIME);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(0);
    header
}

/// Finds and parses the ignore file that applies (see [`Context::walk`]).
fn read_ignore_file(root: &Path, dockerfile: &Path) -> Result<(IgnoreRules, Option<PathBuf>)> {
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
fn collect_entries(root: &Path, rules: &IgnoreRules, forced: &[String]) -> Result<Vec<Entry>> {
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
fn utf8_rel(rel: &Path, full: &Path) -> Result<String> {
    rel.to_str()
        .map(str::to_string)
        .ok_or_else(|| non_utf8(full))
}

/// The error for a path that must be sent but is not UTF-8.
fn non_utf8(path: &Path) -> Error {
    Error::invalid_argument(format!(
        "{} is not valid UTF-8 and cannot be part of a build context; rename it or add it to the \
         .dockerignore file",
        path.display()
    ))
}

/// The permission bits the tar and the key keep (`mode & 0o7777`).
#[cfg(unix)]
fn permission_bits(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

/// Without Unix modes: what `docker build` sends from Windows (0755 directories, 0644 files).
#[cfg(not(unix))]
fn permission_bits(meta: &fs::Metadata) -> u32 {
    if meta.is_dir() { 0o755 } else { 0o644 }
}

/// The reserved tar name for an outside Dockerfile that no entry uses.
fn reserved_name(entries: &[Entry]) -> String {
    let taken: Vec<&str> = entries.iter().map(|e| e.rel_path.as_str()).collect();
    free_name(OUTSIDE_DOCKERFILE_NAME, &taken)
}

/// `base`, or `base.1`, `base.2`, … : the first that is neither one of `taken` nor a directory
/// above one of them.
fn free_name(base: &str, taken: &[&str]) -> String {
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

/// A file headjack generates for a build (a heredoc's document), written under
/// [`Context::generated_dir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Generated {
    /// Path below the generated directory, `/`-separated.
    pub(crate) path: String,
    /// Permission bits.
    pub(crate) mode: u32,
    pub(crate) data: Vec<u8>,
}

/// What hashing a file finds out about it.
#[derive(Debug, Clone, Copy)]
struct FileFacts {
    /// sha256 of the first `size` bytes.
    digest: [u8; 32],
    /// The bytes hashed: the size when the file was opened, or less if it shrank meanwhile.
    size: u64,
    /// Permission bits.
    mode: u32,
}

/// Hashes every file entry and records its size and exec bit, on several threads when there
/// are enough files.
fn hash_files(entries: &mut [Entry]) -> Result<()> {
    let files: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].kind == EntryKind::File)
        .collect();
    let threads = if files.len() < PARALLEL_MIN_FILES {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(4)
    };
    let results = if threads <= 1 {
        let mut buf = vec![0u8; READ_BUFFER];
        let mut out = Vec::with_capacity(files.len());
        for &i in &files {
            out.push((i, hash_file(&entries[i].abs_path, &mut buf)?));
        }
        out
    } else {
        hash_parallel(entries, &files, threads)?
    };
    for (i, facts) in results {
        let entry = &mut entries[i];
        entry.digest = Some(facts.digest);
        entry.size = facts.size;
        entry.mode = facts.mode;
    }
    Ok(())
}

/// Hashes `files` (indexes into `entries`) on `threads` threads taking work from a shared counter.
fn hash_parallel(
    entries: &[Entry],
    files: &[usize],
    threads: usize,
) -> Result<Vec<(usize, FileFacts)>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let per_thread: Vec<Result<Vec<(usize, FileFacts)>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut buf = vec![0u8; READ_BUFFER];
                    let mut out = Vec::new();
                    while !failed.load(Ordering::Relaxed) {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&i) = files.get(k) else { break };
                        match hash_file(&entries[i].abs_path, &mut buf) {
                            Ok(facts) => out.push((i, facts)),
                            Err(e) => {
                                failed.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                    }
                    Ok(out)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut all = Vec::with_capacity(files.len());
    for part in per_thread {
        all.extend(part?);
    }
    Ok(all)
}

/// Hashes a file's content (as long as it was when opened), streamed through `buf`.
fn hash_file(path: &Path, buf: &mut [u8]) -> Result<FileFacts> {
    let read_err = |e| Error::io(format!("cannot read {}", path.display()), e);
    let mut file = open_regular(path).map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(Error::new(
            ErrorKind::Io,
            format!(
                "{} changed while the build context was read; retry",
                path.display()
            ),
        ));
    }
    let mut hasher = Sha256::new();
    // Reading exactly the stat size saves the final empty read on every file.
    let mut left = meta.len();
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        match file.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                left -= n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_err(e)),
        }
    }
    Ok(FileFacts {
        digest: hasher.finalize().into(),
        size: meta.len() - left,
        mode: permission_bits(&meta),
    })
}

/// Opens a file the walk saw as a regular file, without following a symlink or blocking on a
/// fifo that replaced it since.
fn open_regular(path: &Path) -> io::Result<File> {
    let mut options = File::options();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    options.open(path)
}

/// A reader that hashes and counts what passes through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The number of bytes read and their sha256.
    fn finish(self) -> (u64, [u8; 32]) {
        (self.count, self.hasher.finalize().into())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
pub(crate) mod tests {
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
        let ignore =
            "*.md\n!README*.md\nnode_modules\nDockerfile\n.dockerignore\nsub/Dockerfile.x\n";
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
        let err =
            Context::walk(&dir.path().join("nope"), &dir.path().join("Dockerfile")).unwrap_err();
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
}
