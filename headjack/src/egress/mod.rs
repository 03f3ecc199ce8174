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

mod attach;
mod proxy;

pub(crate) use attach::{Attachment, Prepared, prepare};

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
            // Its state volume (and that of any proxy removed by hand).
            for v in engine.volumes_with_label(&format!("{LABEL}=state")).await? {
                match engine.remove_volume(&v.name).await {
                    Ok(()) => removed.push(v.name),
                    // A proxy started meanwhile by another process uses it.
                    Err(e) if e.kind() == ErrorKind::Conflict => {}
                    Err(e) => return Err(e),
                }
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
