//! The benchmark: headjack against the docker CLI on the same engine, in the same run.
//!
//! `cargo run --release -p headjack --example bench` (after `bash tests/env/up.sh`).
//! Prints medians and ratios (headjack / CLI; below 1.0 means headjack is faster):
//! - spawn (image local) to first exec completing, vs `docker run -d` + `docker exec`, cold and
//!   from a warm [`headjack::Pool`], and from the pool with a claim (`Pool::take_with`: env,
//!   workdir, user, a file, a label) against a plain take and a cold spawn setting the same;
//! - exec round trip of `true`, vs `docker exec`;
//! - 32 concurrent spawns (wall time), vs 32 parallel `docker run -d`;
//! - resolve of an unchanged Dockerfile with a 10,000-file / 100 MB context, vs a fully cached
//!   `docker build` of the same;
//! - the same content copied to a fresh directory (a hit: same key, new tag), vs `docker build`
//!   of the copy;
//! - the same after changing one file that the Dockerfile copies last, vs `docker build`;
//! - on Docker, BuildKit against the classic builder: a first build, a rebuild after changing
//!   the last-copied file, and a dependency reinstall (apt) without and with a cache mount;
//! - with `--python`, exec round trip and spawn latency through the Python API (needs the venv
//!   that `headjack-py/run-tests.sh` makes).
//!
//! Options: `--rounds N` (default 15), `--quick` (smaller context, fewer rounds), `--builders`
//! (only the BuildKit/classic comparison, on Docker), `--egress` (only the egress comparison:
//! spawn with a policy vs without, and a request through the proxy vs direct), `--pool` (only
//! spawn, pool and claim).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use headjack::{Client, Spec};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn report(name: &str, ours: Duration, theirs: Duration, target: f64) {
    let ratio = ours.as_secs_f64() / theirs.as_secs_f64();
    let verdict = if ratio <= target { "ok" } else { "MISSED" };
    println!(
        "{name:<58} headjack {:>10}  cli {:>10}  ratio {ratio:.2} (target <= {target}) {verdict}",
        ms(ours),
        ms(theirs)
    );
}

fn docker(host: &str, args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", host)
        .output()
        .expect("docker CLI");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `docker build -q -t tag dir`; returns how long it took.
fn cli_build(host: &str, tag: &str, dir: &Path) -> Duration {
    let t = Instant::now();
    docker(host, &["build", "-q", "-t", tag, dir.to_str().unwrap()]);
    t.elapsed()
}

/// `docker run -d` of the keep-alive the library uses; returns the container ID.
fn cli_run(host: &str, image: &str) -> String {
    docker(
        host,
        &[
            "run",
            "-d",
            "--init",
            "--label",
            "io.headjack.test=bench",
            image,
            "sleep",
            "infinity",
        ],
    )
}

fn write_context(dir: &Path, files: usize, total_bytes: usize, base: &str) {
    let per = total_bytes / files;
    let chunk: Vec<u8> = (0..per).map(|i| (i * 7 % 251) as u8).collect();
    for i in 0..files {
        let sub = dir.join(format!("d{:03}", i / 100));
        std::fs::create_dir_all(&sub).unwrap();
        let mut data = chunk.clone();
        data.extend_from_slice(i.to_string().as_bytes());
        std::fs::write(sub.join(format!("f{i:05}.bin")), data).unwrap();
    }
    std::fs::write(dir.join("last.txt"), "v1").unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM {base}\nCOPY d000 /ctx/d000\nCOPY . /ctx/\nCOPY last.txt /last.txt\n"),
    )
    .unwrap();
}

#[tokio::main]
async fn main() -> headjack::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let python = args.iter().any(|a| a == "--python");
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(if quick { 5 } else { 15 });
    let host = std::env::var("HEADJACK_TEST_HOST")
        .unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let image = std::env::var("HEADJACK_TEST_BUSYBOX")
        .unwrap_or_else(|_| "localhost/headjack-test/busybox:latest".into());
    let client = Client::connect_to(&host).await?;
    println!(
        "engine: {:?} {} (API {}) at {host}; {rounds} rounds\n",
        client.info().kind,
        client.info().version,
        client.info().api_version
    );
    if args.iter().any(|a| a == "--egress") {
        // Only the egress comparison.
        return egress(&client, &host, &image, rounds).await;
    }
    if args.iter().any(|a| a == "--fork") {
        // Only fork vs cold spawn (issue 13).
        return fork_section(&client, &image, rounds).await;
    }
    if args.iter().any(|a| a == "--builders") {
        // Only the builder comparison (section 6).
        let result = builders(&client, &host, &image, rounds.min(5)).await;
        let _ = std::fs::remove_dir_all(
            std::env::temp_dir().join(format!("headjack-bench-{}", std::process::id())),
        );
        return result;
    }
    let spec = || {
        Spec::new()
            .base(image.as_str())
            .label("io.headjack.test", "bench")
    };

    // Warm up both paths once.
    let env = client.spawn(spec()).await?;
    env.exec(["true"]).await?;
    drop(env);
    let id = cli_run(&host, &image);
    docker(&host, &["rm", "-f", &id]);

    // 1. spawn to first exec.
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let env = client.spawn(spec()).await?;
        env.exec(["true"]).await?;
        ours.push(t.elapsed());
        env.remove().await?;

        let t = Instant::now();
        let id = cli_run(&host, &image);
        docker(&host, &["exec", &id, "true"]);
        theirs.push(t.elapsed());
        docker(&host, &["rm", "-f", &id]);
    }
    let spawn_ours = median(ours);
    let spawn_cli = median(theirs);
    report(
        "spawn (image local) -> first exec done",
        spawn_ours,
        spawn_cli,
        0.8,
    );

    // 1b. The same from a warm pool (instances spawned ahead of time, refilled in the background).
    let pool = headjack::Pool::new(&client, spec(), 2).await?;
    let mut ours = Vec::new();
    for _ in 0..rounds {
        while pool.ready() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let t = Instant::now();
        let env = pool.take().await?;
        env.exec(["true"]).await?;
        ours.push(t.elapsed());
        env.remove().await?;
    }
    drop(pool);
    let take = median(ours);
    report(
        "spawn from a warm Pool -> first exec done",
        take,
        spawn_cli,
        0.8,
    );

    // 1c. A pool claim (env, workdir, user, a file, a label) applied to a pooled instance, vs a
    // plain take and a cold spawn that sets the same in its spec.
    let pool = headjack::Pool::new(&client, spec(), 2).await?;
    let mut ours = Vec::new();
    for i in 0..rounds {
        while pool.ready() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let claim = headjack::pool::Claim::new()
            .env("TASK", i.to_string())
            .workdir("/work")
            .user("nobody")
            .file("/work/task.json", b"{}".to_vec())
            .label("task", i.to_string());
        let t = Instant::now();
        let env = pool.take_with(claim).await?;
        env.exec(["true"]).await?;
        ours.push(t.elapsed());
        env.remove().await?;
    }
    drop(pool);
    let take_with = median(ours);
    let mut cold = Vec::new();
    for i in 0..rounds {
        let t = Instant::now();
        let env = client
            .spawn(
                spec()
                    .env("TASK", i.to_string())
                    .user("nobody")
                    .label("task", i.to_string()),
            )
            .await?;
        env.create_dir_all("/work").await?;
        env.write_file("/work/task.json", b"{}").await?;
        env.exec(headjack::Exec::new(["true"]).workdir("/work"))
            .await?;
        cold.push(t.elapsed());
        env.remove().await?;
    }
    let cold = median(cold);
    println!(
        "{:<58} take_with {:>9}  take {:>9}  cold spawn {:>9}  ratios {:.2} / {:.3}",
        "pool claim -> first exec (vs take, vs cold spawn)",
        ms(take_with),
        ms(take),
        ms(cold),
        take_with.as_secs_f64() / take.as_secs_f64(),
        take_with.as_secs_f64() / cold.as_secs_f64()
    );
    if args.iter().any(|a| a == "--pool") {
        // Only the spawn and pool sections.
        return Ok(());
    }

    // 2. exec round trip.
    let env = client.spawn(spec()).await?;
    let id = cli_run(&host, &image);
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..rounds * 2 {
        let t = Instant::now();
        env.exec(["true"]).await?;
        ours.push(t.elapsed());
        let t = Instant::now();
        docker(&host, &["exec", &id, "true"]);
        theirs.push(t.elapsed());
    }
    let exec_ours = median(ours);
    report(
        "exec round trip of `true` (agent)",
        exec_ours,
        median(theirs),
        0.05,
    );
    docker(&host, &["rm", "-f", &id]);
    drop(env);

    // 2b. The in-container agent against the engine's exec path, same run.
    agent_section(&client, &spec, rounds, spawn_ours).await?;

    // 3. 32 concurrent spawns.
    let n = 32;
    let t = Instant::now();
    let envs = futures_util::future::join_all((0..n).map(|_| client.spawn(spec()))).await;
    let ours = t.elapsed();
    let mut live = Vec::new();
    for e in envs {
        live.push(e?);
    }
    futures_util::future::join_all(live.iter().map(|e| e.remove())).await;
    drop(live);
    let t = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (host, image) = (host.clone(), image.clone());
            std::thread::spawn(move || cli_run(&host, &image))
        })
        .collect();
    let ids: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let theirs = t.elapsed();
    report(&format!("{n} concurrent spawns (wall)"), ours, theirs, 0.8);
    let mut rm = vec!["rm", "-f"];
    rm.extend(ids.iter().map(String::as_str));
    docker(&host, &rm);

    // 4./5. Dockerfile resolve vs docker build.
    let (files, bytes) = if quick {
        (1000, 10 << 20)
    } else {
        (10_000, 100 << 20)
    };
    let ctx = tempfile_dir();
    write_context(&ctx, files, bytes, &image);
    let df = ctx.join("Dockerfile").display().to_string();
    let cli_tag = "localhost/headjack-bench/cli:latest";
    let first = client.resolve(&Spec::new().base(df.as_str())).await?;
    cli_build(&host, cli_tag, &ctx);
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..rounds.min(7) {
        let t = Instant::now();
        let r = client.resolve(&Spec::new().base(df.as_str())).await?;
        ours.push(t.elapsed());
        assert!(!r.built);
        theirs.push(cli_build(&host, cli_tag, &ctx));
    }
    report(
        &format!(
            "resolve unchanged Dockerfile ({files} files, {} MB)",
            bytes >> 20
        ),
        median(ours),
        median(theirs),
        0.25,
    );
    // The same content checked out into a fresh directory (as agent frameworks do per task).
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut copies = Vec::new();
    for i in 0..rounds.min(3) {
        let copy = ctx.with_file_name(format!(
            "{}-copy{i}",
            ctx.file_name().unwrap().to_string_lossy()
        ));
        let status = Command::new("cp")
            .arg("-a")
            .arg(&ctx)
            .arg(&copy)
            .status()
            .expect("cp runs");
        assert!(status.success(), "copying the context failed");
        let copy_df = copy.join("Dockerfile").display().to_string();
        let t = Instant::now();
        let r = client.resolve(&Spec::new().base(copy_df.as_str())).await?;
        ours.push(t.elapsed());
        assert!(
            !r.built,
            "the same content in {} was built again",
            copy.display()
        );
        theirs.push(cli_build(&host, cli_tag, &copy));
        copies.push((copy, r.reference));
    }
    report(
        "resolve the same content from a fresh directory",
        median(ours),
        median(theirs),
        0.25,
    );
    for (copy, reference) in copies {
        let _ = std::fs::remove_dir_all(copy);
        docker(&host, &["rmi", &reference]);
    }

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut built = vec![first.reference.clone()];
    // Content no earlier run has built: leftover layers of the CLI's builds would otherwise
    // serve it from the layer cache.
    let nonce = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    for i in 0..rounds.min(5) {
        std::fs::write(ctx.join("last.txt"), format!("v{}-{nonce}", i + 2)).unwrap();
        let t = Instant::now();
        let r = client.resolve(&Spec::new().base(df.as_str())).await?;
        ours.push(t.elapsed());
        built.push(r.reference);
        std::fs::write(ctx.join("last.txt"), format!("w{}-{nonce}", i + 2)).unwrap();
        theirs.push(cli_build(&host, cli_tag, &ctx));
    }
    report(
        "resolve after changing the last-copied file",
        median(ours),
        median(theirs),
        1.0,
    );
    for r in built {
        let _ = Command::new("docker")
            .args(["rmi", "-f", &r])
            .env("DOCKER_HOST", &host)
            .output();
    }
    let _ = Command::new("docker")
        .args(["rmi", "-f", cli_tag])
        .env("DOCKER_HOST", &host)
        .output();
    let _ = std::fs::remove_dir_all(&ctx);

    // 6. BuildKit against the classic builder, same engine, same run.
    if client.info().kind == headjack::client::EngineKind::Docker {
        builders(
            &client,
            &host,
            &image,
            if quick { 2 } else { rounds.min(5) },
        )
        .await?;
    }

    // 7. Python API vs Rust API.
    if python {
        let out = Command::new(".venv/bin/python")
            .args([
                "headjack-py/bench.py",
                "--execs",
                &(rounds * 2).to_string(),
                "--spawns",
                &rounds.to_string(),
                "--base",
                &image,
            ])
            .env("HEADJACK_TEST_HOST", &host)
            .output()
            .expect("the Python benchmark runs (make the venv with headjack-py/run-tests.sh)");
        let text = String::from_utf8_lossy(&out.stdout);
        let v: serde_json::Value = serde_json::from_str(text.lines().last().unwrap_or("{}"))
            .unwrap_or_else(|e| {
                panic!(
                    "bench.py printed no JSON ({e}): {text}{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
        let py_exec = Duration::from_secs_f64(
            v["python_exec_true_median_ms"].as_f64().unwrap_or(f64::NAN) / 1000.0,
        );
        let py_spawn = Duration::from_secs_f64(
            v["python_spawn_first_exec_median_ms"]
                .as_f64()
                .unwrap_or(f64::NAN)
                / 1000.0,
        );
        println!(
            "{:<58} python {:>10}  rust {:>10}  ratio {:.2} (target <= 1.1)",
            "exec round trip, Python API vs Rust API",
            ms(py_exec),
            ms(exec_ours),
            py_exec.as_secs_f64() / exec_ours.as_secs_f64()
        );
        println!(
            "{:<58} python {:>10}  rust {:>10}  ratio {:.2} (target <= 1.1)",
            "spawn -> first exec, Python API vs Rust API",
            ms(py_spawn),
            ms(spawn_ours),
            py_spawn.as_secs_f64() / spawn_ours.as_secs_f64()
        );
    }
    Ok(())
}

/// The in-container agent (issue 11): exec p50/p90 against the engine's exec path, cold spawn
/// to first exec on both paths, 8 instances exec'ing in parallel, 100 MB written and read back,
/// and the agent's resident memory and binary size.
async fn agent_section(
    client: &Client,
    spec: &dyn Fn() -> Spec,
    rounds: usize,
    spawn_agent: Duration,
) -> headjack::Result<()> {
    let pct = |mut v: Vec<Duration>, p: usize| {
        v.sort();
        v[(v.len() * p / 100).min(v.len() - 1)]
    };
    let agent = client.spawn(spec()).await?;
    let engine = client.spawn(spec().engine_exec(true)).await?;
    assert!(agent.has_agent() && !engine.has_agent());
    let (mut a, mut e) = (Vec::new(), Vec::new());
    for i in 0..300 {
        let t = Instant::now();
        agent.exec(["true"]).await?;
        a.push(t.elapsed());
        if i % 10 == 0 {
            let t = Instant::now();
            engine.exec(["true"]).await?;
            e.push(t.elapsed());
        }
    }
    println!(
        "{:<58} p50 {:>9}  p90 {:>9}  (target p50 <= 2 ms)",
        "exec round trip of `true` through the agent (300 runs)",
        ms(pct(a.clone(), 50)),
        ms(pct(a.clone(), 90))
    );
    report(
        "exec round trip: agent vs the engine's exec path",
        pct(a, 50),
        pct(e, 50),
        0.05,
    );

    // Cold spawn -> first exec without the agent (today's path), for comparison.
    let mut cold = Vec::new();
    for _ in 0..rounds.min(7) {
        let t = Instant::now();
        let env = client.spawn(spec().engine_exec(true)).await?;
        env.exec(["true"]).await?;
        cold.push(t.elapsed());
        env.remove().await?;
    }
    report(
        "cold spawn -> first exec: agent vs engine exec path",
        spawn_agent,
        median(cold),
        1.0,
    );

    // Throughput: 8 instances, each running execs back to back, for 3 s.
    let envs = futures_util::future::try_join_all((0..8).map(|_| client.spawn(spec()))).await?;
    let t = Instant::now();
    let window = Duration::from_secs(3);
    let counts = futures_util::future::join_all(envs.iter().map(|env| async move {
        let mut n = 0u32;
        while t.elapsed() < window {
            if env.exec(["true"]).await.is_ok() {
                n += 1;
            }
        }
        n
    }))
    .await;
    let total: u32 = counts.iter().sum();
    println!(
        "{:<58} {:>9.0} execs/s  (target >= 1000)",
        "exec throughput, 8 instances in parallel",
        f64::from(total) / t.elapsed().as_secs_f64()
    );
    drop(envs);

    // 100 MB written and read back: through the agent vs the engine's archive API.
    let data = vec![0x5au8; 100 << 20];
    let mut times = Vec::new();
    for env in [&agent, &engine] {
        let t = Instant::now();
        env.write_file("/tmp/blob", &data).await?;
        let back = env.read_file_limited("/tmp/blob", 200 << 20).await?;
        times.push(t.elapsed());
        assert_eq!(back.len(), data.len());
    }
    report(
        "100 MB write + read: agent vs archive API",
        times[0],
        times[1],
        1.0,
    );

    // The agent's own footprint.
    let status = agent.read_file("/proc/1/status").await?;
    let rss = String::from_utf8_lossy(&status)
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:").map(|v| v.trim().to_string()))
        .unwrap_or_default();
    let size = agent.stat("/.headjack/headjack-agent").await?.size;
    println!(
        "{:<58} RSS {rss} (target <= 3 MB), binary {:.2} MB",
        "the agent inside a container (after the runs above)",
        size as f64 / 1e6
    );
    Ok(())
}

/// Prints two builders' medians and their ratio (below 1.0: the first is faster).
fn compare(name: &str, a: (&str, Duration), b: (&str, Duration)) {
    println!(
        "{name:<58} {} {:>10}  {} {:>10}  ratio {:.2}",
        a.0,
        ms(a.1),
        b.0,
        ms(b.1),
        a.1.as_secs_f64() / b.1.as_secs_f64()
    );
}

/// A context of `files` small files with a unique nonce (no layer cache can serve it) and a
/// Dockerfile that copies it, runs a step and copies `last.txt` last.
fn builder_context(dir: &Path, base: &str, nonce: &str) {
    std::fs::create_dir_all(dir).unwrap();
    write_context(dir, 200, 2 << 20, base);
    std::fs::write(dir.join("nonce.txt"), nonce).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM {base}\nCOPY d000 /ctx/d000\nCOPY . /ctx/\nRUN find /ctx -type f | wc -l > /count\nCOPY last.txt /last.txt\n"
        ),
    )
    .unwrap();
}

/// BuildKit vs the classic builder: a first build, a rebuild after the last-copied file changed,
/// and a dependency reinstall (apt, after its input changed) without and with a cache mount.
async fn builders(client: &Client, host: &str, base: &str, rounds: usize) -> headjack::Result<()> {
    let run = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let root = tempfile_dir().join("builders");
    let mut built = Vec::new();
    let result = compare_builders(client, base, rounds, &run, &root, &mut built).await;
    // Whatever happened: the images, the cache mounts and the contexts go.
    for r in built {
        let _ = Command::new("docker")
            .args(["rmi", &r])
            .env("DOCKER_HOST", host)
            .output();
    }
    let df = docker(
        host,
        &["system", "df", "-v", "--format", "{{json .BuildCache}}"],
    );
    let records: serde_json::Value = serde_json::from_str(&df).unwrap_or_default();
    for rec in records.as_array().into_iter().flatten() {
        let desc = rec["Description"].as_str().unwrap_or_default();
        if rec["CacheType"] == "exec.cachemount"
            && desc.contains(&run)
            && let Some(id) = rec["ID"].as_str()
        {
            let _ = docker(
                host,
                &["builder", "prune", "-f", "--filter", &format!("id={id}")],
            );
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    result
}

async fn compare_builders(
    client: &Client,
    base: &str,
    rounds: usize,
    run: &str,
    root: &Path,
    built: &mut Vec<String>,
) -> headjack::Result<()> {
    use headjack::base::{Base, Builder};
    let kinds = [
        ("buildkit", Builder::BuildKit),
        ("classic", Builder::Classic),
    ];
    let mut first = [Vec::new(), Vec::new()];
    let mut rebuild = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for (k, (name, builder)) in kinds.iter().enumerate() {
            let dir = root.join(format!("{name}-{round}"));
            builder_context(&dir, base, &format!("{run}-{name}-{round}"));
            let df = || Base::dockerfile(dir.join("Dockerfile")).builder(*builder);
            let t = Instant::now();
            let r = client.resolve(&Spec::new().base(df())).await?;
            first[k].push(t.elapsed());
            assert!(r.built);
            built.push(r.reference);
            std::fs::write(dir.join("last.txt"), format!("v2-{run}-{round}")).unwrap();
            let t = Instant::now();
            let r = client.resolve(&Spec::new().base(df())).await?;
            rebuild[k].push(t.elapsed());
            assert!(r.built);
            built.push(r.reference);
        }
    }
    let [bk, cl] = first;
    compare(
        "first build (200 files, 2 MB, one RUN)",
        ("buildkit", median(bk)),
        ("classic", median(cl)),
    );
    let [bk, cl] = rebuild;
    compare(
        "rebuild after changing the last-copied file",
        ("buildkit", median(bk)),
        ("classic", median(cl)),
    );

    // Reinstalling dependencies after their input changed, from the Debian image with apt.
    let debian = std::env::var("HEADJACK_TEST_DEBIAN")
        .unwrap_or_else(|_| "docker.io/library/debian:bookworm-slim".into());
    let cache_id = format!("headjack-bench-apt-{run}");
    let install = "apt-get update -qq && xargs apt-get install -y -qq --no-install-recommends < /deps.txt > /dev/null";
    let variants = [
        ("classic, no cache mount", Builder::Classic, String::new()),
        ("buildkit, no cache mount", Builder::BuildKit, String::new()),
        (
            "buildkit, apt cache mounts",
            Builder::BuildKit,
            format!(
                "--mount=type=cache,id={cache_id}-archives,target=/var/cache/apt,sharing=locked \
                 --mount=type=cache,id={cache_id}-lists,target=/var/lib/apt/lists,sharing=locked "
            ),
        ),
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
    for (v, (name, builder, mounts)) in variants.iter().enumerate() {
        let dir = root.join(format!("apt-{v}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("deps.txt"), "jq\n").unwrap();
        std::fs::write(
            dir.join("Dockerfile"),
            format!(
                "FROM {debian}\nRUN rm -f /etc/apt/apt.conf.d/docker-clean\nCOPY version.txt deps.txt /\nRUN {mounts}{install} # headjack-bench {run}\n"
            ),
        )
        .unwrap();
        // Round 0 warms the layer cache and the cache mounts; it is not counted.
        for round in 0..=rounds.min(3) {
            std::fs::write(dir.join("version.txt"), format!("{run}-{name}-{round}")).unwrap();
            let t = Instant::now();
            let r = client
                .resolve(
                    &Spec::new().base(Base::dockerfile(dir.join("Dockerfile")).builder(*builder)),
                )
                .await?;
            if round > 0 {
                times[v].push(t.elapsed());
            }
            built.push(r.reference);
        }
    }
    let mut medians = times.into_iter().map(median);
    let (classic, bk, bk_mount) = (
        medians.next().unwrap(),
        medians.next().unwrap(),
        medians.next().unwrap(),
    );
    compare(
        "dependency reinstall (apt-get install jq), no cache mount",
        ("buildkit", bk),
        ("classic", classic),
    );
    compare(
        "dependency reinstall, BuildKit with vs without cache mount",
        ("mount", bk_mount),
        ("none", bk),
    );
    compare(
        "dependency reinstall, BuildKit + cache mount vs classic",
        ("mount", bk_mount),
        ("classic", classic),
    );

    Ok(())
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("headjack-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Egress (issue 14): spawn to first exec with an egress policy vs without, and an HTTP request
/// through the egress proxy vs direct, to a busybox httpd on the proxy's outside network.
async fn egress(client: &Client, host: &str, image: &str, rounds: usize) -> headjack::Result<()> {
    use headjack::{Egress, Network};
    let spec = || Spec::new().base(image).label("io.headjack.test", "1");
    // Warm up: the proxy image, the proxy, the outside network.
    client
        .spawn(spec().egress(Egress::allow(["bench.test"])))
        .await?
        .remove()
        .await?;
    let (mut plain, mut filtered) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        let i = client.spawn(spec()).await?;
        i.exec(["true"]).await?;
        plain.push(t.elapsed());
        i.remove().await?;
        let t = Instant::now();
        let i = client
            .spawn(spec().egress(Egress::allow(["bench.test"])))
            .await?;
        i.exec(["true"]).await?;
        filtered.push(t.elapsed());
        i.remove().await?;
    }
    let (plain, filtered) = (median(plain), median(filtered));
    println!(
        "{:<58} policy {:>10}  none {:>10}  ratio {:.2}",
        "spawn -> first exec, with an egress policy vs without",
        ms(filtered),
        ms(plain),
        filtered.as_secs_f64() / plain.as_secs_f64()
    );

    // The server, on the proxy's outside network under the name bench.test.
    let server = format!("headjack-bench-egress-{}", std::process::id());
    let proxied = client
        .spawn(spec().egress(Egress::allow(["bench.test"])))
        .await?;
    docker(
        host,
        &[
            "run",
            "-d",
            "--name",
            &server,
            "--label",
            "io.headjack.test=1",
            "--network",
            "headjack-egress",
            "--network-alias",
            "bench.test",
            image,
            "sh",
            "-c",
            "mkdir -p /w && echo hi > /w/index.html && exec httpd -f -p 80 -h /w",
        ],
    );
    let direct = client
        .spawn(spec().network(Network::Named("headjack-egress".into())))
        .await?;
    const PER_EXEC: usize = 20;
    let script = format!(
        "for i in $(seq {PER_EXEC}); do wget -q -O /dev/null http://bench.test/ || exit 1; done"
    );
    let (mut through, mut straight) = (Vec::new(), Vec::new());
    let measured = async {
        for _ in 0..rounds {
            for (inst, into) in [(&proxied, &mut through), (&direct, &mut straight)] {
                let t = Instant::now();
                let out = inst.exec(["sh", "-c", script.as_str()]).await?;
                let took = t.elapsed();
                assert!(out.success(), "wget failed: {}", out.stderr_text());
                into.push(took / PER_EXEC as u32);
            }
        }
        Ok::<_, headjack::Error>(())
    }
    .await;
    let _ = Command::new("docker")
        .args(["rm", "-f", &server])
        .env("DOCKER_HOST", host)
        .output();
    headjack::Instance::remove_all([proxied, direct]).await?;
    measured?;
    let (through, straight) = (median(through), median(straight));
    println!(
        "{:<58} proxy  {:>10}  direct {:>10}  ratio {:.2} (+{:.2} ms)",
        "HTTP request (busybox wget, new process + connection)",
        ms(through),
        ms(straight),
        through.as_secs_f64() / straight.as_secs_f64(),
        (through.as_secs_f64() - straight.as_secs_f64()) * 1000.0
    );
    client.sweep().await?;
    Ok(())
}

/// Fork vs cold spawn (issue 13), in the same run: the time until the first command answers in
/// a fork of a prepared instance (commit + spawn from the snapshot) and in a cold spawn of the
/// same spec; the ratio is printed (a fork also carries the parent's files, which a cold spawn
/// would have to rebuild).
async fn fork_section(client: &Client, image: &str, rounds: usize) -> headjack::Result<()> {
    let spec = || Spec::new().base(image).label("io.headjack.test", "1");
    let parent = client.spawn(spec()).await?;
    parent
        .exec([
            "sh",
            "-c",
            "mkdir -p /work && dd if=/dev/urandom of=/work/state bs=1M count=8 2>/dev/null",
        ])
        .await?
        .check()?;
    let (mut forks, mut colds) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        let f = parent.fork().await?;
        f.exec(["true"]).await?.check()?;
        forks.push(t.elapsed());
        f.remove().await?;
        let t = Instant::now();
        let c = client.spawn(spec()).await?;
        c.exec(["true"]).await?.check()?;
        colds.push(t.elapsed());
        c.remove().await?;
    }
    let (fork, cold) = (median(forks), median(colds));
    println!(
        "{:<58} fork {:>10}  cold spawn {:>10}  ratio {:.2}",
        "fork -> first exec vs cold spawn -> first exec (median)",
        ms(fork),
        ms(cold),
        fork.as_secs_f64() / cold.as_secs_f64()
    );
    parent.remove().await?;
    Ok(())
}
