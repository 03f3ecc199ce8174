//! The in-container agent (issue 11) on the real engines: kills that reach every descendant, an
//! image with no shell, the hardened preset and a non-root `USER`, a background process that
//! survives the host process that started it, files streamed with bounded memory, and a second
//! session through a relay.

mod common;

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{busybox, client, example, spec};
use headjack::instance::FileKind;
use headjack::{Dockerfile, ErrorKind, Exec, Spec};

/// The command lines of the container's processes, read through `/proc` by the agent itself (no
/// shell needed).
async fn command_lines(env: &headjack::Instance) -> Vec<String> {
    let mut out = Vec::new();
    for e in env.list_dir("/proc").await.unwrap() {
        if e.name.bytes().all(|b| b.is_ascii_digit())
            && let Ok(cmd) = env.read_file(&format!("/proc/{}/cmdline", e.name)).await
        {
            out.push(String::from_utf8_lossy(&cmd).replace('\0', " "));
        }
    }
    out
}

/// Builds `dockerfile` (in a temporary context) as a base; returns the spec for it.
fn dockerfile_spec(dir: &Path, dockerfile: &str) -> Spec {
    std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
    Spec::new()
        .base(Dockerfile::new(dir.join("Dockerfile")))
        .label("io.headjack.test", "1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_kills_every_descendant() {
    let c = client().await;
    let env = c.spawn(spec().engine_exec(false)).await.unwrap();
    assert!(env.has_agent());
    let out = env
        .exec(
            Exec::new([
                "sh",
                "-c",
                "setsid sleep 301 & nohup sleep 302 & (sleep 303 &) ; sleep 300",
            ])
            .timeout(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    assert!(out.timed_out && !out.kill_failed, "{out:?}");
    let left: Vec<_> = command_lines(&env)
        .await
        .into_iter()
        .filter(|c| c.contains("sleep 30"))
        .collect();
    assert!(left.is_empty(), "processes survived the timeout: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_without_a_shell_gets_exec_kills_and_files() {
    let c = client().await;
    let dir = tempfile::tempdir().unwrap();
    // FROM scratch with one static binary and nothing else: no /bin/sh, no /etc/passwd.
    let spec = dockerfile_spec(
        dir.path(),
        &format!(
            "FROM {}\nFROM scratch\nCOPY --from=0 /bin/busybox /busybox\n",
            busybox()
        ),
    );
    let env = c.spawn(spec).await.unwrap();
    let image = env.image().to_string();
    assert!(env.has_agent());
    let out = env
        .exec(["/busybox", "echo", "no shell needed"])
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "no shell needed\n");
    let out = env
        .exec(Exec::new(["/busybox", "sleep", "304"]).timeout(Duration::from_millis(500)))
        .await
        .unwrap();
    assert!(out.timed_out && !out.kill_failed, "{out:?}");
    assert!(
        !command_lines(&env)
            .await
            .iter()
            .any(|c| c.contains("sleep 304"))
    );
    env.write_file("/made/here.txt", b"written without tar")
        .await
        .unwrap();
    assert_eq!(
        env.read_file("/made/here.txt").await.unwrap(),
        b"written without tar"
    );
    let st = env.stat("/made").await.unwrap();
    assert_eq!(st.kind, FileKind::Dir);
    assert!(
        env.list_dir("/made")
            .await
            .unwrap()
            .iter()
            .any(|e| e.name == "here.txt")
    );
    env.remove_path("/made", true).await.unwrap();
    assert_eq!(
        env.stat("/made").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let out = env.exec(["sh", "-c", "true"]).await.unwrap();
    assert_eq!(out.exit_code, 127, "no shell: {out:?}");
    env.remove().await.unwrap();
    c.remove_image(&image, false).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardened_and_non_root_images_run_the_agent() {
    let c = client().await;
    // Hardened: all capabilities dropped, read-only root. The agent cannot switch users, so a
    // command as another user goes through the engine's exec — same result.
    let env = c
        .spawn(spec().engine_exec(false).hardened(true))
        .await
        .unwrap();
    assert!(env.has_agent());
    assert_eq!(env.exec(["id", "-u"]).await.unwrap().stdout_text(), "0\n");
    let out = env
        .exec(Exec::new(["id", "-u"]).user("1000"))
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "1000\n", "{out:?}");
    let out = env.exec(["touch", "/x"]).await.unwrap();
    assert_ne!(out.exit_code, 0, "the root file system is read-only");
    drop(env);

    // A non-root USER: commands run as it by default; root on request (the agent switches).
    let dir = tempfile::tempdir().unwrap();
    let spec = dockerfile_spec(
        dir.path(),
        &format!(
            "FROM {}\nRUN echo 'agent:x:1000:1000::/home/agent:/bin/sh' >> /etc/passwd && echo 'agent:x:1000:' >> /etc/group && mkdir -p /home/agent && chown 1000:1000 /home/agent\nUSER agent\n",
            busybox()
        ),
    );
    let env = c.spawn(spec).await.unwrap();
    let image = env.image().to_string();
    assert!(env.has_agent());
    assert_eq!(
        env.exec(["id", "-u"]).await.unwrap().stdout_text(),
        "1000\n"
    );
    assert_eq!(
        env.exec(["sh", "-c", "echo $HOME"])
            .await
            .unwrap()
            .stdout_text(),
        "/home/agent\n"
    );
    assert_eq!(
        env.exec(Exec::new(["id", "-u"]).user("root"))
            .await
            .unwrap()
            .stdout_text(),
        "0\n"
    );
    env.write_file("/home/agent/mine.txt", b"x").await.unwrap();
    let st = env.stat("/home/agent/mine.txt").await.unwrap();
    assert_eq!(
        (st.uid, st.gid),
        (1000, 1000),
        "files written in belong to the image's user"
    );
    env.remove().await.unwrap();
    c.remove_image(&image, false).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_process_survives_its_host_process_and_is_reattached() {
    let c = client().await;
    let mut child = Command::new(example("background_child"))
        .env("HEADJACK_TEST_HOST", common::host())
        .env("HEADJACK_TEST_BUSYBOX", busybox())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mut parts = line.split_whitespace();
    let (instance, process) = (
        parts.next().unwrap().to_string(),
        parts.next().unwrap().parse::<u64>().unwrap(),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    child.kill().unwrap(); // SIGKILL: no cleanup runs in it
    child.wait().unwrap();

    // Another process (here: this one, with a fresh handle) reattaches through a relay session.
    let env = c.attach(&instance).await.unwrap();
    assert!(env.has_agent());
    let list = env.processes().await.unwrap();
    let info = list
        .iter()
        .find(|p| p.id == process)
        .expect("the background process is listed");
    assert!(info.status.is_none(), "it still runs: {info:?}");
    assert!(info.argv.iter().any(|a| a.contains("tick-")));
    let mut output = env.process(process).unwrap().attach(true).await.unwrap();
    let mut seen = String::new();
    while !seen.contains("tick-0\n")
        || !seen.lines().any(|l| {
            l.trim_start_matches("tick-")
                .parse::<u32>()
                .is_ok_and(|n| n >= 10)
        })
    {
        let chunk = tokio::time::timeout(Duration::from_secs(30), output.next())
            .await
            .expect("output keeps coming")
            .expect("the process still runs")
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk.data));
    }
    drop(output);
    let p = env.process(process).unwrap();
    p.kill(9).await.unwrap();
    let status = p.wait().await.unwrap();
    assert_eq!(status.code, 137, "{status:?}");
    p.forget().await.unwrap();
    assert_eq!(p.wait().await.unwrap_err().kind(), ErrorKind::NotFound);
    env.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gigabyte_streams_in_and_out_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.bin");
    let f = std::fs::File::create(&input).unwrap();
    f.set_len(1 << 30).unwrap(); // sparse: no disk, 1 GiB of zeros to read
    drop(f);
    let out = Command::new(example("stream_child"))
        .arg(&input)
        .arg("/dev/null")
        .env("HEADJACK_TEST_HOST", common::host())
        .env("HEADJACK_TEST_BUSYBOX", busybox())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.split_whitespace();
    let written: u64 = parts.next().unwrap().parse().unwrap();
    let peak_kb: u64 = parts.next().unwrap().parse().unwrap();
    assert_eq!(written, 1 << 30);
    assert!(
        peak_kb < 256 * 1024,
        "moving 1 GiB held {peak_kb} kB at peak: the file was buffered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_session_reaches_the_same_agent_through_a_relay() {
    let c = client().await;
    let env = c.spawn(spec().engine_exec(false)).await.unwrap();
    let p = env.start_process(["sleep", "305"]).await.unwrap();
    let other = c.attach(env.id()).await.unwrap();
    assert!(other.has_agent());
    assert!(
        other
            .processes()
            .await
            .unwrap()
            .iter()
            .any(|i| i.id == p.id())
    );
    assert_eq!(
        other.exec(["echo", "relayed"]).await.unwrap().stdout_text(),
        "relayed\n"
    );
    // On an instance without the agent, its features are a clear Unsupported error.
    let plain = c.spawn(spec().engine_exec(true)).await.unwrap();
    assert!(!plain.has_agent());
    assert_eq!(
        plain.start_process(["true"]).await.unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    assert_eq!(
        plain.stat("/").await.unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    assert!(plain.exec(["true"]).await.unwrap().success());
}

/// A process that never stops writing: reading what it has written so far (`Process::output`,
/// `Instance::logs`) ends where the agent marks the replay's end, instead of waiting for a
/// quiet spell that never comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_the_output_of_a_chatty_process_ends() {
    let c = client().await;
    let chatty = "i=0; while true; do i=$((i+1)); echo line $i; usleep 20000; done";
    let env = c
        .spawn(spec().engine_exec(false).init(["sh", "-c", chatty]))
        .await
        .unwrap();
    let p = env.start_process(["sh", "-c", chatty]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let text = |chunks: Vec<headjack::exec::Chunk>| {
        chunks
            .iter()
            .map(|c| String::from_utf8_lossy(&c.data).into_owned())
            .collect::<String>()
    };
    let out = tokio::time::timeout(Duration::from_secs(30), p.output())
        .await
        .expect("output() of a running, chatty process returned")
        .unwrap();
    let out = text(out);
    assert!(
        out.starts_with("line 1\n") && out.contains("line 5\n"),
        "{out}"
    );
    let logs = tokio::time::timeout(Duration::from_secs(30), env.logs())
        .await
        .expect("logs() of a chatty init returned")
        .unwrap();
    let logs = text(logs);
    assert!(
        logs.starts_with("line 1\n") && logs.contains("line 5\n"),
        "{logs}"
    );
    // An ended process: everything it wrote, then the end.
    p.kill(9).await.unwrap();
    p.wait().await.unwrap();
    let before = text(p.output().await.unwrap());
    assert!(
        before.len() >= out.len() && before.starts_with(&out),
        "{before}"
    );
    env.remove().await.unwrap();
}
