//! Regression tests for the defects of issue 9 that live in the core, each through the Rust API
//! on the engine under test (Docker and Podman). Each test names its item.

mod common;

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use common::{busybox, client, container_exists, spec};
use headjack::exec::ExitStatus;
use headjack::{Dockerfile, ErrorKind, Exec, Pool, Spec};

/// Item 4: a file larger than the read limit is refused before it is read; a 1 GiB sparse file
/// copied out stays sparse on the host (and is streamed, never held in memory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_files_are_bounded_and_sparse_files_stay_sparse() {
    let c = client().await;
    let env = c.spawn(spec()).await.unwrap();
    let out = env
        .exec([
            "sh",
            "-c",
            "truncate -s 1G /tmp/big && printf end >> /tmp/big && printf hi > /tmp/small",
        ])
        .await
        .unwrap();
    assert!(out.success(), "{}", out.stderr_text());
    let e = env.read_file("/tmp/big").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert!(
        e.message().contains("read limit") && e.message().contains("copy_out"),
        "{e}"
    );
    assert_eq!(env.read_file_limited("/tmp/small", 2).await.unwrap(), b"hi");
    let e = env.read_file_limited("/tmp/small", 1).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");

    let dir = tempfile::tempdir().unwrap();
    let written = env.copy_out("/tmp/big", dir.path()).await.unwrap();
    assert_eq!(written, vec![dir.path().join("big")]);
    let meta = std::fs::metadata(dir.path().join("big")).unwrap();
    assert_eq!(meta.len(), (1 << 30) + 3);
    assert!(
        meta.blocks() * 512 < 64 << 20,
        "the copy is not sparse: {} bytes allocated",
        meta.blocks() * 512
    );
    let data = std::fs::read(dir.path().join("big")).unwrap();
    assert_eq!(&data[data.len() - 3..], b"end");
}

/// Item 15: a copy that a symbolic link in the destination would redirect is refused before
/// anything is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_out_checks_the_whole_destination_before_writing() {
    let c = client().await;
    let env = c.spawn(spec()).await.unwrap();
    env.exec([
        "sh",
        "-c",
        "mkdir -p /tmp/d/sub && echo a > /tmp/d/a && echo b > /tmp/d/sub/b",
    ])
    .await
    .unwrap();
    let dest = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::create_dir(dest.path().join("d")).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), dest.path().join("d/sub")).unwrap();
    let e = env.copy_out("/tmp/d", dest.path()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert!(
        e.message().contains("symbolic link") && e.message().contains("nothing was written"),
        "{e}"
    );
    assert!(
        !dest.path().join("d/a").exists(),
        "a part of the copy was written before refusing"
    );
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
}

/// Item 13: a missing working directory, user or group each give their own clear line on stderr
/// (exit 126), and nothing of the runtime's text on stdout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_failures_say_what_was_wrong() {
    let c = client().await;
    let env = c.spawn(spec()).await.unwrap();
    let cases = [
        (
            Exec::new(["pwd"]).workdir("/nonexistent"),
            "working directory /nonexistent does not exist",
        ),
        (
            Exec::new(["id"]).user("nosuchuser"),
            "user nosuchuser does not exist",
        ),
        (Exec::new(["id"]).user("0:nosuchgroup"), "group"),
    ];
    for (exec, want) in cases {
        let out = env.exec(exec).await.unwrap();
        assert_eq!(out.exit_code, ExitStatus::CANNOT_EXECUTE, "{want}: {out:?}");
        assert!(
            out.stdout.is_empty(),
            "{want}: stdout {:?}",
            out.stdout_text()
        );
        assert!(
            out.stderr_text().contains(want),
            "{want}: stderr {:?}",
            out.stderr_text()
        );
    }
    let out = env.exec(["no-such-command"]).await.unwrap();
    assert_eq!(out.exit_code, ExitStatus::COMMAND_NOT_FOUND);
    assert!(
        out.stderr_text().contains("command not found"),
        "{}",
        out.stderr_text()
    );
}

/// Item 14: an exec killed by the memory limit says so, in the status and on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_memory_is_reported() {
    let c = client().await;
    let env = c.spawn(spec().memory(32 << 20)).await.unwrap();
    let out = env
        .exec([
            "sh",
            "-c",
            "head -c 200000000 /dev/zero | tail -c 100000000 > /dev/null",
        ])
        .await
        .unwrap();
    assert!(out.oom_killed, "{out:?}");
    assert!(
        out.stderr_text().contains("out of memory (limit 32 MiB)"),
        "{}",
        out.stderr_text()
    );
    let e = out.check().unwrap_err();
    assert!(e.message().contains("out of memory"), "{e}");
    // The next ordinary failure is not mistaken for one.
    let out = env.exec(["sh", "-c", "kill -9 $$"]).await.unwrap();
    assert_eq!(out.exit_code, 137);
    assert!(!out.oom_killed, "{out:?}");
}

/// Item 6: a timeout never claims a kill that did not happen — a command that dropped the
/// marker (`env -i`), or any command in an image without `/bin/sh`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_do_not_lie() {
    let c = client().await;
    let env = c.spawn(spec()).await.unwrap();
    let out = env
        .exec(Exec::new(["sh", "-c", "sleep 300"]).timeout(Duration::from_secs(1)))
        .await
        .unwrap();
    assert!(out.timed_out && !out.kill_failed, "{out:?}");
    let out = env
        .exec(Exec::new(["env", "-i", "sleep", "300"]).timeout(Duration::from_secs(1)))
        .await
        .unwrap();
    assert!(out.timed_out && out.kill_failed, "{out:?}");
    assert_eq!(out.exit_code, -1);
    let e = out.check().unwrap_err();
    assert!(e.message().contains("may still run"), "{e}");

    // An image with no shell at all: the engine path has no way to kill.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!(
            "FROM {}\nFROM scratch\nCOPY --from=0 /bin/busybox /busybox\n",
            busybox()
        ),
    )
    .unwrap();
    let shellless = c
        .spawn(
            Spec::new()
                .base(Dockerfile::new(dir.path().join("Dockerfile")))
                .init(["/busybox", "sleep", "3600"])
                .label("io.headjack.test", "1"),
        )
        .await
        .unwrap();
    let image = shellless.image().to_string();
    let out = shellless
        .exec(Exec::new(["/busybox", "sleep", "300"]).timeout(Duration::from_secs(1)))
        .await
        .unwrap();
    assert!(out.timed_out && out.kill_failed, "{out:?}");
    shellless.remove().await.unwrap();
    c.remove_image(&image, false).await.unwrap();
}

/// Item 7: durations too long to represent do not panic (a timeout that never fires).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_durations_do_not_panic() {
    let c = client().await;
    let env = c.spawn(spec()).await.unwrap();
    let out = env
        .exec(Exec::new(["true"]).timeout(Duration::MAX))
        .await
        .unwrap();
    assert!(out.success());
    let e = c
        .spawn(spec().expires_after(Duration::MAX))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    let ready = c
        .spawn(spec().readiness(headjack::spec::Readiness::command(["true"], Duration::MAX)))
        .await
        .unwrap();
    drop(ready);
}

/// Items 9, 10 and 17: bad input is a clear InvalidArgument naming the value, before anything
/// is created — never Internal, never an abort.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_invalid_argument() {
    let c = client().await;
    for (bad, needle) in [
        (spec().memory(1 << 63), "9223372036854775808"),
        (spec().cpus(5e-10), "cpus"),
        (spec().pids(i64::MAX), "pids"),
        (spec().env("A", "x\0y"), "NUL"),
        (spec().user("nosuchuser"), "nosuchuser"),
    ] {
        let e = c.spawn(bad).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
        assert!(e.message().contains(needle), "{e}");
    }
    let e = Pool::new(&c, spec(), usize::MAX).await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    let env = c.spawn(spec()).await.unwrap();
    let e = env.write_file("/etc/passwd/x", b"1").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert!(e.message().contains("not a directory"), "{e}");
    let e = env
        .exec(Exec::new(["true"]).env("A", "x\0y"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    // None of the refused spawns left a container behind.
    let id = env.container_id().to_string();
    drop(env);
    assert!(!container_exists(&id));
}
