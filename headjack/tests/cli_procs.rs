//! `headjack exec --detach` and `headjack proc` against the real engine: a background process
//! started by one invocation, followed by another that is `kill -9`ed, and reattached by a third
//! with its output replayed; signals, timeouts, exit codes, forgetting; and wrong input.
//!
//! Run: `cargo test -p headjack --features cli --test cli_procs` (the engine from
//! `HEADJACK_TEST_HOST`, default the Docker socket; the busybox fixture from `tests/env/up.sh`).
#![cfg(feature = "cli")]

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

mod cli_common;
use cli_common::*;

/// A kept instance, removed when dropped (also when the test fails).
struct Kept(String);

impl Kept {
    fn new() -> Kept {
        let bb = busybox();
        let o = run(&[
            "run",
            "--keep",
            "--json",
            "-l",
            "io.headjack.test=1",
            "--base",
            &bb,
            "--",
            "true",
        ]);
        assert_eq!(code(&o), 0, "{}", show(&o));
        Kept(json(&o)["id"].as_str().unwrap().to_string())
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        let _ = hj().args(["rm", &self.0]).output();
    }
}

/// `exec --detach`: the process ID it prints.
fn detach(id: &str, extra: &[&str], cmd: &[&str]) -> u64 {
    let mut args = vec!["exec", "--detach"];
    args.extend_from_slice(extra);
    args.push(id);
    args.push("--");
    args.extend_from_slice(cmd);
    let o = run(&args);
    assert_eq!(code(&o), 0, "{}", show(&o));
    text(&o.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("exec --detach prints the process ID: {}", show(&o)))
}

fn processes(id: &str) -> Vec<Value> {
    let o = run(&["--json", "proc", "ls", id]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    json(&o).as_array().cloned().expect("an array")
}

fn entry(id: &str, p: u64) -> Option<Value> {
    processes(id)
        .into_iter()
        .find(|v| v["id"].as_u64() == Some(p))
}

#[test]
fn a_detached_process_is_reattached_after_its_follower_was_killed() {
    let inst = Kept::new();
    let id = inst.0.as_str();
    // Prints, then waits for a go-ahead that a later invocation gives.
    let p = detach(
        id,
        &["-e", "WHO=bg", "-w", "/tmp"],
        &[
            "sh",
            "-c",
            "echo first $WHO $(pwd); echo to-stderr >&2; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo second; exit 7",
        ],
    );

    let listed = entry(id, p).expect("proc ls lists the detached process");
    assert_eq!(listed["status"]["state"], "running", "{listed}");
    assert_eq!(listed["argv"][0], "sh", "{listed}");
    assert!(listed["pid"].as_u64().unwrap() > 1, "{listed}");
    let o = run(&["proc", "ls", id]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let table = text(&o.stdout);
    assert!(table.starts_with("PROC"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&p.to_string()) && l.contains("running")),
        "{table}"
    );

    // A follower (`proc logs -f`) sees the first line, then is killed with SIGKILL mid-follow.
    let mut follower = hj()
        .args(["proc", "logs", "-f", id, &p.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = follower.stdout.take().unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut buf = [0u8; 256];
    while !text(&seen).contains("first bg /tmp") {
        assert!(
            Instant::now() < deadline,
            "the follower printed {:?}",
            text(&seen)
        );
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "the follower ended early: {:?}", text(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    unsafe { libc::kill(follower.id() as i32, libc::SIGKILL) };
    let st = follower.wait().unwrap();
    assert!(st.code().is_none(), "the follower was killed by a signal");

    // The process goes on; another invocation replays what it printed so far and stops.
    let o = run(&["proc", "logs", id, &p.to_string()]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(text(&o.stdout), "first bg /tmp\n", "{}", show(&o));
    assert!(text(&o.stderr).contains("to-stderr"), "{}", show(&o));
    assert_eq!(
        entry(id, p).unwrap()["status"]["state"],
        "running",
        "a killed follower does not stop the process"
    );

    // A second follower, released by a third invocation, gets the replay then the live end.
    let follower = hj()
        .args(["proc", "logs", "-f", id, &p.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let o = run(&["exec", id, "--", "touch", "/tmp/go"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let o = follower.wait_with_output().unwrap();
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(text(&o.stdout), "first bg /tmp\nsecond\n", "{}", show(&o));

    // wait: the process's exit code is ours; --json says how it ended.
    let o = run(&["proc", "wait", id, &p.to_string()]);
    assert_eq!(code(&o), 7, "{}", show(&o));
    let o = run(&["--json", "proc", "wait", id, &p.to_string()]);
    assert_eq!(code(&o), 7, "{}", show(&o));
    assert_eq!(json(&o)["exit_code"], 7, "{}", show(&o));
    let listed = entry(id, p).unwrap();
    assert_eq!(listed["status"]["state"], "exited", "{listed}");
    assert_eq!(listed["status"]["exit_code"], 7, "{listed}");
    let o = run(&["proc", "logs", id, &p.to_string()]);
    assert_eq!(text(&o.stdout), "first bg /tmp\nsecond\n", "{}", show(&o));

    // rm forgets it: gone from the list, and asking for it is a clear failure.
    let o = run(&["proc", "rm", id, &p.to_string()]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(text(&o.stdout).trim(), p.to_string(), "{}", show(&o));
    assert!(entry(id, p).is_none());
    let o = run(&["proc", "logs", id, &p.to_string()]);
    assert_failure(&o, "no background process");
}

#[test]
fn kill_timeout_and_removal_of_running_processes() {
    let inst = Kept::new();
    let id = inst.0.as_str();
    let p = detach(id, &[], &["sleep", "300"]);
    // A running process cannot be forgotten.
    let o = run(&["proc", "rm", id, &p.to_string()]);
    assert_failure(&o, "still runs");
    assert!(entry(id, p).is_some());
    // KILL: 128 + 9.
    let o = run(&["proc", "kill", "-s", "KILL", id, &p.to_string()]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let o = run(&["proc", "wait", id, &p.to_string()]);
    assert_eq!(code(&o), 137, "{}", show(&o));
    // Signalling an ended process says so.
    let o = run(&["proc", "kill", id, &p.to_string()]);
    assert_failure(&o, "already ended");

    // The default signal is TERM: 128 + 15, also for what the process started.
    let p = detach(id, &[], &["sh", "-c", "sleep 300 & wait"]);
    let o = run(&["proc", "kill", id, &p.to_string()]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let o = run(&["proc", "wait", id, &p.to_string()]);
    assert_eq!(code(&o), 143, "{}", show(&o));
    // The container's command lines, read through /proc (PID 1, the agent, is always there).
    let o = run(&[
        "exec",
        id,
        "--",
        "sh",
        "-c",
        "cat /proc/[0-9]*/cmdline | tr '\\0' ' '",
    ]);
    let procs = text(&o.stdout);
    assert!(procs.contains("headjack-agent"), "{}", show(&o));
    assert!(
        !procs.contains("sleep 300"),
        "a child survived: {}",
        show(&o)
    );

    // --timeout kills it inside the container: wait exits 124.
    let p = detach(id, &["--timeout", "0.5"], &["sleep", "300"]);
    let o = run(&["proc", "wait", id, &p.to_string()]);
    assert_eq!(code(&o), 124, "{}", show(&o));
    assert!(text(&o.stderr).contains("timeout"), "{}", show(&o));
    let listed = entry(id, p).unwrap();
    assert_eq!(listed["status"]["timed_out"], true, "{listed}");
}

#[test]
fn wrong_input_gets_one_clear_line() {
    let inst = Kept::new();
    let id = inst.0.as_str();
    // Usage errors, before anything is asked of the engine.
    assert_failure(&run(&["proc", "kill", id, "abc"]), "not a process ID");
    assert_failure(
        &run(&["proc", "kill", "-s", "BOGUS", id, "1"]),
        "not a signal",
    );
    assert_failure(&run(&["proc", "kill", "-s", "99", id, "1"]), "not a signal");
    assert_failure(&run(&["proc", "rm", id]), "PROC");
    assert_failure(&run(&["exec", "--detach", id]), "needs a command");
    assert_failure(
        &run(&["exec", "--detach", "-i", id, "--", "cat"]),
        "no standard input",
    );
    // Unknown process, unknown instance.
    for verb in ["logs", "kill", "wait"] {
        assert_failure(
            &run(&["proc", verb, id, "424242"]),
            "no background process 424242",
        );
    }
    assert_failure(&run(&["proc", "rm", id, "424242"]), "no such process");
    assert_failure(
        &run(&["proc", "ls", "hj-no-such-instance"]),
        "hj-no-such-instance",
    );
    // A command that cannot start fails the start, with the reason.
    let o = run(&["exec", "--detach", id, "--", "/no/such/program"]);
    assert_failure(&o, "/no/such/program");
    assert!(processes(id).is_empty(), "nothing was left listed");
}
