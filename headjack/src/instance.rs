//! A running environment and what can be done with it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{Stream, StreamExt, TryStreamExt};

use crate::engine::{ContainerDetails, Engine};
use crate::error::{Error, ErrorKind, Result};
use crate::exec::{self, Chunk, Exec, ExecOutput, ExecStream};
use crate::files::{self, Ownership};
use crate::labels;
use crate::reference::ImageRef;

/// The state of an instance's container.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Created, never started.
    Created,
    /// Running.
    Running,
    /// Frozen by [`Instance::pause`].
    Paused,
    /// Being restarted.
    Restarting,
    /// Stopped; the keep-alive process exited with this code.
    Exited(i64),
    /// Being removed.
    Removing,
    /// The engine gave up on it.
    Dead,
    /// A state this version of headjack does not know.
    Other(String),
}

impl Status {
    pub(crate) fn from_engine(status: &str, exit_code: Option<i64>) -> Status {
        match status {
            "created" => Status::Created,
            "running" => Status::Running,
            "paused" => Status::Paused,
            "restarting" => Status::Restarting,
            "exited" | "stopped" => Status::Exited(exit_code.unwrap_or(0)),
            "removing" | "stopping" => Status::Removing,
            "dead" => Status::Dead,
            other => Status::Other(other.to_string()),
        }
    }

    /// A short lowercase name (`running`, `exited`, …).
    pub fn as_str(&self) -> &str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Exited(_) => "exited",
            Status::Removing => "removing",
            Status::Dead => "dead",
            Status::Other(s) => s,
        }
    }
}

/// What `list` and `inspect` report about an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceInfo {
    /// headjack's instance ID (label `io.headjack.instance`).
    pub id: String,
    /// The engine's container ID.
    pub container_id: String,
    /// The container name.
    pub name: String,
    /// The base as it was asked for.
    pub base: String,
    /// The image the container runs.
    pub image: String,
    /// Its state.
    pub status: Status,
    /// The process that spawned it: `<host>/<boot id>/<pid namespace>/<pid>/<start time>`, or
    /// `detached`.
    pub owner: String,
    /// Unix seconds after which sweep may remove it.
    pub expires: Option<u64>,
    /// All labels of the container.
    pub labels: HashMap<String, String>,
    /// The engine saw the memory limit kill the container's main process (only `inspect`
    /// reads it; `list` leaves it false).
    pub oom_killed: bool,
}

impl InstanceInfo {
    pub(crate) fn from_parts(
        container_id: String,
        name: String,
        image: String,
        status: Status,
        labels: HashMap<String, String>,
    ) -> InstanceInfo {
        let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
        InstanceInfo {
            id: get(labels::INSTANCE),
            container_id,
            name,
            base: get(labels::BASE),
            image: labels.get(labels::IMAGE).cloned().unwrap_or(image),
            status,
            owner: get(labels::OWNER),
            expires: labels.get(labels::EXPIRES).and_then(|e| e.parse().ok()),
            labels,
            oom_killed: false,
        }
    }

    fn from_details(d: ContainerDetails) -> InstanceInfo {
        let status = Status::from_engine(&d.status, d.exit_code);
        InstanceInfo {
            oom_killed: d.oom_killed,
            ..InstanceInfo::from_parts(d.id, d.name, d.image, status, d.labels)
        }
    }
}

/// The image config an instance was launched from, kept so that `commit` yields a normal base.
#[derive(Debug, Clone, Default)]
pub(crate) struct Origin {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub labels: HashMap<String, String>,
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

/// A running environment. Dropping it removes its container, unless [`Instance::keep`] was
/// called; [`Instance::remove`] does the same without blocking.
pub struct Instance {
    engine: Engine,
    container_id: String,
    id: String,
    name: String,
    image: String,
    /// The container's configured user; files written in are given to it.
    user: Option<String>,
    origin: Origin,
    keep: AtomicBool,
    removed: AtomicBool,
    /// The container's OOM-kill count when an exec last looked (see `exec::driver`).
    oom_seen: Arc<AtomicU64>,
    /// The process this handle was made in: a `fork()` child inherits the handle but not the
    /// instance, and must never remove it.
    pid: u32,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("id", &self.id)
            .field("container_id", &self.container_id)
            .field("name", &self.name)
            .field("image", &self.image)
            .finish_non_exhaustive()
    }
}

impl Instance {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        engine: Engine,
        container_id: String,
        id: String,
        name: String,
        image: String,
        user: Option<String>,
        origin: Origin,
        keep: bool,
    ) -> Instance {
        Instance {
            engine,
            container_id,
            id,
            name,
            image,
            user,
            origin,
            keep: AtomicBool::new(keep),
            removed: AtomicBool::new(false),
            pid: std::process::id(),
            oom_seen: Arc::default(),
        }
    }

    /// headjack's ID for this instance (label `io.headjack.instance`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The engine's container ID.
    pub fn container_id(&self) -> &str {
        &self.container_id
    }

    /// The container name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The image reference the container runs.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// Keeps the container when this handle is dropped (find it again with
    /// [`crate::Client::attach`]; [`crate::Client::sweep`] still removes it once its owner
    /// process is gone or it expired).
    pub fn keep(&self) {
        self.keep.store(true, Ordering::SeqCst);
    }

    /// Whether [`Instance::keep`] was called.
    pub fn is_kept(&self) -> bool {
        self.keep.load(Ordering::SeqCst)
    }

    /// Whether this handle was inherited through `fork()` (it belongs to the parent process).
    fn inherited(&self) -> bool {
        self.pid != std::process::id()
    }

    fn check_live(&self) -> Result<()> {
        if self.inherited() {
            return Err(crate::blocking::forked_error(self.pid));
        }
        if self.removed.load(Ordering::SeqCst) {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("instance {} was removed; spawn a new one", self.id),
            ));
        }
        Ok(())
    }

    /// Runs a command and collects its output (bounded, see [`Exec::max_output`]).
    ///
    /// A non-zero exit is not an error: look at [`ExecOutput::exit_code`], or call
    /// [`ExecOutput::check`].
    pub async fn exec(&self, exec: impl Into<Exec>) -> Result<ExecOutput> {
        let exec = exec.into();
        let max = exec.max_output;
        let stream = self.exec_stream(exec).await?;
        exec::collect(stream, max).await
    }

    /// Runs a command and streams its output as it comes.
    pub async fn exec_stream(&self, exec: impl Into<Exec>) -> Result<ExecStream> {
        self.check_live()?;
        exec::start(
            &self.engine,
            &self.container_id,
            self.oom_seen.clone(),
            exec.into(),
        )
        .await
    }

    /// Writes `data` to `path` (absolute) with mode 0644, creating missing parent directories.
    pub async fn write_file(&self, path: &str, data: impl AsRef<[u8]>) -> Result<()> {
        self.write_file_with_mode(path, data, 0o644).await
    }

    /// Writes `data` to `path` (absolute) with the given permission bits.
    pub async fn write_file_with_mode(
        &self,
        path: &str,
        data: impl AsRef<[u8]>,
        mode: u32,
    ) -> Result<()> {
        self.check_live()?;
        let (parent, name) = files::split_container_path(path)?;
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

    /// Files copied in belong to the container's user, so a non-root agent can edit them.
    fn ownership(&self) -> Ownership {
        Ownership::of_user(self.user.as_deref())
    }

    /// The keep-alive process's output so far.
    pub async fn logs(&self) -> Result<Vec<Chunk>> {
        self.check_live()?;
        self.logs_stream(false).try_collect().await
    }

    /// The keep-alive process's output, following new output when `follow` is set.
    pub fn logs_stream(&self, follow: bool) -> impl Stream<Item = Result<Chunk>> + Send + 'static {
        self.engine
            .logs(&self.container_id, follow)
            .map_ok(Chunk::from)
    }

    /// Stops the container (SIGTERM, then SIGKILL after `grace`). Files are kept; `restart`
    /// brings it back.
    pub async fn stop(&self, grace: Duration) -> Result<()> {
        self.check_live()?;
        self.engine.stop(&self.container_id, grace).await
    }

    /// Sends `signal` (e.g. `SIGKILL`) to the container's main process.
    pub async fn kill(&self, signal: &str) -> Result<()> {
        self.check_live()?;
        self.engine.kill(&self.container_id, signal).await
    }

    /// Starts a stopped container again.
    pub async fn start(&self) -> Result<()> {
        self.check_live()?;
        self.engine.start(&self.container_id).await
    }

    /// Restarts the container.
    pub async fn restart(&self, grace: Duration) -> Result<()> {
        self.check_live()?;
        self.engine.restart(&self.container_id, grace).await
    }

    /// Freezes every process of the container.
    pub async fn pause(&self) -> Result<()> {
        self.check_live()?;
        self.engine.pause(&self.container_id).await
    }

    /// Thaws a paused container.
    pub async fn resume(&self) -> Result<()> {
        self.check_live()?;
        self.engine.unpause(&self.container_id).await
    }

    /// The container's state.
    pub async fn status(&self) -> Result<Status> {
        Ok(self.inspect().await?.status)
    }

    /// Everything headjack knows about this instance.
    pub async fn inspect(&self) -> Result<InstanceInfo> {
        self.check_live()?;
        let d = self.engine.inspect(&self.container_id).await.map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                Error::new(
                    ErrorKind::NotFound,
                    format!("instance {} no longer exists on the engine", self.id),
                )
            } else {
                e
            }
        })?;
        Ok(InstanceInfo::from_details(d))
    }

    /// Saves the container's filesystem as image `reference` (e.g.
    /// `localhost/myagent/after-setup:1`), usable as a base for later spawns.
    pub async fn commit(&self, reference: &str) -> Result<ImageRef> {
        self.check_live()?;
        let target = ImageRef::parse(reference)
            .map_err(|e| Error::new(ErrorKind::InvalidArgument, e.message().to_string()))?;
        if target.digest().is_some() {
            return Err(Error::invalid_argument(format!(
                "cannot commit to {reference}: a digest is computed by the engine, give a tag"
            )));
        }
        let tag = target.tag().unwrap_or("latest").to_string();
        let mut image_labels = self.origin.labels.clone();
        image_labels.insert("io.headjack.snapshot.of".into(), self.id.clone());
        self.engine
            .commit(
                &self.container_id,
                &target.name(),
                &tag,
                self.origin.entrypoint.clone(),
                self.origin.cmd.clone(),
                image_labels,
            )
            .await?;
        Ok(target)
    }

    /// Removes the container now (force). Idempotent; the handle is unusable afterwards.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Forked`] when called in a `fork()` child on a handle inherited from the
    /// parent (the instance is the parent's); engine errors as they come.
    pub async fn remove(&self) -> Result<()> {
        if self.inherited() {
            return Err(crate::blocking::forked_error(self.pid));
        }
        if self.removed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        if let Err(e) = self.engine.remove(&self.container_id).await {
            self.removed.store(false, Ordering::SeqCst);
            return Err(e);
        }
        Ok(())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // A fork() child drops the handles it inherited: the instances are the parent's.
        if self.keep.load(Ordering::SeqCst)
            || self.removed.load(Ordering::SeqCst)
            || self.inherited()
        {
            return;
        }
        let engine = self.engine.clone();
        let id = self.container_id.clone();
        crate::blocking::finish_in_drop("remove a container on drop", async move {
            if let Err(e) = engine.remove(&id).await {
                tracing::warn!(error = %e, container = %id, "removing container on drop failed");
            }
        });
    }
}
