//! `Pool::take_with`: a claim (env, workdir, user, files, labels) applied to an instance that
//! already runs — no new container — and refused, before anything is taken, when it is invalid.
//!
//! Run: `cargo test -p headjack --test pool_claims` (the engine from `HEADJACK_TEST_HOST`).

mod common;

use std::time::{Duration, Instant};

use headjack::pool::Claim;
use headjack::{ErrorKind, Exec, Pool};

/// Waits (bounded) until the pool has `n` instances ready.
async fn ready(pool: &Pool, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while pool.ready() < n {
        assert!(Instant::now() < deadline, "the pool never refilled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_claim_is_applied_to_a_running_pooled_instance() {
    let client = common::client().await;
    let pool = Pool::new(&client, common::spec().env("FROM_SPEC", "spec"), 1)
        .await
        .unwrap();
    ready(&pool, 1).await;
    let claim = Claim::new()
        .env("TASK", "t-42")
        .env("FROM_SPEC", "claim")
        .workdir("/work/t-42")
        .user("nobody")
        .file("/work/t-42/task.json", br#"{"goal":"x"}"#.to_vec())
        .file_with_mode(
            "/usr/local/bin/hello",
            b"#!/bin/sh\necho hello\n".to_vec(),
            0o755,
        )
        .label("task", "t-42");
    let before: Vec<String> = client
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    let env = pool.take_with(claim).await.unwrap();
    // The instance came from the pool: it existed before the claim.
    assert!(
        before.contains(&env.id().to_string()),
        "not a pooled instance"
    );

    let out = env
        .exec([
            "sh",
            "-c",
            "echo $TASK $FROM_SPEC; pwd; id -u; cat task.json; hello",
        ])
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0, "{}", out.stderr_text());
    assert_eq!(
        out.stdout_text(),
        "t-42 claim\n/work/t-42\n65534\n{\"goal\":\"x\"}hello\n"
    );
    // A command's own settings still win.
    let out = env
        .exec(
            Exec::new(["sh", "-c", "echo $TASK; pwd; id -u"])
                .env("TASK", "own")
                .workdir("/")
                .user("0"),
        )
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "own\n/\n0\n");
    // Background processes get the claim too.
    let p = env
        .start_process(["sh", "-c", "echo $TASK; pwd"])
        .await
        .unwrap();
    assert_eq!(p.wait().await.unwrap().code, 0);
    let kept: Vec<u8> = p
        .output()
        .await
        .unwrap()
        .iter()
        .flat_map(|c| c.data.to_vec())
        .collect();
    assert_eq!(String::from_utf8_lossy(&kept), "t-42\n/work/t-42\n");

    // Labels: kept by the handle; the container's labels are the spec's.
    assert_eq!(
        env.claim_labels().get("task").map(String::as_str),
        Some("t-42")
    );
    let info = env.inspect().await.unwrap();
    assert!(!info.labels.contains_key("task"), "engines cannot relabel");
    assert_eq!(
        info.labels.get("io.headjack.test").map(String::as_str),
        Some("1")
    );

    // The next instance from the pool starts clean: claims do not leak between takes.
    ready(&pool, 1).await;
    let plain = pool.take().await.unwrap();
    let out = plain
        .exec(["sh", "-c", "echo ${TASK:-none} $FROM_SPEC; id -u"])
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "none spec\n0\n");
    assert!(plain.claim_labels().is_empty());
    assert!(plain.exec_defaults().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_claims_are_refused_before_anything_is_taken() {
    let client = common::client().await;
    let pool = Pool::new(&client, common::spec(), 1).await.unwrap();
    ready(&pool, 1).await;
    let bad: Vec<(Claim, &str)> = vec![
        (Claim::new().env("A=B", "x"), "environment variable"),
        (Claim::new().env("", "x"), "environment variable"),
        (Claim::new().workdir("relative/dir"), "absolute"),
        (Claim::new().user(""), "user"),
        (Claim::new().file("rel.txt", b"x".to_vec()), "absolute"),
        (
            Claim::new().file_with_mode("/x", b"x".to_vec(), 0o17777),
            "mode",
        ),
        (Claim::new().label("io.headjack.owner", "me"), "reserved"),
        (Claim::new().label("", "v"), "non-empty"),
        (Claim::new().env("K", "a\0b"), "NUL"),
    ];
    for (claim, needle) in bad {
        let e = pool.take_with(claim.clone()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{claim:?}: {e}");
        assert!(e.to_string().contains(needle), "{claim:?}: {e}");
        assert_eq!(pool.ready(), 1, "an invalid claim took an instance");
    }
    let e = Claim::refuse("memory");
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(
        e.to_string().contains("`memory`") && e.to_string().contains("new container"),
        "{e}"
    );

    // A claim that fails while applied (a file under a regular file): the instance is removed,
    // and the error names the file.
    let e = pool
        .take_with(Claim::new().file("/etc/passwd/nested", b"x".to_vec()))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("/etc/passwd/nested"), "{e}");
    // An empty claim is a plain take.
    ready(&pool, 1).await;
    let env = pool.take_with(Claim::new()).await.unwrap();
    assert!(env.exec_defaults().is_empty() && env.claim_labels().is_empty());
}
