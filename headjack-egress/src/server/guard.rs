//! Addresses no instance may reach through the proxy, whatever its policy says: the proxy itself,
//! loopback and link-local (cloud metadata) addresses, and the internal networks of other
//! instances. The proxy sits on every instance's internal network, so without this guard one
//! instance could CONNECT to another.
//!
//! Internal networks are recognised from the kernel's tables: the interfaces that carry a default
//! route lead outside; the directly connected networks of every other interface are internal
//! (engines give `--internal` networks no gateway). The tables are re-read every second, since the
//! engine connects networks to the running proxy as instances are spawned.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::policy::{IpNet, normalize_ip};

const REFRESH: Duration = Duration::from_secs(1);

pub(crate) struct Guard {
    proc_net: PathBuf,
    allow_loopback: bool,
    cache: Mutex<Option<(Instant, Arc<Tables>)>>,
}

/// What the kernel tables say.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Tables {
    /// Networks behind interfaces with no default route.
    pub(crate) inside: Vec<IpNet>,
    /// The proxy's own addresses.
    pub(crate) local: Vec<IpAddr>,
}

/// One route: interface, destination network, whether it goes through a gateway.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Route {
    iface: String,
    net: IpNet,
    via_gateway: bool,
}

impl Guard {
    pub(crate) fn new(proc_net: PathBuf, allow_loopback: bool) -> Self {
        Guard {
            proc_net,
            allow_loopback,
            cache: Mutex::new(None),
        }
    }

    /// `Err(why)` when no instance may reach `ip`.
    pub(crate) fn check(&self, ip: IpAddr) -> Result<(), &'static str> {
        let ip = normalize_ip(ip);
        if ip.is_unspecified() || ip.is_multicast() || ip == IpAddr::V4(Ipv4Addr::BROADCAST) {
            return Err("not a unicast address");
        }
        if ip.is_loopback() {
            return if self.allow_loopback {
                Ok(())
            } else {
                Err("a loopback address")
            };
        }
        let link_local = match ip {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
        };
        if link_local {
            return Err("a link-local address (where cloud metadata services answer)");
        }
        let tables = self.tables();
        if tables.local.contains(&ip) {
            return Err("an address of the egress proxy itself");
        }
        if tables.inside.iter().any(|n| n.contains(ip)) {
            return Err("on an internal network of the instances behind the proxy");
        }
        Ok(())
    }

    fn tables(&self) -> Arc<Tables> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, t)) = cache.as_ref()
            && at.elapsed() < REFRESH
        {
            return t.clone();
        }
        let read = |f: &str| std::fs::read_to_string(self.proc_net.join(f)).unwrap_or_default();
        let mut routes = parse_routes_v4(&read("route"));
        routes.extend(parse_routes_v6(&read("ipv6_route")));
        let mut local = parse_local_v4(&read("fib_trie"));
        local.extend(parse_local_v6(&read("if_inet6")));
        let t = Arc::new(tables(&routes, local));
        *cache = Some((Instant::now(), t.clone()));
        t
    }
}

/// Internal networks: the directly connected routes of interfaces without a default route.
pub(crate) fn tables(routes: &[Route], local: Vec<IpAddr>) -> Tables {
    let outside: Vec<&str> = routes
        .iter()
        .filter(|r| r.net.prefix() == 0)
        .map(|r| r.iface.as_str())
        .collect();
    let inside = routes
        .iter()
        .filter(|r| {
            r.net.prefix() > 0
                && !r.via_gateway
                && r.iface != "lo"
                && !outside.contains(&r.iface.as_str())
        })
        .filter(|r| {
            !r.net.addr().is_multicast()
                && !matches!(r.net.addr(), IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
        })
        .map(|r| r.net)
        .collect();
    Tables { inside, local }
}

/// `/proc/net/route`: addresses in the kernel's byte order, printed as hex.
pub(crate) fn parse_routes_v4(text: &str) -> Vec<Route> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let hex = |s: &str| {
                u32::from_str_radix(s, 16)
                    .ok()
                    .map(|v| Ipv4Addr::from(v.to_ne_bytes()))
            };
            let (iface, dest, gw, mask) = (
                f.first()?,
                hex(f.get(1)?)?,
                hex(f.get(2)?)?,
                hex(f.get(7)?)?,
            );
            let prefix = u32::from(mask).count_ones() as u8;
            Some(Route {
                iface: iface.to_string(),
                net: IpNet::new(IpAddr::V4(dest), prefix),
                via_gateway: !gw.is_unspecified(),
            })
        })
        .collect()
}

/// `/proc/net/ipv6_route`: dest, prefix, src, src prefix, next hop, metric, refs, use, flags, iface.
pub(crate) fn parse_routes_v6(text: &str) -> Vec<Route> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let dest = parse_v6_hex(f.first()?)?;
            let prefix = u8::from_str_radix(f.get(1)?, 16).ok()?;
            let hop = parse_v6_hex(f.get(4)?)?;
            let iface = f.get(9)?;
            Some(Route {
                iface: iface.to_string(),
                net: IpNet::new(IpAddr::V6(dest), prefix),
                via_gateway: !hop.is_unspecified(),
            })
        })
        .collect()
}

/// The `/32 host LOCAL` entries of `/proc/net/fib_trie`: the proxy's own IPv4 addresses.
pub(crate) fn parse_local_v4(text: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let t = line.trim_start_matches([' ', '|', '+', '-']).trim();
        if let Ok(ip) = t.parse::<Ipv4Addr>() {
            last = Some(ip);
        } else if t.starts_with("/32 host LOCAL")
            && let Some(ip) = last
            && !out.contains(&IpAddr::V4(ip))
        {
            out.push(IpAddr::V4(ip));
        }
    }
    out
}

/// `/proc/net/if_inet6`: the proxy's own IPv6 addresses.
pub(crate) fn parse_local_v6(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| parse_v6_hex(l.split_whitespace().next()?))
        .map(IpAddr::V6)
        .collect()
}

fn parse_v6_hex(s: &str) -> Option<Ipv6Addr> {
    if s.len() != 32 {
        return None;
    }
    u128::from_str_radix(s, 16).ok().map(Ipv6Addr::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Docker: the proxy on an outside network (eth0, default route) and an internal one (eth1).
    const ROUTE: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010012AC\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000012AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
eth1\t000013AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
";
    const IPV6_ROUTE: &str = "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth1
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth1
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo
";
    const FIB_TRIE: &str = "Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 172.18.0.0/16 2 0 2
        |-- 172.18.0.3
           /32 host LOCAL
     |-- 172.19.0.2
        /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
     |-- 172.18.0.3
        /32 host LOCAL
";
    const IF_INET6: &str = "00000000000000000000000000000001 01 80 10 80       lo
fd000000000000000000000000000002 03 40 00 00     eth1
";

    #[test]
    fn reads_docker_tables() {
        let mut routes = parse_routes_v4(ROUTE);
        assert_eq!(routes.len(), 3);
        assert_eq!(routes[1].net.to_string(), "172.18.0.0/16");
        routes.extend(parse_routes_v6(IPV6_ROUTE));
        let mut local = parse_local_v4(FIB_TRIE);
        assert_eq!(
            local,
            [
                "172.18.0.3".parse::<IpAddr>().unwrap(),
                "172.19.0.2".parse().unwrap()
            ]
        );
        local.extend(parse_local_v6(IF_INET6));
        let t = tables(&routes, local);
        assert_eq!(
            t.inside.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["172.19.0.0/16", "fd00::/64"]
        );
        assert_eq!(t.local.len(), 4);
        assert_eq!(parse_routes_v4("garbage\nx y z"), vec![]);
        assert_eq!(parse_routes_v6("zz 40"), vec![]);
    }

    #[test]
    fn checks_addresses() {
        let dir = std::env::temp_dir().join(format!("hj-egress-guard-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (f, text) in [
            ("route", ROUTE),
            ("ipv6_route", IPV6_ROUTE),
            ("fib_trie", FIB_TRIE),
            ("if_inet6", IF_INET6),
        ] {
            std::fs::write(dir.join(f), text).unwrap();
        }
        let g = Guard::new(dir.clone(), false);
        let table = [
            ("172.18.0.9", Ok(())),
            ("93.184.216.34", Ok(())),
            ("172.19.0.5", Err("internal network")),
            ("fd00::9", Err("internal network")),
            ("172.18.0.3", Err("proxy itself")),
            ("127.0.0.1", Err("loopback")),
            ("::1", Err("loopback")),
            ("169.254.169.254", Err("link-local")),
            ("fe80::1", Err("link-local")),
            ("::ffff:169.254.169.254", Err("link-local")),
            ("0.0.0.0", Err("unicast")),
            ("224.0.0.1", Err("unicast")),
            ("255.255.255.255", Err("unicast")),
        ];
        for (ip, want) in table {
            let got = g.check(ip.parse().unwrap());
            match want {
                Ok(()) => assert_eq!(got, Ok(()), "{ip}"),
                Err(why) => assert!(got.is_err_and(|e| e.contains(why)), "{ip}: {got:?}"),
            }
        }
        assert_eq!(
            Guard::new(dir.clone(), true).check("127.0.0.1".parse().unwrap()),
            Ok(())
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
