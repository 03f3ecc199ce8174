//! [`Client`]: a connection to an engine, and the operations that do not belong to one
//! instance (spawn, list, attach, sweep, image housekeeping), with the types they return.

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::OnceCell;

use crate::build;
use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::instance::{Instance, InstanceInfo, Origin, Status};
use crate::labels::{self, Owner};
use crate::spec::Spec;

pub use crate::build::BuiltImage;
pub use crate::engine::{EngineInfo, EngineKind};
pub use crate::spawn::ResolvedImage;

/// A connection to a container engine. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Client {
    engine: Engine,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("engine", self.engine.info())
            .finish()
    }
}

static DEFAULT_CLIENT: OnceCell<Client> = OnceCell::const_new();

/// Spawns an instance on the default engine (see [`Client::connect`]).
pub async fn spawn(spec: Spec) -> Result<Instance> {
    Client::shared().await?.spawn(spec).await
}

impl Client {
    /// Connects to the first engine that answers: `DOCKER_HOST` if set (and only it), else the
    /// Docker sockets, then the Podman sockets (rootless, then rootful).
    pub async fn connect() -> Result<Client> {
        Ok(Client {
            engine: Engine::connect(None).await?,
        })
    }

    /// Connects to the engine at `host` (`unix:///path`, `tcp://host:port`, `http://…`).
    pub async fn connect_to(host: &str) -> Result<Client> {
        Ok(Client {
            engine: Engine::connect(Some(host)).await?,
        })
    }

    /// The same client with another bound on each engine call (default 60 s): a call the
    /// engine does not answer within it fails with [`ErrorKind::Timeout`] instead of hanging.
    /// Transfers (build contexts, file copies, pulls, commits) have a bound of their own (1 h);
    /// a command's output is not bounded (give the command a timeout).
    pub fn with_timeout(&self, timeout: std::time::Duration) -> Client {
        Client {
            engine: self.engine.with_timeout(timeout),
        }
    }

    /// The process-wide client used by [`crate::spawn`], connected on first use.
    pub async fn shared() -> Result<&'static Client> {
        DEFAULT_CLIENT.get_or_try_init(Client::connect).await
    }

    /// The engine connection (for the other modules of the crate).
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Which engine this is, its version and the negotiated API version.
    pub fn info(&self) -> &EngineInfo {
        self.engine.info()
    }

    /// Resolves a base to a local image: pulls a registry image (per `spec`'s pull policy),
    /// builds a Dockerfile unless an image with its content key exists. For a dev container
    /// definition: its image or Dockerfile plus its local-feature layer, and
    /// [`ResolvedImage::warnings`] names what of it a spawn would not apply.
    pub async fn resolve(&self, spec: &Spec) -> Result<ResolvedImage> {
        crate::spawn::resolve_spec(&self.engine, spec).await
    }

    /// Resolves the base, creates and starts a container, and waits until it is ready.
    pub async fn spawn(&self, spec: Spec) -> Result<Instance> {
        crate::spawn::spawn(&self.engine, spec).await
    }

    /// Every headjack instance on this engine (any owner).
    pub async fn list(&self) -> Result<Vec<InstanceInfo>> {
        let found = self
            .engine
            .containers_with_labels(&[format!("{}=true", labels::MANAGED)])
            .await?;
        Ok(found
            .into_iter()
            .map(|c| {
                let status = Status::from_engine(&c.status, c.exit_code);
                InstanceInfo::from_parts(c.id, c.name, c.image, status, c.labels)
            })
            .collect())
    }

    /// A handle to an existing instance, by headjack ID, container name or container ID.
    /// The handle is kept on drop (it did not create the instance); call
    /// [`Instance::remove`] to remove it.
    pub async fn attach(&self, id_or_name: &str) -> Result<Instance> {
        if id_or_name.trim().is_empty() {
            return Err(Error::invalid_argument(
                "attach needs an instance ID or name",
            ));
        }
        let by_label = self
            .engine
            .containers_with_labels(&[format!("{}={id_or_name}", labels::INSTANCE)])
            .await?;
        let container = match by_label.into_iter().next() {
            Some(c) => c.id,
            None => id_or_name.to_string(),
        };
        let details = self.engine.inspect(&container).await.map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                Error::new(
                    ErrorKind::NotFound,
                    format!("no headjack instance {id_or_name:?} on this engine; `list` shows the existing ones"),
                )
            } else {
                e
            }
        })?;
        if !labels::is_managed(&details.labels) {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "container {id_or_name:?} exists but was not created by headjack; refusing to manage it"
                ),
            ));
        }
        let origin = match self.engine.image(&details.image).await? {
            Some(img) => Origin {
                entrypoint: img.entrypoint,
                cmd: img.cmd,
                labels: img.labels,
            },
            None => Origin::default(),
        };
        let id = details
            .labels
            .get(labels::INSTANCE)
            .cloned()
            .unwrap_or_default();
        // An instance that runs the agent is reached through a relay session, opened on first
        // use (the spawning process holds the container's stdio).
        let (user, session) = match details.labels.contains_key(labels::AGENT) {
            true => (
                details.labels.get(labels::USER).cloned(),
                Some(crate::agent::Session::new(
                    self.engine.clone(),
                    details.id.clone(),
                    None,
                    details
                        .memory_limit
                        .and_then(|m| u64::try_from(m).ok())
                        .filter(|m| *m > 0),
                )),
            ),
            false => (details.user.clone(), None),
        };
        let egress =
            crate::egress::Attachment::of_container(&self.engine, &details.id, &details.labels)
                .await?;
        let snapshot = details.labels.get(labels::FORK_SNAPSHOT).cloned();
        let instance = Instance::new(
            self.engine.clone(),
            details.id,
            id,
            details.name,
            details
                .labels
                .get(labels::IMAGE)
                .cloned()
                .unwrap_or(details.image),
            user,
            origin,
            true,
            session,
        );
        if let Some(egress) = egress {
            instance.set_egress_attachment(egress);
        }
        // Removing a fork removes its snapshot image, whoever holds the handle.
        instance.set_snapshot(snapshot);
        // A dev container instance: its exec defaults and postStartCommand, saved at spawn.
        if details.labels.contains_key(labels::DEVCONTAINER_STATE) {
            match crate::spawn::devcontainer::load_state(&instance).await {
                Ok(state) => {
                    instance.set_exec_defaults(state.defaults())?;
                    instance.set_devcontainer(state);
                }
                Err(e) => tracing::warn!(
                    error = %e,
                    instance = %instance.id(),
                    "cannot read the dev container state: commands run without its remoteEnv, \
                     remoteUser and workspaceFolder"
                ),
            }
        }
        Ok(instance)
    }

    /// Removes instances whose owner process is gone, or whose expiry passed. Returns the IDs
    /// of the instances removed.
    ///
    /// An owner is judged gone only when this process can see it: on the same host and boot, in
    /// the same PID namespace — or from the machine's initial PID namespace, which sees every
    /// namespace. An owner it cannot judge (another host, another boot, a PID namespace it cannot
    /// see into) is left alone until its instance expires.
    ///
    /// It also removes the headjack volumes whose expiry ([`Client::create_volume`]) passed and
    /// that no container uses (they are not in the returned list); volumes without an expiry
    /// are never swept.
    pub async fn sweep(&self) -> Result<Vec<String>> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut removed = Vec::new();
        for info in self.list().await? {
            let expired = info.expires.is_some_and(|e| e <= now);
            let orphaned =
                Owner::parse(&info.owner).is_some_and(|o| o.liveness() == labels::Liveness::Gone);
            if expired || orphaned {
                tracing::info!(instance = %info.id, expired, orphaned, "sweeping instance");
                self.engine.remove(&info.container_id).await?;
                if let Some(image) = info.labels.get(labels::FORK_SNAPSHOT) {
                    crate::instance::remove_snapshot(&self.engine, image).await;
                }
                removed.push(info.id);
            }
        }
        crate::volume::sweep(&self.engine).await?;
        // Egress networks and proxies that no instance needs any more.
        crate::egress::sweep(&self.engine).await?;
        Ok(removed)
    }
}

impl Client {
    /// Every image headjack built on this engine, most recently used first. Images headjack
    /// did not build are never listed.
    pub async fn images(&self) -> Result<Vec<BuiltImage>> {
        build::images(&self.engine).await
    }

    /// Removes a local image (a snapshot from [`Instance::commit`], a built base, …) by
    /// reference or ID. An image that does not exist counts as removed; one in use by a
    /// container is a [`ErrorKind::Conflict`] unless `force`.
    pub async fn remove_image(&self, reference: &str, force: bool) -> Result<()> {
        if reference.trim().is_empty() {
            return Err(Error::invalid_argument(
                "remove_image needs an image reference or ID",
            ));
        }
        self.engine.remove_image(reference, force).await
    }

    /// Removes all but the `keep_last` most recently used headjack-built images (images in use
    /// by a container are kept). Returns the references removed.
    pub async fn prune_images(&self, keep_last: usize) -> Result<Vec<String>> {
        build::prune(&self.engine, keep_last).await
    }
}

/// Named volumes that outlive instances (the logic lives in `volume.rs`).
impl Client {
    /// Every named volume headjack created on this engine (label `io.headjack.volume`).
    ///
    /// # Errors
    ///
    /// Engine errors (unreachable, timeout).
    pub async fn volumes(&self) -> Result<Vec<crate::volume::VolumeInfo>> {
        crate::volume::list(&self.engine).await
    }

    /// Creates named volume `name` (labelled as headjack's) unless it exists; with
    /// `expires_after`, [`Client::sweep`] removes it once that time has passed and no container
    /// uses it. An existing volume is returned as it is (its expiry is not changed).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] for an invalid name or a lifetime over 100 years; engine
    /// errors.
    pub async fn create_volume(
        &self,
        name: &str,
        expires_after: Option<std::time::Duration>,
    ) -> Result<crate::volume::VolumeInfo> {
        crate::volume::create(&self.engine, name, expires_after).await
    }

    /// Removes named volume `name` and its data. A volume that does not exist counts as
    /// removed; volumes headjack did not create are refused.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] for an invalid name or a volume headjack did not create;
    /// [`ErrorKind::Conflict`] while an instance mounts it; engine errors.
    pub async fn remove_volume(&self, name: &str) -> Result<()> {
        crate::volume::remove(&self.engine, name).await
    }
}
