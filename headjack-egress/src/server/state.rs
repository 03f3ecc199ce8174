//! Sources (instances, known by address), their live policies and decision logs.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::guard::Guard;
use super::resolver::Resolver;
use super::{Config, events};
use crate::control::{Health, LogEntry, PolicySpec, Request, Response, SourceInfo, Via};
use crate::policy::{Policy, normalize_ip};

/// Repeats of one decision within this window fold into one log entry.
const FOLD_WINDOW: Duration = Duration::from_secs(2);

pub(crate) struct State {
    pub(crate) config: Config,
    pub(crate) http_addr: SocketAddr,
    pub(crate) dns_addr: Option<SocketAddr>,
    pub(crate) guard: Guard,
    pub(crate) resolver: Resolver,
    sources: RwLock<HashMap<IpAddr, Arc<Source>>>,
    connections: AtomicU64,
    started: Instant,
}

/// One instance's entry: its policy (watched by its open tunnels) and its decision log.
pub(crate) struct Source {
    pub(crate) ip: IpAddr,
    pub(crate) instance: String,
    /// `None` once the source is removed or replaced: its tunnels close.
    policy: watch::Sender<Option<Arc<Policy>>>,
    log: Mutex<Log>,
    connections: AtomicU64,
}

/// One registered source as the state file keeps it.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedSource {
    source: IpAddr,
    instance: String,
    policy: PolicySpec,
}

struct Log {
    entries: VecDeque<LogEntry>,
    last_seq: u64,
    last_at: Option<Instant>,
}

impl State {
    pub(crate) fn new(config: Config, http_addr: SocketAddr, dns_addr: Option<SocketAddr>) -> Self {
        let state = State {
            guard: Guard::new(config.proc_net.clone(), config.allow_loopback),
            resolver: Resolver::new(&config),
            config,
            http_addr,
            dns_addr,
            sources: RwLock::new(HashMap::new()),
            connections: AtomicU64::new(0),
            started: Instant::now(),
        };
        state.restore();
        state
    }

    /// Registers again the sources kept in the state file (a restarted proxy): their policies
    /// apply at once; their logs start empty. A file that cannot be read or parsed is reported
    /// and ignored: its sources stay denied (fail-closed) until registered again.
    fn restore(&self) {
        let Some(path) = &self.config.state_file else {
            return;
        };
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                events::lifecycle(
                    self.config.log_to_stderr,
                    "state_unreadable",
                    serde_json::json!({"file": path, "error": e.to_string()}),
                );
                return;
            }
        };
        let saved: Vec<SavedSource> = match serde_json::from_slice(&text) {
            Ok(s) => s,
            Err(e) => {
                events::lifecycle(
                    self.config.log_to_stderr,
                    "state_unreadable",
                    serde_json::json!({"file": path, "error": e.to_string()}),
                );
                return;
            }
        };
        for s in saved {
            // Each entry is checked as a `set` request is.
            let r = self.set(normalize_ip(s.source), s.instance, &s.policy);
            if !r.ok {
                events::lifecycle(
                    self.config.log_to_stderr,
                    "state_entry_refused",
                    serde_json::json!({"source": s.source, "error": r.error}),
                );
            }
        }
    }

    /// Writes the registered sources to the state file (a new file renamed over the old one, so
    /// a crash leaves the old or the new, never half of one). Called with the sources locked
    /// for writing, so saves happen in the order of the changes.
    fn save(&self, sources: &HashMap<IpAddr, Arc<Source>>) {
        let Some(path) = &self.config.state_file else {
            return;
        };
        let mut saved: Vec<SavedSource> = sources
            .values()
            .filter_map(|s| {
                let policy = s.policy.borrow().as_deref().map(PolicySpec::from_policy)?;
                Some(SavedSource {
                    source: s.ip,
                    instance: s.instance.clone(),
                    policy,
                })
            })
            .collect();
        saved.sort_by_key(|s| s.source);
        let tmp = path.with_extension("new");
        let written = serde_json::to_vec(&saved)
            .map_err(std::io::Error::other)
            .and_then(|b| std::fs::write(&tmp, b))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            events::lifecycle(
                self.config.log_to_stderr,
                "state_not_saved",
                serde_json::json!({"file": path, "error": e.to_string()}),
            );
        }
    }

    /// The source connecting from `ip`, if it has a policy.
    pub(crate) fn source(&self, ip: IpAddr) -> Option<Arc<Source>> {
        self.sources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&normalize_ip(ip))
            .cloned()
    }

    /// Counts an open connection of `source` (and all sources); `None` when its limit is reached.
    pub(crate) fn open_connection(
        self: &Arc<Self>,
        source: &Arc<Source>,
    ) -> Option<ConnectionGuard> {
        let limit = self.config.limits.max_connections_per_source;
        if source.connections.fetch_add(1, Ordering::Relaxed) >= limit {
            source.connections.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        self.connections.fetch_add(1, Ordering::Relaxed);
        Some(ConnectionGuard {
            state: self.clone(),
            source: source.clone(),
        })
    }

    /// Records a decision in the source's log and on stderr.
    pub(crate) fn record(
        &self,
        source: &Source,
        via: Via,
        host: &str,
        port: Option<u16>,
        allowed: bool,
        reason: &str,
    ) {
        let entry = {
            let mut log = source.log.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let fold = log.last_at.is_some_and(|t| now - t < FOLD_WINDOW)
                && log.entries.back().is_some_and(|e| {
                    e.via == via
                        && e.host == host
                        && e.port == port
                        && e.allowed == allowed
                        && e.reason == reason
                });
            log.last_at = Some(now);
            if fold {
                if let Some(last) = log.entries.back_mut() {
                    last.count += 1;
                }
                return;
            }
            log.last_seq += 1;
            let entry = LogEntry {
                seq: log.last_seq,
                time: crate::time::now(),
                via,
                host: host.to_string(),
                port,
                allowed,
                reason: reason.to_string(),
                count: 1,
            };
            if log.entries.len() >= self.config.limits.log_capacity.max(1) {
                log.entries.pop_front();
            }
            log.entries.push_back(entry.clone());
            entry
        };
        events::decision(
            self.config.log_to_stderr,
            Some(&source.instance),
            source.ip,
            &entry,
        );
    }

    /// Carries out one control request.
    pub(crate) async fn handle(&self, req: Request) -> Response {
        match req {
            Request::Probe { source } => probe(normalize_ip(source)).await,
            Request::Set {
                source,
                instance,
                policy,
            } => self.set(normalize_ip(source), instance, &policy),
            Request::Remove { source } => {
                let removed = {
                    let mut sources = self.sources.write().unwrap_or_else(|e| e.into_inner());
                    let removed = sources.remove(&normalize_ip(source));
                    if removed.is_some() {
                        self.save(&sources);
                    }
                    removed
                };
                match removed {
                    Some(s) => {
                        s.policy.send_replace(None);
                        events::lifecycle(
                            self.config.log_to_stderr,
                            "source_removed",
                            serde_json::json!({"source": s.ip, "instance": s.instance}),
                        );
                        Response::ok()
                    }
                    None => Response::error(format!(
                        "no source {source} is registered (list shows those that are)"
                    )),
                }
            }
            Request::Log {
                source,
                since,
                limit,
            } => match self.source(source) {
                None => Response::error(format!(
                    "no source {source} is registered (list shows those that are)"
                )),
                Some(s) => {
                    let log = s.log.lock().unwrap_or_else(|e| e.into_inner());
                    let entries: Vec<LogEntry> = log
                        .entries
                        .iter()
                        .filter(|e| e.seq > since)
                        .take(limit.unwrap_or(usize::MAX))
                        .cloned()
                        .collect();
                    let next = entries.last().map_or(since.min(log.last_seq), |e| e.seq);
                    Response {
                        ok: true,
                        entries: Some(entries),
                        next: Some(next),
                        ..Default::default()
                    }
                }
            },
            Request::List => {
                let sources = self.sources.read().unwrap_or_else(|e| e.into_inner());
                let mut list: Vec<SourceInfo> = sources
                    .values()
                    .map(|s| SourceInfo {
                        source: s.ip,
                        instance: s.instance.clone(),
                        policy: s
                            .policy
                            .borrow()
                            .as_deref()
                            .map_or(PolicySpec::Allow(vec![]), PolicySpec::from_policy),
                        connections: s.connections.load(Ordering::Relaxed),
                        last_seq: s.log.lock().unwrap_or_else(|e| e.into_inner()).last_seq,
                    })
                    .collect();
                list.sort_by_key(|s| s.source);
                Response {
                    ok: true,
                    sources: Some(list),
                    ..Default::default()
                }
            }
            Request::Health => Response {
                ok: true,
                health: Some(Health {
                    version: env!("CARGO_PKG_VERSION").to_string(),
                    uptime_secs: self.started.elapsed().as_secs(),
                    sources: self.sources.read().unwrap_or_else(|e| e.into_inner()).len(),
                    connections: self.connections.load(Ordering::Relaxed),
                    http: self.http_addr.to_string(),
                    dns: self.dns_addr.map(|a| a.to_string()),
                }),
                ..Default::default()
            },
        }
    }

    fn set(&self, ip: IpAddr, instance: String, spec: &PolicySpec) -> Response {
        let policy = match spec.to_policy() {
            Ok(p) => Arc::new(p),
            Err(e) => return Response::error(e.to_string()),
        };
        if ip.is_unspecified() || ip.is_multicast() {
            return Response::error(format!("{ip} cannot be the address of an instance"));
        }
        let mut sources = self.sources.write().unwrap_or_else(|e| e.into_inner());
        let summary = policy.to_string();
        match sources.get(&ip) {
            // The same instance: swap the policy; its tunnels re-check themselves.
            Some(s) if s.instance == instance => {
                s.policy.send_replace(Some(policy));
            }
            old => {
                // A new instance (or the address was reused): a fresh entry and log; the old
                // instance's tunnels close.
                if let Some(old) = old {
                    old.policy.send_replace(None);
                }
                let source = Source {
                    ip,
                    instance: instance.clone(),
                    policy: watch::Sender::new(Some(policy)),
                    log: Mutex::new(Log {
                        entries: VecDeque::new(),
                        last_seq: 0,
                        last_at: None,
                    }),
                    connections: AtomicU64::new(0),
                };
                sources.insert(ip, Arc::new(source));
            }
        }
        self.save(&sources);
        drop(sources);
        events::lifecycle(
            self.config.log_to_stderr,
            "source_set",
            serde_json::json!({"source": ip, "instance": instance, "policy": summary}),
        );
        Response::ok()
    }
}

/// How long a probe waits for an instance's answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// The probed port: "discard", almost never served; a refusal is as good an answer as an accept.
const PROBE_PORT: u16 = 9;

async fn probe(ip: IpAddr) -> Response {
    probe_at(SocketAddr::new(ip, PROBE_PORT)).await
}

async fn probe_at(addr: SocketAddr) -> Response {
    let ip = addr.ip();
    let t0 = Instant::now();
    let result = tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(addr)).await;
    let took = t0.elapsed();
    let answered = |how: &str| Response {
        ok: true,
        probe: Some(format!("{ip} answered ({how}) in {took:.1?}")),
        ..Default::default()
    };
    match result {
        Ok(Ok(_)) => answered("accepted"),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => answered("refused"),
        Ok(Err(e)) => Response::error(format!(
            "the egress proxy cannot reach {ip}: {e}; the instance's network carries no traffic to the proxy"
        )),
        Err(_) => Response::error(format!(
            "the egress proxy got no answer from {ip} within {PROBE_TIMEOUT:?}: the instance's internal network carries no traffic \
             (on a host where Docker runs next to rootful Podman, Docker's FORWARD drop policy blocks Podman's internal networks; see the headjack-egress README)"
        )),
    }
}

impl Source {
    /// The current policy (`None` once removed).
    pub(crate) fn policy(&self) -> Option<Arc<Policy>> {
        self.policy.borrow().clone()
    }

    /// Follows policy changes.
    pub(crate) fn watch(&self) -> watch::Receiver<Option<Arc<Policy>>> {
        self.policy.subscribe()
    }
}

/// An open connection, counted until dropped.
pub(crate) struct ConnectionGuard {
    state: Arc<State>,
    source: Arc<Source>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.source.connections.fetch_sub(1, Ordering::Relaxed);
        self.state.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(capacity: usize) -> Arc<State> {
        let mut config = Config {
            log_to_stderr: false,
            ..Config::default()
        };
        config.limits.log_capacity = capacity;
        config.limits.max_connections_per_source = 2;
        Arc::new(State::new(config, "127.0.0.1:3128".parse().unwrap(), None))
    }

    fn req(st: &State, r: Request) -> Response {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(st.handle(r))
    }

    #[test]
    fn probes_tell_an_answering_address_from_a_silent_one() {
        let st = state(10);
        let local = req(
            &st,
            Request::Probe {
                source: "127.0.0.1".parse().unwrap(),
            },
        );
        assert!(
            local.ok && local.probe.unwrap().contains("127.0.0.1 answered"),
            "loopback refuses port 9"
        );
        // A listener whose accept queue is full drops SYNs: an address that does not answer.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let silent = rt.block_on(async {
            let sock = tokio::net::TcpSocket::new_v4().unwrap();
            sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let listener = sock.listen(0).unwrap();
            let addr = listener.local_addr().unwrap();
            let mut held = Vec::new();
            for _ in 0..4 {
                if let Ok(Ok(s)) = tokio::time::timeout(
                    Duration::from_millis(300),
                    tokio::net::TcpStream::connect(addr),
                )
                .await
                {
                    held.push(s);
                }
            }
            probe_at(addr).await
        });
        assert!(!silent.ok && silent.error.unwrap().contains("no answer from 127.0.0.1"));
    }

    fn set(st: &State, ip: &str, instance: &str, allow: &[&str]) -> Response {
        req(
            st,
            Request::Set {
                source: ip.parse().unwrap(),
                instance: instance.into(),
                policy: PolicySpec::Allow(allow.iter().map(|s| s.to_string()).collect()),
            },
        )
    }

    fn log(st: &State, ip: &str, since: u64) -> Response {
        req(
            st,
            Request::Log {
                source: ip.parse().unwrap(),
                since,
                limit: None,
            },
        )
    }

    /// A restarted proxy serves the sources it had, from its state file; a broken file is
    /// ignored (fail-closed), never fatal.
    #[test]
    fn sources_survive_a_restart_through_the_state_file() {
        let dir = std::env::temp_dir().join(format!(
            "headjack-egress-state-{}-{}",
            std::process::id(),
            line!()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("sources.json");
        let with_file = || {
            let config = Config {
                log_to_stderr: false,
                state_file: Some(file.clone()),
                ..Config::default()
            };
            State::new(config, "127.0.0.1:3128".parse().unwrap(), None)
        };
        let st = with_file();
        assert!(set(&st, "10.213.0.2", "a", &["pypi.org"]).ok);
        assert!(set(&st, "10.213.0.3", "b", &["example.com"]).ok);
        assert!(set(&st, "10.213.0.2", "a", &["*.pythonhosted.org"]).ok);
        assert!(
            req(
                &st,
                Request::Remove {
                    source: "10.213.0.3".parse().unwrap()
                }
            )
            .ok
        );
        drop(st);
        let st = with_file();
        let a = st.source("10.213.0.2".parse().unwrap()).expect("restored");
        assert_eq!(a.instance, "a");
        assert_eq!(
            PolicySpec::from_policy(&a.policy.borrow().clone().unwrap()),
            PolicySpec::Allow(vec!["*.pythonhosted.org".into()])
        );
        assert!(
            st.source("10.213.0.3".parse().unwrap()).is_none(),
            "removed stays removed"
        );
        // A broken file: the proxy starts with no sources.
        std::fs::write(&file, b"{not json").unwrap();
        let st = with_file();
        assert!(st.source("10.213.0.2".parse().unwrap()).is_none());
        // An entry the policy parser refuses is skipped, the others restored.
        std::fs::write(
            &file,
            br#"[{"source":"10.213.0.4","instance":"c","policy":{"allow":["a..b"]}},
                 {"source":"10.213.0.5","instance":"d","policy":{"deny":["x.test"]}}]"#,
        )
        .unwrap();
        let st = with_file();
        assert!(st.source("10.213.0.4".parse().unwrap()).is_none());
        assert!(st.source("10.213.0.5".parse().unwrap()).is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn set_list_log_remove() {
        let st = state(3);
        assert!(set(&st, "10.0.0.2", "i1", &["a.test"]).ok);
        let bad = set(&st, "10.0.0.3", "i2", &["a..test"]);
        assert!(!bad.ok && bad.error.unwrap().contains("empty label"));
        let src = st
            .source("::ffff:10.0.0.2".parse().unwrap())
            .expect("mapped address finds the source");
        for host in ["a", "b", "b", "c", "d"] {
            st.record(&src, Via::Connect, host, Some(443), false, "x");
        }
        let r = log(&st, "10.0.0.2", 0);
        let entries = r.entries.unwrap();
        // Capacity 3: "a" dropped; "b" folded twice.
        assert_eq!(
            entries
                .iter()
                .map(|e| (e.host.as_str(), e.seq, e.count))
                .collect::<Vec<_>>(),
            [("b", 2, 2), ("c", 3, 1), ("d", 4, 1)]
        );
        assert_eq!(r.next, Some(4));
        let r = log(&st, "10.0.0.2", 4);
        assert_eq!((r.entries.unwrap().len(), r.next), (0, Some(4)));
        let list = req(&st, Request::List).sources.unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].policy, PolicySpec::Allow(vec!["a.test".into()]));
        assert_eq!(req(&st, Request::Health).health.unwrap().sources, 1);
        assert!(
            req(
                &st,
                Request::Remove {
                    source: "10.0.0.2".parse().unwrap()
                }
            )
            .ok
        );
        assert!(st.source("10.0.0.2".parse().unwrap()).is_none());
        assert!(src.policy().is_none(), "a removed source's tunnels see it");
        assert!(!log(&st, "10.0.0.2", 0).ok);
        assert!(
            !req(
                &st,
                Request::Remove {
                    source: "10.0.0.2".parse().unwrap()
                }
            )
            .ok
        );
    }

    #[test]
    fn live_changes_reach_watchers_and_a_new_instance_starts_a_new_log() {
        let st = state(10);
        set(&st, "10.0.0.2", "i1", &["a.test"]);
        let src = st.source("10.0.0.2".parse().unwrap()).unwrap();
        let mut rx = src.watch();
        st.record(&src, Via::Http, "a.test", Some(80), true, "ok");
        set(&st, "10.0.0.2", "i1", &["b.test"]);
        assert!(rx.has_changed().unwrap());
        assert_eq!(
            rx.borrow_and_update().as_ref().unwrap().to_string(),
            "allow-list [b.test]"
        );
        assert_eq!(
            log(&st, "10.0.0.2", 0).entries.unwrap().len(),
            1,
            "same instance keeps its log"
        );
        set(&st, "10.0.0.2", "i2", &["b.test"]);
        assert!(
            rx.borrow_and_update().is_none(),
            "the old instance's tunnels close"
        );
        assert_eq!(log(&st, "10.0.0.2", 0).entries.unwrap().len(), 0);
    }

    #[test]
    fn connection_limits_per_source() {
        let st = state(10);
        set(&st, "10.0.0.2", "i1", &[]);
        let src = st.source("10.0.0.2".parse().unwrap()).unwrap();
        let a = st.open_connection(&src).unwrap();
        let _b = st.open_connection(&src).unwrap();
        assert!(st.open_connection(&src).is_none());
        drop(a);
        assert!(st.open_connection(&src).is_some());
    }
}
