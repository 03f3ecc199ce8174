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
