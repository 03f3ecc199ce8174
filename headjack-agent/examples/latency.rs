//! Measures the agent against the engine's own paths, in one run against the same engine.
//! Prints; asserts nothing.
//!
//! ```text
//! source tests/env/run/env.sh
//! cargo run --release -p headjack-agent --example latency [-- docker|podman|gvisor ...]
//! ```
//!
//! - exec round trip of `true`: agent over the attach stream vs the engine's exec (create,
//!   start, drain, inspect: what the core does today);
//! - cold spawn → first exec done: create + attach + start + handshake + exec vs create + start
//!   + engine exec (with docker-init and `sleep infinity`, as today);
//! - exec throughput: 8 instances in parallel, and 8 sessions of one instance;
//! - 100 MiB write + read: agent vs the archive API (tar upload / download);
//! - the agent's idle RSS in the container and the binary's size.

#[path = "../tests/common/engine.rs"]
#[allow(dead_code)]
mod engine;

use std::time::{Duration, Instant};

use bollard::exec::StartExecResults;
use bollard::models::{ContainerCreateBody, ExecConfig, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use engine::{Engine, Opts, start_agent};
use futures_util::StreamExt;
use headjack_agent::client::{Channel, ExecRequest, WriteFileRequest};

const RUNS: usize = 300;
const ENGINE_RUNS: usize = 100;
const COLD_RUNS: usize = 10;

fn pct(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn summary(name: &str, v: &[Duration]) -> Duration {
    let p50 = pct(v.to_vec(), 0.5);
    println!(
        "  {name:<44} p50 {:>11}  p90 {:>11}  p99 {:>11}  (n={})",
        ms(p50),
        ms(pct(v.to_vec(), 0.9)),
        ms(pct(v.to_vec(), 0.99)),
        v.len()
    );
    p50
}

/// A field of the agent's /proc/1/status, read through the agent.
async fn agent_status(ch: &Channel, field: &str) -> String {
    let status = ch
        .read_file("/proc/1/status", None)
        .await
        .unwrap()
        .read_to_end()
        .await
        .unwrap();
    String::from_utf8_lossy(&status)
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

async fn agent_true(ch: &Channel) {
    let st = ch
        .exec(ExecRequest::new(["true"]))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert!(st.success());
}

/// `docker exec <c> true` through the API, as the core runs an exec today.
async fn engine_true(e: &Engine, id: &str) {
    let x = e
        .docker
        .create_exec(
            id,
            ExecConfig {
                cmd: Some(vec!["true".into()]),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    if let StartExecResults::Attached { mut output, .. } =
        e.docker.start_exec(&x.id, None).await.unwrap()
    {
        while output.next().await.is_some() {}
    }
    let st = e.docker.inspect_exec(&x.id).await.unwrap();
    assert_eq!(st.exit_code, Some(0));
}

/// A container as the core makes one today: docker-init and a keep-alive.
async fn plain_container(e: &Engine) -> engine::Container {
    let body = ContainerCreateBody {
        image: Some(engine::busybox()),
        entrypoint: Some(vec!["sleep".into(), "infinity".into()]),
        labels: Some([("io.headjack.test".to_string(), "1".to_string())].into()),
        host_config: Some(HostConfig {
            init: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = e
        .docker
        .create_container(Some(CreateContainerOptionsBuilder::default().build()), body)
        .await
        .unwrap();
    let c = engine::Container {
        engine: e.clone(),
        id: created.id,
        agent_path: String::new(),
    };
    engine::start(&c).await;
    c
}

/// A tar holding one file of `size` zero bytes (ustar, built by hand).
fn tar_of(name: &str, size: usize) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut out = h.to_vec();
    out.resize(512 + size.div_ceil(512) * 512 + 1024, 0);
    out
}

async fn bench(e: Engine) {
    println!("\n== {} ({})", e.name, e.host);
    // Exec round trips in one warm instance each.
    let (c, ch) = start_agent(&e, Opts::default()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    println!(
        "agent idle right after the handshake: VmRSS {}",
        agent_status(&ch, "VmRSS:").await
    );
    if std::env::var("HJ_BENCH_ONLY").as_deref() == Ok("transfer") {
        let (w, r) = transfer(&ch, "/tmp/100m").await;
        println!("100 MiB over attach: write {} + read {}", ms(w), ms(r));
        let s2 = engine::relay_session(&c, None).await;
        let (w, r) = transfer(&s2, "/tmp/100m").await;
        println!("100 MiB over a relay session: write {} + read {}", ms(w), ms(r));
        return;
    }
    for _ in 0..20 {
        agent_true(&ch).await;
    }
    let mut agent = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        agent_true(&ch).await;
        agent.push(t.elapsed());
    }
    let plain = plain_container(&e).await;
    for _ in 0..5 {
        engine_true(&e, &plain.id).await;
    }
    let mut eng = Vec::new();
    for _ in 0..ENGINE_RUNS {
        let t = Instant::now();
        engine_true(&e, &plain.id).await;
        eng.push(t.elapsed());
    }
    println!("exec round trip of `true`:");
    let a = summary("agent, over the attach stream", &agent);
    let b = summary("engine exec (create+start+inspect)", &eng);
    println!(
        "  ratio agent/engine at p50: {:.4}",
        a.as_secs_f64() / b.as_secs_f64()
    );

    // A second session through the relay: the same round trip.
    let s2 = engine::relay_session(&c, None).await;
    let mut relay = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        agent_true(&s2).await;
        relay.push(t.elapsed());
    }
    summary("agent, over a relay session (engine exec)", &relay);
    let t = Instant::now();
    let _s3 = engine::relay_session(&c, None).await;
    println!("  opening a relay session: {}", ms(t.elapsed()));

    // Cold spawn → first exec done.
    let mut cold_agent = Vec::new();
    let mut cold_engine = Vec::new();
    for _ in 0..COLD_RUNS {
        let t = Instant::now();
        let (_c2, ch2) = start_agent(&e, Opts::default()).await;
        agent_true(&ch2).await;
        cold_agent.push(t.elapsed());
        let t = Instant::now();
        let p = plain_container(&e).await;
        engine_true(&e, &p.id).await;
        cold_engine.push(t.elapsed());
    }
    println!("cold spawn → first exec done:");
    summary("agent (create+attach+start+hello+exec)", &cold_agent);
    summary("today (create+start+engine exec)", &cold_engine);

    // Throughput: 8 instances in parallel.
    let mut inst = Vec::new();
    for _ in 0..8 {
        inst.push(start_agent(&e, Opts::default()).await);
    }
    let window = Duration::from_secs(3);
    let count = |chs: Vec<Channel>| async move {
        let t = Instant::now();
        let tasks: Vec<_> = chs
            .into_iter()
            .map(|ch| {
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while t.elapsed() < window {
                        agent_true(&ch).await;
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        total as f64 / t.elapsed().as_secs_f64()
    };
    let rate = count(inst.iter().map(|(_, ch)| ch.clone()).collect()).await;
    println!("exec throughput, 8 instances in parallel: {rate:.0} execs/s");
    let mut sessions = vec![ch.clone()];
    for _ in 0..7 {
        sessions.push(engine::relay_session(&c, None).await);
    }
    let rate = count(sessions).await;
    println!("exec throughput, 8 sessions of one instance: {rate:.0} execs/s");
    drop(inst);

    // 100 MiB write + read.
    let size = 100usize << 20;
    let (aw, ar) = transfer(&ch, "/tmp/100m").await;
    let tar = tar_of("100m", size);
    let t = Instant::now();
    e.docker
        .upload_to_container(
            &plain.id,
            Some(
                UploadToContainerOptionsBuilder::default()
                    .path("/tmp")
                    .build(),
            ),
            bollard::body_full(tar.into()),
        )
        .await
        .unwrap();
    let tw = t.elapsed();
    let t = Instant::now();
    let mut s = e.docker.download_from_container(
        &plain.id,
        Some(
            DownloadFromContainerOptionsBuilder::default()
                .path("/tmp/100m")
                .build(),
        ),
    );
    let mut n = 0;
    while let Some(c) = s.next().await {
        n += c.unwrap().len();
    }
    assert!(n >= size);
    let tr = t.elapsed();
    println!(
        "100 MiB write + read: agent {} + {} = {}; archive API {} + {} = {}",
        ms(aw),
        ms(ar),
        ms(aw + ar),
        ms(tw),
        ms(tr),
        ms(tw + tr)
    );

    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "agent in the container after all that: VmRSS {} (peak {})",
        agent_status(&ch, "VmRSS:").await,
        agent_status(&ch, "VmHWM:").await
    );
    drop((c, plain));
}

/// The agent as a plain child process over pipes (no engine in the path): its own cost.
async fn child() {
    println!("\n== the static agent as a child process over pipes (no engine)");
    let mut p = tokio::process::Command::new(engine::static_agent_dir().join("headjack-agent"))
        .args(["--no-socket"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let ch = Channel::open(p.stdout.take().unwrap(), p.stdin.take().unwrap())
        .await
        .unwrap();
    for _ in 0..20 {
        agent_true(&ch).await;
    }
    let mut v = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        agent_true(&ch).await;
        v.push(t.elapsed());
    }
    summary("exec `true`", &v);
    let mut v = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        ch.stat("/", false).await.unwrap();
        v.push(t.elapsed());
    }
    summary("stat / (a request without a process)", &v);
    let (w, r) = transfer(&ch, "/tmp/hj-latency-100m").await;
    println!("100 MiB write {} + read {}", ms(w), ms(r));
    let _ = std::fs::remove_file("/tmp/hj-latency-100m");
}

/// Writes then reads 100 MiB through the agent.
async fn transfer(ch: &Channel, path: &str) -> (Duration, Duration) {
    let size = 100usize << 20;
    let block = vec![0u8; 256 << 10];
    let t = Instant::now();
    let mut w = ch.write_file(WriteFileRequest::new(path)).await.unwrap();
    for _ in 0..size / block.len() {
        w.write(&block).await.unwrap();
    }
    w.finish().await.unwrap();
    let aw = t.elapsed();
    let t = Instant::now();
    let mut r = ch.read_file(path, None).await.unwrap();
    let mut n = 0;
    while let Some(c) = r.next().await {
        n += c.unwrap().len();
    }
    assert_eq!(n, size);
    (aw, t.elapsed())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bin = engine::static_agent_dir().join("headjack-agent");
    println!(
        "headjack-agent static binary: {} bytes ({})",
        std::fs::metadata(&bin).unwrap().len(),
        bin.display()
    );
    let args: Vec<String> = std::env::args().skip(1).collect();
    let names: Vec<&str> = if args.is_empty() {
        vec!["docker", "podman"]
    } else {
        args.iter().map(String::as_str).collect()
    };
    for n in names {
        if n == "child" {
            child().await;
            continue;
        }
        let e = match n {
            "docker" => Engine::docker(),
            "podman" => Engine::podman(),
            "gvisor" => Engine::gvisor(),
            other => panic!("unknown engine {other}: docker, podman or gvisor"),
        };
        bench(e).await;
    }
}
