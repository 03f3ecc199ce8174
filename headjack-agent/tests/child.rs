//! The agent binary as a child process of the test over pipes (not PID 1: it makes itself a
//! subreaper). Everything that does not need a container is covered here.

mod common;

use std::time::Duration;

use common::*;
use headjack_agent::client::{ExecRequest, StartFailureKind, StreamKind};

#[tokio::test]
async fn runs_a_command_with_argv_env_and_workdir() {
    let a = child_agent(&[]).await;
    let out = run(
        &a.ch,
        ExecRequest::new(["sh", "-c", "echo \"$1|$GREETING|$(pwd)\"; echo oops >&2", "sh", "a b"])
            .env("GREETING", "hello world")
            .workdir("/tmp"),
    )
    .await;
    assert_eq!(text(&out.stdout), "a b|hello world|/tmp\n");
    assert_eq!(text(&out.stderr), "oops\n");
    assert!(out.status.success(), "{:?}", out.status);
}
