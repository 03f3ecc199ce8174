//! The CLI's sandbox commands (issue 13): `run -p/--volume`, `stats`, `fork`, `volume ls/rm`.
#![cfg(feature = "cli")]

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
