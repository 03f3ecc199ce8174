//! The core runtime against a real engine: exec, files, lifecycle, commit, discovery, cleanup.

mod common;

use std::time::Duration;

use common::{busybox, client, container_exists, spec};
use headjack::exec::StreamKind;
use headjack::{ErrorKind, Exec, Status};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_collects_exit_codes_and_both_streams() {
    let c = client().await;
    let env = c.spawn(spec()).await.unwrap();
    let out = env
        .exec(["sh", "-c", "echo out; echo err >&2; exit 3"])
        .await
        .unwrap();
    assert_eq!(out.exit_code, 3);
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    assert!(!out.timed_out && !out.stdout_truncated && !out.stderr_truncated);
    assert_eq!(
        out.clone().check().unwrap_err().kind(),
        ErrorKind::ExecFailed
    );

    let out = env.exec(["true"]).await.unwrap();
    assert!(out.success());

    // Per-exec env, workdir and user.
    let out = env
        .exec(
            Exec::new(["sh", "-c", "echo $FOO; pwd; id -u"])
                .env("FOO", "bar baz")
                .workdir("/tmp")
                .user("1000"),
        )
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "bar baz\n/tmp\n1000\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_command_is_127_with_a_clear_message() {
    let c = client().await;
    let env = c.spawn(spec()).await.unwrap();
    let out = env.exec(["no-such-command-xyz", "arg"]).await.unwrap();
    assert_eq!(out.exit_code, 127, "stderr: {}", out.stderr_text());
    // One clear line on stderr; the runtime's own report does not leak into stdout.
    assert_eq!(out.stdout_text(), "", "stderr: {}", out.stderr_text());
    assert!(
        out.stderr_text()
            .contains("no-such-command-xyz: command not found"),
        "{}",
        out.stderr_text()
    );
    for path in ["/etc/passwd", "/etc", "/no/such/dir/tool"] {
        let out = env.exec([path]).await.unwrap();
        let want = if path.starts_with("/no/") { 127 } else { 126 };
        assert_eq!(out.exit_code, want, "{path}: {}", out.stderr_text());
        assert_eq!(out.stdout_text(), "", "{path}: {}", out.stderr_text());
        assert!(
            out.stderr_text()
                .starts_with(&format!("headjack: {path}: ")),
            "{path}: {}",
            out.stderr_text()
        );
    }
    // A command that fails on its own keeps its output and exit code untouched.
    let out = env
        .exec([
            "sh",
            "-c",
            "echo 'OCI runtime exec failed: not really'; exit 126",
        ])
        .await
        .unwrap();
    assert_eq!(out.exit_code, 126);
    assert_eq!(out.stdout_text(), "OCI runtime exec failed: not really\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_command_is_invalid_argument() {
    let c = client().await;
    let env = c.spawn(spec()).await.unwrap();
    let e = env.exec(Exec::new(Vec::<String>::new())).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_output_is_bounded_and_flagged() {
    let c = client().await;
    let env = c.spawn(spec()).await.unwrap();
    // 100 MB on stdout, a little on stderr.
    let out = env
        .exec([
            "sh",
            "-c",
            "dd if=/dev/zero bs=1M count=100 2>/dev/null; echo done >&2",
        ])
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0);
    assert!(out.stdout_truncated);
    assert_eq!(out.stdout.len(), headjack::Exec::DEFAULT_MAX_OUTPUT);
    assert!(out.stdout.iter().all(|&b| b == 0));
    assert_eq!(out.stderr, b"done\n");
    assert!(!out.stderr_truncated);

    // A custom bound.
    let out = env
        .exec(Exec::new(["sh", "-c", "echo 0123456789"]).max_output(4))
        .await
        .unwrap();
    assert_eq!(out.stdout, b"0123");
    assert!(out.stdout_truncated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_output_and_stdin_round_trip() {
    let c = client().await;
    let env = c.spawn(spec()).await.unwrap();
    let data: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
    let out = env
        .exec(Exec::new(["cat"]).stdin(data.clone()))
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0);
    assert_eq!(out.stdout.len(), data.len());
    assert!(out.stdout == data, "binary stdin/stdout round trip differs");

    // A command that ignores its stdin still finishes.
    let out = env
        .exec(Exec::new(["true"]).stdin(vec![1u8; 1 << 20]))
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_kills_the_process_inside_the_container() {
    let c = client().await;
    let env = c.spawn(spec()).await.unwrap();
    let out = env
        .exec(
            Exec::new(["sh", "-c", "sleep 4711 & sleep 4712; echo never"])
                .timeout(Duration::from_millis(500)),
        )
        .await
        .unwrap();
    assert!(out.timed_out, "{out:?}");
    assert!(!out.stdout_text().contains("never"));
    assert_eq!(out.clone().check().unwrap_err().kind(), ErrorKind::Timeout);
    // The command and its child are gone.
    let ps = env
        .exec(["ps", "-o", "pid,args"])
        .await
        .unwrap()
        .stdout_text();
    assert!(
        !ps.contains("sleep 4711") && !ps.contains("sleep 4712"),
        "still running:\n{ps}"
    );

    // A command that finishes in time is not flagged.
    let out = env
        .exec(Exec::new(["true"]).timeout(Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(!out.timed_out);
    assert_eq!(out.exit_code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_stream_kills_the_command() {
    let c = client().await;
    let env = c.spawn(spec()).await.unwrap();
    let mut s = env
        .exec_stream(["sh", "-c", "echo started; exec sleep 4713"])
        .await
        .unwrap();
    let first = s.next().await.unwrap().unwrap();
    assert_eq!(&first.data[..], b"started\n");
    drop(s);
    // The kill runs in the background after the drop: poll until the process is gone.
    let mut gone = false;
    for _ in 0..100 {
        let ps = env.exec(["ps", "-o", "args"]).await.unwrap().stdout_text();
        if !ps.contains("sleep 4713") {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the command outlived its dropped stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_kills_the_command_and_reports_its_status() {
    let c = client().await;
    let env = c.spawn(spec()).await.unwrap();
    let mut s = env
        .exec_stream(["sh", "-c", "echo up; exec sleep 4716"])
        .await
        .unwrap();
    assert_eq!(&s.next().await.unwrap().unwrap().data[..], b"up\n");
    let status = s.cancel().await.unwrap();
    assert!(!status.timed_out);
    assert_ne!(status.code, 0);
    // cancel returns once the kill went through: no polling needed.
    let ps = env.exec(["ps", "-o", "args"]).await.unwrap().stdout_text();
    assert!(!ps.contains("sleep 4716"), "{ps}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_delivers_chunks_in_order_then_status() {
    let c = client().await;
    let env = c.spawn(spec()).await.unwrap();
    let mut s = env
        .exec_stream([
            "sh",
            "-c",
            "for i in 1 2 3; do echo $i; sleep 0.1; done; echo e >&2; exit 5",
        ])
        .await
        .unwrap();
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    while let Some(chunk) = s.next().await {
        let chunk = chunk.unwrap();
        match chunk.stream {
            StreamKind::Stdout => stdout.extend_from_slice(&chunk.data),
            StreamKind::Stderr => stderr.extend_from_slice(&chunk.data),
        }
    }
    let status = s.wait().await.unwrap();
    assert_eq!(status.code, 5);
    assert!(!status.timed_out);
    assert_eq!(stdout, b"1\n2\n3\n");
    assert_eq!(stderr, b"e\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_round_trip_modes_and_refusals() {
    let c = client().await;
    let env = c.spawn(spec()).await.unwrap();
    // 50 MB of varied bytes.
    let big: Vec<u8> = (0..50 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    env.write_file("/tmp/deep/er/big.bin", &big).await.unwrap();
    let back = env.read_file("/tmp/deep/er/big.bin").await.unwrap();
    assert!(back == big, "50 MB round trip differs");

    env.write_file_with_mode("/tmp/run.sh", b"#!/bin/sh\necho ran\n", 0o755)
        .await
        .unwrap();
    let out = env.exec(["/tmp/run.sh"]).await.unwrap();
    assert_eq!(out.stdout_text(), "ran\n");
    let mode = env
        .exec(["stat", "-c", "%a", "/tmp/run.sh"])
        .await
        .unwrap()
        .stdout_text();
    assert_eq!(mode.trim(), "755");
    // An existing directory keeps its mode when a file is written into it.
    let tmp_mode = env
        .exec(["stat", "-c", "%a", "/tmp"])
        .await
        .unwrap()
        .stdout_text();
    assert_eq!(tmp_mode.trim(), "1777");

    // Errors: missing file, directory, relative path, climbing above /.
    assert_eq!(
        env.read_file("/tmp/missing").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        env.read_file("/tmp").await.unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        env.write_file("tmp/x", b"x").await.unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        env.write_file("/../x", b"x").await.unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );

    // copy_in / copy_out of a directory tree with a link inside it.
    let host = tempfile::tempdir().unwrap();
    let src = host.path().join("tree");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/a.txt"), b"alpha").unwrap();
    std::os::unix::fs::symlink("sub/a.txt", src.join("link")).unwrap();
    env.copy_in(&src, "/tmp").await.unwrap();
    let out = env.exec(["cat", "/tmp/tree/link"]).await.unwrap();
    assert_eq!(out.stdout, b"alpha");
    let dest = host.path().join("out");
    env.copy_out("/tmp/tree", &dest).await.unwrap();
    assert_eq!(
        std::fs::read(dest.join("tree/sub/a.txt")).unwrap(),
        b"alpha"
    );
    assert_eq!(
        std::fs::read_link(dest.join("tree/link")).unwrap(),
        std::path::PathBuf::from("sub/a.txt")
    );

    // A link inside the container that points out of the copied tree is refused on copy_out,
    // and nothing is written.
    env.exec([
        "sh",
        "-c",
        "mkdir -p /tmp/evil && ln -s /etc/passwd /tmp/evil/pw && echo x > /tmp/evil/a",
    ])
    .await
    .unwrap();
    let dest2 = host.path().join("out2");
    let e = env.copy_out("/tmp/evil", &dest2).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert!(!dest2.join("evil/a").exists());
    assert!(
        env.copy_in(host.path().join("missing"), "/tmp")
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_stop_start_pause_resume_restart_kill() {
    let c = client().await;
    let env = c.spawn(spec()).await.unwrap();
    assert_eq!(env.status().await.unwrap(), Status::Running);
    env.write_file("/tmp/keep.txt", b"kept").await.unwrap();

    env.pause().await.unwrap();
    assert_eq!(env.status().await.unwrap(), Status::Paused);
    env.resume().await.unwrap();
    assert_eq!(env.status().await.unwrap(), Status::Running);

    env.stop(Duration::from_secs(1)).await.unwrap();
    assert!(matches!(env.status().await.unwrap(), Status::Exited(_)));
    let e = env.exec(["true"]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    env.start().await.unwrap();
    assert_eq!(env.read_file("/tmp/keep.txt").await.unwrap(), b"kept");

    env.restart(Duration::from_secs(1)).await.unwrap();
    assert_eq!(env.status().await.unwrap(), Status::Running);

    env.kill("SIGKILL").await.unwrap();
    for _ in 0..50 {
        if env.status().await.unwrap() != Status::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(matches!(env.status().await.unwrap(), Status::Exited(_)));

    let id = env.container_id().to_string();
    env.remove().await.unwrap();
    env.remove().await.unwrap(); // idempotent
    assert!(!container_exists(&id));
    assert_eq!(
        env.exec(["true"]).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_then_spawn_from_the_snapshot() {
    let c = client().await;
    let env = c.spawn(spec()).await.unwrap();
    env.write_file("/snapshot-marker", b"from the snapshot")
        .await
        .unwrap();
    let tag = format!("localhost/headjack-test/snap:{}", env.id());
    let snap = env.commit(&tag).await.unwrap();
    assert_eq!(snap.to_string(), tag);
    let again = c
        .spawn(
            headjack::Spec::new()
                .base(snap.to_string())
                .label("io.headjack.test", "1"),
        )
        .await
        .unwrap();
    assert_eq!(
        again.read_file("/snapshot-marker").await.unwrap(),
        b"from the snapshot"
    );
    // It runs its own keep-alive, like any base.
    assert_eq!(again.status().await.unwrap(), Status::Running);
    drop(again);
    drop(env);
    common::docker(&["rmi", &tag]);

    let env = c.spawn(spec()).await.unwrap();
    assert_eq!(
        env.commit("Bad/Upper").await.unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_show_keep_alive_output() {
    let c = client().await;
    let env = c
        .spawn(spec().init(["sh", "-c", "echo hello-from-init; exec sleep 1000000"]))
        .await
        .unwrap();
    let mut text = String::new();
    for _ in 0..50 {
        let logs = env.logs().await.unwrap();
        text = logs
            .iter()
            .map(|c| String::from_utf8_lossy(&c.data).into_owned())
            .collect();
        if text.contains("hello-from-init") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(text.contains("hello-from-init"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_attach_and_keep() {
    let c = client().await;
    let env = c.spawn(spec()).await.unwrap();
    let listed = c.list().await.unwrap();
    let me = listed.iter().find(|i| i.id == env.id()).expect("listed");
    assert_eq!(me.status, Status::Running);
    assert_eq!(me.image, busybox());
    assert!(me.owner.contains(&format!("/{}/", std::process::id())));

    let attached = c.attach(env.id()).await.unwrap();
    assert_eq!(attached.container_id(), env.container_id());
    assert_eq!(attached.exec(["echo", "hi"]).await.unwrap().stdout, b"hi\n");
    drop(attached); // attached handles are kept on drop
    assert!(container_exists(env.container_id()));
    let by_name = c.attach(env.name()).await.unwrap();
    assert_eq!(by_name.id(), env.id());

    assert_eq!(
        c.attach("no-such-instance-xyz").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        c.attach("").await.unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );

    // keep() survives drop; remove() through attach cleans it up.
    env.keep();
    let id = env.id().to_string();
    let container = env.container_id().to_string();
    drop(env);
    assert!(container_exists(&container));
    c.attach(&id).await.unwrap().remove().await.unwrap();
    assert!(!container_exists(&container));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_removes_the_container_on_a_multi_thread_runtime() {
    let c = client().await;
    let env = c.spawn(spec()).await.unwrap();
    let id = env.container_id().to_string();
    drop(env);
    assert!(!container_exists(&id));
}

#[test]
fn drop_removes_the_container_on_a_current_thread_runtime_and_outside_any_runtime() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (inside, outside) = rt.block_on(async {
        let c = client().await;
        let a = c.spawn(spec()).await.unwrap();
        let b = c.spawn(spec()).await.unwrap();
        let ida = a.container_id().to_string();
        drop(a); // inside the current-thread runtime
        (ida, b)
    });
    assert!(!container_exists(&inside));
    let idb = outside.container_id().to_string();
    drop(rt);
    drop(outside); // no runtime at all any more
    assert!(!container_exists(&idb));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_removes_instances_of_a_killed_process_and_expired_ones() {
    let c = client().await;
    // A child process spawns an instance and is killed with SIGKILL: no Drop runs.
    let child_bin = common::example("sweep_child");
    let mut child = std::process::Command::new(&child_bin)
        .env("HEADJACK_TEST_HOST", common::host())
        .env("HEADJACK_TEST_BUSYBOX", busybox())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    {
        use std::io::BufRead;
        let stdout = child.stdout.take().unwrap();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
    }
    let orphan = line.trim().to_string();
    assert!(!orphan.is_empty(), "the child did not report its instance");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let mine = c.spawn(spec()).await.unwrap();
    // A detached instance has no owner: sweep leaves it alone until it expires.
    let detached = c.spawn(spec().detached(true)).await.unwrap();
    // (With the in-container agent, an expired instance also stops by itself.)
    let expired = c
        .spawn(spec().expires_after(Duration::from_secs(2)))
        .await
        .unwrap();
    expired.keep();
    let expired_id = expired.id().to_string();
    tokio::time::sleep(Duration::from_millis(3100)).await;

    let swept = c.sweep().await.unwrap();
    assert!(
        swept.contains(&orphan),
        "orphan {orphan} not swept: {swept:?}"
    );
    assert!(
        swept.contains(&expired_id),
        "expired {expired_id} not swept: {swept:?}"
    );
    assert!(
        !swept.iter().any(|s| s == mine.id()),
        "a live owner's instance was swept"
    );
    assert!(
        !swept.iter().any(|s| s == detached.id()),
        "a detached instance was swept"
    );
    assert!(container_exists(mine.container_id()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_hand_out_ready_instances_and_refill() {
    let c = client().await;
    let marker = format!("pool-{}", std::process::id());
    let pool = headjack::Pool::new(&c, spec().label("case", &marker), 2)
        .await
        .unwrap();
    assert_eq!(pool.ready(), 2);
    let a = pool.take().await.unwrap();
    let b = pool.take().await.unwrap();
    let extra = pool.take().await.unwrap(); // pool empty: spawned on demand
    for env in [&a, &b, &extra] {
        assert_eq!(env.exec(["echo", "ok"]).await.unwrap().stdout, b"ok\n");
    }
    let ids = [
        a.id().to_string(),
        b.id().to_string(),
        extra.id().to_string(),
    ];
    assert!(ids[0] != ids[1] && ids[1] != ids[2]);
    // The background refill brings it back to its size (allow 30 s on a loaded machine).
    for _ in 0..300 {
        if pool.ready() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pool.ready(), 2);
    drop(pool); // removes the two waiting instances
    let mine = |list: Vec<headjack::instance::InstanceInfo>| {
        list.into_iter()
            .filter(|i| i.labels.get("case") == Some(&marker))
            .count()
    };
    assert_eq!(
        mine(c.list().await.unwrap()),
        3,
        "only the taken instances remain"
    );
    drop((a, b, extra));
    assert_eq!(mine(c.list().await.unwrap()), 0);
    assert_eq!(
        headjack::Pool::new(&c, spec(), 0)
            .await
            .err()
            .map(|e| e.kind()),
        Some(ErrorKind::InvalidArgument)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_and_terminal_resize_work_while_another_task_reads() {
    let c = client().await;
    let env = c.spawn(spec()).await.unwrap();
    let mut s = env
        .exec_stream(
            Exec::new([
                "sh",
                "-c",
                "read l; echo got-$l; read m; stty size; echo got-$m; cat; echo eof-$?",
            ])
            .tty(true)
            .interactive(true),
        )
        .await
        .unwrap();
    let mut stdin = s.take_stdin().expect("an interactive exec has stdin");
    assert!(s.take_stdin().is_none(), "stdin is handed out once");
    let resizer = s.resizer();
    assert_eq!(
        resizer.resize(0, 80).await.unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    // The reader waits on output that only the other task's input and resize produce.
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(chunk) = s.next().await {
            seen.extend_from_slice(&chunk.unwrap().data);
            let text = String::from_utf8_lossy(&seen);
            if text.contains("got-two") && text.contains("30 100") {
                break;
            }
        }
        (s, String::from_utf8_lossy(&seen).into_owned())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    stdin.write(b"one\n").await.unwrap();
    resizer.resize(30, 100).await.unwrap();
    stdin.write(b"two\n").await.unwrap();
    let (s, seen) = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the reader never saw the answers")
        .unwrap();
    assert!(seen.contains("got-one"), "{seen}");
    // Closing a terminal's input is the ^D that ends `cat` (mid-line: flush, then EOF).
    let mut s = s;
    stdin.write(b"partial").await.unwrap();
    stdin.close().await.unwrap();
    let mut rest = Vec::new();
    let drain = async {
        while let Some(chunk) = s.next().await {
            rest.extend_from_slice(&chunk.unwrap().data);
        }
    };
    tokio::time::timeout(Duration::from_secs(60), drain)
        .await
        .expect("closing the terminal's input did not end the command");
    let rest = String::from_utf8_lossy(&rest).into_owned();
    assert!(rest.contains("partial") && rest.contains("eof-0"), "{rest}");
    assert_eq!(s.wait().await.unwrap().code, 0, "{seen}{rest}");

    // Input given up front ends the same way on a terminal.
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        env.exec(
            Exec::new(["sh", "-c", "cat; echo eof-$?"])
                .tty(true)
                .stdin("x\n"),
        ),
    )
    .await
    .expect("a terminal command fed stdin up front never saw its end")
    .unwrap();
    assert_eq!(out.exit_code, 0, "{}", out.stdout_text());
    assert!(out.stdout_text().contains("eof-0"), "{}", out.stdout_text());
}

/// Issue 9 item 17: many instances go at once with `Instance::remove_all` (dropping them one by
/// one waits for each removal in turn).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_all_removes_many_instances_together() {
    let c = client().await;
    let envs = futures_util::future::try_join_all((0..6).map(|_| c.spawn(spec())))
        .await
        .unwrap();
    let ids: Vec<String> = envs.iter().map(|e| e.container_id().to_string()).collect();
    envs[0].keep();
    headjack::Instance::remove_all(envs).await.unwrap();
    for id in ids {
        assert!(!container_exists(&id), "{id} was left behind");
    }
}
