//! The `runtime` option with gVisor (`runsc`), on the second dockerd of `tests/env/up.sh`.

mod common;

use headjack::{Client, Instance, Network, Spec};

/// The gVisor engine's address, and a busybox sandbox spawned on it with runsc.
async fn gvisor_sandbox() -> (String, Instance) {
    let host = std::env::var("HEADJACK_TEST_GVISOR_HOST")
        .unwrap_or_else(|_| "unix:///run/headjack-gvisor/docker.sock".into());
    let c = Client::connect_to(&host).await.unwrap_or_else(|e| {
        panic!("the gVisor engine at {host} is not reachable ({e}); run tests/env/up.sh")
    });
    let env = c
        .spawn(
            Spec::new()
                .base(common::busybox())
                .runtime("runsc")
                .network(Network::None)
                .label("io.headjack.test", "1"),
        )
        .await
        .unwrap();
    (host, env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runsc_runtime_runs_under_gvisor() {
    let (host, env) = gvisor_sandbox().await;
    // The in-container agent runs under gVisor too.
    assert!(env.has_agent(), "the agent did not come up under gVisor");
    // gVisor's kernel introduces itself in dmesg; a runc container has no such lines.
    let out = env.exec(["dmesg"]).await.unwrap();
    assert!(
        out.stdout_text().contains("gVisor"),
        "not running under gVisor: {}",
        out.stdout_text()
    );
    let out = env
        .exec(headjack::Exec::new(["sleep", "4715"]).timeout(std::time::Duration::from_millis(300)))
        .await
        .unwrap();
    assert!(out.timed_out);
    let id = env.container_id().to_string();
    drop(env);
    let gone = std::process::Command::new("docker")
        .args(["inspect", &id])
        .env("DOCKER_HOST", &host)
        .output()
        .unwrap();
    assert!(
        !gone.status.success(),
        "the gVisor container outlived its handle"
    );
}

/// Checkpointing a gVisor sandbox under Docker is refused before it is touched: runsc, asked to
/// leave the sandbox running, stops it (it panics on 20221219), and Docker before 26 cannot
/// restore the checkpoint anyway. The instance keeps running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_of_a_gvisor_sandbox_is_refused_without_harm() {
    let (_, env) = gvisor_sandbox().await;
    env.write_file("/tmp/kept", b"yes").await.unwrap();
    let e = env.checkpoint("c1").await.unwrap_err();
    assert_eq!(e.kind(), headjack::ErrorKind::Unsupported, "{e}");
    assert!(e.message().contains("gVisor (runsc)"), "{e}");
    assert!(e.message().contains("moby/moby#42900"), "{e}");
    assert_eq!(env.status().await.unwrap(), headjack::Status::Running);
    assert_eq!(env.read_file("/tmp/kept").await.unwrap(), b"yes");
    env.remove().await.unwrap();
}
