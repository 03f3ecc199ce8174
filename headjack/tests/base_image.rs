//! The default base image (`images/base/Dockerfile`), built for real on the imported
//! `debian:bookworm-slim`, with every promised tool checked inside as the `agent` user.

mod common;

use headjack::Spec;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_base_builds_and_ships_its_tools() {
    let c = common::client().await;
    // SAFETY: the only test in this binary; HEADJACK_BASE must not redirect the default.
    unsafe { std::env::remove_var("HEADJACK_BASE") };
    let env = c
        .spawn(Spec::new().label("io.headjack.test", "1"))
        .await
        .unwrap();
    assert!(
        env.image().starts_with("localhost/headjack/default-base:"),
        "{}",
        env.image()
    );
    let checks = [
        "id -un",
        "bash --version",
        "git --version",
        "curl --version",
        "ssh -V",
        "python3 --version",
        "pip3 --version",
        "python3 -m venv /tmp/venv",
        "gcc --version",
        "make --version",
        "jq --version",
        "rg --version",
        "fd --version",
        "less --version",
        "ps --version",
        "unzip -v",
        "zip -v",
        "xz --version",
        "node --version",
        "npm --version",
        "tini --version",
        "test -w /workspace",
    ];
    for check in checks {
        let out = env.exec(["bash", "-lc", check]).await.unwrap();
        assert_eq!(
            out.exit_code,
            0,
            "`{check}` failed: {}{}",
            out.stdout_text(),
            out.stderr_text()
        );
    }
    assert_eq!(
        env.exec(["id", "-un"]).await.unwrap().stdout_text().trim(),
        "agent"
    );
    assert_eq!(
        env.exec(["id", "-u"]).await.unwrap().stdout_text().trim(),
        "1000"
    );
    assert_eq!(
        env.exec(["pwd"]).await.unwrap().stdout_text().trim(),
        "/workspace"
    );
    let locale = env
        .exec(["sh", "-c", "echo $LANG"])
        .await
        .unwrap()
        .stdout_text();
    assert!(locale.contains("UTF-8"), "{locale}");
    // A second resolve is a cache hit.
    let again = c.resolve(&Spec::new()).await.unwrap();
    assert!(!again.built);
    assert_eq!(again.reference, env.image());
}
