//! Shared helpers for the integration tests: which engine, which fixture images.
//!
//! The engine comes from `HEADJACK_TEST_HOST` (the suite runs once against Docker and once
//! against Podman); fixtures are made by `tests/env/up.sh`. A missing engine fails the tests:
//! it never skips them.
#![allow(dead_code)]

use headjack::{Client, Spec};

/// The busybox fixture image (scratch + static busybox).
pub fn busybox() -> String {
    std::env::var("HEADJACK_TEST_BUSYBOX")
        .unwrap_or_else(|_| "localhost/headjack-test/busybox:latest".into())
}

/// The engine under test.
pub fn host() -> String {
    std::env::var("HEADJACK_TEST_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

/// Whether the engine under test is Podman.
pub fn is_podman() -> bool {
    host().contains("podman")
}

pub async fn client() -> Client {
    match Client::connect_to(&host()).await {
        Ok(c) => c,
        Err(e) => panic!(
            "the test engine at {} is not reachable ({e}); run tests/env/up.sh",
            host()
        ),
    }
}

/// Whether the suite runs on the engine's exec path (`HEADJACK_TEST_ENGINE_EXEC=1`) instead
/// of the in-container agent: tests/run.sh runs the exec tests both ways.
pub fn engine_exec() -> bool {
    std::env::var("HEADJACK_TEST_ENGINE_EXEC").is_ok_and(|v| v == "1")
}

/// A spec on the busybox fixture, labelled as a test object (on the path the run asks for).
pub fn spec() -> Spec {
    Spec::new()
        .base(busybox())
        .label("io.headjack.test", "1")
        .engine_exec(engine_exec())
}

/// Runs the `docker` CLI against the engine under test; returns stdout.
pub fn docker(args: &[&str]) -> String {
    let out = std::process::Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", host())
        .output()
        .expect("the docker CLI runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether a container with this ID or name exists on the engine under test.
pub fn container_exists(id: &str) -> bool {
    let out = std::process::Command::new("docker")
        .args(["inspect", "--type", "container", id])
        .env("DOCKER_HOST", host())
        .output()
        .expect("the docker CLI runs");
    out.status.success()
}

/// The path of example program `name` (a test helper; `cargo test` builds the examples).
pub fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test` (it builds examples)",
        bin.display()
    );
    bin
}
