//! The `headjack` command against the real engine: every subcommand, the exit-code contract,
//! `--json` shapes, non-terminal output, and an interactive shell through a pseudo-terminal.
//!
//! Run: `cargo test -p headjack --features cli --test cli` (the engine from
//! `HEADJACK_TEST_HOST`, default the Docker socket; the busybox fixture from `tests/env/up.sh`).
#![cfg(feature = "cli")]

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

mod cli_common;
use cli_common::*;

fn nonce() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{:x}{:x}{n}", std::process::id(), t)
}

/// Tests that keep instances past the command (`run --keep`) or sweep run one at a time, so a
/// sweep never races an instance another test is still setting up.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes what a test created, even when it fails.
#[derive(Default)]
struct Cleanup {
    instances: Vec<String>,
    images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for id in &self.instances {
            let _ = hj().args(["rm", id]).output();
        }
        for image in &self.images {
            let _ = Command::new("docker")
                .args(["rmi", image])
                .env("DOCKER_HOST", host())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Waits for a child; the deadline only guards against a hang.
fn wait_bounded(mut child: std::process::Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "headjack did not exit: {:?}",
                child.wait_with_output().map(|o| show(&o))
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn ps_all() -> Vec<Value> {
    let o = run(&["ps", "--all", "--json"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    json(&o)
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("ps --json is not an array: {}", show(&o)))
}

fn find<'a>(list: &'a [Value], key: &str, value: &str) -> Option<&'a Value> {
    list.iter().find(|i| i[key].as_str() == Some(value))
}

#[test]
fn run_streams_output_and_returns_the_exit_code() {
    let o = run(&[
        "run",
        "--base",
        &busybox(),
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(code(&o), 3, "{}", show(&o));
    assert_eq!(text(&o.stdout), "out\n", "{}", show(&o));
    assert!(text(&o.stderr).contains("err"), "{}", show(&o));
    // Not a terminal: no escape sequences, no spinner.
    assert!(
        !o.stderr.contains(&0x1b) && !o.stdout.contains(&0x1b),
        "{}",
        show(&o)
    );

    let o = run(&["run", "-q", "--base", &busybox(), "--", "true"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(o.stdout.is_empty() && o.stderr.is_empty(), "{}", show(&o));
}

#[test]
fn run_options_reach_the_container() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.txt"), "from-host\n").unwrap();
    let ws = dir.path().to_str().unwrap();
    let name = format!("hj-cli-opts-{}", nonce());
    let script = "echo $FOO; pwd; cat f.txt; cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes; hostname >/dev/null; ls /sys/class/net";
    let o = run(&[
        "run",
        "--base",
        &busybox(),
        "--workspace",
        ws,
        "-e",
        "FOO=bar",
        "--memory",
        "64m",
        "--cpus",
        "1",
        "--network",
        "none",
        "--name",
        &name,
        "-l",
        "io.headjack.test=1",
        "--",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "bar", "{}", show(&o));
    assert_eq!(lines[1], "/workspace", "{}", show(&o));
    assert_eq!(lines[2], "from-host", "{}", show(&o));
    assert_eq!(lines[3], (64u64 << 20).to_string(), "{}", show(&o));
    assert_eq!(
        lines[4..],
        ["lo"],
        "network none leaves only loopback: {}",
        show(&o)
    );
    // Removed afterwards.
    assert!(
        find(&ps_all(), "name", &name).is_none(),
        "instance {name} was left behind"
    );

    // Hardened: read-only root, writable /tmp, no network.
    let o = run(&[
        "run",
        "--base",
        &busybox(),
        "--hardened",
        "--",
        "sh",
        "-c",
        "touch /tmp/ok && ! touch /nope 2>/dev/null && ls /sys/class/net",
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(text(&o.stdout).trim(), "lo", "{}", show(&o));
}

#[test]
fn exit_code_contract() {
    let bb = busybox();
    // The command's own code.
    for n in ["0", "1", "3", "255"] {
        let o = run(&["run", "--base", &bb, "--", "sh", "-c", &format!("exit {n}")]);
        assert_eq!(code(&o).to_string(), n, "{}", show(&o));
    }
    // Not found: 127, with a message.
    let o = run(&["run", "--base", &bb, "--", "no-such-command-xyz"]);
    assert_eq!(code(&o), 127, "{}", show(&o));
    assert!(
        text(&o.stderr).contains("no-such-command-xyz"),
        "{}",
        show(&o)
    );
    assert_eq!(text(&o.stdout), "", "{}", show(&o));
    // Cannot be invoked (a directory): 126.
    let o = run(&["run", "--base", &bb, "--", "/etc"]);
    assert_eq!(code(&o), 126, "{}", show(&o));
    assert!(text(&o.stderr).contains("cannot be run"), "{}", show(&o));
    assert_eq!(text(&o.stdout), "", "{}", show(&o));
    // Timeout: 124, and the message says so.
    let o = run(&["run", "--base", &bb, "--timeout", "1", "--", "sleep", "300"]);
    assert_eq!(code(&o), 124, "{}", show(&o));
    assert!(text(&o.stderr).contains("timeout"), "{}", show(&o));
    // headjack's own failures: 125 and one line.
    let o = run(&["run", "--base", "Not A/Valid::Ref", "--", "true"]);
    assert_failure(&o, "Not A/Valid::Ref");
    let o = run(&["run", "--base", "./no/such/Dockerfile", "--", "true"]);
    assert_failure(&o, "no/such/Dockerfile");
    let o = run(&["run", "--base", &bb, "--memory", "lots", "--", "true"]);
    assert_failure(&o, "lots");
    let o = run(&["run", "--no-such-flag"]);
    assert_failure(&o, "--no-such-flag");
    // Usage errors keep their point (issue 9, item 17): the flag a flag needs is named, and a
    // negative number is refused as a value of its flag, not taken for an unknown flag.
    let o = run(&["run", "--base", &bb, "--expires", "60", "--", "true"]);
    assert_failure(&o, "--keep");
    for (flag, value) in [("--memory", "-1"), ("--cpus", "-2"), ("--timeout", "-5")] {
        let o = run(&["run", "--base", &bb, flag, value, "--", "true"]);
        assert_failure(&o, flag);
        assert!(!text(&o.stderr).contains("use '--"), "{}", show(&o));
    }
    let o = run(&["frobnicate"]);
    assert_failure(&o, "frobnicate");
    let o = Command::new(env!("CARGO_BIN_EXE_headjack"))
        .args(["--host", "unix:///nonexistent/docker.sock", "ps"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_failure(&o, "nonexistent");
    // No command and no terminal: a clear failure, nothing spawned.
    let o = run(&["run", "--base", &bb]);
    assert_failure(&o, "no command given");
    let o = run(&["exec", "no-such-instance-xyz", "--", "true"]);
    assert_failure(&o, "no-such-instance-xyz");
    // --help documents the codes and succeeds.
    let o = run(&["run", "--help"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    for c in ["124", "125", "126", "127"] {
        assert!(
            text(&o.stdout).contains(c),
            "--help lacks exit code {c}: {}",
            show(&o)
        );
    }
}

#[test]
fn stdin_is_forwarded_with_dash_i() {
    let mut child = hj()
        .args([
            "run",
            "-i",
            "--base",
            &busybox(),
            "--",
            "sh",
            "-c",
            "tr a-z A-Z; exit 4",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hello stdin\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 4, "{}", show(&o));
    assert_eq!(text(&o.stdout), "HELLO STDIN\n", "{}", show(&o));
}

#[test]
fn instance_lifecycle_through_every_command() {
    let _serial = serial();
    let mut cleanup = Cleanup::default();
    let bb = busybox();
    let name = format!("hj-cli-life-{}", nonce());

    // run --keep: the command's output, then the instance ID.
    let o = run(&[
        "run",
        "--keep",
        "--name",
        &name,
        "-e",
        "FOO=bar",
        "-l",
        "io.headjack.test=1",
        "--base",
        &bb,
        "--",
        "sh",
        "-c",
        "echo $FOO",
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{}", show(&o));
    assert_eq!(lines[0], "bar");
    let id = lines[1].to_string();
    cleanup.instances.push(id.clone());
    assert_eq!(id.len(), 12, "{}", show(&o));

    // ps and ps --json.
    let o = run(&["ps"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let table = text(&o.stdout);
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&id) && l.contains(&name) && l.contains("running")),
        "{table}"
    );
    let o = run(&["--json", "ps"]);
    let list = json(&o);
    let me =
        find(list.as_array().unwrap(), "id", &id).unwrap_or_else(|| panic!("{id} not in {list}"));
    assert_eq!(me["name"], name.as_str());
    assert_eq!(me["status"], "running");
    assert_eq!(me["image"], bb.as_str());
    assert!(me["container_id"].as_str().unwrap().len() >= 12);
    assert_eq!(me["labels"]["io.headjack.test"], "1");
    assert!(me["owner"].is_string());

    // exec: by ID and by name, env, exit code, stdin.
    let o = run(&["exec", &id, "--", "sh", "-c", "echo $FOO-$BAR; exit 5"]);
    assert_eq!(code(&o), 5, "{}", show(&o));
    assert_eq!(text(&o.stdout), "bar-\n");
    let o = run(&[
        "exec",
        "-e",
        "BAR=baz",
        &name,
        "--",
        "sh",
        "-c",
        "echo $FOO-$BAR",
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(text(&o.stdout), "bar-baz\n");
    let o = run(&["exec", &id, "--", "no-such-command-xyz"]);
    assert_eq!(code(&o), 127, "{}", show(&o));

    // cp in and out.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("note.txt");
    std::fs::write(&file, "copied in\n").unwrap();
    let o = run(&["cp", file.to_str().unwrap(), &format!("{id}:/tmp")]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let o = run(&[
        "exec",
        &id,
        "--",
        "sh",
        "-c",
        "cat /tmp/note.txt && echo made > /tmp/out.txt",
    ]);
    assert_eq!(text(&o.stdout), "copied in\n", "{}", show(&o));
    let outdir = dir.path().join("out");
    let o = run(&[
        "cp",
        &format!("{id}:/tmp/out.txt"),
        outdir.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(
        std::fs::read_to_string(outdir.join("out.txt")).unwrap(),
        "made\n"
    );
    let o = run(&[
        "cp",
        &format!("{id}:/tmp/missing.txt"),
        outdir.to_str().unwrap(),
    ]);
    assert_failure(&o, "missing.txt");
    let o = run(&["cp", "a", "b"]);
    assert_failure(&o, "ID:/path");

    // commit: a new image, usable as a base.
    let tag = format!("localhost/headjack-test/cli-commit:{}", nonce());
    cleanup.images.push(tag.clone());
    let o = run(&["commit", &id, &tag]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(text(&o.stdout).trim(), tag);
    let o = run(&["run", "--base", &tag, "--", "cat", "/tmp/out.txt"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(text(&o.stdout), "made\n");

    // logs: the keep-alive process prints nothing.
    let o = run(&["logs", &id]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(o.stdout.is_empty(), "{}", show(&o));

    // logs -f follows until the instance stops.
    let follower = hj()
        .args(["logs", "-f", &id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // stop: gone from ps, still in ps --all as exited.
    let o = run(&["stop", "-t", "1", &id]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(text(&o.stdout).trim(), id);
    let o = wait_bounded(follower);
    assert_eq!(
        code(&o),
        0,
        "logs -f ends when the instance stops: {}",
        show(&o)
    );
    let o = run(&["ps", "--json"]);
    assert!(
        find(json(&o).as_array().unwrap(), "id", &id).is_none(),
        "{}",
        show(&o)
    );
    let all = ps_all();
    let me = find(&all, "id", &id).expect("a stopped instance is listed by ps --all");
    assert_eq!(me["status"], "exited");
    let o = run(&["exec", &id, "--", "true"]);
    assert_failure(&o, "");

    // rm: gone; a second rm fails cleanly; one bad ID among good ones fails the whole.
    let o = run(&["rm", &id]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(text(&o.stdout).trim(), id);
    assert!(find(&ps_all(), "id", &id).is_none());
    let o = run(&["rm", &id]);
    assert_eq!(code(&o), 125, "{}", show(&o));
    assert!(
        text(&o.stderr).lines().all(|l| l.starts_with("headjack: ")),
        "{}",
        show(&o)
    );
    let o = run(&["logs", &id]);
    assert_failure(&o, &id);
}

#[test]
fn sweep_keeps_kept_instances_until_they_expire() {
    let _serial = serial();
    let mut cleanup = Cleanup::default();
    let keep = |extra: &[&str]| {
        let mut args = vec!["run", "--keep", "--json", "-l", "io.headjack.test=1"];
        args.extend_from_slice(extra);
        let b = busybox();
        args.extend_from_slice(&["--base", &b, "--", "true"]);
        let o = run(&args);
        assert_eq!(code(&o), 0, "{}", show(&o));
        json(&o)
    };
    // A kept instance outlives `headjack run`, whose process is gone: not an orphan.
    let v = keep(&[]);
    let kept = v["id"].as_str().unwrap().to_string();
    assert!(
        v["container_id"].is_string() && v["name"].is_string(),
        "{v}"
    );
    assert_eq!(v["image"], busybox().as_str());
    cleanup.instances.push(kept.clone());
    // One that was given a lifetime goes once it has passed.
    // (A zero lifetime is refused: the instance would stop before `true` could run.)
    let o = run(&[
        "run",
        "--keep",
        "--expires",
        "0",
        "--base",
        &busybox(),
        "--",
        "true",
    ]);
    assert_failure(&o, "lifetime must be positive");
    let v = keep(&["--expires", "2"]);
    let expiring = v["id"].as_str().unwrap().to_string();
    cleanup.instances.push(expiring.clone());
    std::thread::sleep(std::time::Duration::from_millis(2200));
    let o = run(&["sweep", "--json"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let v = json(&o);
    let removed: Vec<&str> = v["removed"]
        .as_array()
        .expect("removed: [...]")
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert!(removed.contains(&expiring.as_str()), "{}", show(&o));
    assert!(!removed.contains(&kept.as_str()), "{}", show(&o));
    assert!(find(&ps_all(), "id", &expiring).is_none());
    assert!(find(&ps_all(), "id", &kept).is_some());
    // --expires without --keep is a usage error.
    let o = run(&["run", "--expires", "5", "--base", &busybox(), "--", "true"]);
    assert_eq!(code(&o), 125, "{}", show(&o));
}

#[test]
fn info_json_shape() {
    let o = run(&["info", "--json"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let v = json(&o);
    assert!(
        ["docker", "podman"].contains(&v["engine"].as_str().unwrap()),
        "{v}"
    );
    for k in [
        "version",
        "api_version",
        "host",
        "os",
        "arch",
        "headjack_version",
    ] {
        assert!(
            v[k].as_str().is_some_and(|s| !s.is_empty()),
            "{k} missing in {v}"
        );
    }
    let o = run(&["info"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(text(&o.stdout).contains("api version:"), "{}", show(&o));
}

#[test]
fn build_resolves_once_per_content() {
    let mut cleanup = Cleanup::default();
    let dir = tempfile::tempdir().unwrap();
    let df = dir.path().join("Dockerfile");
    std::fs::write(
        &df,
        format!("FROM {}\nRUN echo hi > /hi\n# {}\n", busybox(), nonce()),
    )
    .unwrap();
    let df = df.to_str().unwrap().to_string();

    // First: builds, with plain progress lines on a non-terminal stderr.
    let o = run(&["build", &df]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let tag = text(&o.stdout).trim().to_string();
    cleanup.images.push(tag.clone());
    assert!(tag.starts_with("localhost/headjack/"), "{}", show(&o));
    let err = text(&o.stderr);
    // Classic builders print `Step 1/2 : …`, BuildKit `#2 [1/2] FROM …`.
    assert!(
        err.lines().any(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("build: step") || l.starts_with("build: #")
        }),
        "build steps expected: {}",
        show(&o)
    );
    assert!(!err.contains('\u{1b}'), "{}", show(&o));

    // Second: the same tag, no build.
    let o = run(&["build", &df]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(text(&o.stdout).trim(), tag);
    assert!(
        !text(&o.stderr).contains("build"),
        "a cache hit must not build: {}",
        show(&o)
    );
    let o = run(&["build", "--json", &df]);
    let v = json(&o);
    assert_eq!(v["reference"], tag.as_str());
    assert_eq!(v["built"], false);
    assert!(v["id"].as_str().unwrap().starts_with("sha256:"), "{v}");

    // Listed by images (JSON and table).
    let o = run(&["images", "--json"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let list = json(&o);
    let me = find(list.as_array().unwrap(), "reference", &tag)
        .unwrap_or_else(|| panic!("{tag} not in {list}"));
    assert!(me["key"].as_str().is_some_and(|k| k.len() >= 16), "{me}");
    assert!(me["size"].as_i64().is_some_and(|s| s > 0), "{me}");
    assert!(
        me["source"].as_str().unwrap().ends_with("Dockerfile"),
        "{me}"
    );
    let o = run(&["images"]);
    assert!(
        text(&o.stdout).lines().any(|l| l.starts_with(&tag)),
        "{}",
        show(&o)
    );

    // --no-cache builds again; --quiet shows nothing.
    let o = run(&["build", "--no-cache", "--quiet", "--json", &df]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(o.stderr.is_empty(), "{}", show(&o));
    let v = json(&o);
    assert_eq!(v["built"], true, "{}", show(&o));
    assert_eq!(v["reference"], tag.as_str());

    // The Dockerfile as a run base.
    let o = run(&["run", "--base", &df, "--", "cat", "/hi"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(text(&o.stdout), "hi\n");
    assert!(!text(&o.stderr).contains("build"), "{}", show(&o));

    // --no-cache needs a Dockerfile; a failing build is one line with exit 125.
    let o = run(&["build", "--no-cache", &busybox()]);
    assert_failure(&o, "--no-cache");
    let bad = dir.path().join("Bad.Dockerfile");
    std::fs::write(&bad, format!("FROM {}\nRUN exit 7\n", busybox())).unwrap();
    let o = run(&["build", "-q", bad.to_str().unwrap()]);
    assert_failure(&o, "exit 7");
}

#[test]
fn build_secrets_reach_the_step_and_nothing_else() {
    let mut cleanup = Cleanup::default();
    let dir = tempfile::tempdir().unwrap();
    let n = nonce();
    let df = dir.path().join("Dockerfile");
    std::fs::write(
        &df,
        format!(
            "FROM {}\nRUN --mount=type=secret,id=tok --mount=type=secret,id=file test \"$(cat /run/secrets/tok)\" = \"env-secret-{n}\" && test \"$(cat /run/secrets/file)\" = \"file-secret-{n}\" && echo ok-{n} > /ok\n",
            busybox()
        ),
    )
    .unwrap();
    let secret_file = dir.path().join("secret.txt");
    std::fs::write(&secret_file, format!("file-secret-{n}")).unwrap();
    let df = df.to_str().unwrap().to_string();
    let file_arg = format!("id=file,src={}", secret_file.display());
    let o = hj()
        .args([
            "build",
            "--json",
            &df,
            "--secret",
            "id=tok,env=HJ_TEST_SECRET",
            "--secret",
            &file_arg,
        ])
        .env("HJ_TEST_SECRET", format!("env-secret-{n}"))
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", show(&o));
    let v = json(&o);
    let tag = v["reference"].as_str().unwrap().to_string();
    cleanup.images.push(tag.clone());
    assert!(!text(&o.stderr).contains("secret-"), "{}", show(&o));
    let o = run(&["run", "--base", &tag, "--", "cat", "/ok"]);
    assert_eq!(text(&o.stdout), format!("ok-{n}\n"), "{}", show(&o));
    // A missing variable is a usage-level failure naming the secret and the variable.
    let o = run(&[
        "build",
        "--no-cache",
        &df,
        "--secret",
        "id=tok,env=HJ_TEST_UNSET_VARIABLE",
    ]);
    assert_failure(&o, "HJ_TEST_UNSET_VARIABLE");
    let o = run(&["build", &df, "--secret", "id=tok"]);
    assert_failure(&o, "src=FILE or env=VAR");
}

#[test]
fn a_failing_build_is_reported_without_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let n = nonce();
    let df = dir.path().join("Dockerfile");
    std::fs::write(
        &df,
        format!(
            "FROM {}\nRUN printf '\\033[91mE: red failure {n}\\033[0m\\n' && exit 5\n",
            busybox()
        ),
    )
    .unwrap();
    let df = df.to_str().unwrap();
    for quiet in [true, false] {
        for args in [
            vec!["build"],
            vec!["build", "--json"],
            vec!["run", "--base"],
        ] {
            let mut args = args.clone();
            if quiet {
                args.insert(1, "-q");
            }
            args.push(df);
            if args[0] == "run" {
                args.extend(["--", "true"]);
            }
            let o = run(&args);
            if quiet {
                assert_failure(&o, &format!("red failure {n}"));
            } else {
                // Progress lines come first; they are free of escape sequences too.
                assert_eq!(code(&o), 125, "{}", show(&o));
                assert!(text(&o.stderr).contains(&format!("red failure {n}")));
            }
            assert!(
                !o.stderr.contains(&0x1b) && !o.stdout.contains(&0x1b),
                "{}",
                show(&o)
            );
        }
    }
}

/// A process on the far side of a pseudo-terminal, its output collected by a thread.
struct Pty {
    master: std::fs::File,
    child: std::process::Child,
    out: Arc<(Mutex<Vec<u8>>, Condvar)>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Pty {
    fn spawn(args: &[&str], rows: u16, cols: u16) -> Pty {
        let (mut master, mut slave) = (-1, -1);
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two descriptors we then own.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &ws,
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: fresh descriptors from openpty, owned here.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        let mut cmd = hj();
        cmd.args(args)
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("headjack starts on the pty");
        drop(cmd); // closes our copies of the slave
        let master = std::fs::File::from(master);
        let out = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let (mut reader, sink) = (master.try_clone().unwrap(), out.clone());
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break, // EIO once the slave side is closed
                    Ok(n) => {
                        sink.0.lock().unwrap().extend_from_slice(&buf[..n]);
                        sink.1.notify_all();
                    }
                }
            }
            sink.1.notify_all();
        });
        Pty {
            master,
            child,
            out,
            reader: Some(reader),
        }
    }

    /// Waits until `needle` appears in the output after byte `from`; returns the offset past it.
    /// The deadline only guards against a hang; it is not what the test checks.
    fn expect(&self, needle: &str, from: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut buf = self.out.0.lock().unwrap();
        loop {
            let hay = &buf[from.min(buf.len())..];
            if let Some(p) = hay
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
            {
                return from + p + needle.len();
            }
            let now = Instant::now();
            assert!(
                now < deadline,
                "never saw {needle:?}; the terminal showed:\n{}",
                text(&buf)
            );
            buf = self.out.1.wait_timeout(buf, deadline - now).unwrap().0;
        }
    }

    fn send(&mut self, s: &str) {
        self.master.write_all(s.as_bytes()).unwrap();
    }

    fn set_size(&self, rows: u16, cols: u16) {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads the struct; the kernel signals the foreground group.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        assert_eq!(rc, 0);
    }

    fn wait(self) -> i32 {
        self.wait_keep().0
    }

    /// Waits for the exit; returns the code and the handle (its output stays readable).
    fn wait_keep(mut self) -> (i32, Pty) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                let code = s.code().unwrap_or(-1);
                // The reader ends (EIO) once the process's side is closed: all output is in.
                if let Some(r) = self.reader.take() {
                    let _ = r.join();
                }
                return (code, self);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "headjack did not exit; the terminal showed:\n{}",
                    text(&self.out.0.lock().unwrap())
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Runs `stty size` until it prints `want` (the resize request races the shell); returns the
/// output offset after the last answer.
fn poll_size(pty: &mut Pty, mut at: usize, want: &str) -> usize {
    for _ in 0..100 {
        let mark = format!("mark-{}", nonce());
        pty.send(&format!("stty size; echo {mark}-$((0))\r"));
        let end = pty.expect(&format!("{mark}-0"), at);
        let out = text(&pty.out.0.lock().unwrap()[at..end]);
        at = end;
        if out.contains(want) {
            return at;
        }
    }
    panic!("the container's terminal never reported size {want}");
}

#[test]
fn interactive_shell_on_a_terminal() {
    let name = format!("hj-cli-pty-{}", nonce());
    let mut pty = Pty::spawn(
        &[
            "run",
            "--base",
            &busybox(),
            "--name",
            &name,
            "-l",
            "io.headjack.test=1",
        ],
        30,
        100,
    );
    let at = pty.expect("# ", 0);
    pty.send("echo hello-$((1+1))\r");
    let at = pty.expect("hello-2", at);
    // The container's terminal has our size, and follows a resize (SIGWINCH).
    let at = poll_size(&mut pty, at, "30 100");
    pty.set_size(41, 120);
    poll_size(&mut pty, at, "41 120");
    pty.send("exit 7\r");
    assert_eq!(pty.wait(), 7, "the shell's exit code is ours");
    assert!(
        find(&ps_all(), "name", &name).is_none(),
        "the interactive instance {name} was not removed"
    );
}

#[test]
fn tty_flag_with_a_command_and_progress_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let df = dir.path().join("Dockerfile");
    std::fs::write(
        &df,
        format!("FROM {}\nRUN echo tty > /t\n# {}\n", busybox(), nonce()),
    )
    .unwrap();
    let mut cleanup = Cleanup::default();
    // Build on a terminal: progress is drawn (step lines kept, the spinner cleared).
    let pty = Pty::spawn(&["build", df.to_str().unwrap()], 24, 80);
    let (status, pty) = pty.wait_keep();
    assert_eq!(status, 0);
    let all = text(&pty.out.0.lock().unwrap());
    // Classic builders print `Step 1/2 : …`, BuildKit `#5 [2/2] RUN …`.
    let all_lower = all.to_ascii_lowercase();
    assert!(
        all_lower.contains("build: step") || all_lower.contains("build: #"),
        "{all}"
    );
    // It did build: asking again is a cache hit.
    let o = run(&["build", "--json", df.to_str().unwrap()]);
    let v = json(&o);
    cleanup
        .images
        .push(v["reference"].as_str().unwrap().to_string());
    assert_eq!(v["built"], false, "{}", show(&o));
    assert!(all.contains(v["reference"].as_str().unwrap()), "{all}");

    let pty = Pty::spawn(
        &[
            "run",
            "-t",
            "--base",
            df.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "cat /t; [ -t 0 ] && echo is-a-tty; exit 9",
        ],
        24,
        80,
    );
    let at = pty.expect("tty", 0);
    pty.expect("is-a-tty", at);
    assert_eq!(pty.wait(), 9);
}

#[test]
fn no_args_prints_help() {
    let o = Command::new(env!("CARGO_BIN_EXE_headjack"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(code(&o), 125, "{}", show(&o));
    assert!(text(&o.stderr).contains("Usage"), "{}", show(&o));
    let o = run(&[]);
    assert_failure(&o, "subcommand");
    let o = run(&["--version"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let o = run(&["--help"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    for cmd in [
        "run", "build", "exec", "ps", "logs", "stop", "rm", "cp", "commit", "sweep", "images",
        "info", "egress",
    ] {
        assert!(text(&o.stdout).contains(cmd), "--help lacks {cmd}");
    }
}

#[test]
fn pull_progress_is_plain_lines_off_a_terminal() {
    let registry =
        std::env::var("HEADJACK_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into());
    let image = format!("{registry}/headjack-test/busybox:latest");
    let had_it = Command::new("docker")
        .args(["image", "inspect", &image])
        .env("DOCKER_HOST", host())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    let mut cleanup = Cleanup::default();
    if !had_it {
        cleanup.images.push(image.clone());
    }
    let o = run(&[
        "run", "--pull", "always", "--base", &image, "--", "echo", "pulled",
    ]);
    assert_eq!(
        code(&o),
        0,
        "the local registry from tests/env/up.sh must serve {image}: {}",
        show(&o)
    );
    assert_eq!(text(&o.stdout), "pulled\n");
    let err = text(&o.stderr);
    assert!(
        err.lines()
            .any(|l| l.starts_with(&format!("pull {image}: "))),
        "{}",
        show(&o)
    );
    assert!(!err.contains('\u{1b}'), "{}", show(&o));
    // Quiet: nothing.
    let o = run(&[
        "run", "-q", "--pull", "always", "--base", &image, "--", "true",
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(o.stderr.is_empty(), "{}", show(&o));
}

#[test]
fn interrupt_stops_the_command_and_removes_the_instance() {
    let name = format!("hj-cli-int-{}", nonce());
    let mut child = hj()
        .args([
            "run",
            "--name",
            &name,
            "-l",
            "io.headjack.test=1",
            "--base",
            &busybox(),
            "--",
        ])
        .args(["sh", "-c", "echo started; sleep 300"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !text(&seen).contains("started") {
        let n = out.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "headjack ended before the command started: {}",
            text(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", show(&o));
    assert!(
        text(&o.stderr).starts_with("headjack: interrupted"),
        "{}",
        show(&o)
    );
    assert!(
        find(&ps_all(), "name", &name).is_none(),
        "the interrupted instance {name} was left behind"
    );
}

/// `--allow-host` / `--deny-host`: the instance reaches the outside only through headjack's
/// egress proxy, which refuses what the policy does not allow (and says so); bad patterns and
/// `--network` with a policy are clear failures.
#[test]
fn run_with_an_egress_policy() {
    // One egress test at a time: two headjack processes making the proxy's outside network at
    // once can leave two networks of one name on Docker (see the notes in egress/proxy.rs).
    let _serial = serial();
    let o = run(&[
        "run",
        "-q",
        "--base",
        &busybox(),
        "--allow-host",
        "allowed.test",
        "--allow-host",
        "*.mirror.test",
        "--",
        "sh",
        "-c",
        "echo $HTTP_PROXY; wget -q -O- http://denied.test/ 2>&1; echo exit=$?",
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let out = text(&o.stdout);
    assert!(out.contains(":3128"), "{}", show(&o));
    assert!(
        out.contains("403 Forbidden by headjack egress policy (denied.test:80)"),
        "{}",
        show(&o)
    );
    assert!(out.contains("exit=1"), "{}", show(&o));

    let o = run(&[
        "run",
        "-q",
        "--base",
        &busybox(),
        "--deny-host",
        "a..b",
        "--",
        "true",
    ]);
    assert_failure(&o, "invalid egress pattern \"a..b\"");
    let o = run(&[
        "run",
        "-q",
        "--base",
        &busybox(),
        "--allow-host",
        "x.test",
        "--network",
        "none",
        "--",
        "true",
    ]);
    assert_ne!(code(&o), 0, "{}", show(&o));
}

/// `egress set|log` on a kept instance: the policy changes while it runs, the log says what
/// the proxy decided and why; wrong input (no policy, a bad pattern, an instance without a
/// policy, an unknown instance) gets a clear failure.
#[test]
fn egress_set_and_log_on_a_kept_instance() {
    let _serial = serial();
    let mut cleanup = Cleanup::default();
    let bb = busybox();
    let keep = |extra: &[&str]| {
        let mut args = vec!["run", "--keep", "--json", "-l", "io.headjack.test=1"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--base", &bb, "--", "true"]);
        let o = run(&args);
        assert_eq!(code(&o), 0, "{}", show(&o));
        json(&o)["id"].as_str().unwrap().to_string()
    };
    let id = keep(&["--allow-host", "allowed.test"]);
    cleanup.instances.push(id.clone());
    let fetch = |host: &str| {
        let url = format!("http://{host}/");
        let o = run(&[
            "exec",
            &id,
            "--",
            "sh",
            "-c",
            &format!("wget -q -O- {url} 2>&1; true"),
        ]);
        assert_eq!(code(&o), 0, "{}", show(&o));
        text(&o.stdout)
    };
    assert!(fetch("denied.test").contains("403 Forbidden by headjack egress policy"));
    let o = run(&["egress", "set", &id, "--allow-host", "denied.test"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(!fetch("denied.test").contains("403 Forbidden"));
    assert!(fetch("allowed.test").contains("403 Forbidden by headjack egress policy"));
    let o = run(&["egress", "log", &id]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let table = text(&o.stdout);
    assert!(table.starts_with("TIME"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains("denied.test:80") && l.contains("denied")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.contains("denied.test:80") && l.contains("allowed")),
        "{table}"
    );
    let o = run(&["--json", "egress", "log", &id]);
    let log = json(&o);
    let log = log.as_array().unwrap();
    assert!(
        log.iter()
            .any(|d| d["host"] == "allowed.test" && d["allowed"] == false && d["via"] == "http"),
        "{log:?}"
    );
    // Wrong input.
    let o = run(&["egress", "set", &id]);
    assert_failure(&o, "--allow-host");
    let o = run(&["egress", "set", &id, "--allow-host", "a..b"]);
    assert_failure(&o, "invalid egress pattern \"a..b\"");
    let o = run(&[
        "egress",
        "set",
        &id,
        "--allow-host",
        "x.test",
        "--deny-host",
        "y.test",
    ]);
    assert_failure(&o, "--deny-host");
    let plain = keep(&[]);
    cleanup.instances.push(plain.clone());
    let o = run(&["egress", "log", &plain]);
    assert_failure(&o, "without an egress policy");
    let o = run(&["egress", "log", "no-such-instance-7e1"]);
    assert_failure(&o, "no-such-instance-7e1");
}

/// A dev container fixture (tests/fixtures/devcontainer/<name>).
fn devc_fixture(name: &str) -> String {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/devcontainer")
        .join(name)
        .canonicalize()
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn run_and_build_take_a_devcontainer_definition_as_base() {
    // Hooks ran before the command, which starts in the workspace folder.
    let o = run(&[
        "run",
        "--base",
        &format!("{}/.devcontainer", devc_fixture("hooks")),
        "--",
        "sh",
        "-c",
        "cat /tmp/hooks.log; pwd",
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(
        text(&o.stdout),
        "onCreate\nupdateContent\npostStart\npostAttach\n/workspaces/hooks\n",
        "{}",
        show(&o)
    );

    // Warnings reach stderr (run) and the resolve result (build --json).
    let unsupported = devc_fixture("unsupported");
    let o = run(&["run", "--base", &unsupported, "--", "true"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let err = text(&o.stderr);
    assert!(
        err.contains("warning:") && err.contains("dockerComposeFile"),
        "{}",
        show(&o)
    );
    let o = run(&["--json", "build", &unsupported]);
    let v = json(&o);
    let warnings = v["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("initializeCommand")),
        "{}",
        show(&o)
    );

    // A failing hook: one clear line, exit 125.
    let o = run(&[
        "run",
        "-q",
        "--base",
        &devc_fixture("bad/failing-hook"),
        "--",
        "true",
    ]);
    assert_failure(&o, "postCreateCommand");
}
