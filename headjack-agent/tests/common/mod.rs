//! Shared helpers: the agent binary as a child process, /proc checks, markers.
#![allow(dead_code)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use headjack_agent::client::{Channel, ExecOutput, ExecRequest};
use tokio::process::{Child, Command};

pub fn agent_bin() -> &'static str {
    env!("CARGO_BIN_EXE_headjack-agent")
}

/// A unique string for this test run (socket names, markers).
pub fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "hj-test-{tag}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

/// The agent running as a child process of the test (not PID 1: it makes itself a subreaper),
/// serving a session on the child's stdin/stdout.
pub struct ChildAgent {
    pub child: Child,
    pub ch: Channel,
    pub socket: String,
}

pub async fn child_agent(args: &[&str]) -> ChildAgent {
    let socket = unique("sock");
    let mut child = Command::new(agent_bin())
        .args(["--socket", &socket])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("the agent binary starts");
    let stdout = child.stdout.take().unwrap();
    let stdin = child.stdin.take().unwrap();
    let ch = Channel::open(stdout, stdin).await.expect("handshake");
    ChildAgent { child, ch, socket }
}

/// A second session through `headjack-agent relay`, as the core gets one through the engine's
/// exec; returns the relay process too (kill it to end the session).
pub async fn relay_session(socket: &str) -> (Channel, Child) {
    let mut child = Command::new(agent_bin())
        .args(["relay", "--socket", socket])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("the relay starts");
    let stdout = child.stdout.take().unwrap();
    let stdin = child.stdin.take().unwrap();
    let ch = Channel::open(stdout, stdin)
        .await
        .expect("handshake over the relay");
    (ch, child)
}

pub async fn run(ch: &Channel, req: ExecRequest) -> ExecOutput {
    ch.exec(req.clone())
        .await
        .unwrap()
        .output()
        .await
        .unwrap_or_else(|e| panic!("{:?}: {e}", req.argv))
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// PIDs on this host whose environment holds `marker` (tests run as root, so every environ is
/// readable).
pub fn pids_with_marker(marker: &str) -> Vec<u32> {
    let needle = marker.as_bytes();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let pid: u32 = name.parse().ok()?;
            let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // Zombies are dead already (and their environ is empty anyway).
            let state = stat
                .rsplit(')')
                .next()?
                .split_whitespace()
                .next()?
                .to_string();
            (state != "Z" && env.windows(needle.len()).any(|w| w == needle)).then_some(pid)
        })
        .collect()
}

/// Waits (polling) until `f` holds or `limit` passes; returns whether it held. Not a timing
/// assertion: the limit only bounds how long a broken build makes the test hang.
pub async fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    f()
}

/// Resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

pub mod engine;

/// CPU time (user + system) a process has used, in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the command name.
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}
