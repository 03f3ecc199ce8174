//! Differential test: for tricky `.dockerignore` files, the files headjack sends in a build
//! context are exactly those the docker CLI sends. Both images are built from the same context
//! with `COPY . /ctx/`, and the listings made inside them are compared.

mod common;

use std::path::Path;

use common::{busybox, client};
use headjack::{Base, Spec};

const TREE: &[&str] = &[
    "README.md",
    "README-dev.md",
    "notes.md",
    "docs/guide.md",
    "a.log",
    "keep/x/y.log",
    "keep/z.txt",
    "dir/f",
    "dir/sub/g",
    "top.txt",
    "sub/top.txt",
    "x/temp1",
    "x/tempdir/f",
    "x/y/temp2",
    "temp1",
    "tempXY",
    "src/main.rs",
    "src/lib/m.rs",
    "a/b",
    "a/x/b",
    "a/x/y/b",
    ".hidden",
    "deep/er/still/file.txt",
];

const CASES: &[&str] = &[
    "**/*.log\n!keep/**/*.log\n",
    "*.md\n!README*.md\n",
    "!README*.md\n*.md\n",
    "dir/\n",
    "/top.txt\n",
    "*/temp*\n",
    "*/*/temp*\ntemp?\n",
    "Dockerfile\n.dockerignore\n",
    "**\n!src\n!src/**\n",
    "a/**/b\n",
    "# comment\n\n  deep  \n!deep/er/still\n",
    "x\n!x/temp1\n",
];

fn listing_cmd() -> Vec<&'static str> {
    vec!["sh", "-c", "cd /ctx && find . -mindepth 1 | sort"]
}

fn make_tree(dir: &Path, ignore: &str) {
    for f in TREE {
        let p = dir.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, f.as_bytes()).unwrap();
    }
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM {}\nCOPY . /ctx/\n", busybox()),
    )
    .unwrap();
    std::fs::write(dir.join(".dockerignore"), ignore).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_file_set_matches_the_docker_cli() {
    let c = client().await;
    let mut failures = Vec::new();
    for (i, ignore) in CASES.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        make_tree(dir.path(), ignore);
        let ours = c
            .spawn(
                Spec::new()
                    .base(Base::dockerfile(dir.path().join("Dockerfile")))
                    .label("io.headjack.test", "1"),
            )
            .await
            .unwrap();
        let our_list = ours.exec(listing_cmd()).await.unwrap().stdout_text();
        let our_image = ours.image().to_string();
        drop(ours);

        let tag = format!(
            "localhost/headjack-test/ignore-cli:{}-{i}",
            std::process::id()
        );
        let out = std::process::Command::new("docker")
            .args(["build", "-q", "-t", &tag, dir.path().to_str().unwrap()])
            .env("DOCKER_HOST", common::host())
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut run = vec!["run", "--rm", "--label", "io.headjack.test=1", tag.as_str()];
        run.extend(listing_cmd());
        let cli_list = common::docker(&run);
        common::docker(&["rmi", &tag, &our_image]);
        if our_list != cli_list {
            failures.push(format!(
                "case {i} {ignore:?}:\n--- headjack\n{our_list}--- docker CLI\n{cli_list}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
