//! A running environment and what can be done with it: lifecycle and snapshots here, commands
//! in `run`, files in `files`, what headjack reports about it in `info`.

mod checkpoint;
mod files;
mod fork;
mod info;
mod run;
mod sandbox;
mod stats;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::agent::Session;
use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::reference::ImageRef;

pub use crate::agent::process::{Process, ProcessInfo, signal_number};
pub use crate::agent::{DirEntry, FileKind, FileStat};
pub(crate) use fork::remove_snapshot;
pub use info::{InstanceInfo, Status};
pub(crate) use sandbox::{limits_unsupported, port_conflict};
pub use stats::{Stats, StatsSampler, StatsStream};

/// The image config an instance was launched from, kept so that `commit` yields a normal base.
#[derive(Debug, Clone, Default)]
pub(crate) struct Origin {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub labels: HashMap<String, String>,
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
    /// The channel to the in-container agent (PID 1), when the instance runs it.
    agent: Option<Arc<Session>>,
    /// The instance user's numeric IDs, once resolved in its `/etc/passwd`.
    named_owner: tokio::sync::OnceCell<(u32, u32)>,
    /// The spec it was spawned from (not known for an attached instance): `fork` reuses it.
    spec: std::sync::OnceLock<crate::spec::Spec>,
    /// The snapshot image this fork runs, removed with it (see `Instance::fork_with`).
    snapshot: std::sync::Mutex<Option<String>>,
    /// What every command gets unless it says otherwise (`set_exec_defaults`).
    exec_defaults: std::sync::Mutex<crate::exec::ExecDefaults>,
    /// A dev container instance's saved state (exec defaults, `postStartCommand`).
    devcontainer: std::sync::Mutex<Option<Arc<crate::spawn::devcontainer::DevcState>>>,
    /// What the base asked for and was not applied (a dev container definition's warnings).
    warnings: std::sync::OnceLock<Vec<String>>,
    /// Its egress network and proxy, when it has an egress policy.
    egress: std::sync::OnceLock<Arc<crate::egress::Attachment>>,
    /// Labels a pool claim gave this instance (`Pool::take_with`); kept by this handle only,
    /// since engines cannot relabel a running container.
    pub(crate) claim_labels: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
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
        agent: Option<Session>,
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
            agent: agent.map(Arc::new),
            named_owner: tokio::sync::OnceCell::new(),
            spec: std::sync::OnceLock::new(),
            snapshot: std::sync::Mutex::new(None),
            exec_defaults: std::sync::Mutex::default(),
            devcontainer: std::sync::Mutex::default(),
            warnings: std::sync::OnceLock::new(),
            egress: std::sync::OnceLock::new(),
            claim_labels: std::sync::Mutex::default(),
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

    /// Gives the agent's session its first channel (the container's stdio, opened at spawn).
    pub(crate) async fn install_agent_channel(&self, channel: headjack_agent::client::Channel) {
        if let Some(s) = &self.agent {
            s.install(channel).await;
        }
    }

    /// Whether headjack's in-container agent runs as the instance's PID 1 (then commands start
    /// in about a millisecond and background processes and file operations are available);
    /// without it, the engine's exec runs commands.
    pub fn has_agent(&self) -> bool {
        self.agent.is_some()
    }

    /// Keeps the container when this handle is dropped (find it again with
    /// [`crate::client::Client::attach`]; [`crate::client::Client::sweep`] still removes it once its owner
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

    /// Starts a stopped container again (a running one stays as it is). A dev container
    /// instance then runs its definition's `postStartCommand` again (as the devcontainer
    /// specification says: on every start).
    ///
    /// # Errors
    ///
    /// Engine errors; [`ErrorKind::ExecFailed`] when `postStartCommand` fails (the instance
    /// is started and stays so).
    pub async fn start(&self) -> Result<()> {
        self.check_live()?;
        // Starting a running container does nothing (the engine says so): no hook then.
        let hooks = self
            .devcontainer()
            .is_some_and(|state| !state.post_start.is_empty());
        if hooks && self.status().await? == Status::Running {
            return Ok(());
        }
        self.engine.start(&self.container_id).await?;
        self.forget_agent_channel().await;
        self.run_post_start(crate::spawn::devcontainer::HookWhen::Start)
            .await
    }

    /// Restarts the container; a dev container instance runs its `postStartCommand` again.
    ///
    /// # Errors
    ///
    /// As [`Instance::start`].
    pub async fn restart(&self, grace: Duration) -> Result<()> {
        self.check_live()?;
        self.engine.restart(&self.container_id, grace).await?;
        self.forget_agent_channel().await;
        self.run_post_start(crate::spawn::devcontainer::HookWhen::Start)
            .await
    }

    /// After a (re)start: the agent's old channel is dead, the next command opens a new one.
    async fn forget_agent_channel(&self) {
        if let Some(agent) = &self.agent {
            agent.forget_channel().await;
        }
    }

    /// A dev container's `postStartCommand` steps, after a start (none for other instances).
    pub(crate) async fn run_post_start(
        &self,
        when: crate::spawn::devcontainer::HookWhen,
    ) -> Result<()> {
        let Some(state) = self.devcontainer() else {
            return Ok(());
        };
        if state.post_start.is_empty() {
            return Ok(());
        }
        crate::spawn::devcontainer::run_steps(
            self,
            &state.config_file,
            &state.post_start,
            None,
            when,
        )
        .await
    }

    /// The dev container state this handle knows (spawned from a definition, attached to such
    /// an instance, or forked from one).
    pub(crate) fn devcontainer(&self) -> Option<Arc<crate::spawn::devcontainer::DevcState>> {
        self.devcontainer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Records the dev container state (spawn and attach do it; a fork copies its parent's).
    pub(crate) fn set_devcontainer(
        &self,
        state: impl Into<Arc<crate::spawn::devcontainer::DevcState>>,
    ) {
        *self
            .devcontainer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(state.into());
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
        if let Some(image) = self.take_snapshot() {
            fork::remove_snapshot(&self.engine, &image).await;
        }
        if let Some(egress) = self.egress.get() {
            egress.detach(&self.engine).await;
        }
        Ok(())
    }
}

impl Instance {
    /// What every command run in this instance ([`Instance::exec`], [`Instance::exec_stream`],
    /// [`Instance::start_process`]) gets unless it says otherwise.
    pub fn exec_defaults(&self) -> crate::exec::ExecDefaults {
        self.exec_defaults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the defaults every later command gets: environment variables (a command's own
    /// win per key), user, working directory. Commands already started are not affected.
    /// Kept by this handle only: [`crate::client::Client::attach`] starts without them —
    /// except for a dev container instance's (`remoteEnv`, `remoteUser`, `workspaceFolder`),
    /// which are saved in its container at spawn and read back by `attach`; a
    /// [`Instance::fork`] starts with its parent's.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] when the defaults would make every command invalid (a bad
    /// variable name, an empty user or directory, NUL bytes); the old defaults stay.
    pub fn set_exec_defaults(&self, defaults: crate::exec::ExecDefaults) -> Result<()> {
        defaults.validate()?;
        *self
            .exec_defaults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = defaults;
        Ok(())
    }

    /// What the base asked for and headjack did not apply, one message each (file, line,
    /// column, key, why): a dev container definition's unsupported keys, say. Empty for other
    /// bases, and for handles from [`crate::client::Client::attach`].
    pub fn warnings(&self) -> &[String] {
        self.warnings.get().map(Vec::as_slice).unwrap_or_default()
    }

    pub(crate) fn set_warnings(&self, warnings: Vec<String>) {
        let _ = self.warnings.set(warnings);
    }

    /// [`Instance::set_exec_defaults`] in builder style.
    ///
    /// # Errors
    ///
    /// As [`Instance::set_exec_defaults`].
    pub fn with_exec_defaults(self, defaults: crate::exec::ExecDefaults) -> Result<Instance> {
        self.set_exec_defaults(defaults)?;
        Ok(self)
    }
}

impl Instance {
    /// Removes many instances at once, concurrently (dropping them removes them one after the
    /// other: the engine takes about 100 ms each). Kept instances are removed too; handles
    /// inherited through `fork()` are skipped.
    ///
    /// # Errors
    ///
    /// The first removal that failed (the others are still attempted).
    pub async fn remove_all(instances: impl IntoIterator<Item = Instance>) -> Result<()> {
        let instances: Vec<Instance> = instances.into_iter().filter(|i| !i.inherited()).collect();
        let results = futures_util::future::join_all(instances.iter().map(|i| i.remove())).await;
        results.into_iter().collect()
    }

    /// What removing this handle on drop would do, or `None` when it must not remove anything.
    fn removal_on_drop(&self) -> Option<(Engine, String, Leftovers)> {
        // A fork() child drops the handles it inherited: the instances are the parent's.
        let skip = self.keep.load(Ordering::SeqCst)
            || self.removed.load(Ordering::SeqCst)
            || self.inherited();
        (!skip).then(|| {
            (
                self.engine.clone(),
                self.container_id.clone(),
                Leftovers {
                    snapshot: self.take_snapshot(),
                    egress: self.egress.get().cloned(),
                },
            )
        })
    }
}

/// What goes once an instance's container is removed: a fork's snapshot image, the egress
/// network (the proxy leaves it first).
struct Leftovers {
    snapshot: Option<String>,
    egress: Option<Arc<crate::egress::Attachment>>,
}

/// Removes a container, then what went with it (see [`Leftovers`]).
async fn remove_with_leftovers(engine: &Engine, id: &str, left: Leftovers) {
    match engine.remove(id).await {
        Ok(()) => {
            if let Some(image) = left.snapshot {
                fork::remove_snapshot(engine, &image).await;
            }
            if let Some(egress) = left.egress {
                egress.detach(engine).await;
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, container = %id, "removing container on drop failed");
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let Some((engine, id, left)) = self.removal_on_drop() else {
            return;
        };
        crate::blocking::finish_in_drop("remove a container on drop", async move {
            remove_with_leftovers(&engine, &id, left).await;
        });
    }
}

/// Removes the containers of `instances` concurrently, from a `Drop` (a pool's, say), whatever
/// the context; the handles are then dropped without removing anything.
pub(crate) fn remove_all_on_drop(instances: Vec<Instance>) {
    let removals: Vec<(Engine, String, Leftovers)> = instances
        .iter()
        .filter_map(|i| {
            let r = i.removal_on_drop();
            i.removed.store(true, Ordering::SeqCst);
            r
        })
        .collect();
    drop(instances);
    if removals.is_empty() {
        return;
    }
    crate::blocking::finish_in_drop("remove a pool's containers", async move {
        let removed = removals.into_iter().map(|(engine, id, left)| async move {
            remove_with_leftovers(&engine, &id, left).await;
        });
        futures_util::future::join_all(removed).await;
    });
}

impl Instance {
    /// Gives the instance its egress attachment (at spawn, once registered with its proxy; on
    /// attach, from its labels).
    pub(crate) fn set_egress_attachment(&self, attachment: crate::egress::Attachment) {
        let _ = self.egress.set(Arc::new(attachment));
    }

    fn egress_attachment(&self) -> Result<&crate::egress::Attachment> {
        self.check_live()?;
        self.egress.get().map(|a| a.as_ref()).ok_or_else(|| {
            Error::new(
                ErrorKind::Conflict,
                format!(
                    "instance {} was spawned without an egress policy, so no proxy filters its \
                     traffic; spawn it with Spec::egress to filter it (a running instance's \
                     network cannot be closed in place)",
                    self.id
                ),
            )
        })
    }

    /// Replaces the egress policy of an instance spawned with one ([`crate::Spec::egress`]).
    /// Takes effect for its next connection, HTTP request and DNS lookup; open connections the
    /// new policy denies are closed.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] for an invalid pattern; [`ErrorKind::Conflict`] when the
    /// instance has no egress policy (it was spawned without one) or its proxy refused; engine
    /// errors when the proxy cannot be reached.
    pub async fn set_egress(&self, egress: crate::egress::Egress) -> Result<()> {
        egress.validate()?;
        self.egress_attachment()?
            .set(&self.engine, &self.id, &egress)
            .await
    }

    /// What the instance's egress proxy decided, oldest first (the last 1000 decisions): every
    /// HTTP request, CONNECT and DNS lookup, allowed or denied, and why — so that an agent can
    /// see why `pip install` failed. Decisions not returned before by this handle are also
    /// emitted as `tracing` events (target `headjack.egress`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Conflict`] when the instance has no egress policy; engine errors when the
    /// proxy cannot be reached.
    pub async fn egress_log(&self) -> Result<Vec<crate::egress::EgressDecision>> {
        self.egress_attachment()?.log(&self.engine, &self.id).await
    }

    /// The labels the pool claim that handed out this instance gave it
    /// ([`crate::pool::Claim::label`]); empty otherwise. Engines cannot relabel a running
    /// container, so these live in this handle only: the container's own labels
    /// ([`Instance::inspect`], [`crate::client::Client::list`], other processes) do not show them.
    pub fn claim_labels(&self) -> std::collections::BTreeMap<String, String> {
        self.claim_labels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}
