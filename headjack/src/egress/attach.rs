//! One instance's side: its internal network, the proxy attached to it, registration at spawn,
//! live policy changes, the log, and the teardown on removal.

use super::proxy::*;
use super::*;

/// The egress side of an instance being spawned: its network exists and the proxy is on it.
pub(crate) struct Prepared {
    pub network: String,
    pub proxy: String,
    pub proxy_ip: String,
    pub(super) policy: PolicySpec,
}

/// Makes the instance network `headjack-<id>` and attaches the proxy to it.
pub(crate) async fn prepare(engine: &Engine, egress: &Egress, id: &str) -> Result<Prepared> {
    let policy = egress.policy()?;
    let span = tracing::info_span!("headjack.egress.prepare", instance = id);
    async {
        // The network first: a young instance network keeps a concurrent `sweep` from removing
        // the proxy this spawn is about to use.
        let proxy = proxy_name();
        let network = format!("headjack-{id}");
        let labels = serde_json::json!({
            LABEL: "instance",
            labels::INSTANCE: id,
            CREATED_LABEL: now_secs().to_string(),
        });
        // Docker's default address pools hold about 30 bridge networks: each instance network
        // gets a /28 of 10.213.0.0/16 of its own, another one when that one is taken.
        let mut attempt = 0;
        let proxy_at = loop {
            let r: u32 = rand::random();
            let (third, fourth) = (((r >> 4) & 255) as u8, ((r & 15) * 16) as u8);
            let subnet = format!("10.213.{third}.{fourth}/28");
            match engine
                .create_internal_network(&network, &subnet, &labels)
                .await
            {
                // The proxy's address on it: fixed (the first after the gateway), so that a
                // restarted proxy is where the instance's DNS and proxy settings point.
                Ok(()) => break std::net::Ipv4Addr::new(10, 213, third, fourth + 2),
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
        };
        let attached = async {
            ensure_proxy(engine).await?;
            engine
                .connect_network(&network, &proxy, Some(proxy_at))
                .await?;
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
            // The policy, then the probe, in one exec.
            let mut answers = ctl_all(
                engine,
                &self.proxy,
                &[
                    Request::Set {
                        source: ip,
                        instance: instance.to_string(),
                        policy: self.policy.clone(),
                    },
                    Request::Probe { source: ip },
                ],
            )
            .await?;
            let probe = answers.pop().unwrap_or_default();
            let set = answers.pop().unwrap_or_default();
            if !set.ok {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "registering the egress policy of instance {instance}: the egress proxy {} \
                         refused: {}",
                        self.proxy,
                        set.error.unwrap_or_default()
                    ),
                ));
            }
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

pub(super) fn parse_ip(s: &str) -> Result<std::net::IpAddr> {
    s.parse()
        .map_err(|_| Error::internal(format!("the engine reported an invalid address {s:?}")))
}

pub(super) fn apt_tar(conf: &str) -> std::io::Result<Vec<u8>> {
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
pub(super) async fn teardown(engine: &Engine, network: &str, proxy: &str) {
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
