//! The running proxy: HTTP/CONNECT listener, DNS server and control socket over one shared
//! state of sources and their policies.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use headjack_egress::server::{Config, Server};
//! let server = Server::bind(Config::default()).await?;
//! server.run().await
//! # }
//! ```

mod ctl;
mod dnsd;
mod events;
mod guard;
mod proxy;
mod resolver;
mod state;
mod tunnel;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket, UnixListener};

use crate::control::{self, Request, Response};
use state::State;

/// Where the proxy listens and how it behaves.
#[derive(Clone, Debug)]
pub struct Config {
    /// The HTTP/CONNECT proxy's address (default `0.0.0.0:3128`).
    pub http: SocketAddr,
    /// The DNS server's address, UDP and TCP (default `0.0.0.0:53`); `None` runs no DNS server.
    pub dns: Option<SocketAddr>,
    /// The control socket's abstract name (default [`control::CTL_SOCKET`]); `None` runs none.
    pub ctl: Option<String>,
    /// Upstream DNS servers; `None` reads the `nameserver` lines of [`Config::resolv_conf`].
    pub upstream_dns: Option<Vec<SocketAddr>>,
    /// Read for upstream DNS servers (re-read every few seconds: engines add servers when a
    /// network is connected).
    pub resolv_conf: PathBuf,
    /// Consulted before DNS for upstream names.
    pub hosts_file: PathBuf,
    /// Where the kernel's network tables are read (routes and own addresses) for the guard that
    /// keeps instances from reaching each other through the proxy.
    pub proc_net: PathBuf,
    /// Let instances reach loopback addresses. Only for tests that run the proxy in-process.
    pub allow_loopback: bool,
    /// Write each decision and lifecycle event to stderr as a JSON line.
    pub log_to_stderr: bool,
    /// Where the registered sources and their policies are kept, so that a restarted proxy
    /// (its container restarted by the engine) serves its instances again; `None` keeps them
    /// in memory only.
    pub state_file: Option<PathBuf>,
    /// Bounds and timeouts.
    pub limits: Limits,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http: SocketAddr::from(([0, 0, 0, 0], control::HTTP_PORT)),
            dns: Some(SocketAddr::from(([0, 0, 0, 0], control::DNS_PORT))),
            ctl: Some(control::CTL_SOCKET.to_string()),
            upstream_dns: None,
            resolv_conf: "/etc/resolv.conf".into(),
            hosts_file: "/etc/hosts".into(),
            proc_net: "/proc/net".into(),
            allow_loopback: false,
            log_to_stderr: true,
            state_file: None,
            limits: Limits::default(),
        }
    }
}

/// Bounds on everything a client can make the proxy hold.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Open proxy connections, all sources together.
    pub max_connections: usize,
    /// Open proxy connections of one source.
    pub max_connections_per_source: u64,
    /// Time to receive a request head.
    pub head_timeout: Duration,
    /// A tunnel or request with no bytes in either direction for this long is closed.
    pub idle_timeout: Duration,
    /// Time to connect to an upstream address.
    pub connect_timeout: Duration,
    /// Time to receive a started TLS ClientHello.
    pub hello_timeout: Duration,
    /// Time per upstream DNS attempt.
    pub dns_timeout: Duration,
    /// DNS queries answered at once (UDP; more are dropped and the client retries).
    pub max_dns_inflight: usize,
    /// DNS-over-TCP connections at once.
    pub max_dns_tcp: usize,
    /// Control connections at once.
    pub max_ctl: usize,
    /// Decision log entries kept per source (oldest dropped first).
    pub log_capacity: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 4096,
            max_connections_per_source: 512,
            head_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(10),
            hello_timeout: Duration::from_secs(10),
            dns_timeout: Duration::from_secs(2),
            max_dns_inflight: 256,
            max_dns_tcp: 64,
            max_ctl: 64,
            log_capacity: 1000,
        }
    }
}

/// A bound proxy, ready to [`run`](Server::run).
pub struct Server {
    state: Arc<State>,
    http: TcpListener,
    dns: Option<(UdpSocket, TcpListener)>,
    ctl: Option<UnixListener>,
}

impl Server {
    /// Binds every listener, so that a port or permission problem shows before anything runs.
    ///
    /// # Errors
    /// A listener could not be bound; the message names which and where.
    pub async fn bind(config: Config) -> io::Result<Server> {
        let http = TcpListener::bind(config.http).await.map_err(|e| {
            context(
                e,
                format!(
                    "cannot listen for HTTP proxy connections on {}",
                    config.http
                ),
            )
        })?;
        let dns = match config.dns {
            None => None,
            Some(addr) => {
                let hint = if addr.port() < 1024 {
                    " (a port below 1024 needs CAP_NET_BIND_SERVICE)"
                } else {
                    ""
                };
                let udp = UdpSocket::bind(addr).await.map_err(|e| {
                    context(e, format!("cannot listen for DNS on udp {addr}{hint}"))
                })?;
                let addr = udp.local_addr()?;
                let tcp = TcpListener::bind(addr).await.map_err(|e| {
                    context(e, format!("cannot listen for DNS on tcp {addr}{hint}"))
                })?;
                Some((udp, tcp))
            }
        };
        let ctl =
            match &config.ctl {
                None => None,
                Some(name) => Some(ctl::bind(name).map_err(|e| {
                    context(e, format!("cannot listen on the control socket @{name}"))
                })?),
            };
        let http_addr = http.local_addr()?;
        let dns_addr = dns.as_ref().map(|(u, _)| u.local_addr()).transpose()?;
        let state = Arc::new(State::new(config, http_addr, dns_addr));
        Ok(Server {
            state,
            http,
            dns,
            ctl,
        })
    }

    /// Where the HTTP/CONNECT proxy listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.state.http_addr
    }

    /// Where the DNS server listens (UDP and TCP), if it runs.
    pub fn dns_addr(&self) -> Option<SocketAddr> {
        self.state.dns_addr
    }

    /// An in-process handle for the control requests the socket serves.
    pub fn control(&self) -> Control {
        Control(self.state.clone())
    }

    /// Serves until the process ends. Cancel-safe: dropping the future stops accepting; open
    /// connections run on as spawned tasks until they end.
    ///
    /// # Errors
    /// Never returns `Ok`; an error only if every listener failed.
    pub async fn run(self) -> io::Result<()> {
        let Server {
            state,
            http,
            dns,
            ctl,
        } = self;
        events::lifecycle(
            state.config.log_to_stderr,
            "started",
            serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
                "http": state.http_addr.to_string(),
                "dns": state.dns_addr.map(|a| a.to_string()),
                "ctl": state.config.ctl.as_ref().map(|n| format!("@{n}")),
            }),
        );
        let dns_task = async {
            match dns {
                Some((udp, tcp)) => {
                    tokio::join!(
                        dnsd::serve_udp(state.clone(), udp),
                        dnsd::serve_tcp(state.clone(), tcp)
                    )
                    .0
                }
                None => std::future::pending().await,
            }
        };
        let ctl_task = async {
            match ctl {
                Some(l) => ctl::serve(state.clone(), l).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = proxy::serve(state.clone(), http) => r,
            r = dns_task => r,
            r = ctl_task => r,
        }
    }
}

/// Control requests carried out in-process (the control socket does the same per line).
#[derive(Clone)]
pub struct Control(Arc<State>);

impl Control {
    /// Carries out one request.
    pub async fn request(&self, req: Request) -> Response {
        self.0.handle(req).await
    }
}

fn context(e: io::Error, what: String) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}
