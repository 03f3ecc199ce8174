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
    pub(super) fn apply(&self, mut h: HostConfig) -> HostConfig {
        if let Some(s) = self.shm_size {
            h.shm_size = Some(s);
        }
        if let Some(c) = &self.cpuset {
            h.cpuset_cpus = Some(c.clone());
        }
        if !self.ulimits.is_empty() {
            h.ulimits = Some(
                self.ulimits
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
