//! Sandbox features of an instance (issue 13): published ports, and the limits an engine cannot
//! apply (stats, fork and checkpoint have files of their own).

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
