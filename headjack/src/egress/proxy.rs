//! The shared proxy: its image (built locally from the embedded binary), its container, and
//! the control requests headjack sends it through the engine's exec.

use super::*;

/// Sends one control request to `proxy` (through the engine's exec of `headjack-egress ctl`).
pub(super) async fn ctl(engine: &Engine, proxy: &str, request: &Request) -> Result<Response> {
    let mut all = ctl_all(engine, proxy, std::slice::from_ref(request)).await?;
    Ok(all.remove(0))
}

/// Sends control requests to `proxy` in one exec (each exec costs the engine ~100 ms); one
/// response per request, in order.
pub(super) async fn ctl_all(
    engine: &Engine,
    proxy: &str,
    requests: &[Request],
) -> Result<Vec<Response>> {
    let mut cmd = vec!["/headjack-egress".to_string(), "ctl".to_string()];
    cmd.extend(requests.iter().map(Request::to_line));
    let out = engine
        .exec_collect(proxy, cmd, CTL_TIMEOUT)
        .await
        .map_err(|e| e.context(format!("talking to the egress proxy {proxy}")))?;
    let answers: Vec<Response> = out
        .stdout
        .lines()
        .filter_map(|l| Response::parse_line(l).ok())
        .collect();
    if answers.len() != requests.len() {
        return Err(Error::new(
            ErrorKind::Internal,
            format!(
                "the egress proxy {proxy} did not answer {} control request(s) (exit {}): {}; it \
                 may have stopped (its log: `docker logs {proxy}`)",
                requests.len() - answers.len().min(requests.len()),
                out.code,
                out.stderr.trim()
            ),
        ));
    }
    Ok(answers)
}

/// A control request that must succeed.
pub(super) async fn ctl_ok(
    engine: &Engine,
    proxy: &str,
    request: &Request,
    what: &str,
) -> Result<Response> {
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

/// Where the proxy keeps its state file (a volume of its own).
const STATE_DIR: &str = "/state";

/// The volume that keeps proxy `proxy`'s registered instances across its restarts.
pub(super) fn state_volume(proxy: &str) -> String {
    format!("{proxy}-state")
}

/// Makes sure the proxy of this version runs on `engine` and answers; returns its name.
pub(super) async fn ensure_proxy(engine: &Engine) -> Result<String> {
    // One at a time in this process: concurrent spawns on a fresh engine would each create the
    // outside network, and Docker's duplicate check does not hold under concurrent creates
    // (two networks of one name, and every later use of the name is ambiguous).
    static MAKING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = MAKING.lock().await;
    ensure_proxy_once(engine, false).await
}

async fn ensure_proxy_once(engine: &Engine, retried: bool) -> Result<String> {
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
            // The registered instances and their policies, kept across a restart of the proxy
            // (its root filesystem is read-only): without it, a restarted proxy would deny
            // every instance until each registered again.
            let state = state_volume(&name);
            engine
                .create_volume(
                    &state,
                    std::collections::HashMap::from([(LABEL.to_string(), "state".to_string())]),
                )
                .await?;
            let mut host = serde_json::json!({
                "NetworkMode": OUTSIDE,
                "CapDrop": ["ALL"],
                "CapAdd": ["NET_BIND_SERVICE"],
                "ReadonlyRootfs": true,
                "SecurityOpt": ["no-new-privileges"],
                "PidsLimit": 64,
                "Memory": 64u64 << 20,
                "RestartPolicy": {"Name": "unless-stopped"},
                "Mounts": [{"Type": "volume", "Source": state, "Target": STATE_DIR}],
            });
            if engine.info().kind == EngineKind::Docker {
                host["LogConfig"] = serde_json::json!({"Type": "json-file",
                    "Config": {"max-size": "10m", "max-file": "2"}});
            }
            let body = serde_json::json!({
                "Image": image_tag(),
                "Cmd": ["--state", format!("{STATE_DIR}/sources.json")],
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
        // Another process may have started it meanwhile, or removed it (a `sweep` that saw
        // no instance needing it): then make it again, once.
        let now = engine.inspect_raw(&name).await?;
        if now.is_none() && !retried {
            tracing::debug!(proxy = %name, "the egress proxy vanished before it started; making it again");
            return Box::pin(ensure_proxy_once(engine, true)).await;
        }
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
pub(super) async fn ensure_image(engine: &Engine) -> Result<()> {
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
