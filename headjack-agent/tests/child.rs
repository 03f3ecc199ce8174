//! The agent binary as a child process of the test over pipes (not PID 1: it makes itself a
//! subreaper). Everything that does not need a container is covered here; the same behaviour
//! as PID 1 in real containers is in `containers.rs`.

mod common;

use std::time::Duration;

use common::*;
use headjack_agent::client::{
    AttachEvent, Channel, ErrorKind, ExecRequest, FileKind, StartFailureKind, StreamKind,
    WriteFileRequest,
};
use headjack_agent::proto::{self, ErrorCode, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn runs_a_command_with_argv_env_and_workdir() {
    let a = child_agent(&[]).await;
    let out = run(
        &a.ch,
        ExecRequest::new([
            "sh",
            "-c",
            "echo \"$1|$GREETING|$(pwd)\"; echo oops >&2",
            "sh",
            "a b",
        ])
        .env("GREETING", "hello world")
        .workdir("/tmp"),
    )
    .await;
    assert_eq!(text(&out.stdout), "a b|hello world|/tmp\n");
    assert_eq!(text(&out.stderr), "oops\n");
    assert!(out.status.success(), "{:?}", out.status);
    // The agent's own environment is the base; HOME comes from the user's passwd entry.
    let out = run(
        &a.ch,
        ExecRequest::new(["sh", "-c", "echo $HOME; echo ${PATH:+set}"]),
    )
    .await;
    assert_eq!(text(&out.stdout), "/root\nset\n");
}

#[tokio::test]
async fn exit_codes_and_signals() {
    let a = child_agent(&[]).await;
    let st = run(&a.ch, ExecRequest::new(["sh", "-c", "exit 3"]))
        .await
        .status;
    assert_eq!((st.code, st.signal, st.timed_out), (3, None, false));
    let st = run(&a.ch, ExecRequest::new(["sh", "-c", "kill -TERM $$"]))
        .await
        .status;
    assert_eq!((st.code, st.signal), (143, Some(15)));
    assert!(!st.oom_killed);
    assert!(!st.success());
}

#[tokio::test]
async fn start_failures_are_distinct_and_say_what_was_wrong() {
    let a = child_agent(&[]).await;
    let cases: &[(ExecRequest, StartFailureKind, i32, &str)] = &[
        (
            ExecRequest::new(["no-such-program-hj"]),
            StartFailureKind::NotFound,
            127,
            "no-such-program-hj: command not found",
        ),
        (
            ExecRequest::new(["/no/such/dir/prog"]),
            StartFailureKind::NotFound,
            127,
            "command not found",
        ),
        (
            ExecRequest::new(["/etc/hostname"]),
            StartFailureKind::NotExecutable,
            126,
            "/etc/hostname: cannot be run",
        ),
        (
            ExecRequest::new(["/tmp"]),
            StartFailureKind::NotExecutable,
            126,
            "cannot be run",
        ),
        (
            ExecRequest::new(["true"]).workdir("/no/such/workdir"),
            StartFailureKind::NoWorkdir,
            126,
            "working directory cannot be entered (no such file or directory)",
        ),
        (
            ExecRequest::new(["true"]).user("no-such-user-hj"),
            StartFailureKind::UnknownUser,
            126,
            "unable to find user no-such-user-hj",
        ),
        (
            ExecRequest::new(["true"]).user("root:no-such-group-hj"),
            StartFailureKind::UnknownGroup,
            126,
            "unable to find group no-such-group-hj",
        ),
    ];
    for (req, kind, code, needle) in cases {
        let st = run(&a.ch, req.clone()).await.status;
        let f = st
            .start_failure
            .as_ref()
            .unwrap_or_else(|| panic!("{:?} started: {st:?}", req.argv));
        assert_eq!(f.kind, *kind, "{:?}: {}", req.argv, f.message);
        assert_eq!(st.code, *code);
        assert!(f.message.contains(needle), "{:?}: {}", req.argv, f.message);
    }
    // Invalid requests are refused as such.
    let mut h =
        a.ch.exec(ExecRequest::new(Vec::<String>::new()))
            .await
            .unwrap();
    let e = h.next().await.unwrap().unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::InvalidArgument));
    assert!(e.message().contains("empty command"), "{e}");
}

#[tokio::test]
async fn runs_as_another_user_with_groups_from_the_files() {
    let a = child_agent(&[]).await;
    // uid 1000 exists in the host's /etc/passwd; 4242 does not (numeric users need no entry).
    let out = run(
        &a.ch,
        ExecRequest::new(["sh", "-c", "id -u; id -g; echo $HOME"]).user("1000"),
    )
    .await;
    let lines: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    assert_eq!(lines[0], "1000");
    assert_eq!(lines[1], "1000");
    let out = run(
        &a.ch,
        ExecRequest::new(["sh", "-c", "id -u; id -g; id -G; echo $HOME"]).user("4242:4343"),
    )
    .await;
    assert_eq!(text(&out.stdout), "4242\n4343\n4343\n/\n");
}

#[tokio::test]
async fn streams_stdin_both_ways_with_bounded_buffers() {
    let a = child_agent(&[]).await;
    let h =
        a.ch.exec(ExecRequest::new(["cat"]).stdin(true))
            .await
            .unwrap();
    let ctl = h.control();
    // 8 MiB through cat while the output is read concurrently.
    let data: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
    let expect = data.clone();
    let writer = tokio::spawn(async move {
        for chunk in data.chunks(100_000) {
            ctl.write_stdin(chunk).await.unwrap();
        }
        ctl.close_stdin().unwrap();
    });
    let out = h.output().await.unwrap();
    writer.await.unwrap();
    assert!(out.stdout == expect, "{} bytes back", out.stdout.len());
    assert!(out.status.success());
    // Writing to a command that ended fails clearly rather than hanging.
    let h =
        a.ch.exec(ExecRequest::new(["true"]).stdin(true))
            .await
            .unwrap();
    let ctl = h.control();
    h.wait().await.unwrap();
    let e = ctl.write_stdin(&vec![0u8; 1 << 20]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Ended, "{e}");
}

#[tokio::test]
async fn a_terminal_resizes_and_ends_input_with_eot() {
    let a = child_agent(&[]).await;
    let mut req = ExecRequest::new([
        "sh",
        "-c",
        "stty size; read line; echo got:$line; stty size",
    ])
    .tty(true)
    .stdin(true);
    req.tty_size = Some((30, 100));
    let mut h = a.ch.exec(req).await.unwrap();
    let ctl = h.control();
    let mut seen = String::new();
    while !seen.contains("30 100") {
        let c = h.next().await.unwrap().unwrap();
        assert_eq!(c.stream, StreamKind::Stdout);
        seen.push_str(&text(&c.data));
    }
    ctl.resize(50, 132).unwrap();
    ctl.write_stdin(b"hello\n").await.unwrap();
    let out = h.output().await.unwrap();
    let all = text(&out.stdout);
    assert!(all.contains("got:hello"), "{all:?}");
    assert!(all.contains("50 132"), "{all:?}");
    assert!(out.stderr.is_empty());
    // Closing stdin of a terminal is ^D: cat sees end of file even mid-line.
    let h =
        a.ch.exec(ExecRequest::new(["cat"]).tty(true).stdin(true))
            .await
            .unwrap();
    let ctl = h.control();
    ctl.write_stdin(b"partial").await.unwrap();
    ctl.close_stdin().unwrap();
    let out = h.output().await.unwrap();
    assert!(
        text(&out.stdout).contains("partial"),
        "{:?}",
        text(&out.stdout)
    );
    assert!(out.status.success(), "{:?}", out.status);
    // TERM is set on a terminal, as docker exec does.
    let out = run(
        &a.ch,
        ExecRequest::new(["sh", "-c", "echo $TERM; tty"]).tty(true),
    )
    .await;
    assert!(
        text(&out.stdout).starts_with("xterm\r\n/dev/pts/"),
        "{:?}",
        text(&out.stdout)
    );
}

#[tokio::test]
async fn a_timeout_kills_the_whole_tree_including_setsid_and_nohup() {
    let a = child_agent(&[]).await;
    let marker = unique("tree");
    let st = run(
        &a.ch,
        ExecRequest::new([
            "sh",
            "-c",
            "setsid sleep 300 & nohup sleep 300 >/dev/null 2>&1 & (sleep 300 &) ; sleep 300",
        ])
        .env("HJ_MARK", &marker)
        .timeout(Duration::from_millis(500)),
    )
    .await
    .status;
    assert!(st.timed_out, "{st:?}");
    assert_eq!(st.signal, Some(9));
    // The kill is done before the status is reported: nothing may be left at all.
    let left = pids_with_marker(&marker);
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

#[tokio::test]
async fn kill_signals_the_tree_and_dropping_the_handle_kills() {
    let a = child_agent(&[]).await;
    let mut h =
        a.ch.exec(ExecRequest::new([
            "sh",
            "-c",
            "trap 'echo term; exit 7' TERM; echo ready; while :; do sleep 0.05; done",
        ]))
        .await
        .unwrap();
    let first = h.next().await.unwrap().unwrap();
    assert_eq!(text(&first.data), "ready\n");
    // `Started` comes before any output.
    assert!(h.pid().is_some() && h.process_id().is_some());
    h.control().kill(libc::SIGTERM).unwrap();
    let out = h.output().await.unwrap();
    assert_eq!(text(&out.stdout), "term\n");
    assert_eq!(out.status.code, 7);

    let marker = unique("drop");
    let mut h = a
        .ch
        .exec(ExecRequest::new(["sh", "-c", "sleep 300 & echo up; wait"]).env("HJ_MARK", &marker))
        .await
        .unwrap();
    h.next().await.unwrap().unwrap();
    assert!(!pids_with_marker(&marker).is_empty());
    drop(h);
    assert!(
        eventually(Duration::from_secs(10), || pids_with_marker(&marker)
            .is_empty())
        .await,
        "dropping the handle left {:?}",
        pids_with_marker(&marker)
    );
}

#[tokio::test]
async fn a_slow_reader_stalls_only_its_own_stream_and_memory_stays_bounded() {
    let a = child_agent(&[]).await;
    let agent_pid = a.child.id().unwrap();
    // 200 MiB of output nobody reads for a while.
    let mut flood =
        a.ch.exec(ExecRequest::new([
            "sh",
            "-c",
            "head -c 209715200 /dev/zero",
        ]))
        .await
        .unwrap();
    let first = flood.next().await.unwrap().unwrap();
    assert!(!first.data.is_empty());
    // Meanwhile other execs on the same channel complete.
    for i in 0..20 {
        let out = run(&a.ch, ExecRequest::new(["echo", &i.to_string()])).await;
        assert_eq!(text(&out.stdout), format!("{i}\n"));
    }
    let stalled_rss = rss_kib(agent_pid);
    let mut total = first.data.len();
    let mut max_rss = stalled_rss;
    while let Some(c) = flood.next().await {
        total += c.unwrap().data.len();
        if total % (16 << 20) < 65536 {
            max_rss = max_rss.max(rss_kib(agent_pid));
        }
    }
    assert_eq!(total, 200 << 20);
    println!(
        "agent RSS while stalled: {stalled_rss} KiB, max while streaming 200 MiB: {max_rss} KiB"
    );
    assert!(max_rss < 32 << 10, "the agent buffered: {max_rss} KiB");
}

#[tokio::test]
async fn many_concurrent_execs_on_one_channel() {
    let a = child_agent(&[]).await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let ch = a.ch.clone();
        tasks.push(tokio::spawn(async move {
            let out = run(
                &ch,
                ExecRequest::new([
                    "sh",
                    "-c",
                    &format!("echo {i}; echo e{i} >&2; exit {}", i % 7),
                ]),
            )
            .await;
            assert_eq!(text(&out.stdout), format!("{i}\n"));
            assert_eq!(text(&out.stderr), format!("e{i}\n"));
            assert_eq!(out.status.code, i % 7);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn background_processes_survive_their_session_and_replay_output() {
    let a = child_agent(&["--ring-size", "4096"]).await;
    let marker = unique("bg");
    let id =
        a.ch.start_process(
            ExecRequest::new([
                "sh",
                "-c",
                "echo one; echo two >&2; sleep 0.3; echo three; exec sleep 300",
            ])
            .env("HJ_MARK", &marker),
        )
        .await
        .unwrap();
    // The session that started it goes away (its transport closes: the agent sees EOF); a
    // second one comes in through the relay, as a second host process would.
    let ChildAgent {
        child: _child,
        ch,
        socket,
    } = a;
    drop(ch);
    let (ch, _relay) = relay_session(&socket).await;
    let a = Session2 { ch };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let list = a.ch.processes().await.unwrap();
    let p = list.iter().find(|p| p.id == id).expect("listed");
    assert!(p.background && p.status.is_none(), "{p:?}");
    assert_eq!(p.argv[0], b"sh");
    let mut att = a.ch.attach(id, true).await.unwrap();
    let mut got = Vec::new();
    while !text(
        &got.iter()
            .flat_map(|(_, d): &(StreamKind, Vec<u8>)| d.clone())
            .collect::<Vec<u8>>(),
    )
    .contains("three")
    {
        match att.next().await.unwrap().unwrap() {
            AttachEvent::Output(c) => got.push((c.stream, c.data)),
            AttachEvent::Replayed => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got[0], (StreamKind::Stdout, b"one\n".to_vec()));
    assert!(got.contains(&(StreamKind::Stderr, b"two\n".to_vec())));
    a.ch.kill(id, libc::SIGKILL).await.unwrap();
    loop {
        match att.next().await.unwrap().unwrap() {
            AttachEvent::Exited(st) => break assert_eq!(st.signal, Some(9)),
            AttachEvent::Replayed => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(att.next().await.is_none());
    let st = a.ch.wait(id).await.unwrap();
    assert_eq!(st.signal, Some(9));
    assert!(pids_with_marker(&marker).is_empty());
    // Kept until forgotten; then gone.
    assert!(a.ch.processes().await.unwrap().iter().any(|p| p.id == id));
    a.ch.forget(id).await.unwrap();
    let e = a.ch.wait(id).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NoSuchProcess), "{e}");
    // A failed start is an error saying why.
    let e =
        a.ch.start_process(ExecRequest::new(["no-such-program-hj"]))
            .await
            .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::StartFailed);
    assert_eq!(e.start_failure().unwrap().kind, StartFailureKind::NotFound);
}

struct Session2 {
    ch: Channel,
}

#[tokio::test]
async fn a_lagging_follower_learns_what_it_lost() {
    let a = child_agent(&["--ring-size", "1000"]).await;
    let id =
        a.ch.start_process(ExecRequest::new([
            "sh",
            "-c",
            "head -c 5000 /dev/zero; echo; echo end",
        ]))
        .await
        .unwrap();
    let st = a.ch.wait(id).await.unwrap();
    assert!(st.success());
    let mut att = a.ch.attach(id, true).await.unwrap();
    let mut lost = 0;
    let mut bytes = 0;
    let mut replayed_at = None;
    loop {
        match att.next().await.unwrap().unwrap() {
            AttachEvent::Gap(n) => lost += n,
            AttachEvent::Output(c) => bytes += c.data.len() as u64,
            AttachEvent::Replayed => replayed_at = Some(bytes),
            AttachEvent::Exited(_) => break,
        }
    }
    // The replay's end is marked after everything the ended process wrote.
    assert_eq!(replayed_at, Some(1000));
    assert_eq!(bytes, 1000);
    assert_eq!(lost + bytes, 5005);
}

#[tokio::test]
async fn files_stat_list_mkdir_remove_and_limits() {
    let a = child_agent(&[]).await;
    let dir = format!("/tmp/{}", unique("files"));
    let ch = &a.ch;
    ch.mkdir(&format!("{dir}/a/b"), 0o750, Some((1000, 1000)), true)
        .await
        .unwrap();
    let st = ch.stat(&format!("{dir}/a/b"), true).await.unwrap();
    assert_eq!(
        (st.kind, st.mode, st.uid, st.gid),
        (FileKind::Dir, 0o750, 1000, 1000)
    );
    let e = ch
        .mkdir(&format!("{dir}/a"), 0o755, None, false)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::AlreadyExists), "{e}");

    let mut w = ch
        .write_file(
            WriteFileRequest::new(format!("{dir}/new/deep/file.txt"))
                .mode(0o640)
                .owner(1000, 1000),
        )
        .await
        .unwrap();
    w.write(b"hello ").await.unwrap();
    w.write(b"world").await.unwrap();
    w.finish().await.unwrap();
    let st = ch
        .stat(&format!("{dir}/new/deep/file.txt"), false)
        .await
        .unwrap();
    assert_eq!(
        (st.kind, st.size, st.mode, st.uid),
        (FileKind::File, 11, 0o640, 1000)
    );
    assert_eq!(
        ch.stat(&format!("{dir}/new/deep"), false)
            .await
            .unwrap()
            .uid,
        1000
    );
    let r = ch
        .read_file(&format!("{dir}/new/deep/file.txt"), None)
        .await
        .unwrap();
    assert_eq!(r.size(), 11);
    assert_eq!(r.read_to_end().await.unwrap(), b"hello world");

    let e = ch
        .read_file(&format!("{dir}/new/deep/file.txt"), Some(5))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TooLarge));
    assert!(e.message().contains("more than the limit of 5"), "{e}");
    let e = ch.read_file("/dev/null", None).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotRegularFile));
    assert!(e.message().contains("a character device"), "{e}");
    let e = ch.read_file(&dir, None).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::IsADirectory));
    let e = ch
        .read_file(&format!("{dir}/missing"), None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotFound));
    assert!(e.message().contains("no such file or directory"), "{e}");
    // A write over a directory is refused, and leaves nothing behind.
    let mut w = ch
        .write_file(WriteFileRequest::new(format!("{dir}/a")))
        .await
        .unwrap();
    let e = match w.write(b"x").await {
        Err(e) => e,
        Ok(()) => w.finish().await.unwrap_err(),
    };
    assert_eq!(e.code(), Some(ErrorCode::IsADirectory), "{e}");
    // A write abandoned half-way leaves nothing either.
    let mut w = ch
        .write_file(WriteFileRequest::new(format!("{dir}/abandoned")))
        .await
        .unwrap();
    w.write(&[1u8; 100_000]).await.unwrap();
    drop(w);
    std::os::unix::fs::symlink("a", format!("{dir}/link")).unwrap();
    let names = |l: &[headjack_agent::client::DirEntry]| {
        l.iter().map(|e| text(&e.name)).collect::<Vec<_>>()
    };
    let list = ch.list(&dir).await.unwrap();
    assert_eq!(names(&list), ["a", "link", "new"]);
    assert_eq!(list[1].stat.kind, FileKind::Symlink);
    assert_eq!(list[1].stat.link_target.as_deref(), Some(&b"a"[..]));

    let e = ch.remove(&format!("{dir}/a"), false).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotEmpty), "{e}");
    ch.remove(&format!("{dir}/link"), false).await.unwrap();
    ch.remove(&format!("{dir}/a"), true).await.unwrap();
    assert_eq!(names(&ch.list(&dir).await.unwrap()), ["new"]);
    ch.remove(&dir, true).await.unwrap();
    let e = ch.stat(&dir, false).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotFound));
}

#[tokio::test]
async fn malformed_frames_get_error_frames_and_the_session_goes_on() {
    let a = child_agent(&[]).await;
    let mut relay = tokio::process::Command::new(agent_bin())
        .args(["relay", "--socket", &a.socket])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut w = relay.stdin.take().unwrap();
    let mut r = relay.stdout.take().unwrap();
    let mut wire = b"this is not a frame".to_vec();
    // An oversized header, a frame of an unknown kind, a truncated payload, then a real Hello.
    wire.extend_from_slice(b"hj\x01\x00\x09\x00\x00\x00\xff\xff\xff\x7f");
    wire.extend_from_slice(b"hj\xfa\x00\x02\x00\x00\x00\x00\x00\x00\x00");
    wire.extend_from_slice(b"hj\x42\x00\x03\x00\x00\x00\x01\x00\x00\x00\x07");
    Message::Hello(proto::Hello {
        min_version: 1,
        max_version: 1,
        client: "raw".into(),
    })
    .encode(0, &mut wire)
    .unwrap();
    w.write_all(&wire).await.unwrap();
    let mut dec = proto::Decoder::default();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.iter().any(|(_, m)| matches!(m, Message::HelloReply(_))) {
        let n = r.read(&mut buf).await.unwrap();
        assert!(n > 0, "the agent closed the session");
        dec.feed(&buf[..n]);
        while let Some(f) = dec.next_frame() {
            let f = f.unwrap();
            got.push((f.stream, Message::decode(f.kind, &f.payload).unwrap()));
        }
    }
    let errors: Vec<_> = got
        .iter()
        .filter_map(|(s, m)| match m {
            Message::Error(e) => Some((*s, e.code, e.message.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert_eq!(errors[0].0, 0);
    assert!(errors[0].2.contains("not a frame"), "{errors:?}");
    assert_eq!(errors[1].0, 9);
    assert!(errors[1].2.contains("more than the maximum"), "{errors:?}");
    assert_eq!(errors[2].0, 2);
    assert!(
        errors[2].2.contains("unknown message kind 250"),
        "{errors:?}"
    );
    assert_eq!(errors[3].0, 3);
    assert!(errors.iter().all(|e| e.1 == ErrorCode::Malformed));
    // The agent still serves everyone.
    let out = run(&a.ch, ExecRequest::new(["echo", "alive"])).await;
    assert_eq!(text(&out.stdout), "alive\n");
}

#[tokio::test]
async fn the_agent_dying_fails_pending_calls_clearly() {
    let mut a = child_agent(&[]).await;
    let marker = unique("crash");
    let mut h = a
        .ch
        .exec(ExecRequest::new(["sh", "-c", "echo up; exec sleep 300"]).env("HJ_MARK", &marker))
        .await
        .unwrap();
    h.next().await.unwrap().unwrap();
    let waiter = {
        let ch = a.ch.clone();
        tokio::spawn(async move {
            let id = ch
                .start_process(ExecRequest::new(["sleep", "300"]))
                .await
                .unwrap();
            ch.wait(id).await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.child.start_kill().unwrap();
    let e = h.next().await.unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ChannelClosed, "{e}");
    assert!(e.message().contains("the agent exited"), "{e}");
    let e = waiter.await.unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ChannelClosed);
    let e = a.ch.exec(ExecRequest::new(["true"])).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ChannelClosed);
    // With the agent gone its shims kill their trees.
    assert!(
        eventually(Duration::from_secs(10), || pids_with_marker(&marker)
            .is_empty())
        .await,
        "left: {:?}",
        pids_with_marker(&marker)
    );
}

#[tokio::test]
async fn an_init_command_is_supervised_and_ends_the_agent() {
    let mut child = tokio::process::Command::new(agent_bin())
        .args(["--no-socket", "--", "sh", "-c", "echo init-out; exit 5"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let st = child.wait().await.unwrap();
    assert_eq!(st.code(), Some(5));
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .await
        .unwrap();
    assert!(err.contains("init-out"), "{err}");
    // The session protocol never sees the init's output.
    let mut out = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut out)
        .await
        .unwrap();
    assert!(out.is_empty());
}

#[tokio::test]
async fn sigterm_stops_the_agent_and_an_expiry_too() {
    let a = child_agent(&[]).await;
    let pid = a.child.id().unwrap() as i32;
    let marker = unique("term");
    let id =
        a.ch.start_process(ExecRequest::new(["sleep", "300"]).env("HJ_MARK", &marker))
            .await
            .unwrap();
    assert!(id > 0);
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let mut child = a.child;
    let st = child.wait().await.unwrap();
    assert_eq!(st.code(), Some(0));
    assert!(
        eventually(Duration::from_secs(10), || pids_with_marker(&marker)
            .is_empty())
        .await
    );

    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let b = child_agent(&["--expires-at", &at.to_string()]).await;
    let mut child = b.child;
    let st = child.wait().await.unwrap();
    assert_eq!(st.code(), Some(0));
    assert!(eventually(Duration::from_secs(10), || b.ch.is_closed()).await);
}

#[tokio::test]
async fn only_root_or_the_agents_user_may_open_a_session() {
    let a = child_agent(&[]).await;
    // A relay run as uid 1000 is refused with an error frame.
    let out = run(
        &a.ch,
        ExecRequest::new([agent_bin(), "relay", "--socket", &a.socket])
            .user("1000")
            .stdin(true),
    )
    .await;
    let mut dec = proto::Decoder::default();
    dec.feed(&out.stdout);
    let f = dec.next_frame().expect("a frame").unwrap();
    match Message::decode(f.kind, &f.payload).unwrap() {
        Message::Error(e) => {
            assert_eq!(e.code, ErrorCode::PermissionDenied);
            assert!(e.message.contains("uid 1000"), "{}", e.message);
        }
        m => panic!("{m:?}"),
    }
}

#[tokio::test]
async fn channel_reports_agent_identity() {
    let a = child_agent(&[]).await;
    let h = a.ch.agent();
    assert_eq!(h.version, proto::PROTOCOL_VERSION);
    assert_eq!(h.pid, a.child.id().unwrap());
    assert_eq!(h.uid, 0);
    assert_ne!(h.capabilities & proto::capability::SWITCH_USER, 0);
    assert_ne!(h.capabilities & proto::capability::SOCKET, 0);
    assert_eq!(h.capabilities & proto::capability::PID1, 0);
    assert_eq!(h.arch, std::env::consts::ARCH);
    let _: &Channel = &a.ch;
}

#[tokio::test]
async fn a_client_that_does_not_read_answers_cannot_grow_the_agent() {
    let a = child_agent(&[]).await;
    let agent_pid = a.child.id().unwrap();
    let mut relay = tokio::process::Command::new(agent_bin())
        .args(["relay", "--socket", &a.socket])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut w = relay.stdin.take().unwrap();
    let mut r = relay.stdout.take().unwrap();
    const N: u32 = 400_000;
    let writer = tokio::spawn(async move {
        let mut wire = Vec::new();
        Message::Hello(proto::Hello {
            min_version: 1,
            max_version: 1,
            client: "flood".into(),
        })
        .encode(0, &mut wire)
        .unwrap();
        for i in 1..=N {
            Message::Stat {
                path: b"/".to_vec(),
                follow: false,
            }
            .encode(i, &mut wire)
            .unwrap();
            if wire.len() > 1 << 20 {
                w.write_all(&wire).await.unwrap();
                wire.clear();
            }
        }
        w.write_all(&wire).await.unwrap();
        w
    });
    // Nobody reads the answers for a while: the agent must stop taking requests.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss = rss_kib(agent_pid);
    println!("agent RSS with ~{N} requests unanswered: {rss} KiB");
    assert!(rss < 48 << 10, "the agent buffered answers: {rss} KiB");
    // Reading resumes everything: every request is answered.
    let mut dec = proto::Decoder::default();
    let mut answered = 0u32;
    let mut buf = vec![0u8; 1 << 16];
    while answered < N {
        let n = r.read(&mut buf).await.unwrap();
        assert!(n > 0);
        dec.feed(&buf[..n]);
        while let Some(f) = dec.next_frame() {
            let f = f.unwrap();
            if f.kind == proto::kind::STAT_REPLY {
                answered += 1;
            }
        }
    }
    let _w = writer.await.unwrap();
}

#[tokio::test]
async fn an_exec_ends_soon_after_its_command_even_if_descendants_hold_the_output() {
    let a = child_agent(&[]).await;
    let marker = unique("grace");
    // The background sleep inherits stdout: without the grace rule the exec would last 300 s.
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        run(
            &a.ch,
            ExecRequest::new(["sh", "-c", "echo hi; sleep 300 & echo bye"]).env("HJ_MARK", &marker),
        ),
    )
    .await
    .expect("the exec ends without waiting for the background sleep");
    assert_eq!(text(&out.stdout), "hi\nbye\n");
    assert!(out.status.success());
    // As after docker exec, the descendant lives on (now under the agent)...
    let left = pids_with_marker(&marker);
    assert_eq!(left.len(), 1, "{left:?}");
    // ...and is the caller's to stop.
    for p in left {
        unsafe { libc::kill(p as i32, libc::SIGKILL) };
    }
}

#[tokio::test]
async fn commands_start_with_default_signals_whatever_the_agent_inherited() {
    // Started the way `nohup` would: SIGHUP and SIGINT ignored.
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(agent_bin());
    cmd.args(["--no-socket"]);
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            libc::signal(libc::SIGINT, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut child = tokio::process::Command::from(cmd)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let ch = Channel::open(child.stdout.take().unwrap(), child.stdin.take().unwrap())
        .await
        .unwrap();
    // SigIgn and SigBlk of the command itself: nothing ignored, nothing blocked.
    let out = run(
        &ch,
        ExecRequest::new(["sh", "-c", "grep -E '^Sig(Ign|Blk)' /proc/self/status"]),
    )
    .await;
    let text = text(&out.stdout);
    // The shell ignores nothing by itself when not interactive.
    assert!(text.contains("SigBlk:\t0000000000000000"), "{text}");
    assert!(text.contains("SigIgn:\t0000000000000000"), "{text}");
}

#[tokio::test]
async fn an_idle_agent_does_not_spin_on_hung_up_pipes() {
    let a = child_agent(&[]).await;
    let pid = a.child.id().unwrap();
    // 1. A command that exited with output its reader has not taken (no credit left): the pipe
    //    is hung up and full. 2. A command that closed its stdin while the agent holds the
    //    other end. 3. A stalled background writer.
    let mut flood =
        a.ch.exec(ExecRequest::new(["sh", "-c", "head -c 10000000 /dev/zero"]))
            .await
            .unwrap();
    flood.next().await.unwrap().unwrap();
    let closed_stdin =
        a.ch.exec(ExecRequest::new(["sh", "-c", "exec 0<&-; sleep 3"]).stdin(true))
            .await
            .unwrap();
    let before = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_ticks(pid) - before;
    // An idle loop uses next to nothing; a spinning one about 200 ticks in 2 s.
    assert!(used < 50, "the agent used {used} ticks of CPU while idle");
    let mut n = 0;
    while let Some(c) = flood.next().await {
        n += c.unwrap().data.len();
    }
    assert!(n > 9_000_000, "{n}");
    assert!(closed_stdin.wait().await.unwrap().success());
}

#[tokio::test]
async fn extreme_values_are_handled_not_fatal() {
    let a = child_agent(&["--expires-at", "18446744073709551615", "--ring-size", "0"]).await;
    // A timeout beyond what the clock holds is no timeout.
    let mut req = ExecRequest::new(["echo", "ok"]);
    req.timeout = Some(Duration::from_millis(u64::MAX));
    req.grace = Some(Duration::from_millis(u64::from(u32::MAX)));
    req.tty_size = Some((0, 0));
    let out = run(&a.ch, req).await;
    assert_eq!(text(&out.stdout), "ok\n");
    // A signal number that is none is refused, and the command runs on.
    let mut h =
        a.ch.exec(ExecRequest::new(["sh", "-c", "echo up; sleep 0.3"]))
            .await
            .unwrap();
    h.next().await.unwrap().unwrap();
    let e = h.control().kill(300).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert!(h.wait().await.unwrap().success());
    let e = a.ch.kill(1, -5).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    // The agent refuses them too, for clients that do not check: a raw session.
    let mut relay = tokio::process::Command::new(agent_bin())
        .args(["relay", "--socket", &a.socket])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut w = relay.stdin.take().unwrap();
    let mut r = relay.stdout.take().unwrap();
    let mut wire = Vec::new();
    Message::Hello(proto::Hello {
        min_version: 1,
        max_version: 1,
        client: "raw".into(),
    })
    .encode(0, &mut wire)
    .unwrap();
    Message::Exec(proto::ExecSpec {
        argv: vec![b"sleep".to_vec(), b"0.2".to_vec()],
        ..Default::default()
    })
    .encode(1, &mut wire)
    .unwrap();
    Message::Signal(300).encode(1, &mut wire).unwrap();
    Message::Kill {
        process: 1,
        signal: 0,
    }
    .encode(2, &mut wire)
    .unwrap();
    w.write_all(&wire).await.unwrap();
    let mut dec = proto::Decoder::default();
    let mut buf = [0u8; 4096];
    let mut errors = Vec::new();
    let mut exited = None;
    while exited.is_none() || errors.len() < 2 {
        let n = r.read(&mut buf).await.unwrap();
        assert!(n > 0);
        dec.feed(&buf[..n]);
        while let Some(f) = dec.next_frame() {
            let f = f.unwrap();
            match Message::decode(f.kind, &f.payload).unwrap() {
                Message::Error(e) => errors.push((f.stream, e.code, e.message)),
                Message::Exited(st) => exited = Some(st),
                _ => {}
            }
        }
    }
    assert!(
        errors
            .iter()
            .all(|e| e.1 == ErrorCode::InvalidArgument && e.2.contains("not a signal")),
        "{errors:?}"
    );
    assert!(exited.unwrap().success(), "the exec ran on to its end");
    // A ring of zero bytes keeps nothing, and says so on replay.
    let id =
        a.ch.start_process(ExecRequest::new(["echo", "gone"]))
            .await
            .unwrap();
    a.ch.wait(id).await.unwrap();
    let mut att = a.ch.attach(id, true).await.unwrap();
    assert_eq!(att.next().await.unwrap().unwrap(), AttachEvent::Gap(5));
    assert_eq!(att.next().await.unwrap().unwrap(), AttachEvent::Replayed);
    assert!(matches!(
        att.next().await.unwrap().unwrap(),
        AttachEvent::Exited(_)
    ));
    // The agent is still there.
    assert_eq!(
        text(&run(&a.ch, ExecRequest::new(["echo", "alive"])).await.stdout),
        "alive\n"
    );
}

/// Reads frames from a raw session until `done` says so; returns them as (stream, message).
async fn raw_frames(
    r: &mut (impl tokio::io::AsyncRead + Unpin),
    done: impl Fn(&[(u32, Message)]) -> bool,
) -> Vec<(u32, Message)> {
    let mut dec = proto::Decoder::default();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !done(&got) {
        let n = r.read(&mut buf).await.unwrap();
        assert!(n > 0, "the agent closed the session: {got:?}");
        dec.feed(&buf[..n]);
        while let Some(f) = dec.next_frame() {
            let f = f.unwrap();
            got.push((f.stream, Message::decode(f.kind, &f.payload).unwrap()));
        }
    }
    got
}

/// Versions: a client of protocol version 1 (an older headjack attaching to a newer agent) is
/// served version 1 and never sees `Replayed`, which it would not know; one that speaks only a
/// version the agent does not is refused with a message naming both.
#[tokio::test]
async fn version_1_clients_are_served_without_replayed_and_unknown_versions_refused() {
    let a = child_agent(&[]).await;
    assert!(a.ch.agent().capabilities & proto::capability::REPLAY_MARK != 0);
    let id =
        a.ch.start_process(ExecRequest::new(["sh", "-c", "echo one; echo two"]))
            .await
            .unwrap();
    a.ch.wait(id).await.unwrap();
    let raw = |versions: (u16, u16)| {
        let socket = a.socket.clone();
        async move {
            let mut relay = tokio::process::Command::new(agent_bin())
                .args(["relay", "--socket", &socket])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let mut wire = Vec::new();
            Message::Hello(proto::Hello {
                min_version: versions.0,
                max_version: versions.1,
                client: "old".into(),
            })
            .encode(0, &mut wire)
            .unwrap();
            Message::Attach {
                process: id,
                replay: true,
            }
            .encode(1, &mut wire)
            .unwrap();
            let mut w = relay.stdin.take().unwrap();
            w.write_all(&wire).await.unwrap();
            (relay, w)
        }
    };
    // Version 1.
    let (mut relay, _w) = raw((1, 1)).await;
    let mut r = relay.stdout.take().unwrap();
    let got = raw_frames(&mut r, |got| {
        got.iter()
            .any(|(s, m)| *s == 1 && matches!(m, Message::End))
    })
    .await;
    let reply = got
        .iter()
        .find_map(|(_, m)| match m {
            Message::HelloReply(h) => Some(h.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(reply.version, 1);
    assert_eq!(reply.capabilities & proto::capability::REPLAY_MARK, 0);
    let on_attach: Vec<&Message> = got
        .iter()
        .filter(|(s, _)| *s == 1)
        .map(|(_, m)| m)
        .collect();
    assert!(
        on_attach.iter().any(|m| matches!(m, Message::Data { .. }))
            && on_attach.iter().any(|m| matches!(m, Message::Exited(_))),
        "{on_attach:?}"
    );
    assert!(
        !on_attach.iter().any(|m| matches!(m, Message::Replayed)),
        "{on_attach:?}"
    );
    // Version 3 only: refused.
    let (mut relay, _w) = raw((3, 3)).await;
    let mut r = relay.stdout.take().unwrap();
    let got = raw_frames(&mut r, |got| {
        got.iter().any(|(_, m)| matches!(m, Message::Error(_)))
    })
    .await;
    let e = got
        .iter()
        .find_map(|(_, m)| match m {
            Message::Error(e) => Some(e.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(e.code, ErrorCode::UnsupportedVersion, "{e:?}");
    assert!(e.message.contains("versions 1 to 2"), "{e:?}");
}
