//! The DNS server instances use: A/AAAA for names their policy allows (forwarded to the proxy's
//! own resolvers), NXDOMAIN for names it denies, REFUSED for unknown sources.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::time::timeout;

use super::state::State;
use crate::control::Via;
use crate::dns;
use crate::policy::{Host, normalize_ip};

/// A DNS-over-TCP connection with no query for this long is closed.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// The largest query read over UDP (EDNS clients send a few hundred bytes at most).
const MAX_UDP_QUERY: usize = 4096;

pub(crate) async fn serve_udp(state: Arc<State>, sock: UdpSocket) -> io::Result<()> {
    let sock = Arc::new(sock);
    let permits = Arc::new(Semaphore::new(state.config.limits.max_dns_inflight));
    let mut buf = vec![0u8; MAX_UDP_QUERY];
    loop {
        let (n, peer) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "receiving a DNS datagram failed");
                continue;
            }
        };
        // Over the bound the query is dropped; the client's resolver retries.
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            continue;
        };
        let (state, sock, msg) = (state.clone(), sock.clone(), buf[..n].to_vec());
        tokio::spawn(async move {
            if let Some(reply) = answer(&state, &msg, peer.ip(), false).await {
                let _ = sock.send_to(&reply, peer).await;
            }
            drop(permit);
        });
    }
}

pub(crate) async fn serve_tcp(state: Arc<State>, listener: TcpListener) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(state.config.limits.max_dns_tcp));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a DNS connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let _ = serve_tcp_conn(&state, stream, peer.ip()).await;
            drop(permit);
        });
    }
}

async fn serve_tcp_conn(state: &State, mut stream: TcpStream, peer: IpAddr) -> io::Result<()> {
    loop {
        let Ok(len) = timeout(TCP_IDLE, stream.read_u16()).await else {
            return Ok(());
        };
        let mut msg = vec![0u8; usize::from(len?)];
        timeout(TCP_IDLE, stream.read_exact(&mut msg))
            .await
            .map_err(|_| io::ErrorKind::TimedOut)??;
        let Some(reply) = answer(state, &msg, peer, true).await else {
            return Ok(());
        };
        let mut out = (reply.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(&reply);
        stream.write_all(&out).await?;
    }
}

/// The reply to one query from `peer`; `None` drops it.
async fn answer(state: &State, msg: &[u8], peer: IpAddr, tcp: bool) -> Option<Vec<u8>> {
    let q = match dns::parse_query(msg) {
        Ok(q) => q,
        Err(e) => return dns::error_reply(msg, e.rcode),
    };
    let peer = normalize_ip(peer);
    let Some(source) = state.source(peer) else {
        tracing::debug!(%peer, name = %q.name, "DNS query from an unknown source refused");
        return Some(dns::reply(msg, &q, dns::RCODE_REFUSED));
    };
    let Some(policy) = source.policy() else {
        return Some(dns::reply(msg, &q, dns::RCODE_REFUSED));
    };
    if q.qclass != dns::CLASS_IN {
        return Some(dns::reply(msg, &q, dns::RCODE_REFUSED));
    }
    let host = match Host::parse(&q.name) {
        Ok(h @ Host::Name(_)) => h,
        // The root, an address written as a name, or a name no host has.
        _ => return Some(dns::reply(msg, &q, dns::RCODE_NXDOMAIN)),
    };
    let address_query = q.qtype == dns::TYPE_A || q.qtype == dns::TYPE_AAAA;
    let verdict = policy.check_name(&host);
    if address_query {
        state.record(
            &source,
            Via::Dns,
            &q.name,
            None,
            verdict.allowed,
            &verdict.reason,
        );
    }
    if !verdict.allowed {
        return Some(dns::reply(msg, &q, dns::RCODE_NXDOMAIN));
    }
    if !address_query {
        // Allowed name, other record type (MX, TXT, HTTPS, ...): "no such data", answered here so
        // nothing but addresses of allowed names ever leaves through DNS.
        return Some(dns::reply(msg, &q, dns::RCODE_NOERROR));
    }
    match state.resolver.forward(msg, tcp).await {
        Some(reply) => Some(reply),
        None => Some(dns::reply(msg, &q, dns::RCODE_SERVFAIL)),
    }
}
