//! devcontainer.json as a base, end to end on the real engines; and the instance-level exec
//! defaults it relies on (`remoteEnv`, `remoteUser`, `workspaceFolder`).

mod common;

use common::{client, spec};
use headjack::ErrorKind;
use headjack::exec::ExecDefaults;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_exec_defaults_apply_to_every_command_unless_it_says_otherwise() {
    let c = client().await;
    let env = c.spawn(spec()).await.unwrap();
    // Before: nothing set.
    assert!(env.exec_defaults().is_empty());
    let out = env.exec(["sh", "-c", "echo [$FOO]; id -u"]).await.unwrap();
    assert_eq!(out.stdout_text(), "[]\n0\n");

    env.set_exec_defaults(
        ExecDefaults::new()
            .env("FOO", "from defaults")
            .env("BAR", "bar")
            .user("1000:1000")
            .workdir("/tmp"),
    )
    .unwrap();
    assert_eq!(env.exec_defaults().get_user(), Some("1000:1000"));
    let out = env
        .exec(["sh", "-c", "echo $FOO; echo $BAR; id -u; pwd"])
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "from defaults\nbar\n1000\n/tmp\n");

    // The command's own settings win, per key.
    let out = env
        .exec(
            headjack::Exec::new(["sh", "-c", "echo $FOO; echo $BAR; id -u; pwd"])
                .env("FOO", "mine")
                .user("0")
                .workdir("/"),
        )
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "mine\nbar\n0\n/\n");

    // Invalid defaults are refused and the old ones stay.
    let err = env
        .set_exec_defaults(ExecDefaults::new().env("A=B", "x"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.message().contains("exec defaults"), "{err}");
    let err = env
        .set_exec_defaults(ExecDefaults::new().user(""))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(
        env.exec_defaults().get_env().get("FOO").map(String::as_str),
        Some("from defaults")
    );

    // Background processes get them too (they need the agent).
    if env.has_agent() {
        let p = env
            .start_process(["sh", "-c", "echo $FOO $(id -u) $(pwd)"])
            .await
            .unwrap();
        p.wait().await.unwrap();
        let mut stream = p.attach(true).await.unwrap();
        let mut out = String::new();
        while let Some(chunk) = stream.next().await {
            out.push_str(&String::from_utf8_lossy(&chunk.unwrap().data));
        }
        assert_eq!(out, "from defaults 1000 /tmp\n");
    }
    env.remove().await.unwrap();
}

// ---- devcontainer.json as a base ----------------------------------------------------------

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use headjack::{Instance, Progress, Spec};

/// A fixture workspace (tests/fixtures/devcontainer/<name>), absolute.
fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/devcontainer")
        .join(name)
        .canonicalize()
        .unwrap()
}

/// A spec on a fixture's definition, as a test object, collecting its progress.
fn devc_spec(base: &str, events: &Arc<Mutex<Vec<Progress>>>) -> Spec {
    let events = events.clone();
    Spec::new()
        .base(base)
        .label("io.headjack.test", "1")
        .engine_exec(common::engine_exec())
        .progress(move |p| events.lock().unwrap().push(p.clone()))
}

/// Removes the named volumes a fixture's mounts created (the engine made them at spawn,
/// without headjack's labels).
fn remove_volumes(prefixes: &[&str]) {
    let names = common::docker(&["volume", "ls", "-q"]);
    for name in names.lines() {
        if prefixes.iter().any(|p| name.starts_with(p)) {
            common::docker(&["volume", "rm", "-f", name]);
        }
    }
}

/// Runs `script` in `env` (as its default user, in its default directory) and returns stdout.
async fn sh(env: &Instance, script: &str) -> String {
    let out = env.exec(["sh", "-c", script]).await.unwrap();
    assert_eq!(out.exit_code, 0, "{script}: {}", out.stderr_text());
    out.stdout_text()
}

/// Spawns a fixture and checks each `(script, expected stdout)`.
async fn spawn_and_check(name: &str, checks: &[(&str, &str)]) -> (Instance, Vec<Progress>) {
    let c = client().await;
    let events = Arc::default();
    let base = fixture(name).display().to_string();
    let env = c
        .spawn(devc_spec(&base, &events))
        .await
        .unwrap_or_else(|e| panic!("spawning fixture {name}: {e}"));
    for (script, want) in checks {
        assert_eq!(sh(&env, script).await, *want, "fixture {name}: {script}");
    }
    let events = events.lock().unwrap().clone();
    (env, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_template_builds_runs_its_hook_as_remote_user_with_container_env() {
    let (env, events) = spawn_and_check(
        "python",
        &[
            ("cat /tmp/python-major", "3\n"),
            ("echo $PYTHONUNBUFFERED", "1\n"),
            ("id -un", "vscode\n"),
            (
                "echo $PYTHONUNBUFFERED$PIP_DISABLE_PIP_VERSION_CHECK",
                "11\n",
            ),
            ("pwd", "/workspaces/python\n"),
            ("ls .devcontainer", "Dockerfile\ndevcontainer.json\n"),
        ],
    )
    .await;
    // The hook ran before spawn returned; customizations are silent, nothing else to warn.
    assert!(env.warnings().is_empty(), "{:?}", env.warnings());
    assert!(events.iter().all(|e| e.kind() != "warning"), "{events:?}");
    assert!(env.port(8000).await.unwrap().ip().is_loopback());
    // The labels name the definition (headjack's, and the devcontainers CLI's).
    let labels = common::docker(&[
        "inspect",
        "-f",
        "{{index .Config.Labels \"io.headjack.base\"}} {{index .Config.Labels \"devcontainer.config_file\"}}",
        env.container_id(),
    ]);
    let file = fixture("python").join(".devcontainer/devcontainer.json");
    assert_eq!(labels.trim(), format!("{0} {0}", file.display()));
    env.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_rust_go_templates_env_user_volumes_and_remote_env() {
    let (env, _) = spawn_and_check(
        "node",
        &[
            ("cat /tmp/node-env", "development\n"),
            ("id -un", "node\n"),
            ("touch /home/node/.npm/x && echo ok", "ok\n"),
        ],
    )
    .await;
    env.remove().await.unwrap();

    let (env, _) = spawn_and_check(
        "rust",
        &[
            ("id -un", "vscode\n"),
            ("echo $CARGO_HOME", "/usr/local/cargo\n"),
            (
                "case $(cat /tmp/rust-path) in *:/usr/local/cargo/bin) echo ok;; esac",
                "ok\n",
            ),
            (
                "case $PATH in /*:/usr/local/cargo/bin) echo ok;; esac",
                "ok\n",
            ),
            (
                "grep -q ' /usr/local/cargo/registry ' /proc/self/mountinfo && echo mounted",
                "mounted\n",
            ),
        ],
    )
    .await;
    env.remove().await.unwrap();

    let (env, _) = spawn_and_check(
        "go",
        &[
            ("cat /tmp/gopath", "/go\n"),
            ("case $PATH in *:/go/bin) echo ok;; esac", "ok\n"),
            ("echo $GOFLAGS", "-mod=mod\n"),
        ],
    )
    .await;
    let caps = common::docker(&[
        "inspect",
        "-f",
        "{{.HostConfig.CapAdd}} {{.HostConfig.SecurityOpt}}",
        env.container_id(),
    ]);
    assert!(caps.contains("SYS_PTRACE"), "{caps}");
    assert!(caps.contains("seccomp=unconfined"), "{caps}");
    env.remove().await.unwrap();
    remove_volumes(&["npm-cache-", "cargo-registry-"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_run_in_order_in_every_form_with_output_as_progress() {
    let (env, events) = spawn_and_check(
        "hooks",
        &[
            (
                "cat /tmp/hooks.log",
                "onCreate\nupdateContent\npostStart\npostAttach\n",
            ),
            (
                "cat /tmp/post-create-first /tmp/post-create-second",
                "postCreate-first\npostCreate-second\n",
            ),
            ("cat /tmp/attach-cwd", "/workspaces/hooks\n"),
        ],
    )
    .await;
    // They print nothing (they write files), so no hook output reached the callback; the
    // failing-hook test checks that output does.
    assert!(events.iter().all(|e| e.kind() != "hook"), "{events:?}");
    env.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounts_env_vars_image_plain_legacy_and_args_target() {
    let (env, _) = spawn_and_check(
        "mounts",
        &[
            ("pwd", "/src/mounts\n"),
            (
                "cat /tmp/data-copy",
                "read-only data for the mounts fixture\n",
            ),
            ("touch /data/x 2>/dev/null || echo read-only", "read-only\n"),
            ("touch /cache/x /shared/x /scratch/x && echo ok", "ok\n"),
            (
                "grep ' /scratch ' /proc/self/mountinfo | grep -c tmpfs",
                "1\n",
            ),
        ],
    )
    .await;
    env.remove().await.unwrap();
    remove_volumes(&["mounts-cache-", "mounts-shared"]);

    let (env, _) = spawn_and_check(
        "env-vars",
        &[
            ("echo $PROJECT", "env-vars\n"),
            ("echo $IN_CONTAINER", "/workspaces/env-vars\n"),
            ("echo $FROM_HOST", "no-value-on-host\n"),
            ("case $PATH in /*:/opt/tools/bin) echo ok;; esac", "ok\n"),
            ("echo $PROJECT_UPPER_DIR", "/workspaces/env-vars/..\n"),
            ("grep -c '^PROJECT=env-vars$' /tmp/env", "1\n"),
        ],
    )
    .await;
    env.remove().await.unwrap();

    let (env, _) = spawn_and_check(
        "image-plain",
        &[
            ("cat /tmp/post-create", "created\n"),
            ("echo $EDITOR", "vi\n"),
        ],
    )
    .await;
    env.remove().await.unwrap();

    // The folder holds a Dockerfile of its own (so the folder means that Dockerfile): name the
    // definition's folder.
    let (env, _) =
        spawn_and_check("legacy/.devcontainer", &[("cat /tmp/legacy", "legacy\n")]).await;
    // appPort keeps its legacy meaning: published as written.
    assert_eq!(env.port(443).await.unwrap().to_string(), "127.0.0.1:8443");
    assert_eq!(env.port(8081).await.unwrap().port(), 8081);
    // Its VS Code keys (extensions, settings) are tool-specific: ignored without a warning.
    assert!(env.warnings().is_empty(), "{:?}", env.warnings());
    env.remove().await.unwrap();

    let (env, _) = spawn_and_check(
        "dockerfile-args-target",
        &[("id -un", "app\n"), ("grep -c jq /tmp/jq-version", "1\n")],
    )
    .await;
    env.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_args_host_requirements_local_feature_and_a_named_variant() {
    let (env, _) = spawn_and_check(
        "run-args",
        &[
            ("cat /tmp/user", "agent\n"),
            ("echo $FROM_RUN_ARGS $SECOND", "1 two\n"),
            (
                "grep ' /run-args-tmp ' /proc/self/mountinfo | grep -c tmpfs",
                "1\n",
            ),
        ],
    )
    .await;
    let mem = common::docker(&[
        "inspect",
        "-f",
        "{{.HostConfig.Memory}}",
        env.container_id(),
    ]);
    assert_eq!(mem.trim(), (512u64 << 20).to_string());
    // --device, --shm-size are not applied: named in the warnings.
    let w = env.warnings().join("\n");
    assert!(w.contains("--device") && w.contains("--shm-size"), "{w}");
    env.remove().await.unwrap();

    let (env, events) = spawn_and_check("host-requirements", &[]).await;
    // forwardPorts: published on 127.0.0.1, on ports the engine chose.
    for port in [8080, 8443] {
        let addr = env.port(port).await.unwrap();
        assert!(
            addr.ip().is_loopback() && addr.port() != 0,
            "{port}: {addr}"
        );
    }
    // A listener inside is reachable through the published port.
    let server = env
        .start_process(["sh", "-c", "echo served | nc -l -p 8080"])
        .await;
    if let Ok(server) = server {
        let addr = env.port(8080).await.unwrap();
        let mut got = String::new();
        for _ in 0..50 {
            if let Ok(mut conn) = tokio::net::TcpStream::connect(addr).await {
                use tokio::io::AsyncReadExt;
                let _ = conn.read_to_string(&mut got).await;
                if !got.is_empty() {
                    break;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(got, "served\n");
        let _ = server.kill(9).await;
    }
    let mem = common::docker(&[
        "inspect",
        "-f",
        "{{.HostConfig.Memory}}",
        env.container_id(),
    ]);
    assert_eq!(mem.trim(), (1u64 << 30).to_string());
    assert!(
        events
            .iter()
            .any(|e| e.kind() == "warning" && e.line().unwrap().contains("storage")),
        "{events:?}"
    );
    env.remove().await.unwrap();

    let (env, _) = spawn_and_check(
        "local-feature",
        &[
            ("id -un", "nobody\n"),
            ("cat /tmp/definition-hello", "HI FROM A FEATURE\n"),
        ],
    )
    .await;
    env.remove().await.unwrap();

    // .devcontainer/<name>/devcontainer.json, named by its path.
    let c = client().await;
    let events = Arc::default();
    let base = fixture("multi-folder")
        .join(".devcontainer/web/devcontainer.json")
        .display()
        .to_string();
    let env = c.spawn(devc_spec(&base, &events)).await.unwrap();
    assert_eq!(sh(&env, "cat /tmp/service; id -un").await, "web\ndev\n");
    env.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_keys_are_warnings_in_progress_and_on_the_instance() {
    let (env, events) = spawn_and_check("unsupported", &[]).await;
    let w = env.warnings().join("\n");
    for key in [
        "dockerComposeFile",
        "initializeCommand",
        "ghcr.io/devcontainers/features/common-utils",
        "notAKey",
    ] {
        assert!(w.contains(key), "no warning names {key}: {w}");
    }
    let progress_warnings = events.iter().filter(|e| e.kind() == "warning").count();
    assert!(progress_warnings >= env.warnings().len(), "{events:?}");
    env.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_definitions_give_clear_errors_and_leave_nothing_behind() {
    let c = client().await;
    let events = Arc::default();
    let spawn_err = |name: &str| {
        let base = fixture(&format!("bad/{name}")).display().to_string();
        let spec = devc_spec(&base, &events).label("io.headjack.test.case", "bad-definitions");
        let c = &c;
        async move { c.spawn(spec).await.unwrap_err() }
    };

    let e = spawn_err("invalid-jsonc").await;
    assert_eq!(e.kind(), ErrorKind::InvalidBase, "{e}");
    assert!(e.message().contains("devcontainer.json:"), "{e}");

    let e = spawn_err("missing-dockerfile").await;
    assert_eq!(e.kind(), ErrorKind::InvalidBase, "{e}");
    assert!(e.message().contains("Dockerfile"), "{e}");

    let e = spawn_err("several").await;
    assert_eq!(e.kind(), ErrorKind::InvalidBase, "{e}");
    assert!(
        e.message().contains("one") && e.message().contains("two"),
        "{e}"
    );

    let e = spawn_err("privileged").await;
    assert_eq!(e.kind(), ErrorKind::InvalidBase, "{e}");
    assert!(e.message().contains("privileged"), "{e}");

    let e = spawn_err("failing-hook").await;
    assert_eq!(e.kind(), ErrorKind::ExecFailed, "{e}");
    let m = e.message();
    assert!(
        m.contains("postCreateCommand") && m.contains("\"broken\""),
        "{m}"
    );
    assert!(
        m.contains("exit code 3") && m.contains("setting up failed"),
        "{m}"
    );
    assert!(m.contains("removed"), "{m}");
    // The instance was removed.
    assert_eq!(
        left_behind().await,
        "",
        "the failed hook's instance is still there"
    );
    // The hook's output reached the progress callback before the failure.
    assert!(
        events.lock().unwrap().iter().any(|e| e.kind() == "hook"
            && e.line() == Some("before the failure")
            && e.image() == "onCreateCommand"),
        "{:?}",
        events.lock().unwrap()
    );

    // Privileged, allowed: no longer refused. (This test machine's engines run inside a
    // container without every capability, so the engine itself may fail to start a privileged
    // container: then its error says so, and nothing is left behind.)
    let base = fixture("bad/privileged").display().to_string();
    match c
        .spawn(
            devc_spec(&base, &events)
                .label("io.headjack.test.case", "bad-definitions")
                .allow_privileged(true),
        )
        .await
    {
        Ok(env) => {
            let p = common::docker(&[
                "inspect",
                "-f",
                "{{.HostConfig.Privileged}}",
                env.container_id(),
            ]);
            assert_eq!(p.trim(), "true");
            env.remove().await.unwrap();
        }
        Err(e) => {
            assert_ne!(e.kind(), ErrorKind::InvalidBase, "{e}");
            assert!(
                e.message().contains("caps") || e.message().contains("privilege"),
                "{e}"
            );
        }
    }
    assert_eq!(
        left_behind().await,
        "",
        "the privileged spawn left a container"
    );
}

/// The containers of `bad_definitions_give_clear_errors_and_leave_nothing_behind` still
/// there after a moment (a handle dropped on an error removes its container in the background).
async fn left_behind() -> String {
    let mut left = String::new();
    for _ in 0..50 {
        left = common::docker(&[
            "ps",
            "-aq",
            "--filter",
            "label=io.headjack.test.case=bad-definitions",
        ]);
        if left.trim().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    left.trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_strings_name_definitions_and_a_rebuild_costs_no_build() {
    use headjack::Base;
    let dir = fixture("python");
    for s in [
        "./.devcontainer",
        "./.devcontainer/devcontainer.json",
        ".devcontainer",
        ".",
    ] {
        let b = Base::parse_in(s, &dir).unwrap();
        let d = b.as_devcontainer().unwrap_or_else(|| panic!("{s}: {b:?}"));
        assert_eq!(d.config_file(), dir.join(".devcontainer/devcontainer.json"));
        assert_eq!(d.workspace(), dir);
    }
    let b = Base::parse_in(".devcontainer.json", &fixture("image-plain")).unwrap();
    assert!(b.as_devcontainer().is_some(), "{b:?}");
    // A bare word stays an image; a missing definition is a clear error.
    assert!(Base::parse_in("python", &dir).unwrap().as_image().is_some());
    let e = Base::parse_in("./nowhere/.devcontainer", &dir).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidBase);
    assert!(e.message().contains("does not exist"), "{e}");

    // The Dockerfile of a definition is built once per content: a second spawn builds nothing.
    let c = client().await;
    let events: Arc<Mutex<Vec<Progress>>> = Arc::default();
    let first = c
        .spawn(devc_spec(".devcontainer", &events).base_dir(&dir))
        .await
        .unwrap();
    first.remove().await.unwrap();
    events.lock().unwrap().clear();
    let second = c
        .spawn(devc_spec(".devcontainer", &events).base_dir(&dir))
        .await
        .unwrap();
    assert!(
        events.lock().unwrap().iter().all(|e| e.kind() != "build"),
        "a rebuild ran: {:?}",
        events.lock().unwrap()
    );
    second.remove().await.unwrap();
}

// ---- what a dev container instance keeps beyond its spawn ---------------------------------

/// A definition on the busybox fixture with `remoteUser`, `remoteEnv` (one `null`),
/// `workspaceFolder` and a `postStartCommand` that counts starts (and fails once
/// `/tmp/fail-next` exists), in a fresh workspace folder.
fn kept_state_workspace() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("devc-state-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    std::fs::create_dir(dir.path().join(".devcontainer")).unwrap();
    let definition = serde_json::json!({
        "image": common::busybox(),
        "containerEnv": { "GONE": "from containerEnv", "KEPT": "kept" },
        "remoteUser": "agent",
        "remoteEnv": { "GREETING": "hi there", "GONE": null },
        "workspaceFolder": "/home/agent",
        "postStartCommand": "test ! -e /tmp/fail-next || { echo refusing; exit 3; }; echo started >> /tmp/starts",
    });
    std::fs::write(
        dir.path().join(".devcontainer/devcontainer.json"),
        definition.to_string(),
    )
    .unwrap();
    dir
}

/// What every check runs: user, remoteEnv (set, unset, the container's kept), directory, and
/// how many times postStartCommand ran.
const STATE_SCRIPT: &str =
    "id -un; echo \"$GREETING\"; echo \"[${GONE-unset}] $KEPT\"; pwd; wc -l < /tmp/starts";

fn state_output(starts: usize) -> String {
    format!("agent\nhi there\n[unset] kept\n/home/agent\n{starts}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_defaults_and_post_start_survive_attach_fork_restart_and_the_cli() {
    let c = client().await;
    let ws = kept_state_workspace();
    let events = Arc::default();
    let env = c
        .spawn(devc_spec(".devcontainer", &events).base_dir(ws.path()))
        .await
        .unwrap();
    assert_eq!(sh(&env, STATE_SCRIPT).await, state_output(1));
    // A command's own value wins over remoteEnv's null.
    let out = env
        .exec(headjack::Exec::new(["sh", "-c", "echo $GONE"]).env("GONE", "mine"))
        .await
        .unwrap();
    assert_eq!(out.stdout_text(), "mine\n");
    // The state is in the container, for root only; the label says so.
    let out = env
        .exec(["cat", "/etc/headjack-devcontainer.json"])
        .await
        .unwrap();
    assert_ne!(out.exit_code, 0, "the remote user reads the state file");
    let label = common::docker(&[
        "inspect",
        "-f",
        "{{index .Config.Labels \"io.headjack.devcontainer.state\"}}",
        env.container_id(),
    ]);
    assert_eq!(label.trim(), "1");

    // Another client (as another process would): the same defaults, the same hook.
    let other = headjack::Client::connect_to(&common::host()).await.unwrap();
    let attached = other.attach(env.id()).await.unwrap();
    assert_eq!(attached.exec_defaults(), env.exec_defaults());
    assert_eq!(attached.exec_defaults().get_user(), Some("agent"));
    assert_eq!(sh(&attached, STATE_SCRIPT).await, state_output(1));

    // postStartCommand runs again on every start, from the attached handle too.
    attached
        .stop(std::time::Duration::from_secs(1))
        .await
        .unwrap();
    // Attached while stopped: the state is read all the same, and its start runs the hook.
    let stopped = other.attach(env.id()).await.unwrap();
    assert_eq!(stopped.exec_defaults(), env.exec_defaults());
    stopped.start().await.unwrap();
    assert_eq!(sh(&attached, STATE_SCRIPT).await, state_output(2));
    attached
        .restart(std::time::Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(sh(&attached, STATE_SCRIPT).await, state_output(3));
    env.restart(std::time::Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(sh(&env, STATE_SCRIPT).await, state_output(4));

    // Forks (of the spawned handle, and of the attached one, whose spec is read back from the
    // engine) run commands as their parent does, and run postStartCommand: they started.
    let fork = env.fork().await.unwrap();
    assert_eq!(sh(&fork, STATE_SCRIPT).await, state_output(5));
    let fork_of_attached = attached.fork().await.unwrap();
    assert_eq!(sh(&fork_of_attached, STATE_SCRIPT).await, state_output(5));
    // And a fork reached by attach has them too.
    let fork_attached = other.attach(fork_of_attached.id()).await.unwrap();
    assert_eq!(sh(&fork_attached, STATE_SCRIPT).await, state_output(5));
    Instance::remove_all([fork, fork_of_attached])
        .await
        .unwrap();

    // The CLI's `headjack exec ID` attaches: same user, env and directory.
    #[cfg(feature = "cli")]
    {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_headjack"))
            .args(["--host", &common::host(), "exec", env.id(), "sh", "-c"])
            .arg(STATE_SCRIPT)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), state_output(4));
    }

    // A failing postStartCommand at a start: a clear error, and the instance keeps running.
    sh(&env, "touch /tmp/fail-next").await;
    let e = attached
        .restart(std::time::Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ExecFailed, "{e}");
    assert!(e.message().contains("postStartCommand"), "{e}");
    assert!(e.message().contains("keeps running"), "{e}");
    assert!(e.message().contains("refusing"), "{e}");
    assert_eq!(env.status().await.unwrap(), headjack::Status::Running);

    // A state file gone (removed by hand): attach still works, without the defaults.
    let out = env
        .exec(headjack::Exec::new(["rm", "/etc/headjack-devcontainer.json"]).user("0"))
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0, "{}", out.stderr_text());
    let bare = other.attach(env.id()).await.unwrap();
    assert!(bare.exec_defaults().is_empty());
    // Starting a running instance changes nothing: no hook runs (it would fail here).
    env.start().await.unwrap();
    sh(&env, "rm /tmp/fail-next").await;
    assert_eq!(sh(&env, "wc -l < /tmp/starts").await, "4\n");
    env.remove().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_root_keeps_the_state_on_the_spawning_handle_only() {
    let c = client().await;
    let ws = kept_state_workspace();
    let events = Arc::default();
    // The hardened preset's read-only root filesystem cannot take the state file: spawn still
    // succeeds (a warning in tracing), and the spawning handle has the defaults.
    let env = c
        .spawn(
            devc_spec(".devcontainer", &events)
                .base_dir(ws.path())
                .hardened(true),
        )
        .await
        .unwrap();
    assert_eq!(
        sh(&env, "id -un; echo \"$GREETING\"; echo \"[${GONE-unset}]\"").await,
        "agent\nhi there\n[unset]\n"
    );
    // The warning is on the instance and on the progress callback.
    assert!(
        env.warnings()
            .iter()
            .any(|w| w.contains("could not be saved in the instance")),
        "{:?}",
        env.warnings()
    );
    let events = events.lock().unwrap().clone();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Progress::Warning { message, .. }
            if message.contains("could not be saved"))),
        "{events:?}"
    );
    let other = headjack::Client::connect_to(&common::host()).await.unwrap();
    let attached = other.attach(env.id()).await.unwrap();
    assert!(attached.exec_defaults().is_empty());
    env.remove().await.unwrap();
}
