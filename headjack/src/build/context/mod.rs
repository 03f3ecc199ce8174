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
use crate::error::{Error, ErrorKind, Result};

mod archive;
mod hash;
mod session;
mod walk;

use hash::hash_files;
use walk::{
    collect_entries, free_name, permission_bits, read_ignore_file, reserved_name, utf8_rel,
};

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

    /// A directory name at the root of the context that no entry uses, for files headjack
    /// generates for the build (`.headjack-heredocs`, then `.1`, `.2`, …).
    pub(crate) fn generated_dir(&self) -> String {
        let mut taken: Vec<&str> = self.entries.iter().map(|e| e.rel_path.as_str()).collect();
        if let DockerfilePlace::Outside(name) = &self.dockerfile {
            taken.push(name);
        }
        free_name(GENERATED_DIR_NAME, &taken)
    }
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

#[cfg(test)]
pub(crate) mod tests;
