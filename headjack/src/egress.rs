//! Egress policies: which hosts an instance may reach, enforced fail-closed by headjack's egress
//! proxy (the `headjack-egress` crate; topology in docs/ARCHITECTURE.md#egress).
//!
//! ```no_run
//! # async fn demo() -> headjack::Result<()> {
//! use headjack::{Egress, Spec};
//! let env = headjack::spawn(
//!     Spec::new().egress(Egress::allow(["pypi.org", "*.pythonhosted.org", "github.com:443"])),
//! )
//! .await?;
//! let out = env.exec(["pip", "download", "requests"]).await?;
//! for d in env.egress_log().await? {
//!     println!("{} {}:{:?} {}", if d.allowed { "allowed" } else { "denied" }, d.host, d.port, d.reason);
//! }
//! env.set_egress(Egress::allow(["pypi.org"])).await?; // from the next connection on
//! # Ok(()) }
//! ```
//!
//! An instance with a policy sits on a network of its own with no route out (`headjack-<id>`,
//! internal). One proxy container per engine (`headjack-egress-<version>`, `FROM scratch` plus the
//! static binary embedded in this library, built locally, never pulled) is attached to that
//! network and to `headjack-egress`, a bridge with outside access. The instance gets the proxy as
//! its DNS server and in `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY`/`NO_PROXY` (both cases) and in
//! apt's configuration; the proxy knows it by its address on its network.
//!
//! Why one proxy per engine rather than one per instance: it idles at about 1.5 MiB, so one
//! container serves every instance, and a spawn costs a network and a connect (tens of
//! milliseconds) rather than a second container start; the proxy tells instances apart by source
//! address and never connects into the internal networks behind it, so sharing it does not let
//! one instance reach another.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use headjack_egress::control::{LogEntry, PolicySpec, Request, Response, Via};
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::engine::{ContainerPlan, Engine, EngineKind};
use crate::error::{Error, ErrorKind, Result};
use crate::labels;

/// The proxy binary built by `build.rs` (empty when built without one: `HEADJACK_NO_EGRESS=1`).
static BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/headjack-egress"));

const DOCKERFILE: &str = "FROM scratch\nCOPY headjack-egress /headjack-egress\nLABEL io.headjack.egress=image\nENTRYPOINT [\"/headjack-egress\", \"serve\"]\n";
/// The label on everything the egress topology consists of: `proxy`, `outside`, `instance`.
pub(crate) const LABEL: &str = "io.headjack.egress";
/// On an instance's container: its internal network.
pub(crate) const NETWORK_LABEL: &str = "io.headjack.egress.network";
/// On an instance's container: the proxy serving it.
pub(crate) const PROXY_LABEL: &str = "io.headjack.egress.proxy";
/// On an instance network: when it was made (seconds since the epoch); `sweep` leaves young
/// networks alone, since their instance may still be starting.
const CREATED_LABEL: &str = "io.headjack.egress.created";
/// The network with outside access that every proxy of this engine is on.
pub(crate) const OUTSIDE: &str = "headjack-egress";
/// Where instances find the apt setting.
const APT_DIR: &str = "/etc/apt/apt.conf.d";
const APT_FILE: &str = "99headjack-egress";
/// How long a control request through the engine's exec may take.
const CTL_TIMEOUT: Duration = Duration::from_secs(20);

/// An egress policy: which destinations an instance may reach (an allow-list) or may not (a
/// deny-list). Patterns: `pypi.org` (that name, any port), `*.pythonhosted.org` (every name
/// below it, not the name itself), `github.com:443` (that port only), `192.0.2.7`,
/// `10.0.0.0/8`, `[2001:db8::1]:443`. Patterns are checked when the policy is used
/// ([`crate::spawn`], [`crate::Instance::set_egress`]) or by [`Egress::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Egress {
    allow: bool,
    patterns: Vec<String>,
}

impl Egress {
    /// Only destinations matching one of `patterns` are reachable; everything else, raw IP
    /// addresses included (unless listed), is denied. An empty list denies everything.
    pub fn allow<I, S>(patterns: I) -> Egress
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Egress {
            allow: true,
            patterns: patterns.into_iter().map(Into::into).collect(),
        }
    }

    /// Every destination but those matching one of `patterns` is reachable. A convenience, not
    /// a boundary: another name or the address of a denied server still works.
    pub fn deny<I, S>(patterns: I) -> Egress
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Egress {
            allow: false,
            patterns: patterns.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether this is an allow-list.
    pub fn is_allow_list(&self) -> bool {
        self.allow
    }

    /// The patterns as given.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Checks every pattern.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] naming the first invalid pattern and what is wrong with it.
    pub fn validate(&self) -> Result<()> {
        self.policy().map(|_| ())
    }

    /// The canonical policy for the proxy.
    fn policy(&self) -> Result<PolicySpec> {
        let spec = if self.allow {
            PolicySpec::Allow(self.patterns.clone())
        } else {
            PolicySpec::Deny(self.patterns.clone())
        };
        let policy = spec.to_policy().map_err(|e| {
            Error::invalid_argument(format!(
                "egress {}-list: {e}; fix or remove that pattern",
                if self.allow { "allow" } else { "deny" }
            ))
        })?;
        Ok(PolicySpec::from_policy(&policy))
    }
}

/// One decision of an instance's egress proxy (see [`crate::Instance::egress_log`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressDecision {
    /// Increasing number of this entry.
    pub seq: u64,
    /// When (RFC 3339, UTC).
    pub time: String,
    /// How the destination was asked for: `http` (a plain HTTP request), `connect` (HTTPS or
    /// other TCP through CONNECT), `dns` (a name lookup).
    pub via: String,
    /// The host asked for (a name or an address).
    pub host: String,
    /// The port (none for DNS).
    pub port: Option<u16>,
    /// Whether it was let through.
    pub allowed: bool,
    /// Why (the pattern that matched, or that none did).
    pub reason: String,
    /// How many identical decisions within 2 s this entry stands for.
    pub count: u64,
}

impl From<LogEntry> for EgressDecision {
    fn from(e: LogEntry) -> Self {
        EgressDecision {
            seq: e.seq,
            time: e.time,
            via: match e.via {
                Via::Http => "http",
                Via::Connect => "connect",
                Via::Dns => "dns",
            }
            .to_string(),
            host: e.host,
            port: e.port,
            allowed: e.allowed,
            reason: e.reason,
            count: e.count,
        }
    }
}

/// The proxy's version: the first 16 hex digits of the sha256 of its binary and Dockerfile.
fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        hex::encode(
            Sha256::new()
                .chain_update(BINARY)
                .chain_update(DOCKERFILE)
                .finalize(),
        )[..16]
            .to_string()
    })
}

/// The proxy container of this library's version.
pub(crate) fn proxy_name() -> String {
    format!("headjack-egress-{}", version())
}

fn image_tag() -> String {
    format!("localhost/headjack/egress:{}", version())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Sends one control request to `proxy` (through the engine's exec of `headjack-egress ctl`).
async fn ctl(engine: &Engine, proxy: &str, request: &Request) -> Result<Response> {
    let out = engine
        .exec_collect(
            proxy,
            vec!["/headjack-egress".into(), "ctl".into(), request.to_line()],
            CTL_TIMEOUT,
        )
        .await
        .map_err(|e| e.context(format!("talking to the egress proxy {proxy}")))?;
    let line = out.stdout.lines().next().unwrap_or_default();
    match Response::parse_line(line) {
        Ok(r) => Ok(r),
        Err(_) => Err(Error::new(
            ErrorKind::Internal,
            format!(
                "the egress proxy {proxy} did not answer a control request (exit {}): {}; it may \
                 have stopped (its log: `docker logs {proxy}`)",
                out.code,
                out.stderr.trim()
            ),
        )),
    }
}

/// A control request that must succeed.
async fn ctl_ok(engine: &Engine, proxy: &str, request: &Request, what: &str) -> Result<Response> {
    let r = ctl(engine, proxy, request).await?;
    if r.ok {
        Ok(r)
    } else {
        Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "{what}: the egress proxy {proxy} refused: {}",
                r.error.unwrap_or_default()
            ),
        ))
    }
}

/// Makes sure the proxy of this version runs on `engine` and answers; returns its name.
async fn ensure_proxy(engine: &Engine) -> Result<String> {
    if BINARY.is_empty() {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "this build of headjack carries no egress proxy (built with HEADJACK_NO_EGRESS=1 or \
             not for Linux): egress policies cannot be enforced; rebuild it with the proxy, or \
             spawn without an egress policy",
        ));
    }
    let name = proxy_name();
    let running = |v: &serde_json::Value| {
        v.pointer("/State/Running")
            .and_then(|r| r.as_bool())
            .unwrap_or(false)
    };
    match engine.inspect_raw(&name).await? {
        Some(v) if running(&v) => return Ok(name),
        Some(_) => {}
        None => {
            ensure_image(engine).await?;
            let labels = serde_json::json!({LABEL: "outside"});
            engine.create_bridge_network(OUTSIDE, &labels).await?;
            let mut host = serde_json::json!({
                "NetworkMode": OUTSIDE,
                "CapDrop": ["ALL"],
                "CapAdd": ["NET_BIND_SERVICE"],
                "ReadonlyRootfs": true,
                "SecurityOpt": ["no-new-privileges"],
                "PidsLimit": 64,
                "Memory": 64u64 << 20,
                "RestartPolicy": {"Name": "unless-stopped"},
            });
            if engine.info().kind == EngineKind::Docker {
                host["LogConfig"] = serde_json::json!({"Type": "json-file",
                    "Config": {"max-size": "10m", "max-file": "2"}});
            }
            let body = serde_json::json!({
                "Image": image_tag(),
                "Labels": {LABEL: "proxy", "io.headjack.egress.version": version()},
                "HostConfig": host,
            });
            match engine.create_raw(&name, &body).await {
                Ok(()) => {}
                // Another process made it meanwhile.
                Err(e) if e.kind() == ErrorKind::Conflict => {}
                Err(e) => {
                    return Err(e.context(format!("creating the egress proxy container {name}")));
                }
            }
        }
    }
    if let Err(e) = engine.start(&name).await {
        // Another process may have started it meanwhile.
        let now = engine.inspect_raw(&name).await?;
        if !now.as_ref().is_some_and(running) {
            return Err(e.context(format!("starting the egress proxy {name}")));
        }
    }
    // Up once its control socket answers.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let why = match ctl(engine, &name, &Request::Health).await {
            Ok(r) if r.ok => return Ok(name),
            Ok(r) => r.error.unwrap_or_default(),
            Err(e) => e.to_string(),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "the egress proxy {name} did not come up within 15 s ({why}); no instance \
                     with an egress policy can start until it does (its log: `docker logs {name}`)"
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Builds the proxy image from the embedded binary unless this engine has it.
async fn ensure_image(engine: &Engine) -> Result<()> {
    let tag = image_tag();
    if engine.image(&tag).await?.is_some() {
        return Ok(());
    }
    let _lock = crate::build::lock_file(&format!("egress-{}", version()), &tag, None).await?;
    if engine.image(&tag).await?.is_some() {
        return Ok(());
    }
    tracing::info!(image = %tag, "building the egress proxy image on this engine");
    let mut b = tar::Builder::new(Vec::with_capacity(BINARY.len() + 4096));
    for (name, data, mode) in [
        ("Dockerfile", DOCKERFILE.as_bytes(), 0o644),
        ("headjack-egress", BINARY, 0o755),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append_data(&mut h, name, data)
            .map_err(|e| Error::io("packing the egress proxy", e))?;
    }
    let context = b
        .into_inner()
        .map_err(|e| Error::io("packing the egress proxy", e))?;
    engine
        .build_plain(&tag, context)
        .await
        .map_err(|e| e.context("building the egress proxy image"))
}

/// The egress side of an instance being spawned: its network exists and the proxy is on it.
pub(crate) struct Prepared {
    pub network: String,
    pub proxy: String,
    pub proxy_ip: String,
    policy: PolicySpec,
}

/// Makes the instance network `headjack-<id>` and attaches the proxy to it.
pub(crate) async fn prepare(engine: &Engine, egress: &Egress, id: &str) -> Result<Prepared> {
    let policy = egress.policy()?;
    let span = tracing::info_span!("headjack.egress.prepare", instance = id);
    async {
        let proxy = ensure_proxy(engine).await?;
        let network = format!("headjack-{id}");
        let labels = serde_json::json!({
            LABEL: "instance",
            labels::INSTANCE: id,
            CREATED_LABEL: now_secs().to_string(),
        });
        // Docker's default address pools hold about 30 bridge networks: each instance network
        // gets a /28 of 10.213.0.0/16 of its own, another one when that one is taken.
        let mut attempt = 0;
        loop {
            let r: u32 = rand::random();
            let subnet = format!("10.213.{}.{}/28", (r >> 4) & 255, (r & 15) * 16);
            match engine
                .create_internal_network(&network, &subnet, &labels)
                .await
            {
                Ok(()) => break,
                Err(e)
                    if attempt < 8
                        && !matches!(
                            e.kind(),
                            ErrorKind::EngineUnavailable | ErrorKind::Timeout
                        ) =>
                {
                    tracing::debug!(error = %e, %subnet, "subnet taken; trying another");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
        let attached = async {
            engine.connect_network(&network, &proxy).await?;
            engine.address_on(&proxy, &network).await?.ok_or_else(|| {
                Error::internal(format!(
                    "the egress proxy {proxy} has no address on network {network} after joining it"
                ))
            })
        }
        .await;
        match attached {
            Ok(proxy_ip) => Ok(Prepared {
                network,
                proxy,
                proxy_ip,
                policy,
            }),
            Err(e) => {
                teardown(engine, &network, &proxy).await;
                Err(e)
            }
        }
    }
    .instrument(span)
    .await
}

impl Prepared {
    /// Puts the instance on its network, with the proxy as DNS server and in the environment.
    pub(crate) fn apply(&self, plan: &mut ContainerPlan) {
        plan.network = Some(self.network.clone());
        plan.dns = vec![self.proxy_ip.clone()];
        let url = format!(
            "http://{}:{}",
            self.proxy_ip,
            headjack_egress::control::HTTP_PORT
        );
        let given: Vec<String> = plan
            .env
            .iter()
            .filter_map(|e| e.split_once('=').map(|(k, _)| k.to_string()))
            .collect();
        let mut add = |k: &str, v: &str| {
            if !given.iter().any(|g| g == k) {
                plan.env.push(format!("{k}={v}"));
            }
        };
        for k in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            add(k, &url);
        }
        for k in ["NO_PROXY", "no_proxy"] {
            add(k, "localhost,127.0.0.1,::1");
        }
        plan.labels
            .insert(NETWORK_LABEL.into(), self.network.clone());
        plan.labels.insert(PROXY_LABEL.into(), self.proxy.clone());
    }

    /// Registers the started instance with the proxy (its policy, then a probe that traffic
    /// flows on its network) and writes apt's proxy setting. Returns its address.
    pub(crate) async fn register(
        &self,
        engine: &Engine,
        container: &str,
        instance: &str,
    ) -> Result<String> {
        let span = tracing::info_span!("headjack.egress.register", instance);
        async {
            let mut source = None;
            for _ in 0..50 {
                source = engine.address_on(container, &self.network).await?;
                if source.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let source = source.ok_or_else(|| {
                Error::internal(format!(
                    "instance {instance} has no address on its network {}",
                    self.network
                ))
            })?;
            let ip = parse_ip(&source)?;
            ctl_ok(
                engine,
                &self.proxy,
                &Request::Set {
                    source: ip,
                    instance: instance.to_string(),
                    policy: self.policy.clone(),
                },
                "registering the instance's egress policy",
            )
            .await?;
            let probe = ctl(engine, &self.proxy, &Request::Probe { source: ip }).await?;
            if !probe.ok {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "the egress proxy cannot reach instance {instance} at {source} on network \
                         {} ({}); the engine's network carries no traffic between them (on a host \
                         running Docker and rootful Podman, Docker's FORWARD policy drops Podman's \
                         internal bridges: see headjack-egress/README.md#engines). The instance \
                         was not started without its egress",
                        self.network,
                        probe.error.unwrap_or_default()
                    ),
                ));
            }
            let conf = format!(
                "// Written by headjack: this instance reaches the outside only through its egress proxy.\n\
                 Acquire::http::Proxy \"http://{ip}:{port}/\";\nAcquire::https::Proxy \"http://{ip}:{port}/\";\n",
                ip = self.proxy_ip,
                port = headjack_egress::control::HTTP_PORT
            );
            match apt_tar(&conf) {
                Ok(tar) => {
                    if let Err(e) = engine.upload(container, APT_DIR, tar, false).await {
                        tracing::debug!(error = %e, "no apt configuration written (no apt here?)");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "cannot pack the apt configuration"),
            }
            Ok(source)
        }
        .instrument(span)
        .await
    }

    /// Removes the network again (the spawn failed).
    pub(crate) async fn teardown(&self, engine: &Engine) {
        teardown(engine, &self.network, &self.proxy).await;
    }

    /// What the instance keeps to change, read and finally undo its egress.
    pub(crate) fn attachment(&self, source: String) -> Attachment {
        Attachment {
            network: self.network.clone(),
            proxy: self.proxy.clone(),
            source,
            since: AtomicU64::new(0),
            last_policy: Mutex::new(None),
        }
    }
}

fn parse_ip(s: &str) -> Result<std::net::IpAddr> {
    s.parse()
        .map_err(|_| Error::internal(format!("the engine reported an invalid address {s:?}")))
}

fn apt_tar(conf: &str) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(conf.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append_data(&mut h, APT_FILE, conf.as_bytes())?;
    b.into_inner()
}

/// Disconnects the proxy from `network` and removes it; failures are logged (`sweep` retries).
async fn teardown(engine: &Engine, network: &str, proxy: &str) {
    if let Err(e) = engine.disconnect_network(network, proxy).await {
        tracing::warn!(error = %e, network, "disconnecting the egress proxy failed");
    }
    if let Err(e) = engine.remove_network(network).await {
        tracing::warn!(error = %e, network, "removing an instance network failed; sweep retries");
    }
}

/// An instance's egress: its network, its proxy, its address there.
#[derive(Debug)]
pub(crate) struct Attachment {
    network: String,
    proxy: String,
    source: String,
    /// The last log entry already returned (and traced).
    since: AtomicU64,
    last_policy: Mutex<Option<PolicySpec>>,
}

impl Attachment {
    /// The attachment of an existing instance, from its container's labels (`None`: it has no
    /// egress policy).
    pub(crate) async fn of_container(
        engine: &Engine,
        container: &str,
        labels: &HashMap<String, String>,
    ) -> Result<Option<Attachment>> {
        let (Some(network), Some(proxy)) = (labels.get(NETWORK_LABEL), labels.get(PROXY_LABEL))
        else {
            return Ok(None);
        };
        let source = engine
            .address_on(container, network)
            .await?
            .unwrap_or_default();
        Ok(Some(Attachment {
            network: network.clone(),
            proxy: proxy.clone(),
            source,
            since: AtomicU64::new(0),
            last_policy: Mutex::new(None),
        }))
    }

    fn source_ip(&self, instance: &str) -> Result<std::net::IpAddr> {
        self.source.parse().map_err(|_| {
            Error::new(
                ErrorKind::Conflict,
                format!(
                    "instance {instance} has no address on its egress network {} (is it \
                     running?); start it first",
                    self.network
                ),
            )
        })
    }

    /// Replaces the policy (the next connection, request and lookup follow it).
    pub(crate) async fn set(&self, engine: &Engine, instance: &str, egress: &Egress) -> Result<()> {
        let policy = egress.policy()?;
        let span = tracing::info_span!("headjack.egress.set", instance);
        async {
            ctl_ok(
                engine,
                &self.proxy,
                &Request::Set {
                    source: self.source_ip(instance)?,
                    instance: instance.to_string(),
                    policy: policy.clone(),
                },
                &format!("changing the egress policy of instance {instance}"),
            )
            .await?;
            *self.last_policy.lock().unwrap_or_else(|p| p.into_inner()) = Some(policy);
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// Every decision the proxy kept for this instance (the last 1000), oldest first. The ones
    /// not seen before by this handle are also traced (`headjack.egress` events).
    pub(crate) async fn log(&self, engine: &Engine, instance: &str) -> Result<Vec<EgressDecision>> {
        let r = ctl_ok(
            engine,
            &self.proxy,
            &Request::Log {
                source: self.source_ip(instance)?,
                since: 0,
                limit: None,
            },
            &format!("reading the egress log of instance {instance}"),
        )
        .await?;
        let entries: Vec<EgressDecision> = r
            .entries
            .unwrap_or_default()
            .into_iter()
            .map(EgressDecision::from)
            .collect();
        let seen = self.since.load(Ordering::SeqCst);
        for d in entries.iter().filter(|d| d.seq > seen) {
            tracing::info!(
                target: "headjack.egress",
                instance,
                via = %d.via,
                host = %d.host,
                port = ?d.port,
                allowed = d.allowed,
                reason = %d.reason,
                count = d.count,
                "egress decision"
            );
        }
        if let Some(last) = entries.last() {
            self.since.fetch_max(last.seq, Ordering::SeqCst);
        }
        Ok(entries)
    }

    /// Undoes the instance's egress after its container is gone: forgets its address in the
    /// proxy, detaches the proxy from its network and removes the network. Failures are logged
    /// (`sweep` retries what is left).
    pub(crate) async fn detach(&self, engine: &Engine) {
        let span = tracing::debug_span!("headjack.egress.detach", network = %self.network);
        async {
            if let Ok(ip) = self.source.parse()
                && let Err(e) = ctl(engine, &self.proxy, &Request::Remove { source: ip }).await
            {
                tracing::debug!(error = %e, "the proxy did not forget the instance");
            }
            teardown(engine, &self.network, &self.proxy).await;
        }
        .instrument(span)
        .await
    }
}

/// Removes instance networks whose instance is gone (and are older than two minutes), then,
/// when no instance network is left, the proxies and the outside network. Returns the names of
/// the networks and containers removed.
pub(crate) async fn sweep(engine: &Engine) -> Result<Vec<String>> {
    let span = tracing::info_span!("headjack.egress.sweep");
    async {
        let mut removed = Vec::new();
        let networks = engine
            .networks_with_labels(&[format!("{LABEL}=instance")])
            .await?;
        let proxies = engine
            .containers_with_labels(&[format!("{LABEL}=proxy")])
            .await?;
        let now = now_secs();
        let mut left = 0;
        for (name, labels) in networks {
            let young = labels
                .get(CREATED_LABEL)
                .and_then(|c| c.parse::<u64>().ok())
                .is_some_and(|c| now.saturating_sub(c) < 120);
            // By the network's name: an instance relaunched without the agent has another id.
            let alive = !engine
                .containers_with_labels(&[format!("{NETWORK_LABEL}={name}")])
                .await?
                .is_empty();
            if alive || young {
                left += 1;
                continue;
            }
            tracing::info!(network = %name, "sweeping an instance network whose instance is gone");
            for p in &proxies {
                engine.disconnect_network(&name, &p.id).await?;
            }
            engine.remove_network(&name).await?;
            removed.push(name);
        }
        if left == 0 {
            for p in &proxies {
                tracing::info!(proxy = %p.name, "sweeping the egress proxy: no instance needs it");
                engine.remove(&p.id).await?;
                removed.push(p.name.clone());
            }
            if !engine
                .networks_with_labels(&[format!("{LABEL}=outside")])
                .await?
                .is_empty()
            {
                engine.remove_network(OUTSIDE).await?;
                removed.push(OUTSIDE.to_string());
            }
        }
        Ok(removed)
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_validated_with_clear_errors() {
        assert!(
            Egress::allow(["pypi.org", "*.pythonhosted.org", "github.com:443"])
                .validate()
                .is_ok()
        );
        assert!(Egress::allow(Vec::<String>::new()).validate().is_ok());
        for (bad, says) in [
            ("https://pypi.org", "URL"),
            ("a..b", "empty label"),
            ("*", "*"),
            ("pypi.org:99999", "port"),
            ("10.0.0.1/8", "10.0.0.0/8"),
        ] {
            let e = Egress::deny([bad]).validate().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad}");
            assert!(e.message().contains(bad), "{bad}: {e}");
            assert!(e.message().contains(says), "{bad}: {e}");
            assert!(e.message().contains("deny-list"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_plan_gets_the_network_dns_and_proxy_variables() {
        let p = Prepared {
            network: "headjack-abc".into(),
            proxy: "headjack-egress-x".into(),
            proxy_ip: "10.213.0.2".into(),
            policy: PolicySpec::Allow(vec![]),
        };
        let mut plan = ContainerPlan {
            env: vec!["no_proxy=mine".into()],
            ..Default::default()
        };
        p.apply(&mut plan);
        assert_eq!(plan.network.as_deref(), Some("headjack-abc"));
        assert_eq!(plan.dns, ["10.213.0.2"]);
        assert!(
            plan.env
                .contains(&"HTTPS_PROXY=http://10.213.0.2:3128".to_string())
        );
        assert!(
            plan.env
                .contains(&"http_proxy=http://10.213.0.2:3128".to_string())
        );
        assert!(
            plan.env
                .contains(&"NO_PROXY=localhost,127.0.0.1,::1".to_string())
        );
        // The caller's own value stays.
        assert_eq!(
            plan.env
                .iter()
                .filter(|e| e.starts_with("no_proxy="))
                .count(),
            1
        );
        assert_eq!(plan.labels[NETWORK_LABEL], "headjack-abc");
    }
}
