//! Helpers shared by the CLI test files: the `headjack` binary pointed at the engine under test,
//! and the exit-code and one-line-error contract.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

pub fn busybox() -> String {
    std::env::var("HEADJACK_TEST_BUSYBOX")
        .unwrap_or_else(|_| "localhost/headjack-test/busybox:latest".into())
}

pub fn host() -> String {
    std::env::var("HEADJACK_TEST_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

/// The command, pointed at the engine under test, with no standard input.
pub fn hj() -> Command {
    ready();
    let mut c = Command::new(env!("CARGO_BIN_EXE_headjack"));
    c.arg("--host").arg(host()).stdin(Stdio::null());
    c
}

pub fn run(args: &[&str]) -> Output {
    hj().args(args).output().expect("the headjack binary runs")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    )
}

pub fn code(o: &Output) -> i32 {
    o.status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {}", show(o)))
}

pub fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", show(o)))
}

/// A headjack failure: exit 125 and exactly one line `headjack: …` on stderr.
pub fn assert_failure(o: &Output, mentions: &str) {
    assert_eq!(code(o), 125, "{}", show(o));
    let err = text(&o.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {}", show(o));
    assert!(lines[0].starts_with("headjack: "), "{}", show(o));
    assert!(
        err.contains(mentions),
        "expected {mentions:?} in the message: {}",
        show(o)
    );
}

/// Fails loudly (never skips) when the engine or the fixture is missing.
pub fn ready() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let out = Command::new(env!("CARGO_BIN_EXE_headjack"))
            .args(["--host", &host(), "build", "--pull", "never", &busybox()])
            .stdin(Stdio::null())
            .output()
            .expect("the headjack binary runs");
        assert!(
            out.status.success(),
            "the test engine at {} or the fixture {} is missing; run tests/env/up.sh: {}",
            host(),
            busybox(),
            show(&out)
        );
    });
}
