//! Containers: create, lifecycle (start, stop, kill, restart, pause, resume, remove), inspect,
//! list by label, logs, and archives in and out.

use std::collections::HashMap;
use std::pin::Pin;
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType, ResourcesUlimits};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    KillContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    RestartContainerOptionsBuilder, StopContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use tracing::Instrument;

use super::Engine;
use super::errors::{is_404, map_err};
use super::exec::{OutputStream, chunk_of};
use super::raw::{percent_encode, string_map};
use crate::error::{Error, ErrorKind, Result};

/// A mount for [`ContainerPlan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PlanMount {
    Bind {
        source: String,
        target: String,
        read_only: bool,
    },
    Volume {
        name: String,
        target: String,
        read_only: bool,
    },
    Tmpfs {
        target: String,
        size: Option<i64>,
    },
}

/// Everything needed to create a container, in headjack's terms.
#[derive(Debug, Clone, Default)]
pub(crate) struct ContainerPlan {
    pub name: Option<String>,
    pub image: String,
    pub entrypoint: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub labels: HashMap<String, String>,
    pub mounts: Vec<PlanMount>,
    pub nano_cpus: Option<i64>,
    pub memory: Option<i64>,
    pub pids: Option<i64>,
    pub network: Option<String>,
    pub runtime: Option<String>,
    pub cap_drop_all: bool,
    pub read_only_root: bool,
    pub hostname: Option<String>,
    /// PID 1 is headjack's agent, serving its session on the container's stdio: stdin kept
    /// open, no engine init in front of it, and no log driver storing the protocol.
    pub agent: bool,
    /// Published TCP ports: (host IP, host port or 0 for any, container port).
    pub ports: Vec<(String, u16, u16)>,
    /// Limits beyond cpu/memory/pids (issue 13).
    pub extra: super::sandbox::ExtraLimits,
    /// Capabilities added (a dev container's `capAdd`).
    pub cap_add: Vec<String>,
    /// Security options on top of `no-new-privileges` (a dev container's `securityOpt`).
    pub security_opt: Vec<String>,
    /// Privileged (only when the caller allowed it).
    pub privileged: bool,
    /// DNS servers for the container (an instance with an egress policy: its proxy).
    pub dns: Vec<String>,
}

/// State of a container as headjack reports it.
#[derive(Debug, Clone)]
pub(crate) struct ContainerDetails {
    pub id: String,
    pub name: String,
    pub image: String,
    pub status: String,
    pub exit_code: Option<i64>,
    pub labels: HashMap<String, String>,
    pub user: Option<String>,
    /// The engine saw the container's memory limit kill a process.
    pub oom_killed: bool,
    /// The memory limit in bytes (0 or absent: none).
    pub memory_limit: Option<i64>,
    /// The OCI runtime (`runc`, `runsc`, `crun`…) when the engine says.
    pub runtime: Option<String>,
}

/// One container found by a label query.
#[derive(Debug, Clone)]
pub(crate) struct ContainerListing {
    pub id: String,
    pub name: String,
    pub image: String,
    pub status: String,
    /// The exit code of a stopped container, read from the list's status text.
    pub exit_code: Option<i64>,
    pub labels: HashMap<String, String>,
}

impl Engine {
    /// Creates (does not start) a container from `plan`; returns its ID.
    pub(crate) async fn create_container(&self, plan: &ContainerPlan) -> Result<String> {
        let span = tracing::info_span!("engine.create_container", image = %plan.image);
        async {
            let mounts = plan
                .mounts
                .iter()
                .map(|m| match m {
                    PlanMount::Bind {
                        source,
                        target,
                        read_only,
                    } => Mount {
                        typ: Some(MountType::BIND),
                        source: Some(source.clone()),
                        target: Some(target.clone()),
                        read_only: Some(*read_only),
                        ..Default::default()
                    },
                    PlanMount::Volume {
                        name,
                        target,
                        read_only,
                    } => Mount {
                        typ: Some(MountType::VOLUME),
                        source: Some(name.clone()),
                        target: Some(target.clone()),
                        read_only: Some(*read_only),
                        ..Default::default()
                    },
                    PlanMount::Tmpfs { target, size } => Mount {
                        typ: Some(MountType::TMPFS),
                        target: Some(target.clone()),
                        tmpfs_options: size.map(|s| bollard::models::MountTmpfsOptions {
                            size_bytes: Some(s),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                })
                .collect::<Vec<_>>();
            let host_config = HostConfig {
                // The agent is the init (it reaps); otherwise the engine's.
                init: Some(!plan.agent),
                // The agent's stdout is its protocol: nothing for a log driver to keep.
                log_config: plan.agent.then(|| bollard::models::HostConfigLogConfig {
                    typ: Some("none".into()),
                    config: None,
                }),
                privileged: Some(plan.privileged),
                security_opt: Some(
                    std::iter::once("no-new-privileges".to_string())
                        .chain(plan.security_opt.iter().cloned())
                        .collect(),
                ),
                cap_add: (!plan.cap_add.is_empty()).then(|| plan.cap_add.clone()),
                mounts: Some(mounts),
                nano_cpus: plan.nano_cpus,
                memory: plan.memory,
                // Without a swap limit equal to memory, the container could swap past its limit.
                memory_swap: plan.memory,
                pids_limit: plan.pids,
                network_mode: plan.network.clone(),
                runtime: plan.runtime.clone(),
                cap_drop: plan.cap_drop_all.then(|| vec!["ALL".to_string()]),
                readonly_rootfs: Some(plan.read_only_root),
                ulimits: None::<Vec<ResourcesUlimits>>,
                port_bindings: super::sandbox::port_bindings(&plan.ports),
                dns: (!plan.dns.is_empty()).then(|| plan.dns.clone()),
                ..Default::default()
            };
            let host_config = plan.extra.apply(host_config, self.info.kind, plan.pids);
            let body = ContainerCreateBody {
                image: Some(plan.image.clone()),
                entrypoint: Some(plan.entrypoint.clone()),
                cmd: Some(vec![]),
                env: Some(plan.env.clone()),
                user: plan.user.clone(),
                working_dir: plan.workdir.clone(),
                labels: Some(plan.labels.clone()),
                hostname: plan.hostname.clone(),
                network_disabled: None,
                host_config: Some(host_config),
                open_stdin: plan.agent.then_some(true),
                stdin_once: plan.agent.then_some(false),
                attach_stdin: plan.agent.then_some(true),
                attach_stdout: plan.agent.then_some(true),
                attach_stderr: plan.agent.then_some(true),
                tty: plan.agent.then_some(false),
                exposed_ports: super::sandbox::exposed_ports(&plan.ports),
                ..Default::default()
            };
            let mut opts = CreateContainerOptionsBuilder::default();
            if let Some(name) = &plan.name {
                opts = opts.name(name);
            }
            let res = self
                .docker
                .create_container(Some(opts.build()), body)
                .await
                .map_err(|e| {
                    let err = map_err(&format!("creating a container from {}", plan.image), e);
                    if err.kind() == ErrorKind::NotFound
                        && err.message().to_ascii_lowercase().contains("image")
                    {
                        Error::new(ErrorKind::ImageNotFound, err.message().to_string())
                    } else {
                        err
                    }
                })?;
            for w in res.warnings {
                tracing::warn!(warning = %w, "engine warning on create");
            }
            Ok(res.id)
        }
        .instrument(span)
        .await
    }

    pub(crate) async fn start(&self, id: &str) -> Result<()> {
        let span = tracing::debug_span!("engine.start", id);
        self.docker
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
            .instrument(span)
            .await
            .map_err(|e| map_err(&format!("starting container {id}"), e))
    }

    pub(crate) async fn stop(&self, id: &str, grace: Duration) -> Result<()> {
        let span = tracing::debug_span!("engine.stop", id);
        let opts = StopContainerOptionsBuilder::default()
            .t(grace.as_secs() as i32)
            .build();
        match self
            .docker
            .stop_container(id, Some(opts))
            .instrument(span)
            .await
        {
            Ok(()) => Ok(()),
            // 304: already stopped.
            Err(BollardError::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(map_err(&format!("stopping container {id}"), e)),
        }
    }

    pub(crate) async fn kill(&self, id: &str, signal: &str) -> Result<()> {
        let span = tracing::debug_span!("engine.kill", id, signal);
        let opts = KillContainerOptionsBuilder::default()
            .signal(signal)
            .build();
        self.docker
            .kill_container(id, Some(opts))
            .instrument(span)
            .await
            .map_err(|e| map_err(&format!("sending {signal} to container {id}"), e))
    }

    pub(crate) async fn restart(&self, id: &str, grace: Duration) -> Result<()> {
        let span = tracing::debug_span!("engine.restart", id);
        let opts = RestartContainerOptionsBuilder::default()
            .t(grace.as_secs() as i32)
            .build();
        self.docker
            .restart_container(id, Some(opts))
            .instrument(span)
            .await
            .map_err(|e| map_err(&format!("restarting container {id}"), e))
    }

    pub(crate) async fn pause(&self, id: &str) -> Result<()> {
        let span = tracing::debug_span!("engine.pause", id);
        self.docker
            .pause_container(id)
            .instrument(span)
            .await
            .map_err(|e| map_err(&format!("pausing container {id}"), e))
    }

    pub(crate) async fn unpause(&self, id: &str) -> Result<()> {
        let span = tracing::debug_span!("engine.unpause", id);
        self.docker
            .unpause_container(id)
            .instrument(span)
            .await
            .map_err(|e| map_err(&format!("resuming container {id}"), e))
    }

    /// Force-removes a container and its anonymous volumes. A container that is already gone
    /// counts as removed.
    pub(crate) async fn remove(&self, id: &str) -> Result<()> {
        let span = tracing::debug_span!("engine.remove", id);
        let opts = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self
            .docker
            .remove_container(id, Some(opts))
            .instrument(span)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_404(&e) => Ok(()),
            // Removal already in progress (another handle, or the engine's auto-remove).
            Err(BollardError::DockerResponseServerError {
                status_code: 409,
                message,
            }) if message.contains("already in progress") => Ok(()),
            Err(e) => Err(map_err(&format!("removing container {id}"), e)),
        }
    }

    /// Inspects a container (untyped JSON, for the same reason as the listing below).
    pub(crate) async fn inspect(&self, id: &str) -> Result<ContainerDetails> {
        let span = tracing::debug_span!("engine.inspect", id);
        async {
            let c = self
                .get_json(&format!("/containers/{}/json", percent_encode(id)))
                .await
                .map_err(|e| e.context(format!("inspecting container {id}")))?;
            let text = |v: Option<&serde_json::Value>| {
                v.and_then(|v| v.as_str()).unwrap_or_default().to_string()
            };
            let config = c.get("Config");
            let state = c.get("State");
            Ok(ContainerDetails {
                id: text(c.get("Id")),
                name: text(c.get("Name")).trim_start_matches('/').to_string(),
                image: text(config.and_then(|c| c.get("Image"))),
                status: text(state.and_then(|s| s.get("Status"))),
                exit_code: state
                    .and_then(|s| s.get("ExitCode"))
                    .and_then(|v| v.as_i64()),
                labels: string_map(config.and_then(|c| c.get("Labels"))),
                user: Some(text(config.and_then(|c| c.get("User")))).filter(|u| !u.is_empty()),
                oom_killed: state
                    .and_then(|s| s.get("OOMKilled"))
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false),
                memory_limit: c
                    .get("HostConfig")
                    .and_then(|h| h.get("Memory"))
                    .and_then(|v| v.as_i64()),
                runtime: Some(text(c.get("HostConfig").and_then(|h| h.get("Runtime"))))
                    .filter(|r| !r.is_empty()),
            })
        }
        .instrument(span)
        .await
    }

    /// Lists containers (running or not) carrying every label in `labels` (`key=value`).
    ///
    /// Read as plain JSON rather than through bollard's typed summary: Podman reports states
    /// (`stopped`) that the typed enum rejects, which would make one odd container break
    /// listing all of them.
    pub(crate) async fn containers_with_labels(
        &self,
        labels: &[String],
    ) -> Result<Vec<ContainerListing>> {
        let span = tracing::debug_span!("engine.list_containers");
        async {
            let filters = serde_json::json!({ "label": labels }).to_string();
            let query = format!(
                "/containers/json?all=1&filters={}",
                percent_encode(&filters)
            );
            let value = self
                .get_json(&query)
                .await
                .map_err(|e| e.context("listing containers"))?;
            let items = value.as_array().cloned().unwrap_or_default();
            Ok(items
                .into_iter()
                .map(|c| {
                    let text = |k: &str| {
                        c.get(k)
                            .and_then(|v| v.as_str())
                            .unwrap_or_default()
                            .to_string()
                    };
                    let labels = string_map(c.get("Labels"));
                    let name = c
                        .get("Names")
                        .and_then(|n| n.as_array())
                        .and_then(|n| n.first())
                        .and_then(|n| n.as_str())
                        .unwrap_or_default()
                        .trim_start_matches('/')
                        .to_string();
                    ContainerListing {
                        id: text("Id"),
                        name,
                        image: text("Image"),
                        status: text("State"),
                        exit_code: listed_exit_code(&text("Status")),
                        labels,
                    }
                })
                .collect())
        }
        .instrument(span)
        .await
    }

    /// Container logs (the keep-alive process's output), optionally followed.
    pub(crate) fn logs(&self, id: &str, follow: bool) -> OutputStream {
        let opts = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(follow)
            .tail("all")
            .build();
        let what = format!("reading logs of container {id}");
        let s = self
            .docker
            .logs(id, Some(opts))
            .map_err(move |e| map_err(&what, e))
            .try_filter_map(|o| async move { Ok(chunk_of(o)) });
        Box::pin(s)
    }

    /// Extracts `tar` into directory `path` of the container.
    /// With `chown`, the engine gives the files to the container's configured user.
    pub(crate) async fn upload(
        &self,
        id: &str,
        path: &str,
        tar: Vec<u8>,
        chown: bool,
    ) -> Result<()> {
        let span = tracing::debug_span!("engine.upload", id, path, bytes = tar.len());
        let mut opts = UploadToContainerOptionsBuilder::default().path(path);
        if chown {
            opts = opts.copy_uidgid("1");
        }
        let opts = opts.build();
        self.transfer
            .upload_to_container(id, Some(opts), bollard::body_full(Bytes::from(tar)))
            .instrument(span)
            .await
            .map_err(|e| map_err(&format!("copying into {path} in container {id}"), e))
    }

    /// Downloads `path` from the container as a tar stream.
    pub(crate) fn download(
        &self,
        id: &str,
        path: &str,
    ) -> Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>> {
        let opts = DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        let what = format!("copying {path} out of container {id}");
        Box::pin(
            self.transfer
                .download_from_container(id, Some(opts))
                .map_err(move |e| map_err(&what, e)),
        )
    }
}

/// The exit code in a container list's status text (`Exited (137) 2 minutes ago`), which is
/// the only place a list answer has it.
fn listed_exit_code(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    rest.split_once(')')?.0.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_read_from_list_status_text() {
        for (text, want) in [
            ("Exited (137) 2 minutes ago", Some(137)),
            ("Exited (0) Less than a second ago", Some(0)),
            ("Exited (-1) 1 second ago", Some(-1)),
            ("Up 3 seconds", None),
            ("Created", None),
            ("Exited (", None),
            ("Exited (x) now", None),
            ("", None),
        ] {
            assert_eq!(listed_exit_code(text), want, "{text:?}");
        }
    }
}
