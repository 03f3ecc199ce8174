//! Warm pools: instances spawned ahead of time from one spec, handed out at once.
//!
//! Creating and starting a container costs the engine 150–250 ms (most of it network and
//! runtime setup) however it is asked; a pool pays that before the caller needs the instance,
//! and refills in the background after each `take`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::instance::Instance;
use crate::spec::Spec;

/// A pool of ready instances of one [`Spec`].
///
/// ```no_run
/// # async fn f() -> headjack::Result<()> {
/// let client = headjack::Client::connect().await?;
/// let pool = headjack::Pool::new(&client, headjack::Spec::new().base("debian:bookworm-slim"), 4).await?;
/// let env = pool.take().await?; // ready now; a replacement is being spawned
/// # Ok(()) }
/// ```
///
/// Dropping the pool removes the instances still in it; instances already taken belong to the
/// caller like any spawned instance.
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    spec: Spec,
    size: usize,
    ready: Mutex<VecDeque<Instance>>,
    /// Spawns in flight, so refills never overshoot `size`.
    pending: Mutex<usize>,
}

impl Pool {
    /// The largest pool: each ready instance is a running container, and an engine on one
    /// machine runs a few hundred at most.
    pub const MAX_SIZE: usize = 1024;

    /// Spawns `size` instances of `spec` (concurrently) and keeps them ready. The base is
    /// resolved once, up front: a bad spec fails here, not on `take`.
    pub async fn new(client: &Client, spec: Spec, size: usize) -> Result<Pool> {
        if size == 0 || size > Pool::MAX_SIZE {
            return Err(Error::invalid_argument(format!(
                "a pool of {size} instances: the size must be between 1 and {}",
                Pool::MAX_SIZE
            )));
        }
        let inner = Arc::new(Inner {
            client: client.clone(),
            spec,
            size,
            ready: Mutex::new(VecDeque::new()),
            pending: Mutex::new(0),
        });
        let spawned = futures_util::future::join_all(
            (0..size).map(|_| inner.client.spawn(inner.spec.clone())),
        )
        .await;
        let mut ready = VecDeque::new();
        for s in spawned {
            ready.push_back(s?);
        }
        *inner.ready.lock().unwrap_or_else(|p| p.into_inner()) = ready;
        Ok(Pool { inner })
    }

    /// A ready instance: from the pool if one is there (instant), else freshly spawned. Either
    /// way a replacement is spawned in the background.
    pub async fn take(&self) -> Result<Instance> {
        let ready = self
            .inner
            .ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        Inner::refill(&self.inner);
        match ready {
            Some(instance) => Ok(instance),
            None => self.inner.client.spawn(self.inner.spec.clone()).await,
        }
    }

    /// How many instances are ready right now.
    pub fn ready(&self) -> usize {
        self.inner
            .ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The ready instances go at once, concurrently, not one after the other.
        let ready: Vec<Instance> = self
            .ready
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        crate::instance::remove_all_on_drop(ready);
    }
}

impl Inner {
    /// Starts background spawns until ready + pending reaches the pool size.
    fn refill(this: &Arc<Inner>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let missing = {
            let ready = this.ready.lock().unwrap_or_else(|p| p.into_inner()).len();
            let mut pending = this.pending.lock().unwrap_or_else(|p| p.into_inner());
            let missing = this.size.saturating_sub(ready + *pending);
            *pending += missing;
            missing
        };
        for _ in 0..missing {
            // A weak handle: a pool dropped meanwhile is not kept alive by its refills, and the
            // instance spawned for it is dropped (removed) instead.
            let weak = Arc::downgrade(this);
            let (client, spec) = (this.client.clone(), this.spec.clone());
            rt.spawn(async move {
                let spawned = client.spawn(spec).await;
                let Some(pool) = weak.upgrade() else { return };
                *pool.pending.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
                match spawned {
                    Ok(instance) => pool
                        .ready
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push_back(instance),
                    Err(e) => tracing::warn!(error = %e, "refilling the pool failed"),
                }
            });
        }
    }
}

/// What one caller asks of the instance it takes from a pool ([`Pool::take_with`]), applied to
/// the already-running instance instead of spawning a new one: environment variables, working
/// directory and user for every command run in it, files written into it, and labels.
///
/// Only what a running container can take is here. An image, mounts, limits, a network or a
/// runtime need a new container: build the pool with them in its [`Spec`], or spawn
/// ([`Claim::refuse`] says so for front doors that take options by name).
///
/// ```no_run
/// # async fn f(pool: &headjack::Pool) -> headjack::Result<()> {
/// use headjack::pool::Claim;
/// let env = pool
///     .take_with(
///         Claim::new()
///             .env("TASK_ID", "1234")
///             .workdir("/work")
///             .user("nobody")
///             .file("/work/task.json", br#"{"goal": "fix the bug"}"#.to_vec())
///             .label("task", "1234"),
///     )
///     .await?;
/// let out = env.exec(["sh", "-c", "echo $TASK_ID; pwd; id -u"]).await?; // 1234, /work, 65534
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claim {
    env: std::collections::BTreeMap<String, String>,
    workdir: Option<String>,
    user: Option<String>,
    files: Vec<ClaimFile>,
    labels: std::collections::BTreeMap<String, String>,
}

/// A file a [`Claim`] writes into the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClaimFile {
    path: String,
    data: bytes::Bytes,
    mode: u32,
}

impl Claim {
    /// An empty claim: [`Pool::take_with`] then behaves as [`Pool::take`].
    pub fn new() -> Claim {
        Claim::default()
    }

    /// An environment variable every command run in the instance gets (on top of the pool's
    /// spec; a command's own [`crate::Exec::env`] still wins).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Claim {
        self.env.insert(key.into(), value.into());
        self
    }

    /// The working directory of every command that names none; created (as the instance's
    /// user) if missing.
    pub fn workdir(mut self, dir: impl Into<String>) -> Claim {
        self.workdir = Some(dir.into());
        self
    }

    /// The user (`name`, `uid` or `uid:gid`) every command that names none runs as.
    pub fn user(mut self, user: impl Into<String>) -> Claim {
        self.user = Some(user.into());
        self
    }

    /// A file written at absolute `path` (mode `0o644`) before the instance is handed out;
    /// missing parent directories are created.
    pub fn file(self, path: impl Into<String>, data: impl Into<bytes::Bytes>) -> Claim {
        self.file_with_mode(path, data, 0o644)
    }

    /// [`Claim::file`] with permission bits `mode`.
    pub fn file_with_mode(
        mut self,
        path: impl Into<String>,
        data: impl Into<bytes::Bytes>,
        mode: u32,
    ) -> Claim {
        self.files.push(ClaimFile {
            path: path.into(),
            data: data.into(),
            mode,
        });
        self
    }

    /// A label of this claim. Engines cannot relabel a running container, so it is kept by the
    /// instance handle ([`Instance::claim_labels`]), not by the container: `Client::list`, `ps`
    /// and other processes do not see it. What others must see belongs in the pool's spec.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Claim {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Whether the claim asks nothing.
    pub fn is_empty(&self) -> bool {
        self.env.is_empty()
            && self.workdir.is_none()
            && self.user.is_none()
            && self.files.is_empty()
            && self.labels.is_empty()
    }

    /// The error for a claim option that a running instance cannot take — `option` is a spawn
    /// option by name (`"base"`, `"memory"`, `"mounts"`, …), for front doors that take options
    /// by name (Python's `Pool.take(**options)`).
    pub fn refuse(option: &str) -> Error {
        Error::invalid_argument(format!(
            "a pool claim cannot apply `{option}`: it needs a new container, and a claim only \
             sets env, workdir, user, files and labels on an instance that already runs; give \
             `{option}` to the pool's spec (a pool per configuration), or spawn"
        ))
    }

    /// Checks the claim before any instance is taken.
    ///
    /// # Errors
    ///
    /// [`crate::error::ErrorKind::InvalidArgument`]: an invalid variable name, an empty or relative
    /// working directory, an empty user, a relative file path or a mode above `0o7777`, a
    /// reserved (`io.headjack.*`) or empty label key, NUL bytes.
    pub fn validate(&self) -> Result<()> {
        self.defaults(crate::exec::ExecDefaults::new()).validate()?;
        if let Some(w) = &self.workdir
            && !w.starts_with('/')
        {
            return Err(Error::invalid_argument(format!(
                "claim workdir {w:?}: give an absolute path"
            )));
        }
        for f in &self.files {
            if !f.path.starts_with('/') || f.path.contains('\0') {
                return Err(Error::invalid_argument(format!(
                    "claim file {:?}: give an absolute path without NUL bytes",
                    f.path
                )));
            }
            if f.mode > 0o7777 {
                return Err(Error::invalid_argument(format!(
                    "claim file {}: mode {:#o} is not permission bits (0 to 0o7777)",
                    f.path, f.mode
                )));
            }
        }
        for (k, v) in &self.labels {
            if k.is_empty() || k.contains('\0') || v.contains('\0') {
                return Err(Error::invalid_argument(format!(
                    "claim label {k:?}: keys must be non-empty, and neither may contain NUL bytes"
                )));
            }
            if k.starts_with("io.headjack.") {
                return Err(Error::invalid_argument(format!(
                    "claim label {k:?}: io.headjack.* keys are reserved for headjack; choose another key"
                )));
            }
        }
        Ok(())
    }

    /// `base` (the instance's current defaults) with this claim's env, user and workdir on top.
    fn defaults(&self, base: crate::exec::ExecDefaults) -> crate::exec::ExecDefaults {
        let mut d = base;
        for (k, v) in &self.env {
            d = d.env(k, v);
        }
        if let Some(u) = &self.user {
            d = d.user(u);
        }
        if let Some(w) = &self.workdir {
            d = d.workdir(w);
        }
        d
    }

    /// Applies the claim to `instance`: files, the working directory, then the defaults.
    async fn apply(&self, instance: &Instance) -> Result<()> {
        for f in &self.files {
            instance
                .write_file_with_mode(&f.path, f.data.clone(), f.mode)
                .await
                .map_err(|e| e.context(format!("writing claim file {}", f.path)))?;
        }
        if let Some(w) = &self.workdir {
            instance
                .create_dir_all(w)
                .await
                .map_err(|e| e.context(format!("creating claim workdir {w}")))?;
        }
        instance.set_exec_defaults(self.defaults(instance.exec_defaults()))?;
        *instance
            .claim_labels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = self.labels.clone();
        Ok(())
    }
}

impl Pool {
    /// A ready instance, as [`Pool::take`], with `claim` applied to it: its env, workdir and
    /// user become the defaults of every command run in it, its files are written, its labels
    /// kept by the handle. No new container: the claim is applied through the running
    /// instance's agent (a few milliseconds). The claim is checked before anything is taken;
    /// an instance the claim could not be applied to is removed.
    ///
    /// # Errors
    ///
    /// [`crate::error::ErrorKind::InvalidArgument`] for a claim [`Claim::validate`] refuses;
    /// [`crate::error::ErrorKind::Unsupported`] for files or a workdir when the pool's instances run
    /// without the agent ([`Spec::engine_exec`]); spawn errors when the pool is empty; agent
    /// errors while applying.
    pub async fn take_with(&self, claim: Claim) -> Result<Instance> {
        claim.validate()?;
        let instance = self.take().await?;
        let span = tracing::debug_span!("pool claim", instance = %instance.id());
        tracing::Instrument::instrument(claim.apply(&instance), span).await?;
        Ok(instance)
    }
}
