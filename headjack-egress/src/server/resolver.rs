//! Upstream name resolution for the proxy: `/etc/hosts`, then the container's own DNS servers
//! (`/etc/resolv.conf`: the engine's embedded DNS on Docker, aardvark-dns on Podman). No C
//! library resolver: the binary is static.

use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

use super::Config;
use crate::dns;

/// How long a read of resolv.conf is reused (engines rewrite it when networks are connected).
const REREAD: Duration = Duration::from_secs(2);
/// The largest DNS message over UDP read from upstream.
const MAX_UDP: usize = 4096;

pub(crate) struct Resolver {
    fixed: Option<Vec<SocketAddr>>,
    resolv_conf: PathBuf,
    hosts_file: PathBuf,
    timeout: Duration,
    cache: Mutex<Option<(Instant, Vec<SocketAddr>)>>,
}

impl Resolver {
    pub(crate) fn new(config: &Config) -> Self {
        Resolver {
            fixed: config.upstream_dns.clone(),
            resolv_conf: config.resolv_conf.clone(),
            hosts_file: config.hosts_file.clone(),
            timeout: config.limits.dns_timeout,
            cache: Mutex::new(None),
        }
    }

    /// The upstream DNS servers, in order.
    pub(crate) fn servers(&self) -> Vec<SocketAddr> {
        if let Some(f) = &self.fixed {
            return f.clone();
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, s)) = cache.as_ref()
            && at.elapsed() < REREAD
        {
            return s.clone();
        }
        let text = std::fs::read_to_string(&self.resolv_conf).unwrap_or_default();
        let servers: Vec<SocketAddr> = parse_resolv_conf(&text)
            .into_iter()
            .map(|ip| SocketAddr::new(ip, 53))
            .collect();
        *cache = Some((Instant::now(), servers.clone()));
        servers
    }

    /// The addresses of `name`, IPv4 first.
    ///
    /// A server that says the name does not exist does not end the search: on Podman each
    /// network's aardvark-dns knows only some names, and the proxy's resolv.conf lists several.
    pub(crate) async fn lookup(&self, name: &str) -> Result<Vec<IpAddr>, String> {
        let hosts = std::fs::read_to_string(&self.hosts_file).unwrap_or_default();
        let from_hosts = parse_hosts(&hosts, name);
        if !from_hosts.is_empty() {
            return Ok(from_hosts);
        }
        let servers = self.servers();
        if servers.is_empty() {
            return Err(format!(
                "cannot resolve `{name}`: no nameserver in {}",
                self.resolv_conf.display()
            ));
        }
        let mut failures = Vec::new();
        for server in servers {
            let (a, aaaa) = tokio::join!(
                self.query(server, name, dns::TYPE_A),
                self.query(server, name, dns::TYPE_AAAA)
            );
            let mut addrs = Vec::new();
            for ans in [&a, &aaaa].into_iter().flatten() {
                addrs.extend(ans.addrs.iter().copied());
            }
            if !addrs.is_empty() {
                addrs.sort_by_key(|a| a.is_ipv6());
                addrs.dedup();
                return Ok(addrs);
            }
            failures.push(match a {
                Ok(ans) if ans.rcode == dns::RCODE_NXDOMAIN => format!("{server}: no such name"),
                Ok(ans) if ans.rcode == dns::RCODE_NOERROR => format!("{server}: no address"),
                Ok(ans) => format!("{server}: response code {}", ans.rcode),
                Err(e) => format!("{server}: {e}"),
            });
        }
        Err(format!("cannot resolve `{name}` ({})", failures.join("; ")))
    }

    async fn query(&self, server: SocketAddr, name: &str, qtype: u16) -> io::Result<dns::Answer> {
        let id = random_u16();
        let q = dns::build_query(id, name, qtype)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let check = |reply: &[u8]| dns::parse_answer(reply, id, name, qtype).ok();
        let ans = self.exchange_udp(server, &q, check).await?;
        if !ans.truncated {
            return Ok(ans);
        }
        let reply = self.exchange_tcp(server, &q).await?;
        check(&reply)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed answer over TCP"))
    }

    /// Forwards a client's query (as received) and returns the best reply: the first that carries
    /// answers, else the last one received. Over UDP first; a truncated reply is fetched again
    /// over TCP when the client asked over TCP (a UDP client retries over TCP itself).
    pub(crate) async fn forward(&self, query: &[u8], tcp: bool) -> Option<Vec<u8>> {
        let id = [query[0], query[1]];
        let mut fallback = None;
        for server in self.servers() {
            let check =
                |r: &[u8]| (r.len() >= 12 && r[..2] == id && r[2] & 0x80 != 0).then(|| r.to_vec());
            let mut reply = self.exchange_udp(server, query, check).await.ok();
            if tcp && reply.as_ref().is_none_or(|r| r[2] & 0x02 != 0) {
                reply = self.exchange_tcp(server, query).await.ok().or(reply);
            }
            let Some(reply) = reply else { continue };
            if reply.len() >= 12 && u16::from_be_bytes([reply[6], reply[7]]) > 0 {
                return Some(reply);
            }
            fallback = Some(reply);
        }
        fallback
    }

    /// Sends `msg` over UDP and waits for a reply that `accept` takes (others are ignored: a stray
    /// or spoofed datagram does not end the wait).
    async fn exchange_udp<T, F>(&self, server: SocketAddr, msg: &[u8], accept: F) -> io::Result<T>
    where
        F: Fn(&[u8]) -> Option<T>,
    {
        let bind: SocketAddr = if server.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let sock = UdpSocket::bind(bind).await?;
        sock.connect(server).await?;
        sock.send(msg).await?;
        let mut buf = vec![0u8; MAX_UDP];
        let wait = async {
            loop {
                let n = sock.recv(&mut buf).await?;
                if let Some(t) = accept(&buf[..n]) {
                    return Ok(t);
                }
            }
        };
        timeout(self.timeout, wait)
            .await
            .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "no answer")))
    }

    async fn exchange_tcp(&self, server: SocketAddr, msg: &[u8]) -> io::Result<Vec<u8>> {
        let run = async {
            let mut s = TcpStream::connect(server).await?;
            let mut framed = (msg.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(msg);
            s.write_all(&framed).await?;
            let len = usize::from(s.read_u16().await?);
            let mut reply = vec![0u8; len];
            s.read_exact(&mut reply).await?;
            Ok(reply)
        };
        timeout(self.timeout * 2, run).await.unwrap_or_else(|_| {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no answer over TCP",
            ))
        })
    }
}

/// The `nameserver` addresses of a resolv.conf.
pub(crate) fn parse_resolv_conf(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            (f.next()? == "nameserver")
                .then(|| f.next()?.split('%').next()?.parse().ok())
                .flatten()
        })
        .collect()
}

/// The addresses /etc/hosts gives `name` (case-insensitive).
pub(crate) fn parse_hosts(text: &str, name: &str) -> Vec<IpAddr> {
    let name = name.strip_suffix('.').unwrap_or(name);
    text.lines()
        .filter_map(|l| {
            let l = l.split('#').next()?;
            let mut f = l.split_whitespace();
            let ip: IpAddr = f.next()?.parse().ok()?;
            f.any(|n| n.eq_ignore_ascii_case(name)).then_some(ip)
        })
        .collect()
}

/// A DNS message id that another container on the network cannot predict.
fn random_u16() -> u16 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish() as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_resolv_conf_and_hosts() {
        let conf = "search dns.podman\n# comment\nnameserver 10.89.1.1\nnameserver fe80::1%eth0\nnameserver bogus\noptions ndots:0\n";
        assert_eq!(
            parse_resolv_conf(conf),
            [
                "10.89.1.1".parse::<IpAddr>().unwrap(),
                "fe80::1".parse().unwrap()
            ]
        );
        let hosts = "127.0.0.1\tlocalhost\n::1 localhost ip6-localhost\n172.18.0.3\tabc123 # the container\n# 1.2.3.4 commented\n";
        assert_eq!(
            parse_hosts(hosts, "LOCALHOST."),
            [
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert_eq!(
            parse_hosts(hosts, "abc123"),
            ["172.18.0.3".parse::<IpAddr>().unwrap()]
        );
        assert!(parse_hosts(hosts, "commented").is_empty());
    }
}
