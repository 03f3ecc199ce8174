//! The CLI's sandbox commands (issue 13): `run -p/--volume/--ulimit/--shm-size/--cpuset/--disk`,
//! `stats`, `fork`, `volume ls/rm`, `checkpoint`, `restore`, exit reasons.
#![cfg(feature = "cli")]

mod cli_common;
mod common;

use std::process::{Command, Output, Stdio};

fn hj(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_headjack"))
        .arg("--host")
        .arg(common::host())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the headjack binary runs")
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn run_with_a_volume_and_a_port_then_stats_fork_and_volume_rm() {
    let busybox = common::busybox();
    let vol = format!("headjack-test-cli-{}", std::process::id());
    // A port and a volume: the address is reported; the volume keeps the data.
    let o = hj(&[
        "run",
        "-b",
        &busybox,
        "-l",
        "io.headjack.test=1",
        "-p",
        "8080",
        "-v",
        &format!("{vol}:/data"),
        "--",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("port 8080 published on 127.0.0.1:"),
        "{}",
        show(&o)
    );
    let o = hj(&["volume", "ls"]);
    assert!(stdout(&o).contains(&vol), "{}", show(&o));

    // A kept instance reading the volume: stats, then a fork that has its files.
    let o = hj(&[
        "run",
        "-b",
        &busybox,
        "-l",
        "io.headjack.test=1",
        "--keep",
        "--memory",
        "64m",
        "-v",
        &format!("{vol}:/data:ro"),
        "--",
        "sh",
        "-c",
        "cp /data/f /root/copy",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let id = stdout(&o).trim().to_string();
    let o = hj(&["--json", "stats", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["memory_limit_bytes"], 64 << 20, "{v}");
    assert!(v["pids"].as_u64().unwrap() >= 1, "{v}");
    let o = hj(&["--json", "fork", &id]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let fork = v["id"].as_str().unwrap().to_string();
    let snapshot = v["image"].as_str().unwrap().to_string();
    let o = hj(&["exec", &fork, "--", "cat", "/root/copy"]);
    assert_eq!(stdout(&o), "kept\n", "{}", show(&o));

    // In use: refused with a clear message; after removal: removed.
    let o = hj(&["volume", "rm", &vol]);
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("in use"),
        "{}",
        show(&o)
    );
    let o = hj(&["rm", &id, &fork]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    // The fork's snapshot image went with it.
    assert!(
        !common::docker(&["images", "-q", &snapshot]).contains(|c: char| c.is_ascii_hexdigit()),
        "{snapshot} removed with the fork"
    );
    let o = hj(&["volume", "rm", &vol]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(!stdout(&hj(&["volume", "ls"])).contains(&vol));

    // Bad input.
    let o = hj(&["run", "-b", &busybox, "-p", "0", "--", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("port 0"),
        "{}",
        show(&o)
    );
    let o = hj(&["run", "-b", &busybox, "-v", "novolume", "--", "true"]);
    assert_eq!(o.status.code(), Some(125), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("NAME:/path"),
        "{}",
        show(&o)
    );
}

/// Removes kept instances when dropped, also when the test fails half-way.
struct RemoveOnDrop(Vec<String>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for id in &self.0 {
            let _ = cli_common::run(&["rm", id]);
        }
    }
}

#[test]
fn run_limits_exit_reasons_checkpoint_and_restore() {
    use cli_common::{assert_failure, code, json, run, show, text};
    let busybox = common::busybox();
    let base = ["-b", busybox.as_str(), "-l", "io.headjack.test=1"];
    let with = |extra: &[&str]| -> Vec<String> {
        let mut v = vec!["run".to_string()];
        v.extend(base.iter().map(|s| s.to_string()));
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let hj_run = |extra: &[&str]| {
        let args = with(extra);
        run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };

    // Limits take effect.
    let o = hj_run(&[
        "--ulimit",
        "nofile=123:456",
        "--ulimit",
        "core=0",
        "--shm-size",
        "16m",
        "--cpuset",
        "0",
        "--",
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn; ulimit -c; df -k /dev/shm | tail -1 | awk '{print $2}'",
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(text(&o.stdout), "123\n456\n0\n16384\n", "{}", show(&o));

    // The memory limit killing the command: its exit code, and the reason on stderr.
    let oom = "head -c 200000000 /dev/zero | tail -c 100000000 > /dev/null";
    let o = hj_run(&["--memory", "32m", "--", "sh", "-c", oom]);
    assert_eq!(code(&o), 137, "{}", show(&o));
    assert!(
        text(&o.stderr).contains("killed: out of memory"),
        "{}",
        show(&o)
    );

    // The same through exec, on a kept instance.
    let o = hj_run(&["--keep", "--memory", "32m", "--", "true"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let oom_id = text(&o.stdout).trim().to_string();
    let _remove_oom = RemoveOnDrop(vec![oom_id.clone()]);
    let o = run(&["exec", &oom_id, "--", "sh", "-c", oom]);
    assert_eq!(code(&o), 137, "{}", show(&o));
    assert!(
        text(&o.stderr).contains("killed: out of memory"),
        "{}",
        show(&o)
    );
    let o = run(&["rm", &oom_id]);
    assert_eq!(code(&o), 0, "{}", show(&o));

    let o = hj_run(&["--keep", "--", "true"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let id = text(&o.stdout).trim().to_string();
    let _remove = RemoveOnDrop(vec![id.clone()]);

    // Checkpoints: a clear refusal on this machine (exit 125, one line), the instance unharmed.
    assert_failure(&run(&["checkpoint", &id, "bad name"]), "checkpoint name");
    let o = run(&["checkpoint", &id, "c1"]);
    assert_eq!(code(&o), 125, "{}", show(&o));
    let err = text(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{}", show(&o));
    assert!(
        err.starts_with("headjack: ") && (err.contains("experimental") || err.contains("CRIU")),
        "{}",
        show(&o)
    );
    assert_failure(&run(&["restore", &id, "c1"]), "stop it first");
    assert_failure(
        &run(&["restore", "no-such-instance-cli", "c1"]),
        "no-such-instance-cli",
    );
    assert_failure(
        &run(&["checkpoint", "no-such-instance-cli", "c1"]),
        "no-such-instance-cli",
    );

    // ps: no exit reason while it runs; once stopped, why (JSON and table).
    let entry = |all: &serde_json::Value| {
        all.as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id.as_str())
            .cloned()
            .unwrap_or_else(|| panic!("{id} not listed: {all}"))
    };
    let v = entry(&json(&run(&["--json", "ps"])));
    assert!(v["exit_reason"].is_null(), "{v}");
    assert_eq!(v["oom_killed"], false, "{v}");
    let o = run(&["stop", "-t", "1", &id]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let v = entry(&json(&run(&["--json", "ps", "-a"])));
    let why = v["exit_reason"].as_str().unwrap_or_else(|| panic!("{v}"));
    assert!(
        why.starts_with("exited with code") || why.starts_with("killed by signal"),
        "{v}"
    );
    let o = run(&["ps", "-a"]);
    let line = text(&o.stdout)
        .lines()
        .find(|l| l.starts_with(&id))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("{}", show(&o)));
    assert!(line.contains(&format!("exited ({why})")), "{line}");
    // Stopped: restore gets as far as the engine, which cannot.
    let o = run(&["restore", &id, "c1"]);
    assert_eq!(code(&o), 125, "{}", show(&o));
    assert!(text(&o.stderr).contains("c1"), "{}", show(&o));
    let o = run(&["rm", &id]);
    assert_eq!(code(&o), 0, "{}", show(&o));

    // Wrong input: one line, exit 125, before anything is created.
    assert_failure(
        &hj_run(&["--ulimit", "nofile", "--", "true"]),
        "NAME=SOFT[:HARD]",
    );
    assert_failure(
        &hj_run(&["--ulimit", "nofile=many", "--", "true"]),
        "not a limit",
    );
    assert_failure(
        &hj_run(&["--ulimit", "bogus=1", "--", "true"]),
        "unknown ulimit",
    );
    assert_failure(
        &hj_run(&["--ulimit", "nofile=10:5", "--", "true"]),
        "soft at most hard",
    );
    assert_failure(&hj_run(&["--shm-size", "lots", "--", "true"]), "not a size");
    assert_failure(&hj_run(&["--disk", "-1g", "--", "true"]), "positive size");
    assert_failure(&hj_run(&["--cpuset", "0-", "--", "true"]), "cpuset");
    // This machine's storage drivers cannot bound a root filesystem.
    assert_failure(&hj_run(&["--disk", "100m", "--", "true"]), "100 MiB");
    assert_failure(&run(&["checkpoint", "only-an-id"]), "NAME");
}
