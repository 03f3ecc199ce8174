//! Files in and out of an instance: through the in-container agent where it runs (streamed, no
//! tar round trip), else through the engine's archive API.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;

use super::Instance;
use crate::agent::{DirEntry, FileStat};
use crate::error::{Error, ErrorKind, Result};
use crate::files::{self, Ownership};

impl Instance {
    /// Writes `data` to `path` (absolute) with mode 0644, creating missing parent directories.
    pub async fn write_file(&self, path: &str, data: impl AsRef<[u8]>) -> Result<()> {
        self.write_file_with_mode(path, data, 0o644).await
    }

    /// Writes `data` to `path` (absolute) with the given permission bits (at most `0o7777`),
    /// owned by the instance's user, creating missing parent directories.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] for a relative path, a mode above `0o7777`, or a path
    /// running through a file; engine or agent errors.
    pub async fn write_file_with_mode(
        &self,
        path: &str,
        data: impl AsRef<[u8]>,
        mode: u32,
    ) -> Result<()> {
        self.check_live()?;
        if mode > 0o7777 {
            return Err(Error::invalid_argument(format!(
                "mode {mode:#o} for {path}: permission bits go up to 0o7777"
            )));
        }
        let (parent, name) = files::split_container_path(path)?;
        if let Some(agent) = &self.agent {
            let full = files::normalize_container_path(path)?;
            let owner = self.owner_ids().await?;
            return agent
                .write_file(&full, data.as_ref(), mode, owner)
                .await
                .map_err(|e| e.context(format!("writing {path}")));
        }
        let owner = self.ownership();
        let tar = files::single_file_tar(&name, data.as_ref(), mode, owner)?;
        match self
            .engine
            .upload(&self.container_id, &parent, tar, owner == Ownership::Named)
            .await
        {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // The parent does not exist: send the whole path from / so the engine creates
                // the missing directories (existing ones are left as they are).
                let full = files::normalize_container_path(path)?;
                let tar = files::single_file_tar(
                    full.trim_start_matches('/'),
                    data.as_ref(),
                    mode,
                    owner,
                )?;
                self.engine
                    .upload(&self.container_id, "/", tar, owner == Ownership::Named)
                    .await
            }
            other => other,
        }
        .map_err(|e| {
            if e.kind() == ErrorKind::InvalidArgument && e.message().contains("not a directory") {
                Error::invalid_argument(format!(
                    "writing {path}: a part of the path {parent} is a file, not a directory, in \
                     instance {}",
                    self.id
                ))
            } else {
                e.context(format!("writing {path}"))
            }
        })
    }

    /// The default bound of [`Instance::read_file`]: larger files are refused before they are
    /// read (copy them to disk with [`Instance::copy_out`]).
    pub const DEFAULT_READ_LIMIT: u64 = 64 << 20;

    /// Reads the regular file at `path` (absolute), up to [`Instance::DEFAULT_READ_LIMIT`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] when it does not exist; [`ErrorKind::InvalidArgument`] when it
    /// is not a regular file or is larger than the limit (nothing of it is read then).
    pub async fn read_file(&self, path: &str) -> Result<Vec<u8>> {
        self.read_file_limited(path, Instance::DEFAULT_READ_LIMIT)
            .await
    }

    /// Reads the regular file at `path` (absolute) if it holds at most `max_bytes`; memory use
    /// is bounded by the limit, whatever the container holds.
    ///
    /// # Errors
    ///
    /// As [`Instance::read_file`].
    pub async fn read_file_limited(&self, path: &str, max_bytes: u64) -> Result<Vec<u8>> {
        self.check_live()?;
        let norm = files::normalize_container_path(path)?;
        if let Some(agent) = &self.agent {
            return agent
                .read_file(&norm, max_bytes)
                .await
                .map_err(|e| match e.kind() {
                    ErrorKind::NotFound => Error::new(
                        ErrorKind::NotFound,
                        format!("{path} does not exist in instance {}", self.id),
                    ),
                    _ => e.context(format!("reading {path}")),
                });
        }
        let tar = self.download(&norm).await?;
        files::read_single_file(tar, path, max_bytes).await
    }

    /// Copies host file or directory `src` into directory `dest_dir` of the container
    /// (which must exist), keeping its name: `copy_in("./src", "/workspace")` gives
    /// `/workspace/src`. Symlinks are copied as links.
    pub async fn copy_in(&self, src: impl AsRef<Path>, dest_dir: &str) -> Result<()> {
        self.check_live()?;
        let src = src.as_ref().to_path_buf();
        let dest = files::normalize_container_path(dest_dir)?;
        let name = src
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| {
                Error::invalid_argument(format!("{} has no file name to copy", src.display()))
            })?;
        let owner = self.ownership();
        let tar = tokio::task::spawn_blocking(move || files::pack_host_path(&src, &name, owner))
            .await
            .map_err(|e| Error::internal(format!("packing task failed: {e}")))??;
        self.engine
            .upload(&self.container_id, &dest, tar, owner == Ownership::Named)
            .await
    }

    /// Copies container file or directory `src` into host directory `dest_dir` (created if
    /// missing), keeping its name. Returns the paths written.
    ///
    /// The archive is streamed to a temporary file first (sparse files stay sparse, nothing is
    /// held in memory), then checked whole: entries that would land outside `dest_dir` — through
    /// `..`, absolute paths, links, or a symbolic link already in `dest_dir` — are refused and
    /// nothing is written.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] when `src` does not exist; [`ErrorKind::InvalidArgument`] for a
    /// refused archive; [`ErrorKind::Io`] for host file errors.
    pub async fn copy_out(&self, src: &str, dest_dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
        self.check_live()?;
        let norm = files::normalize_container_path(src)?;
        let tar = self.download(&norm).await?;
        let spool = Spool::new()?;
        let mut file = tokio::fs::File::from_std(
            spool
                .file
                .try_clone()
                .map_err(|e| Error::io(format!("opening {}", spool.path.display()), e))?,
        );
        files::copy_sparse(tar, &mut file)
            .await
            .map_err(|e| Error::io(format!("copying {src} out of instance {}", self.id), e))?;
        drop(file);
        let dest = dest_dir.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || {
            let mut f = &spool.file;
            std::io::Seek::rewind(&mut f)
                .map_err(|e| Error::io(format!("reading {}", spool.path.display()), e))?;
            files::unpack_safely(f, &dest)
        })
        .await
        .map_err(|e| Error::internal(format!("unpacking task failed: {e}")))?
    }

    /// The archive of `path` as the engine streams it; a missing path is a clear NotFound.
    async fn download(&self, path: &str) -> Result<impl tokio::io::AsyncRead + Unpin + use<>> {
        let mut stream = self.engine.download(&self.container_id, path);
        let first = match stream.next().await {
            Some(Err(e)) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("{path} does not exist in instance {}", self.id),
                ));
            }
            Some(Err(e)) => return Err(e),
            Some(Ok(b)) => Some(b),
            None => None,
        };
        let rest = futures_util::stream::iter(first.map(Ok)).chain(stream);
        Ok(tokio_util::io::StreamReader::new(rest.map(|r| {
            r.map_err(|e| std::io::Error::other(e.to_string()))
        })))
    }

    /// Streams host file `from` into `path` (absolute) in the container, keeping its permission
    /// bits, owned by the instance's user: a file of any size, never held in memory.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`] when `from` cannot be read; [`ErrorKind::Unsupported`] without the
    /// in-container agent (use [`Instance::copy_in`]); agent errors.
    pub async fn copy_file_in(&self, from: impl AsRef<Path>, path: &str) -> Result<()> {
        self.check_live()?;
        let full = files::normalize_container_path(path)?;
        let owner = self.owner_ids().await?;
        self.agent_session("streamed file copies")?
            .copy_file_in(from.as_ref(), &full, owner)
            .await
            .map_err(|e| e.context(format!("copying into {path}")))
    }

    /// Streams the regular file at `path` (absolute) into host file `to` (created or replaced);
    /// returns the bytes written. A file of any size, never held in memory.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] when `path` does not exist; [`ErrorKind::Unsupported`] without
    /// the in-container agent (use [`Instance::copy_out`]).
    pub async fn copy_file_out(&self, path: &str, to: impl AsRef<Path>) -> Result<u64> {
        self.check_live()?;
        let full = files::normalize_container_path(path)?;
        self.agent_session("streamed file copies")?
            .copy_file_out(&full, to.as_ref())
            .await
            .map_err(|e| e.context(format!("copying {path} out")))
    }

    /// Metadata of `path` (absolute; a symbolic link itself, not its target).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] when it does not exist; [`ErrorKind::Unsupported`] without the
    /// in-container agent.
    pub async fn stat(&self, path: &str) -> Result<FileStat> {
        self.check_live()?;
        let full = files::normalize_container_path(path)?;
        self.agent_session("stat")?.stat(&full).await
    }

    /// The entries of directory `path` (absolute), without `.` and `..`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`], [`ErrorKind::InvalidArgument`] (not a directory),
    /// [`ErrorKind::Unsupported`] without the in-container agent.
    pub async fn list_dir(&self, path: &str) -> Result<Vec<DirEntry>> {
        self.check_live()?;
        let full = files::normalize_container_path(path)?;
        self.agent_session("directory listings")?.list(&full).await
    }

    /// Creates directory `path` (absolute) and its missing parents, owned by the instance's
    /// user. An existing directory is fine.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] when a part of the path is a file;
    /// [`ErrorKind::Unsupported`] without the in-container agent.
    pub async fn create_dir_all(&self, path: &str) -> Result<()> {
        self.check_live()?;
        let full = files::normalize_container_path(path)?;
        let owner = self.owner_ids().await?;
        self.agent_session("creating directories")?
            .mkdir(&full, owner)
            .await
    }

    /// Removes `path` (absolute): a file, a symbolic link, an empty directory, or with
    /// `recursive` a whole tree.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`]; [`ErrorKind::Conflict`] for a non-empty directory without
    /// `recursive`; [`ErrorKind::InvalidArgument`] for `/`; [`ErrorKind::Unsupported`] without
    /// the in-container agent.
    pub async fn remove_path(&self, path: &str, recursive: bool) -> Result<()> {
        self.check_live()?;
        let full = files::normalize_container_path(path)?;
        if full == "/" {
            return Err(Error::invalid_argument(
                "refusing to remove / of an instance",
            ));
        }
        self.agent_session("removing files")?
            .remove(&full, recursive)
            .await
    }

    /// The numeric owner files written in get: the instance's user, its name resolved in the
    /// container's own `/etc/passwd` (read once).
    pub(crate) async fn owner_ids(&self) -> Result<(u32, u32)> {
        match self.ownership() {
            Ownership::Root => Ok((0, 0)),
            Ownership::Ids(u, g) => Ok((
                u32::try_from(u).unwrap_or(u32::MAX),
                u32::try_from(g).unwrap_or(u32::MAX),
            )),
            Ownership::Named => {
                let user = self.user.clone().unwrap_or_default();
                self.named_owner
                    .get_or_try_init(|| async {
                        let passwd = self.read_file_limited("/etc/passwd", 16 << 20).await?;
                        let group = self
                            .read_file_limited("/etc/group", 16 << 20)
                            .await
                            .unwrap_or_default();
                        files::resolve_owner(&user, &passwd, &group).ok_or_else(|| {
                            Error::invalid_argument(format!(
                                "user {user} does not exist in instance {} (no entry in its \
                                 /etc/passwd or /etc/group); give a user the image knows",
                                self.id
                            ))
                        })
                    })
                    .await
                    .copied()
            }
        }
    }

    /// Writes `data` to `path` (in an existing directory) as root's, through the engine's
    /// archive API whatever runs the instance (headjack's own files in it).
    pub(crate) async fn write_root_file(&self, path: &str, data: &[u8], mode: u32) -> Result<()> {
        self.check_live()?;
        let (parent, name) = files::split_container_path(path)?;
        let tar = files::single_file_tar(&name, data, mode, Ownership::Root)?;
        self.engine
            .upload(&self.container_id, &parent, tar, false)
            .await
            .map_err(|e| e.context(format!("writing {path}")))
    }

    /// Reads `path` through the engine's archive API (a stopped container too).
    pub(crate) async fn read_root_file(&self, path: &str, max_bytes: u64) -> Result<Vec<u8>> {
        self.check_live()?;
        let norm = files::normalize_container_path(path)?;
        let tar = self.download(&norm).await?;
        files::read_single_file(tar, path, max_bytes).await
    }

    /// Files copied in belong to the container's user, so a non-root agent can edit them.
    fn ownership(&self) -> Ownership {
        Ownership::of_user(self.user.as_deref())
    }
}

/// A temporary file for an archive on its way out of a container, removed when dropped.
struct Spool {
    path: PathBuf,
    file: std::fs::File,
}

impl Spool {
    fn new() -> Result<Spool> {
        let path = std::env::temp_dir().join(format!(
            "headjack-copy-{}-{}.tar",
            std::process::id(),
            crate::labels::random_id()
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        Ok(Spool { path, file })
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
