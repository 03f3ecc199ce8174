//! The fault suite (issue 9): what headjack does when things go wrong on purpose.
//!
//! - Owners killed with SIGKILL (a Rust program, the CLI): one `sweep` removes their instances
//!   and keeps a live owner's.
//! - Owners in other PID namespaces (`unshare --pid`): a live one is kept, a dead one is swept,
//!   and a sweeper inside a namespace leaves owners it cannot see alone.
//! - A private engine (its own dockerd, socket and data root, see tests/env/fault-engine.sh)
//!   frozen with SIGSTOP: every call ends within its bound instead of hanging; then restarted
//!   under an exec stream and a spawn in flight: both end with a clear error, the spawn without
//!   waiting out its readiness timeout.
//!
//! Needs root (unshare, a second dockerd). Run: `cargo test -p headjack --features cli --test
//! faults` with the variables of tests/env/run/env.sh.
#![cfg(feature = "cli")]

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{busybox, client, container_exists, example, spec};
use headjack::exec::Exec;
use headjack::spec::Readiness;
use headjack::{Client, ErrorKind, Network, Spec};

/// Generous bound used to detect a hang (a call that never returns), not to time anything.
const HANG: Duration = Duration::from_secs(90);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Reads the first line a child prints (its instance ID).
fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim().to_string()
}

/// Waits until `f` holds, polling; panics with `what` after the hang bound.
async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + HANG;
    while !f().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn instance_of_pid(c: &Client, pid: u32) -> Option<String> {
    let needle = format!("/{pid}/");
    c.list()
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.owner.contains(&needle))
        .map(|i| i.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_killed_with_sigkill_are_swept_in_one_pass() {
    let c = client().await;
    let mine = c.spawn(spec()).await.unwrap();
    // A Rust program and the CLI each spawn an instance and die by SIGKILL: no Drop runs.
    let mut rust = Command::new(example("sweep_child"))
        .env("HEADJACK_TEST_HOST", common::host())
        .env("HEADJACK_TEST_BUSYBOX", busybox())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let rust_id = first_line(&mut rust);
    let mut cli = Command::new(env!("CARGO_BIN_EXE_headjack"))
        .args([
            "--host",
            &common::host(),
            "run",
            "--base",
            &busybox(),
            "--",
            "sleep",
            "600",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let cli_pid = cli.id();
    let mut cli_id = None;
    eventually("the CLI never spawned its instance", async || {
        cli_id = instance_of_pid(&c, cli_pid).await;
        cli_id.is_some()
    })
    .await;
    let cli_id = cli_id.unwrap();
    for child in [&mut rust, &mut cli] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let swept = c.sweep().await.unwrap();
    assert!(
        swept.contains(&rust_id),
        "the Rust owner's {rust_id} was not swept: {swept:?}"
    );
    assert!(
        swept.contains(&cli_id),
        "the CLI owner's {cli_id} was not swept: {swept:?}"
    );
    assert!(
        !swept.iter().any(|s| s == mine.id()),
        "a live owner's instance was swept"
    );
    assert!(container_exists(mine.container_id()));
}

/// `unshare` running `program` as PID 1 of a new PID namespace (with its own /proc); the child is
/// killed when `unshare` is.
fn in_new_pid_namespace(program: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(program)
        .args(args);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_in_other_pid_namespaces_are_judged_where_they_can_be_seen() {
    let c = client().await;
    // A live owner in its own PID namespace, where it is PID 1: the old sweep read this host's
    // PID 1 instead and removed its instance.
    let mut owner = in_new_pid_namespace(&example("sweep_child"), &[])
        .env("HEADJACK_TEST_HOST", common::host())
        .env("HEADJACK_TEST_BUSYBOX", busybox())
        .stdout(Stdio::piped())
        .spawn()
        .expect("unshare runs (util-linux, as root)");
    let theirs = first_line(&mut owner);
    assert!(
        !theirs.is_empty(),
        "the namespaced owner did not report its instance"
    );
    let info = c
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.id == theirs)
        .unwrap();
    let own_ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let own_ns = own_ns.to_string_lossy();
    let own_ns = own_ns.trim_start_matches("pid:[").trim_end_matches(']');
    assert!(
        !info.owner.contains(&format!("/{own_ns}/")),
        "the owner label names the owner's own namespace: {}",
        info.owner
    );
    let swept = c.sweep().await.unwrap();
    assert!(
        !swept.contains(&theirs),
        "a live owner in another PID namespace was swept"
    );
    assert!(container_exists(&info.container_id));

    // A sweeper inside a new namespace cannot see this test process: it must leave our instance.
    let mine = c.spawn(spec()).await.unwrap();
    let out = in_new_pid_namespace(
        Path::new(env!("CARGO_BIN_EXE_headjack")),
        &["--host", &common::host(), "sweep", "--json"],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(mine.id()),
        "a sweeper in another namespace removed a live owner's instance: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(container_exists(mine.container_id()));

    // The namespaced owner dies (its namespace with it): now it is gone and swept.
    owner.kill().unwrap();
    owner.wait().unwrap();
    let mut swept = Vec::new();
    eventually(
        "the dead namespaced owner's instance was never swept",
        async || {
            swept.extend(c.sweep().await.unwrap());
            swept.contains(&theirs)
        },
    )
    .await;
    assert!(!container_exists(&info.container_id));
    assert!(container_exists(mine.container_id()));
}

/// The private engine of this test; removed (with everything on it) when dropped.
struct FaultEngine {
    dir: PathBuf,
    host: String,
}

impl FaultEngine {
    fn script(cmd: &str, dir: &Path) -> String {
        let out = Command::new("bash")
            .arg(repo_root().join("tests/env/fault-engine.sh"))
            .arg(cmd)
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "fault-engine.sh {cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn start() -> FaultEngine {
        let dir = std::env::temp_dir().join(format!("headjack-fault-{}", std::process::id()));
        let host = Self::script("start", &dir);
        FaultEngine { dir, host }
    }

    fn run(&self, cmd: &str) {
        Self::script(cmd, &self.dir);
    }
}

impl Drop for FaultEngine {
    fn drop(&mut self) {
        Self::script("remove", &self.dir);
    }
}

/// Asserts that `call` ends (no hang) with one of the errors a lost engine gives.
async fn ends_with_engine_error<T: std::fmt::Debug>(
    what: &str,
    call: impl std::future::Future<Output = headjack::Result<T>>,
) {
    match tokio::time::timeout(HANG, call).await {
        Err(_) => panic!("{what} hung on an unanswering engine"),
        Ok(Ok(v)) => panic!("{what} succeeded on an unanswering engine: {v:?}"),
        Ok(Err(e)) => assert!(
            matches!(e.kind(), ErrorKind::Timeout | ErrorKind::EngineUnavailable),
            "{what}: {e} ({:?})",
            e.kind()
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_then_restarted_engine_never_hangs_its_callers() {
    let engine = FaultEngine::start();
    let bound = Duration::from_secs(3);
    let c = Client::connect_to(&engine.host)
        .await
        .unwrap()
        .with_timeout(bound);
    let fixture = || {
        Spec::new()
            .base(busybox())
            .network(Network::None)
            .label("io.headjack.test", "1")
    };
    let env = c.spawn(fixture()).await.unwrap();
    let mut silent = env.exec_stream(Exec::new(["sleep", "1000"])).await.unwrap();

    // Frozen: each call ends within its bound (plus one engine round for the stream's check).
    engine.run("freeze");
    ends_with_engine_error("list", c.list()).await;
    ends_with_engine_error("status", env.status()).await;
    ends_with_engine_error("sweep", c.sweep()).await;
    ends_with_engine_error("exec", env.exec(["true"])).await;
    ends_with_engine_error("a silent exec stream", async {
        match silent.next().await {
            Some(Err(e)) => Err(e),
            other => Ok(format!("{other:?}")),
        }
    })
    .await;
    engine.run("thaw");
    let out = env.exec(["echo", "back"]).await.unwrap();
    assert_eq!(
        out.stdout_text(),
        "back\n",
        "the engine answers again after thawing"
    );

    // Restarted under a running command and a spawn in flight whose readiness check would wait
    // two minutes: both end with a clear error once the engine is back, the spawn at once.
    let mut running = env.exec_stream(Exec::new(["sleep", "1000"])).await.unwrap();
    let in_flight = tokio::spawn({
        let c = c.clone();
        let spec = fixture().readiness(Readiness::command(["false"], Duration::from_secs(120)));
        async move { c.spawn(spec).await.map(|i| i.id().to_string()) }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    engine.run("stop");
    engine.run("start");
    // The restart cuts the stream: its output ends (or fails) and its status is an error saying
    // the engine went away or the container stopped under the command.
    match tokio::time::timeout(HANG, async {
        while let Some(chunk) = running.next().await {
            chunk?;
        }
        running.wait().await
    })
    .await
    {
        Err(_) => panic!("an exec stream across a restart hung"),
        Ok(Ok(status)) => panic!("an exec stream across a restart ended normally: {status:?}"),
        Ok(Err(e)) => assert!(
            matches!(
                e.kind(),
                ErrorKind::EngineUnavailable | ErrorKind::Conflict | ErrorKind::NotFound
            ),
            "{e} ({:?})",
            e.kind()
        ),
    }
    match tokio::time::timeout(Duration::from_secs(60), in_flight).await {
        Err(_) => {
            panic!("a spawn in flight waited out its readiness timeout after the engine restarted")
        }
        Ok(joined) => {
            let e = joined
                .unwrap()
                .expect_err("a spawn across an engine restart cannot succeed");
            assert!(
                matches!(
                    e.kind(),
                    ErrorKind::Conflict | ErrorKind::EngineUnavailable | ErrorKind::Timeout
                ),
                "{e}"
            );
        }
    }
    drop(silent);
    env.remove().await.unwrap();
}
