//! The static agent as PID 1 of real containers on Docker, Podman and gVisor, driven over
//! the container's attach stream (attached before start, log driver "none"), with further
//! sessions through the engine's exec of `headjack-agent relay`.

mod common;

use std::time::Duration;

use common::engine::{self, Engine, Opts, container_pids_with, start_agent};
use common::{text, unique};
use headjack_agent::client::{
    AttachEvent, Channel, ErrorKind, ExecOutput, ExecRequest, FileKind, StartFailureKind,
    WriteFileRequest,
};
use headjack_agent::proto::{self, ErrorCode};

/// Runs a test body once per engine (Docker, Podman, Docker with gVisor's runsc), as separate
/// tests.
macro_rules! on_engines {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn docker() {
                super::$name(super::Engine::docker()).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn podman() {
                super::$name(super::Engine::podman()).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn gvisor() {
                super::$name(super::Engine::gvisor()).await
            }
        }
    };
}

async fn run(ch: &Channel, req: ExecRequest) -> ExecOutput {
    common::run(ch, req).await
}

on_engines!(exec_basics_users_and_failures);
async fn exec_basics_users_and_failures(e: Engine) {
    let (_c, ch) = start_agent(&e, Opts::default()).await;
    let h = ch.agent();
    assert_eq!(h.pid, 1, "the agent is PID 1");
    assert_ne!(h.capabilities & proto::capability::PID1, 0);
    assert_ne!(h.capabilities & proto::capability::SWITCH_USER, 0);
    assert_ne!(h.capabilities & proto::capability::SOCKET, 0);

    let out = run(
        &ch,
        ExecRequest::new([
            "sh",
            "-c",
            "echo \"$1|$X|$(pwd)|$HOME\"; echo err >&2; exit 4",
            "sh",
            "a b",
        ])
        .env("X", "y")
        .workdir("/tmp"),
    )
    .await;
    assert_eq!(text(&out.stdout), "a b|y|/tmp|/root\n");
    assert_eq!(text(&out.stderr), "err\n");
    assert_eq!(out.status.code, 4);

    // Users and groups from the container's own files: add a group with the agent user in it.
    let group = ch
        .read_file("/etc/group", None)
        .await
        .unwrap()
        .read_to_end()
        .await
        .unwrap();
    let mut w = ch
        .write_file(WriteFileRequest::new("/etc/group"))
        .await
        .unwrap();
    w.write(&group).await.unwrap();
    w.write(b"extra:x:2000:agent\n").await.unwrap();
    w.finish().await.unwrap();
    let out = run(
        &ch,
        ExecRequest::new(["sh", "-c", "id; echo $HOME"]).user("agent"),
    )
    .await;
    assert_eq!(
        text(&out.stdout),
        "uid=1000(agent) gid=1000(agent) groups=1000(agent),2000(extra)\n/home/agent\n",
        "{}",
        text(&out.stderr)
    );
    let out = run(&ch, ExecRequest::new(["id"]).user("1000:2000")).await;
    assert_eq!(
        text(&out.stdout),
        "uid=1000(agent) gid=2000(extra) groups=2000(extra)\n"
    );
    let out = run(
        &ch,
        ExecRequest::new(["sh", "-c", "id -u; id -g; echo $HOME"]).user("4242"),
    )
    .await;
    assert_eq!(text(&out.stdout), "4242\n0\n/\n");

    for (req, kind, code) in [
        (
            ExecRequest::new(["nope-hj"]),
            StartFailureKind::NotFound,
            127,
        ),
        (
            ExecRequest::new(["/etc/passwd"]),
            StartFailureKind::NotExecutable,
            126,
        ),
        (
            ExecRequest::new(["true"]).workdir("/nope"),
            StartFailureKind::NoWorkdir,
            126,
        ),
        (
            ExecRequest::new(["true"]).user("nobody2"),
            StartFailureKind::UnknownUser,
            126,
        ),
    ] {
        let st = run(&ch, req.clone()).await.status;
        let f = st
            .start_failure
            .unwrap_or_else(|| panic!("{:?} started", req.argv));
        assert_eq!((f.kind, st.code), (kind, code), "{}", f.message);
    }
    let st = run(&ch, ExecRequest::new(["sh", "-c", "kill -INT $$"]))
        .await
        .status;
    assert_eq!((st.code, st.signal), (130, Some(2)));
}

on_engines!(stdin_tty_and_resize);
async fn stdin_tty_and_resize(e: Engine) {
    let (_c, ch) = start_agent(&e, Opts::default()).await;
    let h = ch
        .exec(ExecRequest::new(["sh", "-c", "wc -c; md5sum </dev/null >/dev/null"]).stdin(true))
        .await
        .unwrap();
    let ctl = h.control();
    let feeder = tokio::spawn(async move {
        let block = vec![7u8; 1 << 20];
        for _ in 0..16 {
            ctl.write_stdin(&block).await.unwrap();
        }
        ctl.close_stdin().unwrap();
    });
    let out = h.output().await.unwrap();
    feeder.await.unwrap();
    assert_eq!(text(&out.stdout).trim(), (16u32 << 20).to_string());

    let mut req = ExecRequest::new(["sh", "-c", "stty size; read x; stty size; echo $TERM"])
        .tty(true)
        .stdin(true);
    req.tty_size = Some((24, 80));
    let mut h = ch.exec(req).await.unwrap();
    let ctl = h.control();
    let mut seen = String::new();
    while !seen.contains("24 80") {
        seen.push_str(&text(&h.next().await.unwrap().unwrap().data));
    }
    ctl.resize(40, 120).unwrap();
    ctl.write_stdin(b"go\n").await.unwrap();
    let out = h.output().await.unwrap();
    let all = seen + &text(&out.stdout);
    assert!(all.contains("40 120\r\nxterm"), "{all:?}");
}

on_engines!(timeout_and_kill_leave_nothing_behind);
async fn timeout_and_kill_leave_nothing_behind(e: Engine) {
    let (_c, ch) = start_agent(&e, Opts::default()).await;
    let marker = unique("tree");
    let st = run(
        &ch,
        ExecRequest::new([
            "sh",
            "-c",
            "setsid sleep 300 & nohup sleep 300 & (sleep 300 &) ; sleep 300",
        ])
        .env("HJ_MARK", &marker)
        .timeout(Duration::from_millis(500)),
    )
    .await
    .status;
    assert!(st.timed_out && st.signal == Some(9), "{st:?}");
    let left = container_pids_with(&ch, &marker).await;
    assert!(
        left.is_empty(),
        "{}: left behind in the container: {left:?}",
        e.name
    );

    // A signal of the caller's choice reaches the tree.
    let marker = unique("sig");
    let mut h = ch
        .exec(ExecRequest::new(["sh", "-c", "sleep 300 & echo up; wait"]).env("HJ_MARK", &marker))
        .await
        .unwrap();
    h.next().await.unwrap().unwrap();
    h.control().kill(libc::SIGTERM).unwrap();
    let st = h.wait().await.unwrap();
    assert_eq!(st.signal, Some(libc::SIGTERM));
    assert!(container_pids_with(&ch, &marker).await.is_empty());
}

on_engines!(background_process_survives_its_host_process);
async fn background_process_survives_its_host_process(e: Engine) {
    let c = engine::create_agent(&e, Opts::default()).await;
    engine::start(&c).await;
    // Session 1 belongs to another host process: `docker attach` (the CLI), which then dies
    // by SIGKILL, as a host process holding an instance would. (The agent speaks only when
    // spoken to, so attaching after start loses nothing.)
    let mut holder = tokio::process::Command::new("docker")
        .args(["attach", "--sig-proxy=false", &c.id])
        .env("DOCKER_HOST", &e.host)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let session1 = Channel::open(holder.stdout.take().unwrap(), holder.stdin.take().unwrap())
        .await
        .unwrap_or_else(|err| panic!("{}: handshake through docker attach: {err}", e.name));
    let id = session1
        .start_process(ExecRequest::new([
            "sh",
            "-c",
            "echo first; echo second >&2; while :; do sleep 0.1; done",
        ]))
        .await
        .unwrap();
    let pid = holder.id().unwrap() as i32;
    unsafe { libc::kill(pid, libc::SIGKILL) };
    holder.wait().await.unwrap();
    assert!(
        common::eventually(Duration::from_secs(10), || session1.is_closed()).await,
        "the dead holder's channel closes"
    );

    // Session 2: a new host-side channel through the engine's exec of the relay.
    let s2 = engine::relay_session(&c, None).await;
    let list = s2.processes().await.unwrap();
    let p = list.iter().find(|p| p.id == id).expect("still listed");
    assert!(p.status.is_none(), "still running: {p:?}");
    let mut att = s2.attach(id, true).await.unwrap();
    let mut out = Vec::new();
    while !(text(&out).contains("first") && text(&out).contains("second")) {
        match att.next().await.unwrap().unwrap() {
            AttachEvent::Output(c) => out.extend(c.data),
            AttachEvent::Replayed => {}
            other => panic!("{other:?}"),
        }
    }
    s2.kill(id, libc::SIGKILL).await.unwrap();
    loop {
        match att.next().await.unwrap().unwrap() {
            AttachEvent::Exited(st) => {
                assert_eq!(st.signal, Some(9));
                break;
            }
            AttachEvent::Output(_) | AttachEvent::Gap(_) | AttachEvent::Replayed => {}
        }
    }
    s2.forget(id).await.unwrap();
}

on_engines!(files_in_and_out);
async fn files_in_and_out(e: Engine) {
    let (_c, ch) = start_agent(&e, Opts::default()).await;
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let mut w = ch
        .write_file(
            WriteFileRequest::new("/work/sub/data.bin")
                .mode(0o600)
                .owner(1000, 1000),
        )
        .await
        .unwrap();
    for c in data.chunks(70_000) {
        w.write(c).await.unwrap();
    }
    w.finish().await.unwrap();
    let st = ch.stat("/work/sub/data.bin", true).await.unwrap();
    assert_eq!(
        (st.kind, st.size, st.mode, st.uid, st.gid),
        (FileKind::File, 3_000_000, 0o600, 1000, 1000)
    );
    // The command's view agrees (ownership applied inside the container).
    let out = run(
        &ch,
        ExecRequest::new(["stat", "-c", "%u:%g %a %s", "/work/sub/data.bin"]),
    )
    .await;
    assert_eq!(text(&out.stdout), "1000:1000 600 3000000\n");
    let back = ch
        .read_file("/work/sub/data.bin", None)
        .await
        .unwrap()
        .read_to_end()
        .await
        .unwrap();
    assert!(back == data);
    let e2 = ch
        .read_file("/work/sub/data.bin", Some(1000))
        .await
        .unwrap_err();
    assert_eq!(e2.code(), Some(ErrorCode::TooLarge));
    let e2 = ch.read_file("/dev/zero", None).await.unwrap_err();
    assert_eq!(e2.code(), Some(ErrorCode::NotRegularFile), "{e2}");
    ch.mkdir("/work/d1/d2", 0o700, Some((1000, 1000)), true)
        .await
        .unwrap();
    let names: Vec<String> = ch
        .list("/work")
        .await
        .unwrap()
        .iter()
        .map(|d| text(&d.name))
        .collect();
    assert_eq!(names, ["d1", "sub"]);
    ch.remove("/work", true).await.unwrap();
    assert_eq!(
        ch.stat("/work", false).await.unwrap_err().code(),
        Some(ErrorCode::NotFound)
    );
}

on_engines!(malformed_frames_on_the_attach_stream);
async fn malformed_frames_on_the_attach_stream(e: Engine) {
    use headjack_agent::proto::{Decoder, Hello, Message};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (c, ch) = start_agent(&e, Opts::default()).await;
    // A raw session over the relay: garbage, an oversized frame, then a Hello.
    let exec = c
        .engine
        .docker
        .create_exec(
            &c.id,
            bollard::models::ExecConfig {
                cmd: Some(vec![c.agent_path.clone(), "relay".into()]),
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let bollard::exec::StartExecResults::Attached { output, mut input } =
        c.engine.docker.start_exec(&exec.id, None).await.unwrap()
    else {
        panic!("detached")
    };
    let mut r = engine::demux(output, e.name);
    let mut wire = b"\x00\x01garbage".to_vec();
    wire.extend_from_slice(b"hj\x02\x00\x05\x00\x00\x00\x00\x00\x00\x10");
    Message::Hello(Hello {
        min_version: 1,
        max_version: 1,
        client: "raw".into(),
    })
    .encode(0, &mut wire)
    .unwrap();
    input.write_all(&wire).await.unwrap();
    input.flush().await.unwrap();
    let mut dec = Decoder::default();
    let mut msgs = Vec::new();
    let mut buf = [0u8; 4096];
    while !msgs.iter().any(|m| matches!(m, Message::HelloReply(_))) {
        let n = r.read(&mut buf).await.unwrap();
        assert!(n > 0);
        dec.feed(&buf[..n]);
        while let Some(f) = dec.next_frame() {
            let f = f.unwrap();
            msgs.push(Message::decode(f.kind, &f.payload).unwrap());
        }
    }
    let errors = msgs
        .iter()
        .filter(|m| matches!(m, Message::Error(e) if e.code == ErrorCode::Malformed))
        .count();
    assert_eq!(errors, 2, "{msgs:?}");
    // The attach session was never disturbed.
    assert_eq!(
        text(&run(&ch, ExecRequest::new(["echo", "ok"])).await.stdout),
        "ok\n"
    );
}

on_engines!(killing_the_container_fails_pending_calls);
async fn killing_the_container_fails_pending_calls(e: Engine) {
    let (c, ch) = start_agent(&e, Opts::default()).await;
    let mut h = ch
        .exec(ExecRequest::new(["sh", "-c", "echo up; exec sleep 300"]))
        .await
        .unwrap();
    h.next().await.unwrap().unwrap();
    let (ok, _, err) = e.cli(&["kill", &c.id]);
    assert!(ok, "{err}");
    let r = tokio::time::timeout(Duration::from_secs(60), h.next())
        .await
        .expect("no hang");
    let err = r.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ChannelClosed, "{err}");
    assert!(
        err.message()
            .contains("the agent exited, the container stopped"),
        "{err}"
    );
    let err = ch.stat("/", false).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ChannelClosed);
}

on_engines!(log_driver_none_keeps_protocol_bytes_out_of_the_logs);
async fn log_driver_none_keeps_protocol_bytes_out_of_the_logs(e: Engine) {
    let (c, ch) = start_agent(&e, Opts::default()).await;
    run(&ch, ExecRequest::new(["echo", "secret-output"])).await;
    let (_, inspect, _) = e.cli(&["inspect", "-f", "{{.HostConfig.LogConfig.Type}}", &c.id]);
    assert_eq!(inspect.trim(), "none");
    let (_, logs, logs_err) = e.cli(&["logs", &c.id]);
    assert!(!logs.contains("secret-output"), "{logs}");
    println!(
        "{}: `docker logs` with log driver none: stdout {:?}, stderr {:?}",
        e.name,
        logs,
        logs_err.trim()
    );
    // With the default driver the protocol would land in the logs: shown for the record.
    let (c2, ch2) = start_agent(
        &e,
        Opts {
            keep_logs: true,
            ..Opts::default()
        },
    )
    .await;
    run(&ch2, ExecRequest::new(["echo", "secret-output"])).await;
    let (_, logs, _) = e.cli(&["logs", &c2.id]);
    println!(
        "{}: with the default log driver the logs hold {} bytes of protocol",
        e.name,
        logs.len()
    );
    drop(c2);
    drop(c);
}

on_engines!(hardened_and_non_root);
async fn hardened_and_non_root(e: Engine) {
    // All capabilities dropped, read-only root, no network: the agent runs as root without
    // CAP_SETUID/SETGID. Its own user works; another user fails clearly.
    let (c, ch) = start_agent(
        &e,
        Opts {
            read_only: true,
            cap_drop_all: true,
            network_none: true,
            tmpfs: vec![("/tmp".into(), "size=64m".into())],
            ..Opts::default()
        },
    )
    .await;
    assert_eq!(ch.agent().capabilities & proto::capability::SWITCH_USER, 0);
    let out = run(&ch, ExecRequest::new(["id", "-u"])).await;
    assert_eq!(text(&out.stdout), "0\n");
    let st = run(&ch, ExecRequest::new(["id"]).user("agent"))
        .await
        .status;
    let f = st.start_failure.expect("refused");
    assert_eq!(f.kind, StartFailureKind::UserSwitchDenied, "{}", f.message);
    assert!(f.message.contains("CAP_SETUID"), "{}", f.message);
    let mut w = ch
        .write_file(WriteFileRequest::new("/tmp/x"))
        .await
        .unwrap();
    w.write(b"ok").await.unwrap();
    w.finish().await.unwrap();
    let mut w = ch
        .write_file(WriteFileRequest::new("/etc/x"))
        .await
        .unwrap();
    let err = match w.write(b"no").await {
        Err(err) => err,
        Ok(()) => w.finish().await.unwrap_err(),
    };
    assert_eq!(err.code(), Some(ErrorCode::PermissionDenied), "{err}");
    let st = run(
        &ch,
        ExecRequest::new(["sleep", "300"]).timeout(Duration::from_millis(200)),
    )
    .await
    .status;
    assert!(st.timed_out);
    drop((c, ch));

    // A non-root image user: the agent runs as 1000 and serves its own user; root is refused.
    let (c, ch) = start_agent(
        &e,
        Opts {
            user: Some("1000:1000".into()),
            ..Opts::default()
        },
    )
    .await;
    assert_eq!(ch.agent().uid, 1000);
    let out = run(&ch, ExecRequest::new(["sh", "-c", "id -u; echo $HOME"])).await;
    assert_eq!(
        text(&out.stdout),
        "1000\n/home/agent\n",
        "{}",
        text(&out.stderr)
    );
    let st = run(&ch, ExecRequest::new(["id"]).user("root")).await.status;
    assert_eq!(
        st.start_failure.expect("refused").kind,
        StartFailureKind::UserSwitchDenied
    );
    // Its own uid may open further sessions.
    let s2 = engine::relay_session(&c, Some("1000")).await;
    assert_eq!(
        text(&run(&s2, ExecRequest::new(["id", "-u"])).await.stdout),
        "1000\n"
    );
}

on_engines!(oom_kills_are_reported);
async fn oom_kills_are_reported(e: Engine) {
    let (_c, ch) = start_agent(
        &e,
        Opts {
            memory: Some(64 << 20),
            ..Opts::default()
        },
    )
    .await;
    if ch.agent().capabilities & proto::capability::OOM == 0 {
        panic!(
            "{}: the agent cannot read the memory cgroup's OOM counter",
            e.name
        );
    }
    let st = run(
        &ch,
        ExecRequest::new([
            "sh",
            "-c",
            "x=$(head -c 400000000 /dev/zero | tr '\\0' a); echo ${#x}",
        ]),
    )
    .await
    .status;
    assert_eq!(st.signal, Some(9), "{st:?}");
    assert!(st.oom_killed, "{st:?}");
    // The agent survived it.
    assert_eq!(
        text(&run(&ch, ExecRequest::new(["echo", "alive"])).await.stdout),
        "alive\n"
    );
}

/// An image holding nothing but the agent: FROM scratch, no shell, no libc.
struct ScratchImage {
    engine: Engine,
    tag: String,
}

impl Drop for ScratchImage {
    fn drop(&mut self) {
        let _ = self.engine.cli(&["rmi", "-f", &self.tag]);
    }
}

fn scratch_image(e: &Engine) -> ScratchImage {
    let dir = engine::static_agent_dir();
    let ctx = std::env::temp_dir().join(unique("ctx"));
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::copy(dir.join("headjack-agent"), ctx.join("headjack-agent")).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY headjack-agent /headjack-agent\nLABEL io.headjack.test=1\n",
    )
    .unwrap();
    let tag = format!(
        "localhost/headjack-test/agent-only:{}",
        unique("img").to_lowercase()
    );
    let (ok, out, err) = e.cli(&["build", "-q", "-t", &tag, ctx.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&ctx);
    assert!(ok, "{}: building the scratch image: {out}{err}", e.name);
    ScratchImage {
        engine: e.clone(),
        tag,
    }
}

on_engines!(an_image_without_a_shell);
async fn an_image_without_a_shell(e: Engine) {
    let img = scratch_image(&e);
    let (_c, ch) = start_agent(
        &e,
        Opts {
            image: Some(img.tag.clone()),
            agent_in_image: Some("/headjack-agent".into()),
            ..Opts::default()
        },
    )
    .await;
    let out = run(&ch, ExecRequest::new(["/headjack-agent", "--version"])).await;
    assert!(text(&out.stdout).starts_with("headjack-agent "), "{out:?}");
    // A second static binary, written in through the agent.
    let bin = std::fs::read(engine::static_agent_dir().join("headjack-agent")).unwrap();
    let mut w = ch
        .write_file(WriteFileRequest::new("/opt/tool").mode(0o755))
        .await
        .unwrap();
    w.write(&bin).await.unwrap();
    w.finish().await.unwrap();
    let out = run(&ch, ExecRequest::new(["/opt/tool", "--version"])).await;
    assert!(out.status.success(), "{out:?}");
    // No PATH entry holds anything: a bare name is not found, clearly.
    let st = run(&ch, ExecRequest::new(["sh"])).await.status;
    assert_eq!(st.start_failure.unwrap().kind, StartFailureKind::NotFound);
    // Timeout kill with no shell for a marker-kill: a long-running static program.
    let marker = unique("noshell");
    let st = run(
        &ch,
        ExecRequest::new(["/opt/tool", "--no-stdio", "--no-socket"])
            .env("HJ_MARK", &marker)
            .timeout(Duration::from_millis(300)),
    )
    .await
    .status;
    assert!(st.timed_out, "{st:?}");
    assert!(container_pids_with(&ch, &marker).await.is_empty());
    let list: Vec<String> = ch
        .list("/")
        .await
        .unwrap()
        .iter()
        .map(|d| text(&d.name))
        .collect();
    assert!(
        list.contains(&"headjack-agent".to_string()) && list.contains(&"opt".to_string()),
        "{list:?}"
    );
}

/// Docker keeps the container's stdin open when an attach client goes away (StdinOnce false),
/// so a later attach takes the stdio session over with a new Hello. (Podman closes the stdin
/// instead: there further sessions go through the relay, as in the test above.)
async fn reattach_takes_the_stdio_session_over(e: Engine) {
    let (c, ch) = start_agent(&e, Opts::default()).await;
    let mut h = ch
        .exec(ExecRequest::new(["sh", "-c", "echo up; exec sleep 300"]))
        .await
        .unwrap();
    h.next().await.unwrap().unwrap();
    let pid = h.pid().unwrap();
    // The host process goes away without a word (its streams are simply abandoned).
    std::mem::forget(h);
    drop(ch);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ch2 = engine::attach_session(&c).await;
    assert_eq!(
        text(&run(&ch2, ExecRequest::new(["echo", "again"])).await.stdout),
        "again\n"
    );
    // The old session's exec was ended with it.
    let alive = ch2.processes().await.unwrap().iter().any(|p| p.pid == pid);
    assert!(!alive, "the abandoned exec still runs");
}

mod reattach_takes_the_stdio_session_over {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn docker() {
        super::reattach_takes_the_stdio_session_over(super::Engine::docker()).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn gvisor() {
        super::reattach_takes_the_stdio_session_over(super::Engine::gvisor()).await
    }
}
