//! Sandbox features of an instance (issue 13): published ports, stats, exit reasons, fork.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::Instance;
use crate::error::{Error, ErrorKind, Result};
use crate::spec::Publish;

/// Rewrites the engine's refusal to start a container whose host port is taken into a clear
/// [`ErrorKind::Conflict`]; other errors pass through.
pub(crate) fn port_conflict(e: Error, ports: &[Publish]) -> Error {
    let m = e.message().to_ascii_lowercase();
    let taken = m.contains("port is already allocated")
        || m.contains("address already in use")
        || (m.contains("bind") && m.contains("in use"));
    if ports.is_empty() || !taken {
        return e;
    }
    let asked: Vec<String> = ports.iter().map(|p| p.to_string()).collect();
    Error::new(
        ErrorKind::Conflict,
        format!(
            "cannot publish ports {} (host ip:host port:container port): a host port is already \
             in use by another container or process; choose another host port, or 0 to let the \
             engine pick a free one ({})",
            asked.join(", "),
            e.message()
        ),
    )
}

impl Instance {
    /// The host address where container TCP port `container_port` is published (see
    /// [`crate::Spec::publish`]). A port bound to every address (`0.0.0.0`, `::`) is reported
    /// on the loopback address, where this machine can connect to it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] when the port is not published (or the instance was removed);
    /// [`ErrorKind::Conflict`] when the instance is not running (the engine binds published
    /// ports only while it runs); engine errors.
    pub async fn port(&self, container_port: u16) -> Result<SocketAddr> {
        self.check_live()?;
        let ports = self
            .engine
            .published_ports(&self.container_id)
            .await
            .map_err(|e| {
                if e.kind() == ErrorKind::NotFound {
                    Error::new(
                        ErrorKind::NotFound,
                        format!("instance {} no longer exists on the engine", self.id),
                    )
                } else {
                    e
                }
            })?;
        let found = ports.iter().find(|p| p.container_port == container_port);
        let Some(p) = found else {
            let status = self.status().await?;
            if status != super::Status::Running {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "instance {} is {}: its ports are published only while it runs; start it \
                         first",
                        self.id,
                        status.as_str()
                    ),
                ));
            }
            let published: Vec<String> =
                ports.iter().map(|p| p.container_port.to_string()).collect();
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "port {container_port} of instance {} is not published (published: {}); \
                     publish it when spawning (Spec::publish({container_port}))",
                    self.id,
                    if published.is_empty() {
                        "none".to_string()
                    } else {
                        published.join(", ")
                    }
                ),
            ));
        };
        let ip: IpAddr = match p.host_ip.as_str() {
            "" | "0.0.0.0" => IpAddr::V4(Ipv4Addr::LOCALHOST),
            "::" => IpAddr::V6(Ipv6Addr::LOCALHOST),
            other => other.parse().map_err(|_| {
                Error::internal(format!(
                    "the engine reports port {container_port} of instance {} on host address \
                     {other:?}, which is not an IP address",
                    self.id
                ))
            })?,
        };
        Ok(SocketAddr::new(ip, p.host_port))
    }
}

/// An instance's resource use at one moment ([`Instance::stats`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// CPU time used by all its processes since it started.
    pub cpu_time: std::time::Duration,
    /// Memory in use now, in bytes (page cache included, as the kernel counts it).
    pub memory_bytes: u64,
    /// The most memory it used at once, in bytes, when the engine or the kernel tells.
    pub memory_peak_bytes: Option<u64>,
    /// Its memory limit in bytes, if it has one.
    pub memory_limit_bytes: Option<u64>,
    /// Processes (and threads) alive now.
    pub pids: u64,
    /// Bytes received over its network interfaces.
    pub net_rx_bytes: u64,
    /// Bytes sent over its network interfaces.
    pub net_tx_bytes: u64,
    /// Bytes read from block devices.
    pub block_read_bytes: u64,
    /// Bytes written to block devices.
    pub block_write_bytes: u64,
    /// When the sample was taken.
    pub at: std::time::SystemTime,
}

/// The kernel's record of a memory cgroup's peak use, seen from inside a container (v1, v2).
const PEAK_FILES: [&str; 2] = [
    "/sys/fs/cgroup/memory/memory.max_usage_in_bytes",
    "/sys/fs/cgroup/memory.peak",
];

impl Instance {
    /// A sample of the instance's resource use (CPU time, memory now and at its peak, processes,
    /// network and block I/O) from the engine's stats API. The peak comes from the engine, or
    /// else from the instance's cgroup (`None` when neither says).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] when the instance was removed; engine errors.
    pub async fn stats(&self) -> Result<Stats> {
        self.check_live()?;
        let s = self
            .engine
            .stats(&self.container_id)
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::NotFound => Error::new(
                    ErrorKind::NotFound,
                    format!("instance {} no longer exists on the engine", self.id),
                ),
                _ => e,
            })?;
        let mut peak = s.memory_peak;
        if peak.is_none() && s.pids > 0 {
            for file in PEAK_FILES {
                let read = crate::exec::Exec::new(["cat", file])
                    .timeout(std::time::Duration::from_secs(5));
                if let Ok(out) = self.exec(read).await
                    && out.success()
                    && let Ok(v) = out.stdout_text().trim().parse::<u64>()
                {
                    peak = Some(v.max(s.memory));
                    break;
                }
            }
        }
        Ok(Stats {
            cpu_time: std::time::Duration::from_nanos(s.cpu_ns),
            memory_bytes: s.memory,
            memory_peak_bytes: peak,
            memory_limit_bytes: s.memory_limit,
            pids: s.pids,
            net_rx_bytes: s.net_rx,
            net_tx_bytes: s.net_tx,
            block_read_bytes: s.block_read,
            block_write_bytes: s.block_write,
            at: std::time::SystemTime::now(),
        })
    }

    /// Samples [`Instance::stats`] every `interval` (the first at once) until the instance is
    /// removed or stops.
    ///
    /// # Errors
    ///
    /// Each item is a sample or the error that ended the stream.
    pub fn stats_stream(&self, interval: std::time::Duration) -> StatsStream<'_> {
        StatsStream {
            instance: self,
            interval: interval.max(std::time::Duration::from_millis(10)),
            started: false,
            done: false,
        }
    }
}

/// Samples of an instance's resource use at a fixed interval ([`Instance::stats_stream`]).
#[derive(Debug)]
pub struct StatsStream<'a> {
    instance: &'a Instance,
    interval: std::time::Duration,
    started: bool,
    done: bool,
}

impl StatsStream<'_> {
    /// The next sample, after the interval; `None` once the instance stopped or was removed.
    /// An error ends the stream.
    pub async fn next(&mut self) -> Option<Result<Stats>> {
        if self.done {
            return None;
        }
        if self.started {
            tokio::time::sleep(self.interval).await;
        }
        self.started = true;
        match self.instance.status().await {
            Ok(super::Status::Running | super::Status::Paused) => {}
            Ok(_) => {
                self.done = true;
                return None;
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.done = true;
                return None;
            }
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        }
        let s = self.instance.stats().await;
        if s.is_err() {
            self.done = true;
        }
        Some(s)
    }
}

impl super::InstanceInfo {
    /// Why the instance's container stopped: `killed: out of memory` when its memory limit
    /// killed it, `killed by signal N`, or `exited with code N`; `None` while it has not
    /// stopped. (The engine tells about the memory limit only to [`Instance::inspect`].)
    pub fn exit_reason(&self) -> Option<String> {
        match self.status {
            super::Status::Exited(_) | super::Status::Dead if self.oom_killed => {
                Some("killed: out of memory".to_string())
            }
            super::Status::Exited(code) if code > 128 && code < 128 + 65 => {
                Some(format!("killed by signal {}", code - 128))
            }
            super::Status::Exited(code) => Some(format!("exited with code {code}")),
            super::Status::Dead => Some("dead (the engine gave up on it)".to_string()),
            _ => None,
        }
    }
}

impl crate::exec::ExecOutput {
    /// How the command ended: `killed: out of memory` when the memory limit killed it,
    /// `timed out`, `killed by signal N` or `exited with code N`.
    pub fn exit_reason(&self) -> String {
        if self.oom_killed {
            "killed: out of memory".to_string()
        } else if self.timed_out {
            "timed out".to_string()
        } else if self.exit_code > 128 && self.exit_code < 128 + 65 {
            format!("killed by signal {}", self.exit_code - 128)
        } else {
            format!("exited with code {}", self.exit_code)
        }
    }
}

/// Removes a fork's snapshot image (best effort: one that a later fork builds on stays, and a
/// warning says so).
pub(crate) async fn remove_snapshot(engine: &crate::engine::Engine, image: &str) {
    if let Err(e) = engine.remove_image(image, false).await {
        tracing::warn!(error = %e, image, "removing a fork's snapshot image failed; remove it with Client::remove_image");
    }
}

impl Instance {
    /// Records the spec this instance was spawned from (spawn does it).
    pub(crate) fn remember_spec(self, spec: crate::spec::Spec) -> Instance {
        let _ = self.spec.set(spec);
        self
    }

    /// Makes `remove` also remove snapshot image `image` (attach does it for a fork's handle).
    pub(crate) fn set_snapshot(&self, image: Option<String>) {
        *self.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = image;
    }

    pub(super) fn take_snapshot(&self) -> Option<String> {
        self.snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// The snapshot image this fork runs, while it is to be removed with the fork
    /// ([`Instance::fork`]); `None` for other instances and for forks that keep theirs.
    pub fn fork_snapshot(&self) -> Option<String> {
        self.snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A new instance from a snapshot of this one's filesystem: the container is committed to a
    /// snapshot image (paused for the commit), and an instance is spawned from it with the same
    /// spec (same limits, mounts, volumes, environment; a fresh name and engine-chosen host
    /// ports stay fresh). Files are as they were at the fork and diverge afterwards; processes
    /// are not carried over (they start again from the spec's init). The snapshot image is
    /// removed with the fork; see [`Instance::fork_with`] to keep it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] when this instance was removed; engine and spawn errors. (An
    /// instance attached with [`crate::Client::attach`] is forked with the spec read back from
    /// its container: env, user, workdir, limits, network, runtime, labels, bind and volume
    /// mounts, published ports, the hardened preset and the init.)
    pub async fn fork(&self) -> Result<Instance> {
        self.fork_with(false).await
    }

    /// [`Instance::fork`]; with `keep_snapshot`, the snapshot image
    /// (`localhost/headjack/fork:<this id>-<random>`, label `io.headjack.fork.snapshot`) stays
    /// when the fork is removed (remove it with [`crate::Client::remove_image`]).
    ///
    /// # Errors
    ///
    /// As [`Instance::fork`].
    pub async fn fork_with(&self, keep_snapshot: bool) -> Result<Instance> {
        self.check_live().map_err(|e| match e.kind() {
            ErrorKind::NotFound => Error::new(
                ErrorKind::NotFound,
                format!(
                    "cannot fork instance {}: it was removed; fork a live instance (or spawn a \
                     new one)",
                    self.id
                ),
            ),
            _ => e,
        })?;
        let rebuilt;
        let spec = match self.spec.get() {
            Some(spec) => spec,
            None => {
                rebuilt = self.spec_from_engine().await?;
                &rebuilt
            }
        };
        let span = tracing::info_span!("headjack.fork", instance = %self.id);
        use tracing::Instrument;
        async {
            let reference = format!(
                "localhost/headjack/fork:{}-{}",
                self.id,
                crate::labels::random_id()
            );
            let mut image_labels = self.origin.labels.clone();
            image_labels.insert("io.headjack.snapshot.of".into(), self.id.clone());
            image_labels.insert(crate::labels::FORK_SNAPSHOT.into(), self.id.clone());
            if let Some(t) = spec.labels.get(crate::labels::TEST) {
                image_labels.insert(crate::labels::TEST.into(), t.clone());
            }
            let (name, tag) = reference.rsplit_once(':').unwrap_or((&reference, "latest"));
            self.engine
                .commit(
                    &self.container_id,
                    name,
                    tag,
                    self.origin.entrypoint.clone(),
                    self.origin.cmd.clone(),
                    image_labels,
                )
                .await
                .map_err(|e| match e.kind() {
                    ErrorKind::NotFound => Error::new(
                        ErrorKind::NotFound,
                        format!(
                            "cannot fork instance {}: it no longer exists on the engine ({})",
                            self.id,
                            e.message()
                        ),
                    ),
                    _ => e,
                })?;
            let mut child = spec.clone();
            child.base = Some(crate::spec::BaseArg::Text(reference.clone()));
            child.pull = crate::spec::PullPolicy::Never;
            child.name = None;
            child.build = Default::default();
            if !keep_snapshot {
                child
                    .labels
                    .insert(crate::labels::FORK_SNAPSHOT.into(), reference.clone());
            }
            match crate::spawn::spawn(&self.engine, child).await {
                Ok(fork) => {
                    if !keep_snapshot {
                        *fork.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = Some(reference);
                    }
                    Ok(fork)
                }
                Err(e) => {
                    if !keep_snapshot {
                        remove_snapshot(&self.engine, &reference).await;
                    }
                    Err(e)
                }
            }
        }
        .instrument(span)
        .await
    }
}

/// Rewrites the engine's refusal of a disk limit into [`ErrorKind::Unsupported`] naming its
/// storage driver; other errors pass through.
pub(crate) async fn limits_unsupported(
    engine: &crate::engine::Engine,
    e: Error,
    spec: &crate::spec::Spec,
) -> Error {
    let m = e.message().to_ascii_lowercase();
    let Some(disk) = spec.limits.disk else {
        return e;
    };
    if !(m.contains("storage-opt") || m.contains("storage opt") || m.contains("quota")) {
        return e;
    }
    let driver = engine
        .storage_driver()
        .await
        .unwrap_or_else(|_| "unknown".to_string());
    Error::new(
        ErrorKind::Unsupported,
        format!(
            "a disk limit ({}) cannot be set on this engine: its storage driver {driver:?} cannot \
             limit a container's filesystem (overlay needs xfs mounted with 'pquota'; btrfs, zfs \
             and devicemapper can). Drop the disk limit, or use a tmpfs or volume with a size \
             ({})",
            crate::spec::human_bytes(disk),
            e.message()
        ),
    )
}

/// Why a checkpoint cannot be taken or restored on this engine, with what was tried.
fn checkpoint_unsupported(engine: &crate::engine::Engine, what: &str, why: &str) -> Error {
    let how = match engine.info().kind {
        crate::engine::EngineKind::Docker => {
            "Docker takes checkpoints only in experimental mode (dockerd --experimental) with \
             CRIU installed, or with the runsc (gVisor) runtime"
        }
        crate::engine::EngineKind::Podman => {
            "Podman takes checkpoints with CRIU: install criu (a Debian package) and check that \
             `criu check` passes on this kernel"
        }
    };
    Error::new(
        ErrorKind::Unsupported,
        format!("{what}: this engine cannot checkpoint a container's memory ({why}). {how}"),
    )
}

fn check_checkpoint_name(name: &str) -> Result<()> {
    if crate::spec::sandbox_check_volume_name(name).is_err() {
        return Err(Error::invalid_argument(format!(
            "invalid checkpoint name {name:?}: use at least 2 letters, digits, '_', '.' or '-', \
             starting with a letter or digit"
        )));
    }
    Ok(())
}

impl Instance {
    /// Saves the instance's processes with their memory as checkpoint `name`, leaving it
    /// running; [`crate::Client::restore`] brings them back as they were. Needs an engine that
    /// can (Docker in experimental mode with CRIU or runsc; Podman with CRIU).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] when the engine cannot, saying why and what it needs;
    /// [`ErrorKind::InvalidArgument`] for a bad name; [`ErrorKind::NotFound`] when the instance
    /// was removed.
    pub async fn checkpoint(&self, name: &str) -> Result<()> {
        self.check_live()?;
        check_checkpoint_name(name)?;
        match self.engine.checkpoint(&self.container_id, name).await? {
            Ok(()) => Ok(()),
            Err(why) => Err(checkpoint_unsupported(
                &self.engine,
                &format!("cannot checkpoint instance {} as {name:?}", self.id),
                &why,
            )),
        }
    }
}

impl crate::Client {
    /// Restores stopped instance `id_or_name` from its checkpoint `name`
    /// ([`Instance::checkpoint`]): its processes continue from where they were. Returns a handle (kept on drop, as from
    /// [`crate::Client::attach`]).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] when the engine cannot restore checkpoints, saying why;
    /// [`ErrorKind::Conflict`] while the instance runs; [`ErrorKind::NotFound`] for an unknown
    /// instance; [`ErrorKind::InvalidArgument`] for a bad
    /// name.
    pub async fn restore(&self, id_or_name: &str, name: &str) -> Result<Instance> {
        check_checkpoint_name(name)?;
        let instance = self.attach(id_or_name).await?;
        let status = instance.status().await?;
        if matches!(status, super::Status::Running | super::Status::Paused) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "cannot restore instance {id_or_name} from checkpoint {name:?}: it is {};                      stop it first (its processes are replaced by the checkpoint's)",
                    status.as_str()
                ),
            ));
        }
        match self
            .engine()
            .restore_checkpoint(instance.container_id(), name)
            .await?
        {
            Ok(()) => Ok(instance),
            Err(why) => Err(checkpoint_unsupported(
                self.engine(),
                &format!("cannot restore instance {id_or_name} from checkpoint {name:?}"),
                &why,
            )),
        }
    }
}

impl Instance {
    /// The spec of this instance as far as its container tells (for forking an attached handle).
    async fn spec_from_engine(&self) -> Result<crate::spec::Spec> {
        use crate::spec::{Mount, Network, Spec};
        let c = self
            .engine
            .inspect_raw(&self.container_id)
            .await?
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "instance {} is gone: its container no longer exists",
                        self.id
                    ),
                )
            })?;
        let text = |p: &str| c.pointer(p).and_then(|v| v.as_str()).unwrap_or_default();
        let int = |p: &str| c.pointer(p).and_then(|v| v.as_i64()).unwrap_or(0);
        let labels = crate::engine::string_map_pub(c.pointer("/Config/Labels"));
        let agent = labels.contains_key(crate::labels::AGENT);
        let mut spec = Spec::new().engine_exec(!agent);
        for e in c
            .pointer("/Config/Env")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            if let Some((k, v)) = e.as_str().and_then(|e| e.split_once('=')) {
                spec = spec.env(k, v);
            }
        }
        for (k, v) in &labels {
            if !crate::labels::RESERVED.contains(&k.as_str()) && k != crate::labels::FORK_SNAPSHOT {
                spec = spec.label(k, v);
            }
        }
        match labels.get(crate::labels::USER) {
            Some(u) => spec = spec.user(u),
            None if !text("/Config/User").is_empty() => spec = spec.user(text("/Config/User")),
            None => {}
        }
        if !text("/Config/WorkingDir").is_empty() {
            spec = spec.workdir(text("/Config/WorkingDir"));
        }
        if int("/HostConfig/Memory") > 0 {
            spec = spec.memory(int("/HostConfig/Memory") as u64);
        }
        if int("/HostConfig/NanoCpus") > 0 {
            spec = spec.cpus(int("/HostConfig/NanoCpus") as f64 / 1e9);
        }
        if int("/HostConfig/PidsLimit") > 0 {
            spec = spec.pids(int("/HostConfig/PidsLimit"));
        }
        let net = text("/HostConfig/NetworkMode");
        if !net.is_empty() {
            spec = spec.network(Network::parse(net));
        }
        if !text("/HostConfig/Runtime").is_empty() && text("/HostConfig/Runtime") != "runc" {
            spec = spec.runtime(text("/HostConfig/Runtime"));
        }
        let cap_drop_all = c
            .pointer("/HostConfig/CapDrop")
            .and_then(|v| v.as_array())
            .is_some_and(|a| {
                a.iter()
                    .any(|v| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("all")))
            });
        if cap_drop_all
            && c.pointer("/HostConfig/ReadonlyRootfs")
                .and_then(|v| v.as_bool())
                == Some(true)
        {
            spec = spec.hardened(true);
        }
        for m in c
            .pointer("/Mounts")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            let field = |k: &str| m.get(k).and_then(|v| v.as_str()).unwrap_or_default();
            let target = field("Destination");
            if target == crate::agent::delivery::MOUNT {
                continue;
            }
            let ro = m.get("RW").and_then(|v| v.as_bool()) == Some(false);
            let mount = match field("Type") {
                "volume" => Mount::volume(field("Name"), target),
                "bind" => Mount::bind(field("Source"), target),
                "tmpfs" => Mount::tmpfs(target, None),
                _ => continue,
            };
            spec = spec.mount(if ro { mount.read_only() } else { mount });
        }
        for (port, bindings) in c
            .pointer("/HostConfig/PortBindings")
            .and_then(|v| v.as_object())
            .into_iter()
            .flatten()
        {
            let Some(p) = port
                .strip_suffix("/tcp")
                .and_then(|p| p.parse::<u16>().ok())
            else {
                continue;
            };
            for b in bindings.as_array().into_iter().flatten() {
                let ip = b.get("HostIp").and_then(|v| v.as_str()).unwrap_or_default();
                let ip = ip
                    .parse()
                    .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
                // The fork gets a free port of its own: the parent's is taken.
                spec = spec.publish_on(ip, 0, p);
            }
        }
        let entry: Vec<String> = c
            .pointer("/Config/Entrypoint")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        let init: Vec<String> = if agent {
            entry
                .iter()
                .skip_while(|a| *a != "--")
                .skip(1)
                .cloned()
                .collect()
        } else {
            entry
        };
        if !init.is_empty() {
            spec = spec.init(init);
        }
        Ok(spec)
    }
}
