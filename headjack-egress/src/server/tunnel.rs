//! Moving bytes between an instance and an upstream once the proxy has let a connection through:
//! the two directions at once, an idle timeout, and a watch on the source's policy that closes the
//! connection when a live change denies its destination.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;

use super::Limits;
use crate::policy::{Host, Policy};
use crate::tls::{self, FirstFlight};

const BUF: usize = 16 * 1024;

/// When either direction last moved a byte.
pub(crate) struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        })
    }

    pub(crate) fn touch(&self) {
        self.last_ms
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Resolves once nothing moved for `limit`.
    pub(crate) async fn idle(&self, limit: Duration) {
        loop {
            let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let idle = self.start.elapsed().saturating_sub(last);
            if idle >= limit {
                return;
            }
            tokio::time::sleep(limit - idle).await;
        }
    }
}

/// Copies `r` to `w` until EOF, then shuts `w` down (half-close). Errors end the copy.
pub(crate) async fn pump<R, W>(mut r: R, mut w: W, activity: &Activity)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUF];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                activity.touch();
                if w.write_all(&buf[..n]).await.is_err() {
                    return;
                }
                activity.touch();
            }
        }
    }
    let _ = w.shutdown().await;
}

/// A source's policy as followed by one connection, with that connection's destination.
pub(crate) type PolicyWatch = (watch::Receiver<Option<Arc<Policy>>>, Host, u16);

/// Resolves with a reason when the source's policy stops allowing `host:port` (or the source is
/// removed or replaced).
pub(crate) async fn revoked(
    mut rx: watch::Receiver<Option<Arc<Policy>>>,
    host: Host,
    port: u16,
) -> String {
    loop {
        if rx.changed().await.is_err() {
            return "the source was removed".into();
        }
        let policy = rx.borrow_and_update().clone();
        match policy {
            None => return "the source was removed".into(),
            Some(p) => {
                let v = p.check(&host, port);
                if !v.allowed {
                    return format!("policy changed: {}", v.reason);
                }
            }
        }
    }
}

/// How the first bytes of a tunnel ended.
pub(crate) enum FirstBytes {
    /// Go on: these bytes (possibly empty) are to be sent upstream first.
    Pass(Vec<u8>),
    /// A ClientHello for another name than the tunnel's: (SNI, why).
    WrongName(String),
    /// Bytes that start like TLS but are not a ClientHello.
    Malformed(String),
    /// One side closed or the hello did not arrive in time: just end.
    End,
}

/// Holds a tunnel opened to `host` to that name: reads the client's first bytes and, if they are
/// a TLS ClientHello with a server name, checks it. Meanwhile upstream bytes go to the client
/// (SSH and SMTP servers speak first).
pub(crate) async fn check_first_flight(
    cr: &mut OwnedReadHalf,
    cw: &mut OwnedWriteHalf,
    ur: &mut OwnedReadHalf,
    mut buf: Vec<u8>,
    host: &str,
    limits: &Limits,
    activity: &Activity,
) -> FirstBytes {
    let mut chunk = vec![0u8; BUF];
    let mut down = vec![0u8; BUF];
    loop {
        match tls::parse_first_flight(&buf) {
            Ok(FirstFlight::NotTls) => return FirstBytes::Pass(buf),
            Ok(FirstFlight::ClientHello { sni: None }) => return FirstBytes::Pass(buf),
            Ok(FirstFlight::ClientHello { sni: Some(sni) }) => {
                return if sni == host {
                    FirstBytes::Pass(buf)
                } else {
                    FirstBytes::WrongName(sni)
                };
            }
            Err(e) => return FirstBytes::Malformed(e.to_string()),
            Ok(FirstFlight::Incomplete) => {}
        }
        // Waiting for a client's first byte is ordinary idleness; a started hello must finish soon.
        let wait = if buf.is_empty() {
            limits.idle_timeout
        } else {
            limits.hello_timeout
        };
        tokio::select! {
            r = cr.read(&mut chunk) => match r {
                Ok(0) | Err(_) => return FirstBytes::End,
                Ok(n) => { activity.touch(); buf.extend_from_slice(&chunk[..n]) }
            },
            r = ur.read(&mut down) => match r {
                Ok(0) | Err(_) => return FirstBytes::End,
                Ok(n) => {
                    activity.touch();
                    if cw.write_all(&down[..n]).await.is_err() {
                        return FirstBytes::End;
                    }
                }
            },
            () = tokio::time::sleep(wait) => return FirstBytes::End,
        }
    }
}

/// Runs `work` until it ends, the connection idles out, or the policy revokes it; returns the
/// revocation reason in the last case.
pub(crate) async fn supervise(
    work: impl Future<Output = ()>,
    activity: &Activity,
    idle_timeout: Duration,
    watch: Option<PolicyWatch>,
) -> Option<String> {
    let revoke = async {
        match watch {
            Some((rx, host, port)) => revoked(rx, host, port).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = work => None,
        () = activity.idle(idle_timeout) => None,
        why = revoke => Some(why),
    }
}

/// For logs: the peer address without IPv4-mapping noise.
pub(crate) fn show(ip: IpAddr) -> String {
    crate::policy::normalize_ip(ip).to_string()
}
