//! Every `Spec` option, checked from inside the container; and bad input to `spawn`.

mod common;

use std::time::Duration;

use common::{client, spec};
use headjack::spec::Readiness;
use headjack::{ErrorKind, Mount, Network};

/// Reads the first cgroup file that exists (v1 or v2 layout).
async fn cgroup_value(env: &headjack::Instance, candidates: &[&str]) -> String {
    let script = candidates
        .iter()
        .map(|p| format!("[ -f {p} ] && {{ cat {p}; exit 0; }};"))
        .collect::<String>()
        + " echo missing; exit 1";
    let out = env.exec(["sh", "-c", &script]).await.unwrap();
    assert_eq!(out.exit_code, 0, "no cgroup file among {candidates:?}");
    out.stdout_text().trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_env_user_labels_and_workspace_take_effect() {
    let c = client().await;
    let ws = tempfile::tempdir().unwrap();
    std::fs::write(ws.path().join("hello.txt"), b"from the host").unwrap();
    let env = c
        .spawn(
            spec()
                .workspace(ws.path())
                .env("TOKEN", "s3cret value")
                .user("1000:1000")
                .label("team", "blue")
                .memory(256 << 20)
                .cpus(0.5)
                .pids(77)
                .expires_after(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let out = env
        .exec(["sh", "-c", "echo $TOKEN; pwd; id -u; id -g; cat hello.txt"])
        .await
        .unwrap();
    assert_eq!(
        out.stdout_text(),
        "s3cret value\n/workspace\n1000\n1000\nfrom the host"
    );

    let mem = cgroup_value(
        &env,
        &[
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory.max",
        ],
    )
    .await;
    assert_eq!(mem, (256u64 << 20).to_string());
    let pids = cgroup_value(
        &env,
        &["/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max"],
    )
    .await;
    assert_eq!(pids, "77");
    let cpu = cgroup_value(
        &env,
        &[
            "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
            "/sys/fs/cgroup/cpu.max",
        ],
    )
    .await;
    // v1: quota 50000 of period 100000; v2: "50000 100000".
    assert!(cpu.starts_with("50000"), "cpu quota {cpu}");

    // Security defaults: no new privileges, not privileged.
    let status = env
        .exec(["cat", "/proc/self/status"])
        .await
        .unwrap()
        .stdout_text();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("NoNewPrivs:") && l.ends_with('1')),
        "{status}"
    );

    // Files written from the host side land in the workspace, owned by the container user.
    env.write_file("/workspace/from-agent.txt", b"x")
        .await
        .unwrap();
    assert!(ws.path().join("from-agent.txt").exists());
    let owner = env
        .exec(["stat", "-c", "%u", "/workspace/from-agent.txt"])
        .await
        .unwrap()
        .stdout_text();
    assert_eq!(owner.trim(), "1000");

    let info = env.inspect().await.unwrap();
    assert_eq!(info.labels.get("team").map(String::as_str), Some("blue"));
    assert!(info.expires.is_some());
    assert_eq!(
        info.labels.get("io.headjack.managed").map(String::as_str),
        Some("true")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mounts_read_only_workspace_tmpfs_and_volume() {
    let c = client().await;
    let ws = tempfile::tempdir().unwrap();
    let extra = tempfile::tempdir().unwrap();
    std::fs::write(extra.path().join("data"), b"ro data").unwrap();
    let volume = format!("headjack-test-vol-{}", std::process::id());
    let env = c
        .spawn(
            spec()
                .workspace(ws.path())
                .workspace_read_only(true)
                .mount(Mount::bind(extra.path(), "/data").read_only())
                .mount(Mount::tmpfs("/scratch", Some(8 << 20)))
                .mount(Mount::volume(&volume, "/vol")),
        )
        .await
        .unwrap();
    assert_ne!(
        env.exec(["touch", "/workspace/x"]).await.unwrap().exit_code,
        0
    );
    assert_ne!(env.exec(["touch", "/data/x"]).await.unwrap().exit_code, 0);
    assert_eq!(
        env.exec(["cat", "/data/data"]).await.unwrap().stdout,
        b"ro data"
    );
    assert_eq!(
        env.exec(["touch", "/scratch/x"]).await.unwrap().exit_code,
        0
    );
    assert_eq!(env.exec(["touch", "/vol/x"]).await.unwrap().exit_code, 0);
    let mounts = env
        .exec(["cat", "/proc/mounts"])
        .await
        .unwrap()
        .stdout_text();
    assert!(
        mounts
            .lines()
            .any(|l| l.contains(" /scratch ") && l.starts_with("tmpfs")),
        "{mounts}"
    );
    env.remove().await.unwrap();
    common::docker(&["volume", "rm", "-f", &volume]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_none_has_only_loopback() {
    let c = client().await;
    let env = c.spawn(spec().network(Network::None)).await.unwrap();
    let links = env.exec(["ip", "-o", "link"]).await.unwrap().stdout_text();
    let names: Vec<&str> = links
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(str::trim)
        .collect();
    assert_eq!(names, ["lo"], "{links}");

    let bridged = c.spawn(spec()).await.unwrap();
    let links = bridged
        .exec(["ip", "-o", "link"])
        .await
        .unwrap()
        .stdout_text();
    assert!(
        links.lines().count() >= 2,
        "bridge network has no interface besides lo: {links}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardened_drops_capabilities_and_makes_root_read_only() {
    let c = client().await;
    let env = c.spawn(spec().hardened(true)).await.unwrap();
    let status = env
        .exec(["cat", "/proc/self/status"])
        .await
        .unwrap()
        .stdout_text();
    let cap_eff = status.lines().find(|l| l.starts_with("CapEff:")).unwrap();
    assert!(cap_eff.ends_with("0000000000000000"), "{cap_eff}");
    assert_ne!(
        env.exec(["touch", "/root-is-read-only"])
            .await
            .unwrap()
            .exit_code,
        0
    );
    assert_eq!(env.exec(["touch", "/tmp/ok"]).await.unwrap().exit_code, 0);
    let links = env.exec(["ip", "-o", "link"]).await.unwrap().stdout_text();
    assert_eq!(links.lines().count(), 1, "{links}");
    // Files can still be written to the tmpfs /tmp, and timeouts still kill.
    env.write_file("/tmp/in.txt", b"in").await.unwrap();
    let out = env
        .exec(headjack::Exec::new(["sleep", "4714"]).timeout(Duration::from_millis(300)))
        .await
        .unwrap();
    assert!(out.timed_out);
    let ps = env.exec(["ps", "-o", "args"]).await.unwrap().stdout_text();
    assert!(!ps.contains("sleep 4714"), "{ps}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_honoured_and_duplicates_conflict() {
    let c = client().await;
    let name = format!("headjack-test-named-{}", std::process::id());
    let env = c.spawn(spec().name(&name)).await.unwrap();
    assert_eq!(env.name(), name);
    let e = c.spawn(spec().name(&name)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_and_times_out_with_cleanup() {
    let c = client().await;
    let env = c
        .spawn(
            spec()
                .init([
                    "sh",
                    "-c",
                    "sleep 0.5; touch /tmp/ready; exec sleep 1000000",
                ])
                .readiness(Readiness::command(
                    ["test", "-f", "/tmp/ready"],
                    Duration::from_secs(30),
                )),
        )
        .await
        .unwrap();
    assert_eq!(
        env.exec(["test", "-f", "/tmp/ready"])
            .await
            .unwrap()
            .exit_code,
        0
    );

    let marker = format!("readiness-{}", std::process::id());
    let e = c
        .spawn(
            spec()
                .label("case", &marker)
                .readiness(Readiness::command(["false"], Duration::from_millis(500))),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.message().contains("false"), "{e}");
    let leaked: Vec<String> = c
        .list()
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.labels.get("case") == Some(&marker))
        .map(|i| i.container_id)
        .collect();
    assert!(
        leaked.is_empty(),
        "a failed readiness left containers behind: {leaked:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_init_that_exits_is_a_clear_error() {
    let c = client().await;
    // The keep-alive may end before or after spawn looks: either spawn says so, or the first
    // exec says the container is not running. Never a hang, never a success.
    match c.spawn(spec().init(["sh", "-c", "echo bye; exit 0"])).await {
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
            assert!(e.message().contains("keep-alive"), "{e}");
        }
        Ok(env) => {
            let mut err = None;
            for _ in 0..50 {
                match env.exec(["true"]).await {
                    Err(e) => {
                        err = Some(e);
                        break;
                    }
                    Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
            let e = err.expect("exec kept working in a container whose keep-alive exited");
            assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
            assert!(e.message().contains("not running"), "{e}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_to_spawn_is_a_clear_error() {
    let c = client().await;
    let cases: Vec<(headjack::Spec, ErrorKind, &str)> = vec![
        (
            headjack::Spec::new().base("Not/Valid:Ref"),
            ErrorKind::InvalidBase,
            "Not/Valid",
        ),
        (
            headjack::Spec::new().base("./no/such/Dockerfile"),
            ErrorKind::InvalidBase,
            "does not exist",
        ),
        (
            spec().workspace("/no/such/dir/anywhere"),
            ErrorKind::InvalidArgument,
            "/no/such/dir",
        ),
        (
            spec().mount(Mount::bind("/no/such/src", "/x")),
            ErrorKind::InvalidArgument,
            "/no/such/src",
        ),
        (spec().cpus(0.0), ErrorKind::InvalidArgument, "cpus"),
        (
            spec().label("io.headjack.owner", "me"),
            ErrorKind::InvalidArgument,
            "reserved",
        ),
        (
            headjack::Spec::new()
                .base("localhost/headjack-test/never-built:nope")
                .pull(headjack::spec::PullPolicy::Never),
            ErrorKind::ImageNotFound,
            "never-built",
        ),
        (
            spec().network(Network::Named("no-such-network-xyz".into())),
            ErrorKind::NotFound,
            "no-such-network-xyz",
        ),
    ];
    for (s, kind, needle) in cases {
        let e = c.spawn(s).await.unwrap_err();
        assert_eq!(e.kind(), kind, "{e}");
        assert!(e.message().contains(needle), "{needle:?} not in: {e}");
    }
}

#[tokio::test]
async fn unreachable_engine_names_every_place_tried() {
    let e = headjack::Client::connect_to("unix:///nonexistent/headjack.sock")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::EngineUnavailable);
    assert!(e.message().contains("/nonexistent/headjack.sock"), "{e}");
    let e = headjack::Client::connect_to("tcp://127.0.0.1:1")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::EngineUnavailable);
    assert!(e.message().contains("127.0.0.1:1"), "{e}");
    let e = headjack::Client::connect_to("ftp://x").await.unwrap_err();
    assert!(e.message().contains("unsupported scheme"), "{e}");
}

#[tokio::test]
async fn info_reports_engine_and_negotiated_api() {
    let c = client().await;
    let info = c.info();
    assert!(!info.version.is_empty());
    assert_eq!(info.host, common::host());
    let (major, minor) = info.api_version.split_once('.').unwrap();
    assert_eq!(major, "1");
    assert!(minor.parse::<u32>().unwrap() >= 40, "{}", info.api_version);
    assert_eq!(
        info.kind == headjack::client::EngineKind::Podman,
        common::is_podman()
    );
}
