//! Builds the C programs (`tests/c/*.c`, `examples/c/hello.c`) with
//! `gcc -Wall -Wextra -Werror -Wpedantic -fsanitize=address` against `include/headjack.h` and
//! `libheadjack.a`, and runs them with LeakSanitizer on; builds and runs the Go example
//! (`examples/go`, cgo, linked statically against `libheadjack.a`).
//!
//! `abi` needs no engine. The others drive the real engine: the Docker socket (or
//! `HEADJACK_TEST_DOCKER_HOST`) with the busybox fixture `localhost/headjack-test/busybox:latest`
//! (or `HEADJACK_TEST_BUSYBOX`), and the test registry on `127.0.0.1:5000` (or
//! `HEADJACK_TEST_REGISTRY`), as `tests/env/up.sh` sets them up; they fail with the program's
//! message when the engine or a fixture is missing. Every run labels its containers with a
//! unique `io.headjack.test.run`, and a test fails (after removing them) if any is left behind.
//! Images a run creates (the commit target, a pulled tag that was not there before) are removed
//! afterwards.
//!
//! The static library is the one `cargo test -p headjack-ffi` just built, next to this test's
//! binary (`target/<profile>/libheadjack.a`); the Go example links `target/debug/libheadjack.a`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// `target/<profile>`: this test binary lives in `target/<profile>/deps`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// `libheadjack.a`, rebuilt first: `cargo test` builds only the test targets, and the static
/// library is not one of their dependencies.
fn static_lib() -> PathBuf {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = profile_dir();
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "-p", "headjack-ffi", "--lib", "--target-dir"]);
        cargo.arg(dir.parent().expect("target dir"));
        if dir.file_name().is_some_and(|n| n == "release") {
            cargo.arg("--release");
        }
        let out = cargo.output().expect("running cargo build");
        assert!(
            out.status.success(),
            "{}",
            show("cargo build -p headjack-ffi", &out)
        );
    });
    let lib = profile_dir().join("libheadjack.a");
    assert!(
        lib.exists(),
        "{} is missing: build it with `cargo build -p headjack-ffi`",
        lib.display()
    );
    lib
}

/// Where compiled test programs go.
fn out_dir() -> PathBuf {
    let dir = profile_dir().join("headjack-c-tests");
    std::fs::create_dir_all(&dir).expect("creating the output directory");
    dir
}

/// A value unique to this run of a test.
fn unique(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{name}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

fn show(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Compiles one C program under AddressSanitizer and returns the executable.
fn compile(source: &str, exe_name: &str) -> PathBuf {
    let root = root();
    let exe = out_dir().join(exe_name);
    let out = Command::new("gcc")
        .args([
            "-std=c11",
            "-D_POSIX_C_SOURCE=200809L",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-Wpedantic",
        ])
        .args(["-g", "-O0", "-fsanitize=address", "-fno-omit-frame-pointer"])
        .arg("-I")
        .arg(root.join("include"))
        .arg("-I")
        .arg(root.join("tests/c"))
        .arg(root.join(source))
        .arg(static_lib())
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe)
        .output()
        .expect("running gcc (is it installed?)");
    assert!(
        out.status.success(),
        "{}",
        show(&format!("gcc {source}"), &out)
    );
    exe
}

/// The engine environment shared by the engine programs.
struct EngineEnv {
    run: String,
}

impl EngineEnv {
    fn new(name: &str) -> EngineEnv {
        EngineEnv { run: unique(name) }
    }

    fn busybox() -> String {
        std::env::var("HEADJACK_TEST_BUSYBOX")
            .unwrap_or_else(|_| "localhost/headjack-test/busybox:latest".into())
    }

    fn registry() -> String {
        std::env::var("HEADJACK_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into())
    }

    /// A command with the engine environment and LeakSanitizer settings.
    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new("timeout");
        c.arg("900").arg(program);
        c.env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
            .env("HEADJACK_TEST_BUSYBOX", Self::busybox())
            .env("HEADJACK_TEST_REGISTRY", Self::registry())
            .env("HEADJACK_TEST_RUN", &self.run);
        c
    }

    /// Runs `docker` against the test engine.
    fn docker(args: &[&str]) -> Option<Output> {
        let mut c = Command::new("docker");
        if let Ok(host) = std::env::var("HEADJACK_TEST_DOCKER_HOST") {
            c.arg("-H").arg(host);
        }
        c.args(args).output().ok()
    }

    fn image_exists(reference: &str) -> bool {
        Self::docker(&["image", "inspect", reference]).is_some_and(|o| o.status.success())
    }

    /// Containers of this run still on the engine (removed here; the caller fails the test).
    fn leftovers(&self) -> Vec<String> {
        let filter = format!("label=io.headjack.test.run={}", self.run);
        let out = Self::docker(&["ps", "-aq", "--filter", &filter]).expect("running docker ps");
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        for id in &ids {
            let _ = Self::docker(&["rm", "-f", id]);
        }
        ids
    }
}

/// Removes an image when dropped (also when the test fails).
struct ImageGuard(Vec<String>);

impl Drop for ImageGuard {
    fn drop(&mut self) {
        for r in &self.0 {
            let _ = EngineEnv::docker(&["rmi", r]);
        }
    }
}

fn run_checked(what: &str, mut cmd: Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {what}: {e}"));
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{}", show(what, &out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("LeakSanitizer"),
        "{what}: LeakSanitizer reported leaks"
    );
    assert!(
        !stderr.contains("AddressSanitizer"),
        "{what}: AddressSanitizer reported an error"
    );
    out
}

/// The program's output shown, and its verdict: it succeeded, no sanitizer reported anything,
/// and it left no container behind.
fn passed(source: &str, out: &Output, left: &[String]) {
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{}", show(source, out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("Sanitizer"),
        "{source}: sanitizer report"
    );
    assert!(left.is_empty(), "{source} left containers behind: {left:?}");
}

/// The images a program built (it prints `cleanup-image: <ref>` for each), removed on drop.
fn built_images(out: &Output) -> ImageGuard {
    ImageGuard(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("cleanup-image: "))
            .map(str::to_string)
            .collect(),
    )
}

/// Version, status names, errors, every function with NULL arguments, frees, invalid UTF-8,
/// empty argv, fork detection. No engine needed.
#[test]
fn abi_program_passes_under_asan() {
    let exe = compile("tests/c/abi.c", "abi");
    let mut cmd = Command::new(&exe);
    cmd.env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0");
    let out = run_checked("tests/c/abi.c", cmd);
    assert!(String::from_utf8_lossy(&out.stdout).contains("abi: all checks passed"));
}

/// Build secrets from memory, a file and an environment variable reach the step and no
/// progress line; bad arguments and an unset variable are clear errors.
#[test]
fn secrets_program_passes_under_asan() {
    let exe = compile("tests/c/secrets.c", "secrets");
    let env = EngineEnv::new("ffi-secrets");
    let result = env.command(&exe).output();
    let left = env.leftovers();
    let out = result.expect("running tests/c/secrets.c");
    let _built = built_images(&out);
    passed("tests/c/secrets.c", &out, &left);
}

/// Spawn, exec (collected, pulled, callback), stdin, timeout, files, lifecycle, commit, attach,
/// remove, sweep, pull progress, and free removes the container.
#[test]
fn engine_program_passes_under_asan() {
    let exe = compile("tests/c/engine.c", "engine");
    let env = EngineEnv::new("ffi-c");
    let commit_ref = format!("localhost/headjack-test/ffi-commit:{}", env.run);
    let pulled = format!("{}/headjack-test/busybox:latest", EngineEnv::registry());
    let mut cleanup = vec![commit_ref.clone()];
    if !EngineEnv::image_exists(&pulled) {
        cleanup.push(pulled);
    }
    let _images = ImageGuard(cleanup);
    let mut cmd = env.command(&exe);
    cmd.env("HEADJACK_TEST_COMMIT_REF", &commit_ref);
    let result = cmd.output();
    let left = env.leftovers();
    let out = result.expect("running tests/c/engine.c");
    // Images the program built (printed as `cleanup-image: <ref>`).
    let _built = built_images(&out);
    passed("tests/c/engine.c", &out, &left);
}

/// Egress: a spawn with an allow-list, a denied request in the decision log, a live change, bad
/// policies refused; nothing left behind (containers, instance networks).
#[test]
fn egress_program_passes_under_asan() {
    let exe = compile("tests/c/egress.c", "egress");
    let env = EngineEnv::new("ffi-egress");
    let result = env.command(&exe).output();
    let left = env.leftovers();
    let out = result.expect("running tests/c/egress.c");
    passed("tests/c/egress.c", &out, &left);
}

/// A devcontainer.json base: hooks, the workspace folder, warnings (callback and instance),
/// a failing hook's error, privileged refused unless allowed.
#[test]
fn devcontainer_program_passes_under_asan() {
    let exe = compile("tests/c/devcontainer.c", "devcontainer");
    let env = EngineEnv::new("ffi-devc");
    let mut cmd = env.command(&exe);
    cmd.env(
        "HEADJACK_TEST_FIXTURES",
        root().join("tests/fixtures/devcontainer"),
    );
    let result = cmd.output();
    let left = env.leftovers();
    let out = result.expect("running tests/c/devcontainer.c");
    passed("tests/c/devcontainer.c", &out, &left);
}

/// The documented C example builds cleanly and runs.
#[test]
fn hello_example_builds_and_runs() {
    let exe = compile("examples/c/hello.c", "hello");
    let env = EngineEnv::new("ffi-hello");
    let mut cmd = env.command(&exe);
    cmd.arg(EngineEnv::busybox())
        .env("HEADJACK_EXAMPLE_LABEL", &env.run);
    let result = cmd.output();
    let left = env.leftovers();
    let out = result.expect("running examples/c/hello.c");
    passed("examples/c/hello.c", &out, &left);
    assert!(String::from_utf8_lossy(&out.stdout).contains("hello from headjack"));
}

/// The Go example (cgo, static link, streamed output through a `cgo.Handle`) builds with
/// Debian's golang-go and runs against the engine.
#[test]
fn go_example_builds_and_runs() {
    static_lib();
    let lib = root().join("target/debug/libheadjack.a");
    assert!(
        lib.exists(),
        "{} is missing: the Go example links the debug static library; run `cargo build -p headjack-ffi`",
        lib.display()
    );
    let env = EngineEnv::new("ffi-go");
    let script = root().join("tests/c/run-go.sh");
    let mut cmd = Command::new("timeout");
    cmd.arg("900").arg("sh").arg(&script);
    cmd.env("HEADJACK_TEST_BUSYBOX", EngineEnv::busybox())
        .env("HEADJACK_TEST_RUN", &env.run)
        .env("HEADJACK_GO_OUT", out_dir().join("go-example"))
        .env("GOCACHE", profile_dir().join("go-cache"));
    let result = cmd.output();
    let left = env.leftovers();
    let out = result.expect("running tests/c/run-go.sh");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{}", show("tests/c/run-go.sh", &out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("go example: ok"));
    assert!(
        left.is_empty(),
        "the Go example left containers behind: {left:?}"
    );
}

/// A background process outlives the program that started it (killed with SIGKILL, nothing
/// freed) and is reattached by a second program: listed, its output replayed and followed, its
/// exit code collected; kill, wait, forget and their errors.
#[test]
fn processes_program_reattaches_after_a_crash() {
    let exe = compile("tests/c/processes.c", "processes");
    let env = EngineEnv::new("ffi-procs");
    let mut first = env.command(&exe);
    // The crashing program exits by SIGKILL: no leak check there.
    first
        .arg("start")
        .env("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0");
    let started = first.output().expect("running tests/c/processes.c start");
    let stdout = String::from_utf8_lossy(&started.stdout).into_owned();
    let field = |name: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::to_string)
    };
    let (instance, process) = (field("instance: "), field("process: "));
    let result = match (&instance, &process) {
        (Some(i), Some(p)) => {
            use std::os::unix::process::ExitStatusExt;
            // `timeout` passes on its child's death by signal as 128 + 9.
            assert!(
                started.status.code() == Some(137) || started.status.signal() == Some(9),
                "{}",
                show("processes start", &started)
            );
            Some(env.command(&exe).args(["reattach", i, p]).output())
        }
        _ => None,
    };
    let left = env.leftovers();
    let out = result
        .unwrap_or_else(|| panic!("{}", show("processes start", &started)))
        .expect("running tests/c/processes.c reattach");
    passed("tests/c/processes.c reattach", &out, &left);
    assert!(String::from_utf8_lossy(&out.stdout).contains("processes: all checks passed"));
}

/// Sandbox features (issue 13): a published port reached over TCP, stats, fork, limits, a named
/// volume across instances, the memory limit and exit reasons, checkpoints, clear errors.
#[test]
fn sandbox_program_passes_under_asan() {
    let exe = compile("tests/c/sandbox.c", "sandbox");
    let env = EngineEnv::new("ffi-sandbox");
    let result = env.command(&exe).output();
    let mut left = env.leftovers();
    // The program's volume (named after the run) must be gone too.
    let out = EngineEnv::docker(&[
        "volume",
        "ls",
        "-q",
        "--filter",
        &format!("name={}", env.run),
    ])
    .expect("running docker volume ls");
    for v in String::from_utf8_lossy(&out.stdout).lines() {
        let _ = EngineEnv::docker(&["volume", "rm", "-f", v]);
        left.push(format!("volume {v}"));
    }
    let out = result.expect("running tests/c/sandbox.c");
    passed("tests/c/sandbox.c", &out, &left);
}
