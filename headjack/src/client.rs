//! [`Client`]: a connection to an engine, and the operations that do not belong to one
//! instance (spawn, list, attach, sweep, image housekeeping).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::OnceCell;
use tracing::Instrument;

use crate::base::Base;
use crate::build;
use crate::engine::{ContainerPlan, Engine, EngineInfo, ImageDetails, PlanMount};
use crate::error::{Error, ErrorKind, Result};
use crate::exec::Exec;
use crate::instance::{Instance, InstanceInfo, Origin, Status, random_id};
use crate::labels::{self, Owner};
use crate::pull;
use crate::spec::{DEFAULT_PIDS_LIMIT, MountKind, Network, Spec, absolute};

/// The keep-alive command when the image does not name one (`io.headjack.init`).
const DEFAULT_INIT: [&str; 2] = ["sleep", "infinity"];

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

/// An image resolved from a base: what a container would run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The fully qualified reference (for a Dockerfile: `localhost/headjack/<slug>:<key16>`).
    pub reference: String,
    /// The engine's image ID.
    pub id: String,
    /// Whether a build ran (false on a cache hit and for registry images).
    pub built: bool,
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

    /// The process-wide client used by [`crate::spawn`], connected on first use.
    pub async fn shared() -> Result<&'static Client> {
        DEFAULT_CLIENT.get_or_try_init(Client::connect).await
    }

    /// Which engine this is, its version and the negotiated API version.
    pub fn info(&self) -> &EngineInfo {
        self.engine.info()
    }

    /// Resolves a base to a local image: pulls a registry image (per `spec`'s pull policy),
    /// builds a Dockerfile unless an image with its content key exists.
    pub async fn resolve(&self, spec: &Spec) -> Result<ResolvedImage> {
        let base = spec.resolved_base()?;
        Ok(self.resolve_base(&base, spec, 0).await?.0)
    }

    /// Resolves `base`; the image details come along so that spawn need not inspect again.
    async fn resolve_base(
        &self,
        base: &Base,
        spec: &Spec,
        depth: u8,
    ) -> Result<(ResolvedImage, ImageDetails)> {
        let progress = spec.progress.as_ref();
        match base {
            Base::Default => match std::env::var("HEADJACK_BASE") {
                Ok(s) if !s.trim().is_empty() && depth == 0 => {
                    let dir = spec.resolved_base_dir()?;
                    let b = Base::parse_in(&s, &dir).map_err(|e| e.context("in HEADJACK_BASE"))?;
                    Box::pin(self.resolve_base(&b, spec, depth + 1)).await
                }
                _ => {
                    build::resolve_default(
                        &self.engine,
                        spec.pull,
                        spec.platform.as_deref(),
                        progress,
                    )
                    .await
                }
            },
            Base::Image(r) => {
                let details = pull::ensure_image(
                    &self.engine,
                    r,
                    spec.pull,
                    spec.platform.as_deref(),
                    progress,
                )
                .await?;
                Ok((
                    ResolvedImage {
                        reference: r.to_string(),
                        id: details.id.clone(),
                        built: false,
                    },
                    details,
                ))
            }
            Base::Dockerfile(d) => {
                // The spec's platform applies to Dockerfile bases that do not name their own.
                let with_platform;
                let d = match (&spec.platform, d.platform_name()) {
                    (Some(p), None) => {
                        with_platform = d.clone().platform(p);
                        &with_platform
                    }
                    _ => d,
                };
                build::resolve(&self.engine, d, spec.pull, progress).await
            }
        }
    }

    /// Resolves the base, creates and starts a container, and waits until it is ready.
    pub async fn spawn(&self, spec: Spec) -> Result<Instance> {
        spec.validate()?;
        let base = spec.resolved_base()?;
        let span = tracing::info_span!("headjack.spawn", base = %base);
        self.spawn_resolved(spec, base).instrument(span).await
    }

    async fn spawn_resolved(&self, spec: Spec, base: Base) -> Result<Instance> {
        let (image, details) = self.resolve_base(&base, &spec, 0).await?;
        let id = random_id();
        let plan = self.plan(&spec, &base, &image, &details.labels, &id)?;
        let container_id = self.engine.create_container(&plan).await?;
        let user = plan.user.clone().or(details.user);
        let origin = Origin {
            entrypoint: details.entrypoint,
            cmd: details.cmd,
            labels: details.labels,
        };
        let name = plan.name.clone().unwrap_or_default();
        let instance = Instance::new(
            self.engine.clone(),
            container_id.clone(),
            id,
            name,
            image.reference.clone(),
            user,
            origin,
            false,
        );
        // From here on, dropping `instance` on an error removes the container.
        self.engine.start(&container_id).await?;
        self.wait_ready(&instance, &spec).await?;
        Ok(instance)
    }

    fn plan(
        &self,
        spec: &Spec,
        base: &Base,
        image: &ResolvedImage,
        image_labels: &HashMap<String, String>,
        id: &str,
    ) -> Result<ContainerPlan> {
        let dir = spec.resolved_base_dir()?;
        let mut mounts = Vec::new();
        let mut workdir = spec.workdir.clone();
        if let Some((host, target, read_only)) = &spec.workspace {
            let host = absolute(&dir, host);
            let host = host.canonicalize().map_err(|e| {
                Error::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "workspace {} cannot be used: {e}; create it or fix the path",
                        host.display()
                    ),
                )
            })?;
            if !host.is_dir() {
                return Err(Error::invalid_argument(format!(
                    "workspace {} is not a directory",
                    host.display()
                )));
            }
            mounts.push(PlanMount::Bind {
                source: host.display().to_string(),
                target: target.clone(),
                read_only: *read_only,
            });
            workdir.get_or_insert_with(|| target.clone());
        }
        for m in &spec.mounts {
            mounts.push(match &m.kind {
                MountKind::Bind(p) => {
                    let host = absolute(&dir, p);
                    if !host.exists() {
                        return Err(Error::invalid_argument(format!(
                            "bind mount source {} does not exist",
                            host.display()
                        )));
                    }
                    PlanMount::Bind {
                        source: host.display().to_string(),
                        target: m.target.clone(),
                        read_only: m.read_only,
                    }
                }
                MountKind::Volume(name) => PlanMount::Volume {
                    name: name.clone(),
                    target: m.target.clone(),
                    read_only: m.read_only,
                },
                MountKind::Tmpfs(size) => PlanMount::Tmpfs {
                    target: m.target.clone(),
                    size: *size,
                },
            });
        }
        if spec.hardened && !spec.mounts.iter().any(|m| m.target == "/tmp") {
            mounts.push(PlanMount::Tmpfs {
                target: "/tmp".into(),
                size: None,
            });
        }
        let entrypoint = match &spec.init {
            Some(cmd) => cmd.clone(),
            None => match image_labels.get(labels::INIT) {
                Some(cmd) => shell_words::split(cmd).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidBase,
                        format!(
                            "image {} has an unparseable {} label {cmd:?}: {e}",
                            image.reference,
                            labels::INIT
                        ),
                    )
                })?,
                None => DEFAULT_INIT.iter().map(|s| s.to_string()).collect(),
            },
        };
        let mut all_labels: HashMap<String, String> = spec
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all_labels.insert(labels::MANAGED.into(), "true".into());
        all_labels.insert(labels::INSTANCE.into(), id.to_string());
        all_labels.insert(labels::BASE.into(), base.to_string());
        all_labels.insert(labels::IMAGE.into(), image.reference.clone());
        let owner = if spec.detached {
            labels::DETACHED.to_string()
        } else {
            Owner::current().to_label()
        };
        all_labels.insert(labels::OWNER.into(), owner);
        if let Some(life) = spec.expires_after {
            let at = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                + life;
            all_labels.insert(labels::EXPIRES.into(), at.as_secs().to_string());
        }
        let network = match (&spec.network, spec.hardened) {
            (Some(n), _) => n.clone(),
            (None, true) => Network::None,
            (None, false) => Network::Bridge,
        };
        Ok(ContainerPlan {
            name: Some(
                spec.name
                    .clone()
                    .unwrap_or_else(|| format!("headjack-{id}")),
            ),
            image: image.reference.clone(),
            entrypoint,
            env: spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            user: spec.user.clone(),
            workdir,
            labels: all_labels,
            mounts,
            nano_cpus: spec.cpus.map(|c| (c * 1e9) as i64),
            memory: spec.memory.map(|m| m as i64),
            pids: Some(spec.pids.unwrap_or(DEFAULT_PIDS_LIMIT)),
            network: Some(network.mode()),
            runtime: spec.runtime.clone(),
            cap_drop_all: spec.hardened,
            read_only_root: spec.hardened,
            hostname: None,
        })
    }

    /// Waits until the container runs and the readiness command (if any) succeeds.
    async fn wait_ready(&self, instance: &Instance, spec: &Spec) -> Result<()> {
        // Nothing removes the container between start and here, yet an engine tidying up a
        // keep-alive that has just exited can briefly answer "no such container": ask again.
        let mut attempt = 0;
        let status = loop {
            match instance.status().await {
                Err(e) if e.kind() == ErrorKind::NotFound && attempt < 20 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => break other?,
            }
        };
        if status != Status::Running {
            let logs = instance.logs().await.unwrap_or_default();
            let text: String = logs
                .iter()
                .map(|c| String::from_utf8_lossy(&c.data).into_owned())
                .collect();
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "the container of instance {} is {} right after start (its keep-alive command ended): {}",
                    instance.id(),
                    status.as_str(),
                    text.trim()
                ),
            ));
        }
        let Some(check) = &spec.readiness else {
            return Ok(());
        };
        let deadline = tokio::time::Instant::now() + check.timeout;
        let mut last;
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let attempt =
                Exec::new(check.command.clone()).timeout(remaining.max(Duration::from_millis(100)));
            match instance.exec(attempt).await {
                Ok(out) if out.success() => return Ok(()),
                Ok(out) => {
                    last = format!("exit code {}: {}", out.exit_code, out.stderr_text().trim())
                }
                Err(e) => last = e.to_string(),
            }
            if tokio::time::Instant::now() + check.interval >= deadline {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "instance {} did not become ready within {:?}: readiness check {:?} last failed with {last}",
                        instance.id(),
                        check.timeout,
                        check.command
                    ),
                ));
            }
            tokio::time::sleep(check.interval).await;
        }
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
                let status = Status::from_engine(&c.status, None);
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
        Ok(Instance::new(
            self.engine.clone(),
            details.id,
            id,
            details.name,
            details
                .labels
                .get(labels::IMAGE)
                .cloned()
                .unwrap_or(details.image),
            details.user,
            origin,
            true,
        ))
    }

    /// Removes instances whose owner process on this host is gone, or whose expiry passed.
    /// Returns the IDs of the instances removed.
    pub async fn sweep(&self) -> Result<Vec<String>> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut removed = Vec::new();
        for info in self.list().await? {
            let expired = info.expires.is_some_and(|e| e <= now);
            let orphaned = Owner::parse(&info.owner).is_some_and(|o| o.is_gone_from_this_host());
            if expired || orphaned {
                tracing::info!(instance = %info.id, expired, orphaned, "sweeping instance");
                self.engine.remove(&info.container_id).await?;
                removed.push(info.id);
            }
        }
        Ok(removed)
    }
}

impl Client {
    /// Every image headjack built on this engine, most recently used first. Images headjack
    /// did not build are never listed.
    pub async fn images(&self) -> Result<Vec<crate::BuiltImage>> {
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
