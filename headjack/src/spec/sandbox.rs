//! Sandbox options of a [`Spec`]: published ports and named volumes (issue 13).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};

use super::{Mount, MountKind, Network, Spec};
use crate::error::{Error, Result};

/// A container port published on the host (TCP).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Publish {
    /// The host address the port is bound to (default `127.0.0.1`: this machine only).
    pub host_ip: IpAddr,
    /// The host port; `0` lets the engine choose a free one.
    pub host_port: u16,
    /// The port inside the container.
    pub container_port: u16,
}

impl Publish {
    /// `container_port` on a free host port of `127.0.0.1`.
    pub fn new(container_port: u16) -> Publish {
        Publish {
            host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            host_port: 0,
            container_port,
        }
    }

    /// Parses `PORT`, `HOST_PORT:PORT` or `HOST_IP:HOST_PORT:PORT` (the `-p` forms of
    /// `docker run`, TCP only; an IPv6 host address goes in brackets: `[::1]:8080:80`).
    ///
    /// # Errors
    ///
    /// [`crate::error::ErrorKind::InvalidArgument`] for anything else.
    pub fn parse(s: &str) -> Result<Publish> {
        let bad = |why: &str| {
            Error::invalid_argument(format!(
                "cannot read the port to publish {s:?}: {why}; use PORT, HOST_PORT:PORT or \
                 HOST_IP:HOST_PORT:PORT (e.g. 8080, 9000:8080, 127.0.0.1:9000:8080)"
            ))
        };
        let port = |p: &str, what: &str| {
            p.trim()
                .parse::<u16>()
                .map_err(|_| bad(&format!("{what} {p:?} is not a number from 0 to 65535")))
        };
        let s_trim = s.trim().trim_end_matches("/tcp");
        let (ip, rest) = if let Some(rest) = s_trim.strip_prefix('[') {
            let (ip, rest) = rest.split_once("]:").ok_or_else(|| bad("unclosed '['"))?;
            (Some(ip), rest)
        } else {
            match s_trim.matches(':').count() {
                0 | 1 => (None, s_trim),
                2 => {
                    let (ip, rest) = s_trim.split_once(':').unwrap_or_default();
                    (Some(ip), rest)
                }
                _ => return Err(bad("too many ':'")),
            }
        };
        let mut p = match rest.split_once(':') {
            Some((host, container)) => Publish {
                host_port: port(host, "host port")?,
                ..Publish::new(port(container, "container port")?)
            },
            None => Publish::new(port(rest, "container port")?),
        };
        if let Some(ip) = ip {
            p.host_ip = ip
                .parse()
                .map_err(|_| bad(&format!("{ip:?} is not an IP address")))?;
        }
        Ok(p)
    }
}

impl std::fmt::Display for Publish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.host_ip {
            IpAddr::V6(ip) => write!(f, "[{ip}]")?,
            IpAddr::V4(ip) => write!(f, "{ip}")?,
        }
        write!(f, ":{}:{}", self.host_port, self.container_port)
    }
}

/// Limits beyond cpu, memory and pids (see [`Spec::shm_size`], [`Spec::cpuset`],
/// [`Spec::ulimit`], [`Spec::disk`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Limits {
    pub shm_size: Option<u64>,
    pub cpuset: Option<String>,
    pub ulimits: std::collections::BTreeMap<String, (i64, i64)>,
    pub disk: Option<u64>,
}

/// Whether `name` is a volume name both engines accept (`[A-Za-z0-9][A-Za-z0-9_.-]+`).
pub(crate) fn valid_volume_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() >= 2
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The message for an unusable volume name.
pub(crate) fn check_volume_name(name: &str) -> Result<()> {
    if valid_volume_name(name) {
        return Ok(());
    }
    Err(Error::invalid_argument(format!(
        "invalid volume name {name:?}: a volume name is at least 2 characters, starts with a \
         letter or digit and contains only letters, digits, '_', '.' and '-'"
    )))
}

impl Spec {
    /// Publishes TCP port `container_port` on a free port of the host's `127.0.0.1`, chosen by
    /// the engine; [`crate::Instance::port`] says which.
    pub fn publish(self, container_port: u16) -> Spec {
        self.publish_port(Publish::new(container_port))
    }

    /// Publishes TCP port `container_port` on `host_ip:host_port` (`host_port` 0: any free port;
    /// `0.0.0.0` makes it reachable from other machines).
    pub fn publish_on(self, host_ip: IpAddr, host_port: u16, container_port: u16) -> Spec {
        self.publish_port(Publish {
            host_ip,
            host_port,
            container_port,
        })
    }

    /// Publishes a port as described by `publish` (see [`Publish::parse`]).
    pub fn publish_port(mut self, publish: Publish) -> Spec {
        self.ports.push(publish);
        self
    }

    /// The published ports.
    pub fn get_ports(&self) -> &[Publish] {
        &self.ports
    }

    /// Mounts the engine's named volume `name` at `target`, read-write. headjack creates it when
    /// missing (labelled `io.headjack.volume`, see [`crate::client::Client::volumes`]); it outlives the
    /// instance and is only removed by [`crate::client::Client::remove_volume`] (or by
    /// [`crate::client::Client::sweep`] once the expiry given to [`crate::client::Client::create_volume`]
    /// passed).
    pub fn volume(self, name: impl Into<String>, target: impl Into<String>) -> Spec {
        self.mount(Mount::volume(name, target))
    }

    /// Like [`Spec::volume`], mounted read-only.
    pub fn volume_read_only(self, name: impl Into<String>, target: impl Into<String>) -> Spec {
        self.mount(Mount::volume(name, target).read_only())
    }

    /// Size of the instance's `/dev/shm` in bytes (the engines' default is 64 MiB).
    pub fn shm_size(mut self, bytes: u64) -> Spec {
        self.limits.shm_size = Some(bytes);
        self
    }

    /// The CPUs the instance may run on, as the kernel writes them: `0-3`, `0,2`, `1`.
    pub fn cpuset(mut self, cpus: impl Into<String>) -> Spec {
        self.limits.cpuset = Some(cpus.into());
        self
    }

    /// A resource limit of every process in the instance (`nofile`, `nproc`, `core`, `stack`,
    /// `memlock`, `fsize`, `cpu`, …, as `ulimit` names them), soft and hard; `-1` is unlimited.
    pub fn ulimit(mut self, name: impl Into<String>, soft: i64, hard: i64) -> Spec {
        self.limits.ulimits.insert(name.into(), (soft, hard));
        self
    }

    /// The size of the instance's writable root filesystem in bytes (the engine's
    /// `--storage-opt size`). Only some storage drivers can (overlay on xfs with `pquota`,
    /// btrfs, zfs, devicemapper); elsewhere `spawn` fails with [`crate::error::ErrorKind::Unsupported`]
    /// naming the engine's storage driver.
    pub fn disk(mut self, bytes: u64) -> Spec {
        self.limits.disk = Some(bytes);
        self
    }

    /// The engine's form of the extra limits.
    pub(crate) fn extra_limits(&self) -> crate::engine::ExtraLimits {
        let l = &self.limits;
        crate::engine::ExtraLimits {
            shm_size: l.shm_size.map(|s| s.min(i64::MAX as u64) as i64),
            cpuset: l.cpuset.clone(),
            ulimits: l
                .ulimits
                .iter()
                .map(|(k, (soft, hard))| (k.clone(), *soft, *hard))
                .collect(),
            disk: l.disk.map(|d| d.to_string()),
        }
    }

    /// The names of the named volumes the spec mounts.
    pub(crate) fn volume_names(&self) -> Vec<&str> {
        self.mounts
            .iter()
            .filter_map(|m| match &m.kind {
                MountKind::Volume(name) => Some(name.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Checks the sandbox options (ports, volume names, limits).
    pub(crate) fn validate_sandbox(&self) -> Result<()> {
        self.validate_limits()?;
        for name in self.volume_names() {
            check_volume_name(name)?;
        }
        let mut container_ports = HashSet::new();
        let mut host_ports = HashSet::new();
        for p in &self.ports {
            if p.container_port == 0 {
                return Err(Error::invalid_argument(
                    "cannot publish container port 0: name the port the server in the container \
                     listens on (1-65535)",
                ));
            }
            if !container_ports.insert(p.container_port) {
                return Err(Error::invalid_argument(format!(
                    "container port {} is published twice: publish each port once",
                    p.container_port
                )));
            }
            if p.host_port != 0 && !host_ports.insert((p.host_ip, p.host_port)) {
                return Err(Error::invalid_argument(format!(
                    "host port {}:{} is asked for twice: give each published port its own host \
                     port (or 0 to let the engine choose)",
                    p.host_ip, p.host_port
                )));
            }
        }
        if !self.ports.is_empty() {
            let no_network = matches!(
                (&self.network, self.hardened),
                (Some(Network::None), _) | (None, true)
            );
            if no_network {
                return Err(Error::invalid_argument(format!(
                    "port {} is published but the instance has no network{}: publishing needs \
                     one (set network to bridge)",
                    self.ports[0].container_port,
                    if self.hardened && self.network.is_none() {
                        " (the hardened preset turns it off)"
                    } else {
                        ""
                    }
                )));
            }
        }
        Ok(())
    }
}

/// The resource names `ulimit` takes (the engines' list).
pub const ULIMITS: [&str; 15] = [
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

impl Spec {
    fn validate_limits(&self) -> Result<()> {
        let l = &self.limits;
        if let Some(s) = l.shm_size
            && !(4096..=i64::MAX as u64).contains(&s)
        {
            return Err(Error::invalid_argument(format!(
                "shm size {s} bytes: it must be between 4096 and {} bytes",
                i64::MAX
            )));
        }
        if let Some(c) = &l.cpuset {
            let ok = !c.is_empty()
                && c.split(',').all(|part| {
                    let mut ends = part.splitn(2, '-');
                    let a = ends.next().and_then(|a| a.parse::<u32>().ok());
                    match (a, ends.next()) {
                        (Some(_), None) => true,
                        (Some(a), Some(b)) => b.parse::<u32>().is_ok_and(|b| a <= b),
                        _ => false,
                    }
                });
            if !ok {
                return Err(Error::invalid_argument(format!(
                    "cpuset {c:?}: list CPUs by number and range, e.g. \"0-3\" or \"0,2\""
                )));
            }
        }
        for (name, (soft, hard)) in &l.ulimits {
            if !ULIMITS.contains(&name.as_str()) {
                return Err(Error::invalid_argument(format!(
                    "unknown ulimit {name:?}: use one of {}",
                    ULIMITS.join(", ")
                )));
            }
            let unlimited = |v: i64| v == -1;
            if *soft < -1 || *hard < -1 || (!unlimited(*hard) && (unlimited(*soft) || soft > hard))
            {
                return Err(Error::invalid_argument(format!(
                    "ulimit {name}: soft {soft} and hard {hard} must be -1 (unlimited) or at                      least 0, with soft at most hard"
                )));
            }
        }
        if let Some(d) = l.disk
            && !((1 << 20)..=i64::MAX as u64).contains(&d)
        {
            return Err(Error::invalid_argument(format!(
                "disk size {d} bytes: it must be at least 1 MiB ({} bytes)",
                1 << 20
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn publish_parses_the_docker_forms() {
        let p = Publish::parse("8080").unwrap();
        assert_eq!(p, Publish::new(8080));
        let p = Publish::parse("9000:8080").unwrap();
        assert_eq!((p.host_port, p.container_port), (9000, 8080));
        assert_eq!(p.host_ip.to_string(), "127.0.0.1");
        let p = Publish::parse("0.0.0.0:9000:8080").unwrap();
        assert_eq!(p.host_ip.to_string(), "0.0.0.0");
        let p = Publish::parse("[::1]:0:80").unwrap();
        assert_eq!(p.host_ip.to_string(), "::1");
        assert_eq!(p.to_string(), "[::1]:0:80");
        for bad in ["", "x", "70000", "1:2:3:4", "nope:1:2", "[::1:1:2"] {
            let e = Publish::parse(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad}");
            assert!(e.message().contains(bad), "{e}");
        }
    }

    #[test]
    fn bad_ports_and_volume_names_are_refused() {
        let e = Spec::new().publish(0).validate().unwrap_err();
        assert!(e.message().contains("port 0"), "{e}");
        let e = Spec::new().publish(80).publish(80).validate().unwrap_err();
        assert!(e.message().contains("twice"), "{e}");
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let e = Spec::new()
            .publish_on(ip, 9000, 80)
            .publish_on(ip, 9000, 81)
            .validate()
            .unwrap_err();
        assert!(e.message().contains("9000"), "{e}");
        let e = Spec::new()
            .publish(80)
            .network(Network::None)
            .validate()
            .unwrap_err();
        assert!(e.message().contains("no network"), "{e}");
        let e = Spec::new()
            .publish(80)
            .hardened(true)
            .validate()
            .unwrap_err();
        assert!(e.message().contains("hardened"), "{e}");
        Spec::new()
            .publish(80)
            .hardened(true)
            .network(Network::Bridge)
            .validate()
            .unwrap();
        for bad in ["a", "-x", "has space", "a/b", "ü-vol", ""] {
            let e = Spec::new().volume(bad, "/data").validate().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument);
            assert!(e.message().contains("invalid volume name"), "{e}");
        }
        for (bad, what) in [
            (Spec::new().shm_size(1), "shm size"),
            (Spec::new().cpuset("0-"), "cpuset"),
            (Spec::new().cpuset("3-1"), "cpuset"),
            (Spec::new().cpuset(""), "cpuset"),
            (Spec::new().ulimit("files", 1, 1), "unknown ulimit"),
            (Spec::new().ulimit("nofile", 10, 5), "soft"),
            (Spec::new().ulimit("nofile", -1, 5), "soft"),
            (Spec::new().ulimit("nofile", -2, -1), "soft"),
            (Spec::new().disk(10), "disk size"),
        ] {
            let e = bad.validate().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument);
            assert!(e.message().contains(what), "{what}: {e}");
        }
        Spec::new()
            .shm_size(1 << 20)
            .cpuset("0")
            .cpuset("0-1,3")
            .ulimit("nofile", 100, 200)
            .ulimit("core", 0, -1)
            .ulimit("stack", -1, -1)
            .disk(1 << 30)
            .validate()
            .unwrap();
        Spec::new()
            .volume("my_vol-1.x", "/data")
            .volume_read_only("ab", "/ro")
            .publish(80)
            .publish(81)
            .validate()
            .unwrap();
    }
}
