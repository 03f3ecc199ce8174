//! Dockerfile bases against a real engine: built once per content, cache hits without any
//! build request, failures that name their step, single flight.

mod common;

use std::path::Path;

use common::{busybox, client};
use headjack::{Base, ErrorKind, Spec};

fn write(dir: &Path, name: &str, content: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// A fresh context whose Dockerfile builds on the busybox fixture.
fn context(extra_run: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let nonce = format!("{}-{}", std::process::id(), rand_suffix());
    write(
        dir.path(),
        "Dockerfile",
        &format!(
            "FROM {}\nARG GREETING=hello\nCOPY app/ /app/\nRUN echo \"$GREETING {nonce}\" > /greeting {extra_run}\n",
            busybox()
        ),
    );
    write(dir.path(), "app/main.txt", "main");
    write(dir.path(), "app/ignored.log", "noise");
    write(dir.path(), ".dockerignore", "app/*.log\n");
    dir
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

fn events_since(since: &str) -> String {
    // A build (even one served entirely by the layer cache) ends by tagging its image; a
    // cache hit must not. Other tests run at the same time, so only image events are read.
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    common::docker(&[
        "events",
        "--since",
        since,
        "--until",
        &until,
        "--filter",
        "type=image",
        "--format",
        "{{.Action}} {{.Actor.ID}} {{.Actor.Attributes.name}}",
    ])
}

fn now() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dockerfile_is_built_once_then_served_from_its_key() {
    let c = client().await;
    let ctx = context("");
    let df = ctx.path().join("Dockerfile");
    let spec = || {
        Spec::new()
            .base(df.display().to_string())
            .label("io.headjack.test", "1")
    };

    let first = c.resolve(&spec()).await.unwrap();
    assert!(first.built);
    assert!(
        first.reference.starts_with("localhost/headjack/"),
        "{}",
        first.reference
    );

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let since = now();
    let second = c.resolve(&spec()).await.unwrap();
    assert!(!second.built);
    assert_eq!(second.reference, first.reference);
    assert_eq!(second.id, first.id);
    let events = events_since(&since);
    let short = first.reference.rsplit(':').next().unwrap();
    assert!(
        !events
            .lines()
            .any(|l| l.contains(short) || l.contains(&first.id)),
        "a cache hit built or tagged the image again: {events}"
    );

    // An ignored file changes nothing; a real file changes the key.
    write(ctx.path(), "app/ignored.log", "other noise");
    assert_eq!(c.resolve(&spec()).await.unwrap().reference, first.reference);
    write(ctx.path(), "app/main.txt", "main!");
    let third = c.resolve(&spec()).await.unwrap();
    assert!(third.built);
    assert_ne!(third.reference, first.reference);

    // The image runs, with the context copied and the build arg default applied.
    let env = c.spawn(spec()).await.unwrap();
    assert_eq!(
        env.exec(["cat", "/app/main.txt"]).await.unwrap().stdout,
        b"main!"
    );
    assert!(
        env.exec(["cat", "/greeting"])
            .await
            .unwrap()
            .stdout_text()
            .starts_with("hello ")
    );
    assert!(
        env.exec(["test", "-e", "/app/ignored.log"])
            .await
            .unwrap()
            .exit_code
            != 0
    );
    drop(env);

    // Listed by images(), with key and source.
    let images = c.images().await.unwrap();
    let mine = images
        .iter()
        .find(|i| i.reference == third.reference)
        .expect("listed");
    assert_eq!(mine.source, df.display().to_string());
    assert!(third.reference.ends_with(&mine.key[..16]));
    for r in [&first.reference, &third.reference] {
        common::docker(&["rmi", r]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_args_and_target_are_honoured() {
    let c = client().await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "ci/dev.Containerfile",
        &format!(
            "FROM {b} AS first\nARG WHO\nRUN echo \"first $WHO\" > /stage\nFROM {b} AS second\nRUN echo second > /stage\n",
            b = busybox()
        ),
    );
    let df = Base::dockerfile(dir.path().join("ci/dev.Containerfile"))
        .build_arg("WHO", "me")
        .target("first");
    let env = c
        .spawn(Spec::new().base(df).label("io.headjack.test", "1"))
        .await
        .unwrap();
    assert_eq!(
        env.exec(["cat", "/stage"]).await.unwrap().stdout,
        b"first me\n"
    );
    let image = env.image().to_string();
    drop(env);
    // Another arg value is another key.
    let df2 = Base::dockerfile(dir.path().join("ci/dev.Containerfile"))
        .build_arg("WHO", "you")
        .target("first");
    let other = c.resolve(&Spec::new().base(df2)).await.unwrap();
    assert_ne!(other.reference, image);
    common::docker(&["rmi", &image, &other.reference]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_is_a_build_error_naming_it() {
    let c = client().await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "Dockerfile",
        &format!(
            "FROM {}\nRUN echo about-to-fail-{} && exit 7\n",
            busybox(),
            rand_suffix()
        ),
    );
    let e = c
        .spawn(Spec::new().base(dir.path().join("Dockerfile").display().to_string()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BuildFailed, "{e}");
    let step = e.build_step().expect("the failing step is named");
    assert!(step.contains("exit 7"), "{step}");
    assert!(
        e.build_log().iter().any(|l| l.contains("about-to-fail")),
        "{:?}",
        e.build_log()
    );

    // A Dockerfile naming a base that exists nowhere.
    write(
        dir.path(),
        "Dockerfile",
        "FROM localhost/headjack-test/does-not-exist:1\n",
    );
    let e = c
        .resolve(&Spec::new().base(dir.path().join("Dockerfile").display().to_string()))
        .await
        .unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::ImageNotFound | ErrorKind::PullFailed),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_spawns_of_one_dockerfile_build_once() {
    let c = client().await;
    let ctx = context("&& sleep 1");
    let base = ctx.path().join("Dockerfile").display().to_string();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let c = c.clone();
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            c.resolve(&Spec::new().base(base)).await.unwrap()
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    assert_eq!(results.iter().filter(|r| r.built).count(), 1, "{results:?}");
    assert!(results.iter().all(|r| r.reference == results[0].reference));
    let envs: Vec<_> = futures_util::future::join_all((0..4).map(|_| {
        c.spawn(
            Spec::new()
                .base(base.clone())
                .label("io.headjack.test", "1"),
        )
    }))
    .await;
    for env in &envs {
        assert_eq!(env.as_ref().unwrap().image(), results[0].reference);
    }
    drop(envs);
    common::docker(&["rmi", &results[0].reference]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_images_are_part_of_the_key() {
    let c = client().await;
    // A parent rebuilt locally under the same tag makes a new key.
    let parent = format!(
        "localhost/headjack-test/parent:{}-{}",
        std::process::id(),
        rand_suffix()
    );
    common::docker(&["tag", &busybox(), &parent]);
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "Dockerfile",
        &format!("FROM {parent}\nRUN echo child > /child\n"),
    );
    let base = dir.path().join("Dockerfile").display().to_string();
    let first = c.resolve(&Spec::new().base(base.as_str())).await.unwrap();
    let pdir = tempfile::tempdir().unwrap();
    write(
        pdir.path(),
        "Dockerfile",
        &format!("FROM {}\nRUN echo rebuilt > /parent\n", busybox()),
    );
    let out = std::process::Command::new("docker")
        .args(["build", "-q", "-t", &parent, pdir.path().to_str().unwrap()])
        .env("DOCKER_HOST", common::host())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = c.resolve(&Spec::new().base(base.as_str())).await.unwrap();
    assert!(second.built);
    assert_ne!(second.reference, first.reference);
    common::docker(&["rmi", &first.reference, &second.reference, &parent]);

    // A parent that has to be pulled first: the pull does not change the key, so the next
    // resolve is a hit.
    let remote = format!(
        "{}/headjack-test/busybox:latest",
        std::env::var("HEADJACK_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into())
    );
    common::docker(&["rmi", &remote]);
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "Dockerfile",
        &format!("FROM {remote}\nRUN echo {} > /x\n", rand_suffix()),
    );
    let base = dir.path().join("Dockerfile").display().to_string();
    let pulled = c.resolve(&Spec::new().base(base.as_str())).await.unwrap();
    assert!(pulled.built);
    let again = c.resolve(&Spec::new().base(base.as_str())).await.unwrap();
    assert!(!again.built, "the first build after a pull changed the key");
    assert_eq!(again.reference, pulled.reference);
    common::docker(&["rmi", &pulled.reference]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_processes_build_once() {
    let ctx = context("&& sleep 2");
    let df = ctx.path().join("Dockerfile");
    let exe = std::env::current_exe().unwrap();
    let child = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/resolve_child");
    assert!(
        child.exists(),
        "{} is missing: run the tests with `cargo test` (it builds examples)",
        child.display()
    );
    let procs: Vec<_> = (0..3)
        .map(|_| {
            std::process::Command::new(&child)
                .arg(&df)
                .env("HEADJACK_TEST_HOST", common::host())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<String> = procs
        .into_iter()
        .map(|p| {
            let out = p.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
        .collect();
    let built = outputs.iter().filter(|o| o.starts_with("built ")).count();
    assert_eq!(built, 1, "{outputs:?}");
    let refs: Vec<&str> = outputs
        .iter()
        .map(|o| o.split(' ').nth(1).unwrap())
        .collect();
    assert!(refs.iter().all(|r| *r == refs[0]), "{outputs:?}");
    common::docker(&["rmi", refs[0]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dockerfiles_building_identical_layers_are_listed_and_pruned_apart() {
    let c = client().await;
    // Same instructions, different contexts (an unused file differs): two keys, two tags, and
    // the engine's layer cache makes them one image ID.
    let nonce = format!("{}-{}", std::process::id(), rand_suffix());
    let dirs: Vec<tempfile::TempDir> = (0..2)
        .map(|n| {
            let dir = tempfile::tempdir().unwrap();
            write(
                dir.path(),
                "Dockerfile",
                &format!("FROM {}\nRUN echo {nonce} > /same\n", busybox()),
            );
            write(dir.path(), "unused.txt", &n.to_string());
            dir
        })
        .collect();
    let mut built = Vec::new();
    for d in &dirs {
        let spec = Spec::new().base(d.path().join("Dockerfile").display().to_string());
        built.push(c.resolve(&spec).await.unwrap());
    }
    assert_ne!(built[0].reference, built[1].reference);
    assert_eq!(
        built[0].id, built[1].id,
        "the layer cache should share the image"
    );

    let images = c.images().await.unwrap();
    for b in &built {
        let listed = images
            .iter()
            .find(|i| i.reference == b.reference)
            .unwrap_or_else(|| panic!("{} not listed by images()", b.reference));
        assert_eq!(listed.id, b.id);
        assert!(b.reference.ends_with(&listed.key[..16]), "{listed:?}");
    }

    // Removing one entry keeps the other (and the image it shares).
    c.remove_image(&built[0].reference, false).await.unwrap();
    let again = c
        .resolve(&Spec::new().base(dirs[1].path().join("Dockerfile").display().to_string()))
        .await
        .unwrap();
    assert!(!again.built, "the other entry survived");
    assert_eq!(again.reference, built[1].reference);
    common::docker(&["rmi", &built[1].reference]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_content_in_another_directory_is_a_hit() {
    let c = client().await;
    // An agent framework checks each task out into a fresh directory: same content, new path.
    let first_dir = context("");
    let second_dir = tempfile::tempdir().unwrap();
    for name in [
        "Dockerfile",
        "app/main.txt",
        "app/ignored.log",
        ".dockerignore",
    ] {
        let text = std::fs::read_to_string(first_dir.path().join(name)).unwrap();
        write(second_dir.path(), name, &text);
    }
    let spec =
        |d: &tempfile::TempDir| Spec::new().base(d.path().join("Dockerfile").display().to_string());
    let first = c.resolve(&spec(&first_dir)).await.unwrap();
    assert!(first.built);
    let second = c.resolve(&spec(&second_dir)).await.unwrap();
    assert!(!second.built, "same content elsewhere was built again");
    assert_eq!(second.id, first.id);
    assert_ne!(
        second.reference, first.reference,
        "each directory keeps its own tag"
    );
    assert_eq!(
        second.reference.rsplit(':').next(),
        first.reference.rsplit(':').next(),
        "same key"
    );
    let env = c.spawn(spec(&second_dir)).await.unwrap();
    assert_eq!(
        env.exec(["cat", "/app/main.txt"]).await.unwrap().stdout,
        b"main"
    );
    drop(env);
    for r in [&first.reference, &second.reference] {
        common::docker(&["rmi", r]);
    }
}
