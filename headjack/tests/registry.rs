//! Registry images against the local registries of `tests/env/up.sh`: pull policies,
//! credentials from the Docker client configuration, progress.
//!
//! One test function: `DOCKER_CONFIG` is process-wide, so the credential cases run in order.

mod common;

use std::sync::{Arc, Mutex};

use common::client;
use headjack::spec::PullPolicy;
use headjack::{ErrorKind, Progress, Spec};

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_string())
}

fn remove_local(image: &str) {
    common::docker(&["rmi", image]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_policies_credentials_and_progress() {
    let c = client().await;
    let open = format!(
        "{}/headjack-test/busybox:latest",
        env_or("HEADJACK_TEST_REGISTRY", "127.0.0.1:5000")
    );
    let auth = format!(
        "{}/headjack-test/busybox:latest",
        env_or("HEADJACK_TEST_AUTH_REGISTRY", "127.0.0.1:5001")
    );
    let user = env_or("HEADJACK_TEST_REGISTRY_USER", "headjack");
    let password = env_or("HEADJACK_TEST_REGISTRY_PASSWORD", "secret");
    let config = tempfile::tempdir().unwrap();
    // SAFETY: this test binary has this single test; nothing else reads the environment now.
    unsafe { std::env::set_var("DOCKER_CONFIG", config.path()) };

    // Missing locally + policy never → ImageNotFound, and nothing pulled.
    remove_local(&open);
    let e = c
        .spawn(Spec::new().base(&open).pull(PullPolicy::Never))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ImageNotFound, "{e}");
    assert!(e.message().contains("never"), "{e}");

    // Missing locally + policy missing → pulled, with progress.
    let events = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let sink = events.clone();
    let env = c
        .spawn(
            Spec::new()
                .base(&open)
                .label("io.headjack.test", "1")
                .progress(move |p| sink.lock().unwrap().push(p.clone())),
        )
        .await
        .unwrap();
    assert_eq!(
        env.exec(["echo", "pulled"]).await.unwrap().stdout,
        b"pulled\n"
    );
    drop(env);
    let pulls = events
        .lock()
        .unwrap()
        .iter()
        .filter(|p| matches!(p, Progress::Pull { .. }))
        .count();
    assert!(pulls > 0, "no pull progress was reported");

    // Present + policy always → pulled again (progress seen again).
    events.lock().unwrap().clear();
    let sink = events.clone();
    c.resolve(
        &Spec::new()
            .base(&open)
            .pull(PullPolicy::Always)
            .progress(move |p| sink.lock().unwrap().push(p.clone())),
    )
    .await
    .unwrap();
    assert!(!events.lock().unwrap().is_empty());

    // A tag that does not exist.
    let missing = open.replace(":latest", ":no-such-tag");
    let e = c.resolve(&Spec::new().base(&missing)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ImageNotFound, "{e}");

    // The authenticated registry: no credentials, wrong password, then right ones.
    remove_local(&auth);
    let e = c.resolve(&Spec::new().base(&auth)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PullFailed, "{e}");
    assert!(e.message().contains("credentials"), "{e}");

    let write_config = |pw: &str| {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
        let registry = auth.split('/').next().unwrap();
        std::fs::write(
            config.path().join("config.json"),
            format!(r#"{{"auths": {{"{registry}": {{"auth": "{token}"}}}}}}"#),
        )
        .unwrap();
    };
    write_config("wrong-password");
    let e = c.resolve(&Spec::new().base(&auth)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PullFailed, "{e}");
    assert!(e.message().contains(&auth), "{e}");

    write_config(&password);
    let resolved = c.resolve(&Spec::new().base(&auth)).await.unwrap();
    assert_eq!(resolved.reference, auth);
    remove_local(&auth);

    // A credential helper (`credHelpers`), as `docker login` with a helper configures it.
    let bin = tempfile::tempdir().unwrap();
    let helper = bin.path().join("docker-credential-headjacktest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\n[ \"$1\" = get ] || exit 1\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{password}\"}}' \"$server\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let registry = auth.split('/').next().unwrap();
    std::fs::write(
        config.path().join("config.json"),
        format!(r#"{{"credHelpers": {{"{registry}": "headjacktest"}}}}"#),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // SAFETY: as above, single test in this binary.
    unsafe { std::env::set_var("PATH", path) };
    let resolved = c.resolve(&Spec::new().base(&auth)).await.unwrap();
    assert_eq!(resolved.reference, auth);
    remove_local(&auth);
    remove_local(&open);
}
