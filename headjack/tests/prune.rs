//! Image housekeeping: `images()` and `prune_images()`.
//!
//! Pruning is engine-wide, so this runs on the second engine of `tests/env/up.sh` (the gVisor
//! dockerd, whose only images are test fixtures): on the main engine it would remove the
//! developer's cached builds and images that tests running beside it are using.

mod common;

use common::busybox;
use headjack::{Client, Spec};

fn host() -> String {
    std::env::var("HEADJACK_TEST_GVISOR_HOST")
        .unwrap_or_else(|_| "unix:///run/headjack-gvisor/docker.sock".into())
}

fn docker(args: &[&str]) -> String {
    let out = std::process::Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", host())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_removes_the_least_recently_used_and_never_foreign_images() {
    let c = Client::connect_to(&host()).await.unwrap_or_else(|e| {
        panic!(
            "the second engine at {} is not reachable ({e}); run tests/env/up.sh",
            host()
        )
    });
    // Start from no headjack-built images on this engine.
    for img in c.images().await.unwrap() {
        c.remove_image(&img.id, true).await.unwrap();
    }
    let mut refs = Vec::new();
    for i in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Dockerfile"),
            format!(
                "FROM {}\nRUN echo prune-{i}-{} > /p\n",
                busybox(),
                std::process::id()
            ),
        )
        .unwrap();
        refs.push(
            c.resolve(&Spec::new().base(dir.path().join("Dockerfile").display().to_string()))
                .await
                .unwrap(),
        );
        // Last-use times have a one-second resolution.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    let before = c.images().await.unwrap();
    let position = |r: &str| {
        before
            .iter()
            .position(|i| i.reference == r)
            .expect("listed")
    };
    assert!(position(&refs[2].reference) < position(&refs[1].reference));
    assert!(position(&refs[1].reference) < position(&refs[0].reference));
    assert!(
        before
            .iter()
            .all(|i| i.reference.starts_with("localhost/headjack/")
                || i.reference.starts_with("sha256:")),
        "images() listed something headjack did not build: {before:?}"
    );

    assert_eq!(before.len(), 3, "{before:?}");

    let removed = c.prune_images(2).await.unwrap();
    assert_eq!(removed, vec![refs[0].reference.clone()]);
    let after = c.images().await.unwrap();
    let left: Vec<&str> = after.iter().map(|i| i.reference.as_str()).collect();
    assert_eq!(
        left,
        [refs[2].reference.as_str(), refs[1].reference.as_str()]
    );
    // The fixture, which headjack did not build, is untouched.
    assert!(!docker(&["images", "-q", &busybox()]).trim().is_empty());
    assert_eq!(c.prune_images(0).await.unwrap().len(), 2);
    assert!(c.images().await.unwrap().is_empty());
    assert!(!docker(&["images", "-q", &busybox()]).trim().is_empty());
}
