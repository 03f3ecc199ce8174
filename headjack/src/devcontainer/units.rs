//! Sizes and ports as written in definitions: `"4gb"`, `"512m"`, `"127.0.0.1:8080:80/udp"`.

use std::fmt;

/// Parses a size: a number (decimals allowed) and an optional unit `b`, `k`, `m`, `g`, `t`,
/// `p`, each optionally followed by `b` or `ib`, in any case (`4gb`, `4G`, `1.5GiB`, `512m`).
/// Units are binary (1k = 1024), as in `docker run --memory` and the devcontainers CLI's
/// `hostRequirements`. A bare number is bytes.
///
/// # Errors
///
/// A message saying what is wrong, for an empty string, an unknown unit, a zero size, or a
/// size that does not fit in 64 bits.
pub(crate) fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim_start().to_ascii_lowercase();
    let bad = || {
        format!(
            "{s:?} is not a size: write a number with an optional unit, like \"512mb\" or \"4gb\""
        )
    };
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err(bad());
    }
    let shift = match unit.as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        "p" | "pb" | "pib" => 50,
        _ => return Err(bad()),
    };
    let bytes = match number.split_once('.') {
        None => number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(1u64 << shift)),
        Some((whole, frac)) if !frac.contains('.') => {
            let value: f64 = format!("{whole}.{frac}").parse().map_err(|_| bad())?;
            let bytes = (value * (1u64 << shift) as f64).floor();
            (bytes < u64::MAX as f64).then_some(bytes as u64)
        }
        Some(_) => return Err(bad()),
    };
    match bytes {
        None => Err(format!("{s:?} is too large")),
        Some(0) => Err(format!("{s:?} is zero: give a size above zero")),
        Some(b) => Ok(b),
    }
}

/// The transport of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Protocol {
    /// TCP (the default).
    #[default]
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        })
    }
}

/// A container port to publish on the host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortPublish {
    /// The port inside the container.
    pub container_port: u16,
    /// Its transport.
    pub protocol: Protocol,
    /// The host address to bind; `None`: all addresses (the engine's default).
    pub host_ip: Option<String>,
    /// The host port; `None`: one the engine picks (read it back from the container).
    pub host_port: Option<u16>,
}

/// What a `-p` string turned into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Publish {
    /// One port.
    One(PortPublish),
    /// A range (`8000-8010:8000-8010`): valid for docker, not supported here.
    Range,
}

/// Parses `docker run -p` syntax: `[ip:][host_port:]container_port[/protocol]`, where `ip`
/// may be `[v6]`. With no host port, the host port is the container port when `same_port`
/// (the legacy `appPort` meaning), else left to the engine.
///
/// # Errors
///
/// A message naming the part that is not a port, address or protocol.
pub(crate) fn parse_publish(s: &str, same_port: bool) -> Result<Publish, String> {
    let bad = |why: &str| {
        format!(
            "{s:?} is not a port mapping ({why}): write [ip:][host_port:]container_port[/tcp|udp]"
        )
    };
    let (spec, protocol) = match s.rsplit_once('/') {
        Some((spec, proto)) => {
            let protocol = match proto.to_ascii_lowercase().as_str() {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                "sctp" => Protocol::Sctp,
                _ => return Err(bad("unknown protocol")),
            };
            (spec, protocol)
        }
        None => (s, Protocol::Tcp),
    };
    // Split off the container port, then the host port, leaving the address (which may
    // itself hold colons when written as [v6]).
    let (rest, container) = match spec.rsplit_once(':') {
        Some((rest, container)) => (Some(rest), container),
        None => (None, spec),
    };
    let (ip, host) = match rest {
        None => (None, None),
        Some(rest) => match rest.rsplit_once(':') {
            Some((ip, host)) if !ip.ends_with(':') => (Some(ip), Some(host)),
            _ if rest.starts_with('[') => return Err(bad("an address needs a port after it")),
            _ => (None, Some(rest)),
        },
    };
    if container.contains('-') || host.is_some_and(|h| h.contains('-')) {
        return Ok(Publish::Range);
    }
    let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p > 0);
    let container_port =
        port(container).ok_or_else(|| bad("the container port is not a number from 1 to 65535"))?;
    let host_port = match host {
        None | Some("") => same_port.then_some(container_port),
        Some(h) => {
            Some(port(h).ok_or_else(|| bad("the host port is not a number from 1 to 65535"))?)
        }
    };
    let host_ip = match ip {
        None | Some("") => None,
        Some(ip) => {
            let bare = ip
                .strip_prefix('[')
                .and_then(|i| i.strip_suffix(']'))
                .unwrap_or(ip);
            if bare.parse::<std::net::IpAddr>().is_err() {
                return Err(bad("the host address is not an IP address"));
            }
            Some(bare.to_string())
        }
    };
    Ok(Publish::One(PortPublish {
        container_port,
        protocol,
        host_ip,
        host_port,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sizes() {
        let ok = [
            ("1", 1),
            ("4gb", 4 << 30),
            ("4GB", 4 << 30),
            ("4g", 4 << 30),
            ("4GiB", 4 << 30),
            ("512m", 512 << 20),
            ("512 MB", 512 << 20),
            ("1.5g", 3 << 29),
            ("2tb", 2 << 40),
            ("100kb", 102_400),
            ("100b", 100),
            (" 8gb ", 8 << 30),
        ];
        for (s, want) in ok {
            assert_eq!(parse_bytes(s), Ok(want), "{s}");
        }
        let bad = [
            ("", "is not a size"),
            ("gb", "is not a size"),
            ("4 gigs", "is not a size"),
            ("4xb", "is not a size"),
            ("-1gb", "is not a size"),
            (".5g", "is not a size"),
            ("5.g", "is not a size"),
            ("1.2.3g", "is not a size"),
            ("0", "is zero"),
            ("0gb", "is zero"),
            ("99999999999pb", "too large"),
            ("99999999999999999999999", "too large"),
        ];
        for (s, want) in bad {
            let e = parse_bytes(s).unwrap_err();
            assert!(e.contains(want), "{s}: {e}");
        }
    }

    fn one(s: &str, same: bool) -> PortPublish {
        match parse_publish(s, same).unwrap() {
            Publish::One(p) => p,
            Publish::Range => panic!("{s}: range"),
        }
    }

    #[test]
    fn publish_strings() {
        let p = |c, proto, ip: Option<&str>, h| PortPublish {
            container_port: c,
            protocol: proto,
            host_ip: ip.map(String::from),
            host_port: h,
        };
        use Protocol::*;
        let cases = [
            ("80", true, p(80, Tcp, None, Some(80))),
            ("80", false, p(80, Tcp, None, None)),
            ("8080:80", true, p(80, Tcp, None, Some(8080))),
            (
                "127.0.0.1:8080:80",
                true,
                p(80, Tcp, Some("127.0.0.1"), Some(8080)),
            ),
            (
                "127.0.0.1::80",
                true,
                p(80, Tcp, Some("127.0.0.1"), Some(80)),
            ),
            ("127.0.0.1::80", false, p(80, Tcp, Some("127.0.0.1"), None)),
            (
                "[::1]:8080:80/udp",
                true,
                p(80, Udp, Some("::1"), Some(8080)),
            ),
            ("53/UDP", true, p(53, Udp, None, Some(53))),
            ("9/sctp", false, p(9, Sctp, None, None)),
        ];
        for (s, same, want) in cases {
            assert_eq!(one(s, same), want, "{s}");
        }
        assert_eq!(
            parse_publish("8000-8010:8000-8010", true),
            Ok(Publish::Range)
        );
        let bad = [
            ("", "container port"),
            ("x", "container port"),
            ("0", "container port"),
            ("70000", "container port"),
            ("x:80", "host port"),
            ("1.2.3:80:80", "not an IP address"),
            ("80/icmp", "unknown protocol"),
            ("[::1]:80", "needs a port"),
        ];
        for (s, want) in bad {
            let e = parse_publish(s, true).unwrap_err();
            assert!(e.contains(want), "{s}: {e}");
        }
    }

    proptest! {
        #[test]
        fn sizes_never_panic(s in "([0-9.a-zA-Z ]|\\PC){0,24}") {
            let _ = parse_bytes(&s);
        }

        #[test]
        fn whole_sizes_round_trip(n in 1u64..1_000_000, unit in prop::sample::select(vec![("k", 10), ("mb", 20), ("GiB", 30)])) {
            prop_assert_eq!(parse_bytes(&format!("{n}{}", unit.0)), Ok(n << unit.1));
        }

        #[test]
        fn publish_never_panics(s in "([0-9a-f:\\[\\]./a-z-]|\\PC){0,30}") {
            let _ = parse_publish(&s, true);
        }
    }
}
