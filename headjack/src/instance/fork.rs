//! Fork: a new instance from a snapshot of this one's files, with the same spec (remembered at
//! spawn, or rebuilt from the container for an attached handle); the snapshot goes with the fork.

use super::Instance;
use crate::error::{Error, ErrorKind, Result};

/// What a fork is made from: the snapshot committed from an instance and the spec to spawn.
pub(crate) struct ForkPlan {
    pub(crate) engine: crate::engine::Engine,
    pub(crate) spec: crate::spec::Spec,
    pub(crate) snapshot: String,
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

    /// Commits this instance to a snapshot image (paused for the commit) and returns it with
    /// the spec a fork spawns from it (`spawn/fork.rs` spawns it).
    pub(crate) async fn plan_fork(&self, keep_snapshot: bool) -> Result<ForkPlan> {
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
        Ok(ForkPlan {
            engine: self.engine.clone(),
            spec: child,
            snapshot: reference,
        })
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
