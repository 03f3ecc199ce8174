//! Measures (prints, asserts nothing) what the egress proxy costs, on a real engine:
//! - the time of an HTTP request and of an HTTPS request (CONNECT) through the proxy vs direct,
//!   from the same client container to the same server (curl's `time_total`, a fresh connection
//!   and name lookup per request, the paths interleaved). Direct, the client looks the name up;
//!   through the proxy, the proxy does: "direct, by address" shows the lookup's share;
//! - a control round trip the way the core makes it (`docker exec <proxy> headjack-egress ctl`);
//! - the proxy's resident memory idle and after the load, and the static binary's size.
//!
//! ```text
//! source tests/env/run/env.sh
//! cargo run -p headjack-egress --example latency            # Docker
//! cargo run -p headjack-egress --example latency -- podman  # Podman
//! HEADJACK_EGRESS_BENCH_N=500 cargo run -p headjack-egress --example latency
//! ```

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::{Created, Engine, env};

fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "docker".into());
    let engine = match which.as_str() {
        "docker" => Engine {
            name: "docker",
            host: env("HEADJACK_TEST_DOCKER_HOST"),
        },
        "podman" => Engine {
            name: "podman",
            host: env("HEADJACK_TEST_PODMAN_HOST"),
        },
        other => panic!("unknown engine `{other}` (docker or podman)"),
    };
    let n: usize = std::env::var("HEADJACK_EGRESS_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let busybox = env("HEADJACK_TEST_BUSYBOX");
    let proxy_image = engine.proxy_image();
    let tools = engine.tools_image();

    let created = Created::new(&engine);
    let p = format!("hj-egress-bench-{}-{}", engine.name, std::process::id());
    let net = created.network(&format!("{p}-net"), &[]);
    let srv = created.container(
        &format!("{p}-outside"),
        &[
            "--network",
            &net,
            "--network-alias",
            "allowed.test",
            &tools,
            "python3",
            "/opt/egress-test/outside.py",
        ],
    );
    let shared = format!("container:{srv}");
    created.container(
        &format!("{p}-web"),
        &[
            "--network",
            &shared,
            &busybox,
            "sh",
            "-c",
            "mkdir -p /www && echo hi > /www/index.html && exec httpd -f -p 80 -h /www",
        ],
    );
    let px = created.container(
        &format!("{p}-proxy"),
        &[
            "--network",
            &net,
            "--cap-drop",
            "ALL",
            "--cap-add",
            "NET_BIND_SERVICE",
            "--read-only",
            &proxy_image,
        ],
    );
    let client = created.container(
        &format!("{p}-client"),
        &["--network", &net, &tools, "sleep", "infinity"],
    );
    let px_ip = engine.ip(&px, &net);
    let srv_ip = engine.ip(&srv, &net);
    let client_ip = engine.ip(&client, &net);
    let deadline = Instant::now() + Duration::from_secs(90);
    while engine.sh(&srv, "test -f /srv/outside/ready").code != 0 {
        assert!(Instant::now() < deadline, "outside.py did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
    let set = format!(
        r#"{{"op":"set","source":"{client_ip}","instance":"bench","policy":{{"allow":["allowed.test"]}}}}"#
    );
    engine.ok(&["exec", &px, "/headjack-egress", "ctl", &set]);
    std::thread::sleep(Duration::from_millis(500));
    let rss_idle = rss_kib(&engine, &px);

    // Interleaved so that drift on the machine hits both paths alike.
    let proxy = format!("http://{px_ip}:3128");
    let script = format!(
        "for i in $(seq {total}); do \
           for u in http://allowed.test/ https://allowed.test/; do \
             curl -sk -o /dev/null -w \"D $u %{{time_total}}\\n\" --noproxy '*' $u; \
             curl -sk -o /dev/null -w \"P $u %{{time_total}}\\n\" -x {proxy} $u; \
           done; \
           curl -sk -o /dev/null -w \"A http://allowed.test/ %{{time_total}}\\n\" --noproxy '*' http://{srv_ip}/; \
         done",
        total = n + 20,
    );
    let t0 = Instant::now();
    let run = engine.sh(&client, &script);
    assert_eq!(run.code, 0, "{}", run.all());
    let took = t0.elapsed();
    let rss_loaded = rss_kib(&engine, &px);
    let mut samples: std::collections::BTreeMap<(String, String), Vec<f64>> = Default::default();
    for line in run.out.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let [path, url, secs] = f[..] {
            samples
                .entry((url.to_string(), path.to_string()))
                .or_default()
                .push(secs.parse::<f64>().unwrap() * 1000.0);
        }
    }

    let ctl_times: Vec<f64> = (0..20)
        .map(|_| {
            let t = Instant::now();
            engine.ok(&["exec", &px, "/headjack-egress", "ctl", r#"{"op":"health"}"#]);
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();

    println!(
        "headjack-egress on {} ({}), {n} requests per path after 20 warm-up, {took:.1?} in all",
        engine.name, engine.host
    );
    println!(
        "{:<24} {:>10} {:>10} {:>10} {:>12}",
        "request", "p50 ms", "p90 ms", "mean ms", "added p50"
    );
    for url in ["http://allowed.test/", "https://allowed.test/"] {
        let direct = stats(&samples[&(url.to_string(), "D".to_string())][20..]);
        let proxied = stats(&samples[&(url.to_string(), "P".to_string())][20..]);
        println!(
            "{:<24} {:>10.2} {:>10.2} {:>10.2}",
            format!("{url} direct"),
            direct.0,
            direct.1,
            direct.2
        );
        if let Some(by_addr) = samples.get(&(url.to_string(), "A".to_string())) {
            let a = stats(&by_addr[20..]);
            println!(
                "{:<24} {:>10.2} {:>10.2} {:>10.2}",
                "  direct, by address", a.0, a.1, a.2
            );
        }
        println!(
            "{:<24} {:>10.2} {:>10.2} {:>10.2} {:>+11.2}",
            format!("{url} proxy"),
            proxied.0,
            proxied.1,
            proxied.2,
            proxied.0 - direct.0
        );
    }
    let ctl = stats(&ctl_times);
    println!(
        "control round trip (docker exec … ctl health): p50 {:.1} ms, p90 {:.1} ms",
        ctl.0, ctl.1
    );
    println!(
        "proxy RSS: idle {} KiB, after the load {} KiB; static binary {} KiB",
        rss_idle.map_or("unavailable".into(), |k| k.to_string()),
        rss_loaded.map_or("unavailable".into(), |k| k.to_string()),
        std::fs::metadata(support::proxy_binary())
            .map(|m| m.len() / 1024)
            .unwrap_or(0)
    );
}

/// p50, p90, mean.
fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let at = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.9), s.iter().sum::<f64>() / s.len() as f64)
}

/// The proxy process's VmRSS, read from the host's /proc (local engines only).
fn rss_kib(engine: &Engine, container: &str) -> Option<u64> {
    let pid = engine.ok(&["inspect", "-f", "{{.State.Pid}}", container]);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
