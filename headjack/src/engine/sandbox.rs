//! Sandbox features on the engine side (issue 13): published ports, named volumes, extra
//! limits (shm, cpuset, ulimits, disk), stats.

use std::collections::HashMap;

use bollard::models::{HostConfig, PortBinding, ResourcesUlimits};
use bollard::query_parameters::RemoveVolumeOptionsBuilder;
use tracing::Instrument;

use super::Engine;
use super::errors::{is_404, map_err};
use super::raw::{percent_encode, string_map};
use crate::error::{Error, ErrorKind, Result};

/// The `ExposedPorts` of a container publishing `ports`.
pub(super) fn exposed_ports(ports: &[(String, u16, u16)]) -> Option<Vec<String>> {
    (!ports.is_empty()).then(|| ports.iter().map(|(_, _, c)| format!("{c}/tcp")).collect())
}

/// The `PortBindings` of a container publishing `ports`.
pub(super) fn port_bindings(
    ports: &[(String, u16, u16)],
) -> Option<HashMap<String, Option<Vec<PortBinding>>>> {
    (!ports.is_empty()).then(|| {
        ports
            .iter()
            .map(|(ip, host, container)| {
                (
                    format!("{container}/tcp"),
                    Some(vec![PortBinding {
                        host_ip: Some(ip.clone()),
                        // Empty: the engine chooses.
                        host_port: Some(if *host == 0 {
                            String::new()
                        } else {
                            host.to_string()
                        }),
                    }]),
                )
            })
            .collect()
    })
}

/// Limits beyond cpu, memory and pids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ExtraLimits {
    /// Size of `/dev/shm` in bytes.
    pub shm_size: Option<i64>,
    /// CPUs the container may run on (`0-3`, `0,2`).
    pub cpuset: Option<String>,
    /// `(name, soft, hard)`.
    pub ulimits: Vec<(String, i64, i64)>,
    /// Root filesystem size (`storage_opt size`), as the engine reads it (`1G`, bytes).
    pub disk: Option<String>,
}

impl ExtraLimits {
    pub(super) fn apply(
        &self,
        mut h: HostConfig,
        kind: super::EngineKind,
        pids: Option<i64>,
    ) -> HostConfig {
        let mut ulimits = self.ulimits.clone();
        // Podman (4.3) given ulimits without `nproc` sets one the runtime may not raise to
        // ("error setting rlimit type 6"): give it the pids limit, the same bound inside.
        if kind == super::EngineKind::Podman
            && !ulimits.is_empty()
            && !ulimits.iter().any(|(n, _, _)| n == "nproc")
        {
            let n = pids.unwrap_or(crate::spec::Spec::DEFAULT_PIDS_LIMIT);
            ulimits.push(("nproc".to_string(), n, n));
        }
        if let Some(s) = self.shm_size {
            h.shm_size = Some(s);
        }
        if let Some(c) = &self.cpuset {
            h.cpuset_cpus = Some(c.clone());
        }
        if !ulimits.is_empty() {
            h.ulimits = Some(
                ulimits
                    .iter()
                    .map(|(name, soft, hard)| ResourcesUlimits {
                        name: Some(name.clone()),
                        soft: Some(*soft),
                        hard: Some(*hard),
                    })
                    .collect(),
            );
        }
        if let Some(d) = &self.disk {
            h.storage_opt = Some(HashMap::from([("size".to_string(), d.clone())]));
        }
        h
    }
}

/// A container port published on the host, as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PublishedPort {
    pub container_port: u16,
    pub host_ip: String,
    pub host_port: u16,
}

/// A named volume, as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VolumeDetails {
    pub name: String,
    pub driver: String,
    pub mountpoint: String,
    pub created_at: String,
    pub labels: HashMap<String, String>,
}

fn volume_of(v: &serde_json::Value) -> VolumeDetails {
    let text = |k: &str| {
        v.get(k)
            .and_then(|s| s.as_str())
            .unwrap_or_default()
            .to_string()
    };
    VolumeDetails {
        name: text("Name"),
        driver: text("Driver"),
        mountpoint: text("Mountpoint"),
        created_at: text("CreatedAt"),
        labels: string_map(v.get("Labels")),
    }
}

impl Engine {
    /// The TCP ports container `id` publishes, with the host address and port the engine bound.
    pub(crate) async fn published_ports(&self, id: &str) -> Result<Vec<PublishedPort>> {
        let span = tracing::debug_span!("engine.published_ports", id);
        async {
            let c = self
                .get_json(&format!("/containers/{}/json", percent_encode(id)))
                .await
                .map_err(|e| e.context(format!("inspecting container {id}")))?;
            let mut found = Vec::new();
            let ports = c
                .get("NetworkSettings")
                .and_then(|n| n.get("Ports"))
                .and_then(|p| p.as_object());
            for (key, bindings) in ports.into_iter().flatten() {
                let Some(port) = key.strip_suffix("/tcp").and_then(|p| p.parse::<u16>().ok())
                else {
                    continue;
                };
                for b in bindings.as_array().into_iter().flatten() {
                    let host_port = b
                        .get("HostPort")
                        .and_then(|p| p.as_str())
                        .and_then(|p| p.parse::<u16>().ok());
                    if let Some(host_port) = host_port {
                        found.push(PublishedPort {
                            container_port: port,
                            host_ip: b
                                .get("HostIp")
                                .and_then(|p| p.as_str())
                                .unwrap_or_default()
                                .to_string(),
                            host_port,
                        });
                    }
                }
            }
            Ok(found)
        }
        .instrument(span)
        .await
    }

    /// Volume `name`, or `None` when it does not exist.
    pub(crate) async fn volume(&self, name: &str) -> Result<Option<VolumeDetails>> {
        let span = tracing::debug_span!("engine.inspect_volume", name);
        match self
            .get_json(&format!("/volumes/{}", percent_encode(name)))
            .instrument(span)
            .await
        {
            Ok(v) => Ok(Some(volume_of(&v))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.context(format!("inspecting volume {name}"))),
        }
    }

    /// The volumes carrying label `label` (`key` or `key=value`).
    pub(crate) async fn volumes_with_label(&self, label: &str) -> Result<Vec<VolumeDetails>> {
        let span = tracing::debug_span!("engine.list_volumes", label);
        async {
            let filters = serde_json::json!({ "label": [label] }).to_string();
            let v = self
                .get_json(&format!("/volumes?filters={}", percent_encode(&filters)))
                .await
                .map_err(|e| e.context("listing volumes"))?;
            Ok(v.get("Volumes")
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
                .map(volume_of)
                .collect())
        }
        .instrument(span)
        .await
    }

    /// Removes volume `name`; one that does not exist counts as removed.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Conflict`] while a container uses it.
    pub(crate) async fn remove_volume(&self, name: &str) -> Result<()> {
        let span = tracing::debug_span!("engine.remove_volume", name);
        let opts = RemoveVolumeOptionsBuilder::default().force(false).build();
        match self
            .docker
            .remove_volume(name, Some(opts))
            .instrument(span)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_404(&e) => Ok(()),
            Err(e) => {
                let err = map_err(&format!("removing volume {name}"), e);
                let m = err.message().to_ascii_lowercase();
                if err.kind() == ErrorKind::Conflict || m.contains("in use") {
                    Err(Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "volume {name} is in use by a container and was not removed; remove \
                             the instances that mount it first ({})",
                            err.message()
                        ),
                    ))
                } else {
                    Err(err)
                }
            }
        }
    }
}

/// One sample of a container's resource use, as the engine's stats API reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StatsSample {
    pub cpu_ns: u64,
    pub memory: u64,
    pub memory_peak: Option<u64>,
    pub memory_limit: Option<u64>,
    pub pids: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub block_read: u64,
    pub block_write: u64,
}

/// Reads the engine's stats JSON (Docker and Podman, cgroup v1 and v2).
pub(crate) fn stats_of(v: &serde_json::Value) -> StatsSample {
    let num = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_u64());
    let mem = v.get("memory_stats");
    let mut s = StatsSample {
        cpu_ns: num(v.pointer("/cpu_stats/cpu_usage/total_usage")).unwrap_or(0),
        memory: num(mem.and_then(|m| m.get("usage"))).unwrap_or(0),
        memory_peak: num(mem.and_then(|m| m.get("max_usage"))).filter(|m| *m > 0),
        memory_limit: num(mem.and_then(|m| m.get("limit")))
            .or_else(|| num(v.pointer("/memory_stats/stats/hierarchical_memory_limit")))
            // "No limit" is reported as a huge number.
            .filter(|l| *l > 0 && *l < (1 << 62)),
        pids: num(v.pointer("/pids_stats/current")).unwrap_or(0),
        ..Default::default()
    };
    for n in v
        .get("networks")
        .and_then(|n| n.as_object())
        .into_iter()
        .flat_map(|n| n.values())
    {
        s.net_rx += num(n.get("rx_bytes")).unwrap_or(0);
        s.net_tx += num(n.get("tx_bytes")).unwrap_or(0);
    }
    for e in v
        .pointer("/blkio_stats/io_service_bytes_recursive")
        .and_then(|b| b.as_array())
        .into_iter()
        .flatten()
    {
        let value = num(e.get("value")).unwrap_or(0);
        match e
            .get("op")
            .and_then(|o| o.as_str())
            .map(str::to_ascii_lowercase)
        {
            Some(op) if op == "read" => s.block_read += value,
            Some(op) if op == "write" => s.block_write += value,
            _ => {}
        }
    }
    s
}

impl Engine {
    /// One sample of container `id`'s resource use (no waiting for a second sample).
    pub(crate) async fn stats(&self, id: &str) -> Result<StatsSample> {
        let span = tracing::debug_span!("engine.stats", id);
        let v = self
            .get_json(&format!(
                "/containers/{}/stats?stream=false&one-shot=true",
                percent_encode(id)
            ))
            .instrument(span)
            .await
            .map_err(|e| e.context(format!("reading the resource use of container {id}")))?;
        Ok(stats_of(&v))
    }
}

impl Engine {
    /// The engine's storage driver (`overlay2`, `fuse-overlayfs`, …).
    pub(crate) async fn storage_driver(&self) -> Result<String> {
        let span = tracing::debug_span!("engine.info");
        let v = self.get_json("/info").instrument(span).await?;
        Ok(v.get("Driver")
            .and_then(|d| d.as_str())
            .unwrap_or("unknown")
            .to_string())
    }
}

impl Engine {
    /// Checkpoints container `id`'s processes (memory included) as `name`, leaving it running.
    /// Docker: its checkpoint API (experimental mode, CRIU or runsc); Podman: its libpod API
    /// (CRIU). Returns the engine's refusal text on failure.
    pub(crate) async fn checkpoint(
        &self,
        id: &str,
        name: &str,
    ) -> Result<std::result::Result<(), String>> {
        let span = tracing::info_span!("engine.checkpoint", id, name);
        let id = percent_encode(id);
        let (path, body) = match self.info.kind {
            super::EngineKind::Docker => (
                format!("/containers/{id}/checkpoints"),
                Some((
                    "application/json",
                    serde_json::json!({"CheckpointID": name, "Exit": false})
                        .to_string()
                        .into_bytes(),
                )),
            ),
            super::EngineKind::Podman => (
                format!("/v4.0.0/libpod/containers/{id}/checkpoint?keep=true&leaveRunning=true"),
                None,
            ),
        };
        // Checkpoints write the container's memory: allow the transfer bound.
        refusal(
            self.request("POST", &path, body, super::TRANSFER_TIMEOUT)
                .instrument(span)
                .await,
        )
    }

    /// Restores stopped container `id` from checkpoint `name`. Returns the
    /// engine's refusal text on failure.
    pub(crate) async fn restore_checkpoint(
        &self,
        id: &str,
        name: &str,
    ) -> Result<std::result::Result<(), String>> {
        let span = tracing::info_span!("engine.restore", id, name);
        let path = match self.info.kind {
            super::EngineKind::Docker => format!(
                "/containers/{}/start?checkpoint={}",
                percent_encode(id),
                percent_encode(name)
            ),
            super::EngineKind::Podman => format!(
                "/v4.0.0/libpod/containers/{}/restore?keep=true",
                percent_encode(id)
            ),
        };
        refusal(
            self.request("POST", &path, None, super::TRANSFER_TIMEOUT)
                .instrument(span)
                .await,
        )
    }
}

/// An engine's answer to a checkpoint request: done, or its refusal text (the engine answered
/// with an error status); losing the engine stays an error.
fn refusal(answer: Result<serde_json::Value>) -> Result<std::result::Result<(), String>> {
    match answer {
        Ok(_) => Ok(Ok(())),
        Err(e) if matches!(e.kind(), ErrorKind::EngineUnavailable | ErrorKind::Timeout) => Err(e),
        Err(e) => Ok(Err(e.message().to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_are_read_from_docker_and_podman_answers() {
        let docker = serde_json::json!({
            "pids_stats": {"current": 3},
            "blkio_stats": {"io_service_bytes_recursive": [
                {"major": 8, "minor": 0, "op": "Read", "value": 4096},
                {"major": 8, "minor": 0, "op": "Write", "value": 8192},
                {"major": 8, "minor": 0, "op": "Total", "value": 12288}
            ]},
            "cpu_stats": {"cpu_usage": {"total_usage": 20555246}},
            "memory_stats": {"usage": 1839104, "max_usage": 4083712,
                "stats": {"hierarchical_memory_limit": 67108864}},
            "networks": {"eth0": {"rx_bytes": 90, "tx_bytes": 40}, "eth1": {"rx_bytes": 10, "tx_bytes": 0}}
        });
        let s = stats_of(&docker);
        assert_eq!(
            s,
            StatsSample {
                cpu_ns: 20555246,
                memory: 1839104,
                memory_peak: Some(4083712),
                memory_limit: Some(67108864),
                pids: 3,
                net_rx: 100,
                net_tx: 40,
                block_read: 4096,
                block_write: 8192,
            }
        );
        let podman = serde_json::json!({
            "pids_stats": {"current": 1},
            "blkio_stats": {"io_service_bytes_recursive": []},
            "cpu_stats": {"cpu_usage": {"total_usage": 5}},
            "memory_stats": {"usage": 1064960, "limit": 67108864},
        });
        let s = stats_of(&podman);
        assert_eq!(s.memory_peak, None);
        assert_eq!(s.memory_limit, Some(67108864));
        let unlimited = serde_json::json!({"memory_stats": {"usage": 1, "limit": u64::MAX}});
        assert_eq!(stats_of(&unlimited).memory_limit, None);
    }
}
