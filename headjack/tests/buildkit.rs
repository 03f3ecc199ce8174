//! Today's Dockerfiles against the real engines: BuildKit on Docker (heredocs translated for its
//! built-in frontend, cache mounts, secrets, `COPY --chmod`, parallel stages, `# syntax=`), the
//! classic builder as a fallback, and what Podman builds or refuses for each feature.
//!
//! Every image a test builds is untagged afterwards (also when it fails: [`Cleanup`]), cache
//! mounts it creates are pruned.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::{busybox, client, is_podman};
use headjack::base::{Base, Builder, SecretSource};
use headjack::{Client, Dockerfile, ErrorKind, Progress, Spec};

fn write(dir: &Path, name: &str, content: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

fn nonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    format!("{}-{:x}", std::process::id(), h.finish())
}

/// Untags the images it was given when dropped, and prunes the cache mounts whose description
/// names one of its nonces (Docker) or removes their directories (Podman).
#[derive(Default)]
struct Cleanup {
    images: Mutex<Vec<String>>,
    cache_ids: Mutex<Vec<String>>,
}

impl Cleanup {
    fn image(&self, reference: &str) {
        self.images.lock().unwrap().push(reference.to_string());
    }

    fn cache_mount(&self, id: &str) {
        self.cache_ids.lock().unwrap().push(id.to_string());
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for r in self.images.lock().unwrap().iter() {
            common::docker(&["rmi", r]);
        }
        for id in self.cache_ids.lock().unwrap().iter() {
            if is_podman() {
                // buildah keeps cache mounts as directories named by id.
                for dir in ["/var/tmp/buildah-cache", "/var/tmp/buildah-cache-0"] {
                    let _ = std::fs::remove_dir_all(Path::new(dir).join(id));
                    let _ = std::fs::remove_dir(dir);
                }
            } else {
                for record in cache_mount_records(id) {
                    common::docker(&[
                        "builder",
                        "prune",
                        "-f",
                        "--filter",
                        &format!("id={record}"),
                    ]);
                }
            }
        }
    }
}

/// IDs of Docker's build-cache records of cache mounts whose description mentions `needle`.
fn cache_mount_records(needle: &str) -> Vec<String> {
    let out = common::docker(&["system", "df", "-v", "--format", "{{json .BuildCache}}"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_default();
    v.as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["CacheType"] == "exec.cachemount")
        .filter(|r| r["Description"].as_str().unwrap_or("").contains(needle))
        .filter_map(|r| r["ID"].as_str().map(str::to_string))
        .collect()
}

/// A context directory with a Dockerfile.
fn context(dockerfile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Dockerfile", dockerfile);
    dir
}

fn dockerfile_of(dir: &Path) -> PathBuf {
    dir.join("Dockerfile")
}

/// Runs `sh -c script` in `image` (a throwaway container); returns stdout.
fn run_in(image: &str, script: &str) -> String {
    let out = std::process::Command::new("docker")
        .args([
            "run",
            "--rm",
            "--label",
            "io.headjack.test=1",
            "--network",
            "none",
            image,
            "sh",
            "-c",
            script,
        ])
        .env("DOCKER_HOST", common::host())
        .output()
        .expect("docker CLI runs");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every build line a spec reports.
fn recording(spec: Spec) -> (Spec, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let spec = spec.progress(move |p| {
        if let Progress::Build { line, .. } = p {
            sink.lock().unwrap().push(line.clone());
        }
    });
    (spec, lines)
}

async fn build(c: &Client, base: Dockerfile, cleanup: &Cleanup) -> headjack::Result<String> {
    let r = c.resolve(&Spec::new().base(base)).await?;
    cleanup.image(&r.reference);
    Ok(r.reference)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heredocs_build_on_every_engine() {
    let c = client().await;
    let cleanup = Cleanup::default();
    let n = nonce();
    // RUN and COPY heredocs, chomped tabs, a document the shell expands, a command with
    // documents, and a COPY of named paths next to them.
    let dir = context(&format!(
        "# syntax=docker/dockerfile:1.4\nFROM {b}\nARG WHO=world\nRUN <<EOF\necho \"hello $WHO {n}\" > /greeting\necho second >> /greeting\nEOF\nRUN cat <<A > /a && cat <<'B' > /b\none $WHO\nA\ntwo $WHO\nB\nCOPY <<-'CONF' <<EOT /etc/app/\n\tkey=$literal\n\tCONF\nplain text\nEOT\nCOPY src/ /src/\n",
        b = busybox()
    ));
    write(dir.path(), "src/file.txt", "from the context");
    let (spec, lines) =
        recording(Spec::new().base(dockerfile_of(dir.path()).display().to_string()));
    let image = c.resolve(&spec).await.unwrap_or_else(|e| panic!("{e}"));
    cleanup.image(&image.reference);
    assert!(image.built);
    let out = run_in(
        &image.reference,
        "cat /greeting /a /b /etc/app/CONF /etc/app/EOT /src/file.txt; stat -c %a /etc/app/CONF; ls -a /",
    );
    let want = format!(
        "hello world {n}\nsecond\none world\ntwo $WHO\nkey=$literal\nplain text\nfrom the context644\n"
    );
    assert!(out.starts_with(&want), "{out}");
    assert!(
        !out.contains(".headjack"),
        "generated files leaked into /: {out}"
    );
    // The rewritten Dockerfile is what the engine built: no pull of the syntax image.
    let lines = lines.lock().unwrap().clone();
    assert!(
        !lines.iter().any(|l| l.contains("docker/dockerfile")),
        "{lines:?}"
    );

    // A `#!` document is run as a file, where the builder has bind mounts.
    let dir = context(&format!(
        "FROM {}\nRUN <<EOF\n#!/bin/sh -e\necho \"run as $0 {n}\" > /shebang\nEOF\n",
        busybox()
    ));
    let image = build(&c, Base::dockerfile(dockerfile_of(dir.path())), &cleanup)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        run_in(&image, "cat /shebang"),
        format!("run as /dev/pipes/EOF {n}\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_mount_is_reused_by_the_next_build() {
    let c = client().await;
    let cleanup = Cleanup::default();
    let n = nonce();
    let id = format!("headjack-test-{n}");
    cleanup.cache_mount(&id);
    cleanup.cache_mount(&n);
    let dir = context(&format!(
        "FROM {}\nARG ROUND\nRUN --mount=type=cache,id={id},target=/cache sh -c 'cat /cache/rounds > /previous 2>/dev/null; echo \"$ROUND {n}\" >> /cache/rounds; true'\n",
        busybox()
    ));
    let df = dockerfile_of(dir.path());
    let first = build(&c, Base::dockerfile(&df).build_arg("ROUND", "1"), &cleanup)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(run_in(&first, "cat /previous"), "");
    // Another build arg is another key and reruns the step: the cache mount still has what
    // the first build wrote there, and nothing of it is in the first image.
    let second = build(&c, Base::dockerfile(&df).build_arg("ROUND", "2"), &cleanup)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(first, second);
    assert_eq!(run_in(&second, "cat /previous"), format!("1 {n}\n"));
    assert_eq!(run_in(&first, "ls /cache | wc -l").trim(), "0");
}

/// Every file under `dir`, recursively, read whole.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else if let Ok(data) = std::fs::read(&p) {
            out.push((p, data));
        }
    }
    out
}

fn headjack_cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("HEADJACK_CACHE_DIR") {
        return d.into();
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("headjack");
    }
    PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/headjack")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_is_readable_in_its_step_and_nowhere_else() {
    let c = client().await;
    let cleanup = Cleanup::default();
    let n = nonce();
    let secret = format!("s3cr3t-{n}-value");
    let file_secret = format!("file-{n}-secret");
    let secret_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret_file.path(), &file_secret).unwrap();
    let dir = context(&format!(
        // The nonce keeps the engine's layer cache (which, like the key, ignores secret values)
        // from serving the step an earlier run built with another value.
        "FROM {}\nRUN --mount=type=secret,id=tok --mount=type=secret,id=other,target=/other sha256sum /run/secrets/tok /other > /proof && ls /run/secrets > /listing && echo {n}\n",
        busybox()
    ));
    let df = dockerfile_of(dir.path());
    let base = || {
        Base::dockerfile(&df)
            .secret("tok", SecretSource::Memory(secret.clone().into_bytes()))
            .secret(
                "other",
                SecretSource::File(secret_file.path().to_path_buf()),
            )
    };
    let (spec, lines) = recording(Spec::new().base(base()));
    let image = c.resolve(&spec).await.unwrap_or_else(|e| panic!("{e}"));
    cleanup.image(&image.reference);
    assert!(image.built);

    // Readable in the step: the digests match.
    use sha2::Digest;
    let proof = run_in(&image.reference, "cat /proof");
    for value in [&secret, &file_secret] {
        let digest = hex::encode(sha2::Sha256::digest(value.as_bytes()));
        assert!(proof.contains(&digest), "{value}: {proof}");
    }
    // Nothing left in the image's filesystem.
    assert_eq!(run_in(&image.reference, "cat /listing"), "tok\n");
    assert_eq!(
        run_in(
            &image.reference,
            "ls -A /run/secrets 2>/dev/null; if test -s /other; then echo other-left; fi"
        ),
        ""
    );
    for value in [&secret, &file_secret] {
        let needle = value.as_bytes();
        // Not in any layer, config or manifest of the exported image.
        let export = tempfile::NamedTempFile::new().unwrap();
        common::docker(&[
            "save",
            "-o",
            export.path().to_str().unwrap(),
            &image.reference,
        ]);
        let tar = std::fs::read(export.path()).unwrap();
        assert!(tar.len() > 1024, "docker save wrote nothing");
        assert!(!contains(&tar, needle), "the secret is in the saved image");
        // Not in the history, labels or config.
        let history = common::docker(&["history", "--no-trunc", &image.reference]);
        assert!(history.contains("sha256sum"), "{history}");
        let inspect = common::docker(&["image", "inspect", &image.reference]);
        for text in [&history, &inspect] {
            assert!(!text.contains(value.as_str()), "{text}");
        }
        // Not in headjack's cache records or progress lines.
        for (path, data) in files_under(&headjack_cache_dir()) {
            assert!(
                !contains(&data, needle),
                "the secret is in {}",
                path.display()
            );
        }
        let lines = lines.lock().unwrap();
        assert!(!lines.is_empty());
        assert!(
            !lines.iter().any(|l| l.contains(value.as_str())),
            "{lines:?}"
        );
    }
    // The value does not take part in the key (the id does): another value is a hit, another
    // id a new key.
    let again = c
        .resolve(
            &Spec::new().base(
                Base::dockerfile(&df)
                    .secret("tok", SecretSource::Memory(b"rotated-value".to_vec()))
                    .secret(
                        "other",
                        SecretSource::File(secret_file.path().to_path_buf()),
                    ),
            ),
        )
        .await
        .unwrap();
    assert!(!again.built);
    assert_eq!(again.reference, image.reference);

    // A step that prints the secret and fails: the error and its log do not carry it.
    let dir = context(&format!(
        "FROM {}\nRUN --mount=type=secret,id=tok echo \"leak: $(cat /run/secrets/tok) {n}\" && exit 3\n",
        busybox()
    ));
    let (spec, lines) = recording(
        Spec::new().base(
            Base::dockerfile(dockerfile_of(dir.path()))
                .secret("tok", SecretSource::Memory(secret.clone().into_bytes())),
        ),
    );
    let e = c.resolve(&spec).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BuildFailed, "{e}");
    let everything = format!(
        "{e}\n{:?}\n{}\n{}",
        e.build_step(),
        e.build_log().join("\n"),
        lines.lock().unwrap().join("\n")
    );
    assert!(!everything.contains(&secret), "{everything}");
    assert!(
        e.build_log()
            .iter()
            .any(|l| l.contains(&format!("leak: **** {n}"))),
        "{:?}",
        e.build_log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modes_are_kept_and_part_of_the_key() {
    let c = client().await;
    let cleanup = Cleanup::default();
    let dir = context(&format!(
        "FROM {}\nCOPY key.pem /key.pem\nCOPY --chmod=0640 tool /tool\nCOPY dir/ /dir/\n",
        busybox()
    ));
    write(dir.path(), "key.pem", &format!("private {}", nonce()));
    write(dir.path(), "tool", "#!/bin/sh\n");
    write(dir.path(), "dir/x", "x");
    use std::os::unix::fs::PermissionsExt;
    let chmod = |p: &str, m: u32| {
        std::fs::set_permissions(dir.path().join(p), std::fs::Permissions::from_mode(m)).unwrap()
    };
    chmod("key.pem", 0o600);
    chmod("tool", 0o755);
    chmod("dir/x", 0o4755);
    let df = dockerfile_of(dir.path());
    let first = build(&c, Base::dockerfile(&df), &cleanup)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Podman (buildah) drops setuid and setgid from files it copies out of a context.
    let suid = if is_podman() { "755" } else { "4755" };
    assert_eq!(
        run_in(&first, "stat -c '%a %n' /key.pem /tool /dir/x"),
        format!("600 /key.pem\n640 /tool\n{suid} /dir/x\n")
    );
    // Only a mode changes: another key, and the image follows.
    chmod("key.pem", 0o644);
    let second = c
        .resolve(&Spec::new().base(Base::dockerfile(&df)))
        .await
        .unwrap();
    cleanup.image(&second.reference);
    assert!(second.built);
    assert_ne!(second.reference, first);
    assert_eq!(run_in(&second.reference, "stat -c %a /key.pem"), "644\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_stages_run_in_parallel_under_buildkit() {
    let c = client().await;
    let cleanup = Cleanup::default();
    let n = nonce();
    let stage = |name: &str| {
        format!(
            // The stage name makes the two steps differ: identical steps would be one step.
            "FROM {} AS {name}\nRUN date +%s > /start && sleep 3 && date +%s > /end && echo {n} {name} > /n\n",
            busybox()
        )
    };
    let dir = context(&format!(
        "{}{}FROM {}\nCOPY --from=a /start /a.start\nCOPY --from=a /end /a.end\nCOPY --from=b /start /b.start\nCOPY --from=b /end /b.end\n",
        stage("a"),
        stage("b"),
        busybox()
    ));
    let times = |image: &str| -> (u64, u64, u64, u64) {
        let out = run_in(image, "cat /a.start /a.end /b.start /b.end");
        let t: Vec<u64> = out.lines().map(|l| l.trim().parse().unwrap()).collect();
        (t[0], t[1], t[2], t[3])
    };
    let image = build(&c, Base::dockerfile(dockerfile_of(dir.path())), &cleanup)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (a_start, a_end, b_start, b_end) = times(&image);
    if is_podman() {
        // buildah behind Podman's compatible API runs stages one after the other.
        assert!(
            b_start >= a_end || a_start >= b_end,
            "Podman overlapped stages: a {a_start}..{a_end}, b {b_start}..{b_end}"
        );
    } else {
        assert!(
            a_start < b_end && b_start < a_end,
            "BuildKit ran the stages one after the other: a {a_start}..{a_end}, b {b_start}..{b_end}"
        );
        // Docker's classic builder does not: the same stages run one after the other.
        let text = std::fs::read_to_string(dockerfile_of(dir.path())).unwrap();
        write(dir.path(), "Dockerfile", &format!("{text}# classic\n"));
        let image = build(
            &c,
            Base::dockerfile(dockerfile_of(dir.path())).builder(Builder::Classic),
            &cleanup,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let (a_start, a_end, b_start, b_end) = times(&image);
        assert!(
            b_start >= a_end || a_start >= b_end,
            "the classic builder overlapped stages: a {a_start}..{a_end}, b {b_start}..{b_end}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_names_itself_without_colour_codes() {
    let c = client().await;
    let n = nonce();
    let dir = context(&format!(
        "FROM {}\nRUN echo step-one-{n}\nRUN printf '\\033[91mred-failure-{n}\\033[0m\\n' && exit 4\n",
        busybox()
    ));
    let e = c
        .resolve(&Spec::new().base(dockerfile_of(dir.path()).display().to_string()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BuildFailed, "{e}");
    let step = e.build_step().expect("the failing step is named");
    assert!(step.contains("exit 4") && step.starts_with("RUN"), "{step}");
    assert!(
        e.build_log()
            .iter()
            .any(|l| l.contains(&format!("red-failure-{n}"))),
        "{:?}",
        e.build_log()
    );
    let text = format!("{e}\n{}", e.build_log().join("\n"));
    assert!(!text.contains('\u{1b}'), "colour codes left: {text:?}");
    assert!(text.contains(&format!("red-failure-{n}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_classic_builder_builds_what_it_can_and_refuses_the_rest() {
    let c = client().await;
    let cleanup = Cleanup::default();
    let n = nonce();
    // Plain instructions and a RUN heredoc (translated to the exec form) build classically.
    let dir = context(&format!(
        "FROM {}\nCOPY a.txt /a.txt\nRUN <<EOF\necho classic-{n} > /b.txt\nEOF\n",
        busybox()
    ));
    write(dir.path(), "a.txt", "a");
    let (spec, lines) = recording(
        Spec::new().base(Base::dockerfile(dockerfile_of(dir.path())).builder(Builder::Classic)),
    );
    let image = c.resolve(&spec).await.unwrap_or_else(|e| panic!("{e}"));
    cleanup.image(&image.reference);
    assert_eq!(
        run_in(&image.reference, "cat /a.txt /b.txt"),
        format!("aclassic-{n}\n")
    );
    let lines = lines.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.to_ascii_uppercase().starts_with("STEP ")),
        "not the classic builder's output: {lines:?}"
    );
    // Served from the key whichever builder asks.
    let again = c
        .resolve(&Spec::new().base(dockerfile_of(dir.path()).display().to_string()))
        .await
        .unwrap();
    assert!(!again.built);

    // What needs BuildKit is refused before anything runs, naming the feature and builder.
    let secret = format!("classic-secret-{n}");
    let cache_id = format!("headjack-test-classic-{n}");
    cleanup.cache_mount(&cache_id);
    for (dockerfile, feature) in [
        (
            format!("RUN --mount=type=cache,id={cache_id},target=/c true"),
            "RUN --mount=type=cache",
        ),
        (
            format!("RUN --mount=type=secret,id=tok test -s /run/secrets/tok && echo {n}"),
            "RUN --mount=type=secret",
        ),
        (format!("COPY --chmod=0600 a.txt /a-{n}"), "COPY --chmod"),
        (format!("RUN <<EOF\n#!/bin/sh\necho {n}\nEOF"), "#!"),
    ] {
        let dir = context(&format!("FROM {}\n{dockerfile}\n", busybox()));
        write(dir.path(), "a.txt", "a");
        let r = c
            .resolve(
                &Spec::new().base(
                    Base::dockerfile(dockerfile_of(dir.path()))
                        .builder(Builder::Classic)
                        .secret("tok", SecretSource::Memory(secret.clone().into_bytes())),
                ),
            )
            .await;
        if is_podman() {
            // Podman's builder is buildah whatever is asked, and it has all of these.
            let r = r.unwrap_or_else(|e| panic!("Podman refused {dockerfile}: {e}"));
            cleanup.image(&r.reference);
            continue;
        }
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{dockerfile}: {e}");
        assert!(e.message().contains(feature), "{e}");
        assert!(e.message().contains("classic builder"), "{e}");
        assert!(!e.message().contains(&secret));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_each_engine_cannot_build_is_refused_clearly() {
    let c = client().await;
    let cleanup = Cleanup::default();
    let docker_20 = !is_podman() && c.info().version.starts_with("20.");
    let podman_4 = is_podman() && c.info().version.starts_with("4.");
    // (Dockerfile line, the feature named, refused here)
    let cases = [
        ("COPY --link a.txt /a", "COPY --link", docker_20 || podman_4),
        (
            "ADD --checksum=sha256:0000000000000000000000000000000000000000000000000000000000000000 http://127.0.0.1:1/x /x",
            "ADD --checksum",
            docker_20 || podman_4,
        ),
    ];
    for (line, feature, refused) in cases {
        let dir = context(&format!("FROM {}\n{line}\n", busybox()));
        write(dir.path(), "a.txt", "a");
        let r = build(&c, Base::dockerfile(dockerfile_of(dir.path())), &cleanup).await;
        match (r, refused) {
            (Err(e), true) => {
                assert_eq!(e.kind(), ErrorKind::Unsupported, "{line}: {e}");
                assert!(
                    e.message().contains(feature) && e.message().contains(&c.info().version),
                    "{e}"
                );
                assert!(e.message().contains("line 2"), "{e}");
            }
            (Ok(_), false) => {}
            (r, _) => panic!("{line}: unexpected {r:?} on {:?}", c.info()),
        }
    }
    // A frontend image that is not in the engine.
    let dir = context(&format!(
        "# syntax=localhost/headjack-test/no-such-frontend:1\nFROM {}\n",
        busybox()
    ));
    let e = build(&c, Base::dockerfile(dockerfile_of(dir.path())), &cleanup)
        .await
        .unwrap_err();
    assert!(
        e.message()
            .contains("localhost/headjack-test/no-such-frontend"),
        "{e}"
    );
    if is_podman() {
        assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    }
}
