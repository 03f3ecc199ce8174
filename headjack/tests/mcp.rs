//! `headjack mcp` refusing what it cannot serve, before any MCP session: bad flags, and a
//! standard input that is not an MCP client. The protocol itself is tested with the real MCP
//! Python client by `headjack/tests/mcp/run.sh`.
//!
//! Run: `cargo test -p headjack --features cli --test mcp`.
#![cfg(feature = "cli")]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn host() -> String {
    std::env::var("HEADJACK_TEST_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

fn mcp(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_headjack"))
        .args(["--host", &host(), "mcp"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the headjack binary runs");
    let mut input = child.stdin.take().expect("stdin");
    // The server may exit before reading (bad flags): a closed pipe is fine.
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().expect("headjack mcp ends")
}

fn one_line_failure(o: &Output, mentions: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    assert!(
        err.starts_with("headjack: ") && err.contains(mentions),
        "{err}"
    );
    assert!(o.stdout.is_empty(), "nothing on the protocol channel");
}

#[test]
fn bad_flags_are_refused_before_serving() {
    one_line_failure(&mcp(&["--max-instances", "0"], b""), "--max-instances 0");
    one_line_failure(
        &mcp(&["--allow-workspace", "/no/such/dir"], b""),
        "--allow-workspace /no/such/dir",
    );
    one_line_failure(&mcp(&["--label", "novalue"], b""), "--label");
    one_line_failure(&mcp(&["--exec-timeout", "soon"], b""), "soon");
}

#[test]
fn a_standard_input_that_is_not_an_mcp_client_ends_cleanly() {
    for input in [&b""[..], b"not json at all\n", b"\xff\xfe\x00garbage"] {
        one_line_failure(&mcp(&[], input), "expects an MCP client");
    }
}
