//! Every definition under `tests/fixtures/devcontainer/` is found, parsed and planned, and
//! the plan's key fields checked (no engine). The local feature's generated layer is compared
//! with `tests/fixtures/devcontainer/expected/local-feature-layer/` (regenerate it with
//! `HEADJACK_UPDATE_GOLDEN=1`), which `build-all.sh` builds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/devcontainer")
}

fn fixture(name: &str) -> PathBuf {
    normalize_path(&root().join(name))
}

fn normalize_path(p: &Path) -> PathBuf {
    super::discover::normalize(p)
}

fn options() -> PlanOptions {
    PlanOptions {
        local_env: BTreeMap::from([
            ("USER".to_string(), "tester".to_string()),
            (
                "HEADJACK_FIXTURE_VALUE".to_string(),
                "from the host".to_string(),
            ),
        ]),
        allow_privileged: false,
    }
}

/// Discovers, reads and plans the fixture `name` (a path below the fixtures folder).
fn load_fixture(name: &str) -> Result<DevContainerPlan> {
    load(&fixture(name), Path::new("/"), None, &options())
}

fn planned(name: &str) -> DevContainerPlan {
    load_fixture(name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn image(plan: &DevContainerPlan) -> &str {
    match &plan.base {
        PlanBase::Image { reference } => reference,
        other => panic!("not an image base: {other:?}"),
    }
}

fn dockerfile(plan: &DevContainerPlan) -> (&Path, &Path, &BTreeMap<String, String>, Option<&str>) {
    match &plan.base {
        PlanBase::Dockerfile {
            dockerfile,
            context,
            build_args,
            target,
        } => (dockerfile, context, build_args, target.as_deref()),
        other => panic!("not a Dockerfile base: {other:?}"),
    }
}

/// A hook step as `(hook, [(name, argv joined)])`.
type Step = (Hook, Vec<(Option<String>, String)>);

/// The hooks as steps.
fn hooks(plan: &DevContainerPlan) -> Vec<Step> {
    plan.hooks
        .iter()
        .map(|s| {
            (
                s.hook,
                s.commands
                    .iter()
                    .map(|c| (c.name.clone(), c.argv.join(" ")))
                    .collect(),
            )
        })
        .collect()
}

fn sh(s: &str) -> String {
    format!("/bin/sh -c {s}")
}

fn local_port(port: u16) -> PortPublish {
    PortPublish {
        container_port: port,
        protocol: Protocol::Tcp,
        host_ip: Some("127.0.0.1".into()),
        host_port: None,
    }
}

#[test]
fn image_plain() {
    let plan = planned("image-plain");
    assert_eq!(plan.config_file, fixture("image-plain/.devcontainer.json"));
    assert_eq!(plan.workspace.host_dir, fixture("image-plain"));
    assert_eq!(image(&plan), "docker.io/library/debian:bookworm-slim");
    assert_eq!(plan.name.as_deref(), Some("Plain image"));
    assert_eq!(plan.remote_env["EDITOR"].as_deref(), Some("vi"));
    assert_eq!(
        hooks(&plan),
        [(
            Hook::PostCreate,
            vec![(None, sh("echo created > /tmp/post-create"))]
        )]
    );
    assert_eq!(
        plan.workspace.mount,
        WorkspaceMount::Default {
            target: "/workspaces/image-plain".into()
        }
    );
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn python() {
    let plan = planned("python");
    let (df, context, args, target) = dockerfile(&plan);
    assert_eq!(df, fixture("python/.devcontainer/Dockerfile"));
    assert_eq!(context, fixture("python/.devcontainer"));
    assert!(args.is_empty() && target.is_none());
    assert_eq!(plan.container_env["PYTHONUNBUFFERED"], "1");
    assert_eq!(plan.remote_user.as_deref(), Some("vscode"));
    assert_eq!(plan.container_user, None);
    assert_eq!(plan.ports, [local_port(8000)]);
    assert_eq!(hooks(&plan)[0].0, Hook::PostCreate);
    // customizations are tool-specific: ignored without a warning.
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn node() {
    let plan = planned("node");
    let (_, _, args, _) = dockerfile(&plan);
    assert_eq!(args["NODE_ENV"], "development");
    assert_eq!(
        plan.mounts,
        [MountPlan {
            kind: MountKind::Volume {
                name: Some(format!("npm-cache-{}", plan.devcontainer_id))
            },
            target: "/home/node/.npm".into(),
            read_only: false,
        }]
    );
    assert_eq!(plan.ports, [local_port(3000), local_port(9229)]);
    assert_eq!(
        hooks(&plan),
        [(
            Hook::PostCreate,
            vec![(None, "sh -c echo \"$NODE_ENV\" > /tmp/node-env".into())]
        )]
    );
    assert_eq!(plan.remote_user.as_deref(), Some("node"));
    assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
    assert!(plan.warnings[0].contains("unsupported key \"portsAttributes\""));
}

#[test]
fn rust() {
    let mut plan = planned("rust");
    assert_eq!(plan.cap_add, ["SYS_PTRACE"]);
    assert_eq!(plan.security_opt, ["seccomp=unconfined"]);
    assert_eq!(plan.container_env["CARGO_HOME"], "/usr/local/cargo");
    assert_eq!(
        plan.mounts[0].kind,
        MountKind::Volume {
            name: Some(format!("cargo-registry-{}", plan.devcontainer_id))
        }
    );
    // PATH comes from the image: resolved once the container's environment is known.
    assert_eq!(
        plan.remote_env["PATH"].as_deref(),
        Some("${containerEnv:PATH}:/usr/local/cargo/bin")
    );
    assert!(plan.needs_container_env());
    plan.resolve_container_env(&BTreeMap::from([(
        "PATH".to_string(),
        "/usr/bin:/bin".to_string(),
    )]));
    assert_eq!(
        plan.remote_env["PATH"].as_deref(),
        Some("/usr/bin:/bin:/usr/local/cargo/bin")
    );
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn go() {
    let plan = planned("go");
    assert_eq!(image(&plan), "docker.io/library/debian:bookworm-slim");
    assert_eq!(plan.cap_add, ["SYS_PTRACE"]);
    assert_eq!(plan.security_opt, ["seccomp=unconfined"]);
    assert!(plan.init);
    // GOPATH is set by containerEnv, so it is resolved when planning; PATH waits.
    assert_eq!(
        plan.remote_env["PATH"].as_deref(),
        Some("${containerEnv:PATH}:/go/bin")
    );
    assert_eq!(plan.container_env["GOFLAGS"], "-mod=mod");
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn dockerfile_args_target() {
    let plan = planned("dockerfile-args-target");
    let (df, context, args, target) = dockerfile(&plan);
    assert_eq!(
        df,
        fixture("dockerfile-args-target/.devcontainer/Dockerfile")
    );
    assert_eq!(context, fixture("dockerfile-args-target"));
    assert_eq!(target, Some("dev"));
    assert_eq!(
        args,
        &BTreeMap::from([
            ("APP_USER".to_string(), "app".to_string()),
            ("BUILT_BY".into(), "tester".into()),
            ("EXTRA_PACKAGES".into(), "".into()),
        ])
    );
    assert_eq!(plan.container_user.as_deref(), Some("app"));
    assert_eq!(plan.remote_user.as_deref(), Some("app"));
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn multi_folder() {
    // The folder holds two definitions and no top-level one: pick by path.
    let e = load_fixture("multi-folder").unwrap_err().to_string();
    assert!(e.contains("holds 2 dev container definitions"), "{e}");
    assert!(
        e.contains("multi-folder/.devcontainer/api/devcontainer.json"),
        "{e}"
    );
    assert!(
        e.contains("multi-folder/.devcontainer/web/devcontainer.json"),
        "{e}"
    );
    for (variant, port) in [("api", 8080), ("web", 5173)] {
        let plan = planned(&format!("multi-folder/.devcontainer/{variant}"));
        let (df, context, _, _) = dockerfile(&plan);
        assert_eq!(df, fixture("multi-folder/.devcontainer/Dockerfile"));
        assert_eq!(context, fixture("multi-folder/.devcontainer"));
        // The workspace is the folder holding .devcontainer/, for either variant.
        assert_eq!(plan.workspace.host_dir, fixture("multi-folder"));
        assert_eq!(plan.container_env["SERVICE"], variant);
        assert_eq!(plan.ports, [local_port(port)]);
        assert_eq!(plan.remote_user.as_deref(), Some("dev"));
    }
    let api = planned("multi-folder/.devcontainer/api");
    let web = planned("multi-folder/.devcontainer/web/devcontainer.json");
    assert_ne!(api.devcontainer_id, web.devcontainer_id);
}

#[test]
fn hooks_in_all_forms() {
    let plan = planned("hooks");
    assert_eq!(image(&plan), "localhost/headjack-test/busybox:latest");
    assert_eq!(
        hooks(&plan),
        [
            (
                Hook::OnCreate,
                vec![(None, sh("echo onCreate >> /tmp/hooks.log"))]
            ),
            (
                Hook::UpdateContent,
                vec![(None, sh("echo updateContent >> /tmp/hooks.log"))]
            ),
            (
                Hook::PostCreate,
                vec![
                    (
                        Some("first".into()),
                        sh("echo postCreate-first > /tmp/post-create-first")
                    ),
                    (
                        Some("second".into()),
                        sh("echo postCreate-second > /tmp/post-create-second")
                    ),
                ]
            ),
            (
                Hook::PostStart,
                vec![(None, sh("echo postStart >> /tmp/hooks.log"))]
            ),
            (
                Hook::PostAttach,
                vec![(
                    None,
                    sh("pwd > /tmp/attach-cwd && echo postAttach >> /tmp/hooks.log")
                )]
            ),
        ]
    );
    // waitFor is satisfied by any spawn: no warning.
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn mounts_in_both_forms() {
    let plan = planned("mounts");
    let ws = fixture("mounts");
    assert_eq!(
        plan.workspace.mount,
        WorkspaceMount::Custom(MountPlan {
            kind: MountKind::Bind { source: ws.clone() },
            target: "/src/mounts".into(),
            read_only: false,
        })
    );
    assert_eq!(plan.workspace.container_folder, "/src/mounts");
    let id = &plan.devcontainer_id;
    let m = |kind, target: &str, read_only| MountPlan {
        kind,
        target: target.into(),
        read_only,
    };
    assert_eq!(
        plan.mounts,
        [
            m(
                MountKind::Bind {
                    source: ws.join("data")
                },
                "/data",
                true
            ),
            m(
                MountKind::Volume {
                    name: Some(format!("mounts-cache-{id}"))
                },
                "/cache",
                false
            ),
            m(
                MountKind::Tmpfs {
                    size_bytes: Some(16 << 20)
                },
                "/scratch",
                false
            ),
            m(
                MountKind::Bind {
                    source: ws.join("data")
                },
                "/data-rw",
                false
            ),
            m(
                MountKind::Volume {
                    name: Some("mounts-shared".into())
                },
                "/shared",
                false
            ),
        ]
    );
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn env_vars() {
    let mut plan = planned("env-vars");
    let ws = fixture("env-vars");
    assert_eq!(plan.name.as_deref(), Some("Environment (env-vars)"));
    let env = &plan.container_env;
    assert_eq!(env["PROJECT"], "env-vars");
    assert_eq!(env["HOST_WORKSPACE"], ws.to_string_lossy());
    assert_eq!(env["IN_CONTAINER"], "/workspaces/env-vars");
    assert_eq!(env["CONTAINER_ID_VAR"], plan.devcontainer_id);
    assert_eq!(env["FROM_HOST"], "from the host");
    assert_eq!(env["EMPTY_WHEN_UNSET"], "");
    let remote = &plan.remote_env;
    assert_eq!(
        remote["PATH"].as_deref(),
        Some("${containerEnv:PATH}:/opt/tools/bin")
    );
    assert_eq!(
        remote["PROJECT_UPPER_DIR"].as_deref(),
        Some("/workspaces/env-vars/..")
    );
    assert_eq!(remote["GREETING"].as_deref(), Some("hello from tester"));
    assert_eq!(remote["DEBIAN_FRONTEND"], None);
    plan.resolve_container_env(&BTreeMap::new());
    assert_eq!(plan.remote_env["PATH"].as_deref(), Some(":/opt/tools/bin"));
    // The id is the devcontainers CLI's for these labels.
    assert_eq!(
        plan.labels[LABEL_LOCAL_FOLDER],
        ws.to_string_lossy().into_owned()
    );
    assert_eq!(
        plan.labels[LABEL_CONFIG_FILE],
        ws.join(".devcontainer/devcontainer.json")
            .to_string_lossy()
            .into_owned()
    );
    assert_eq!(plan.devcontainer_id, devcontainer_id(&plan.labels));
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn legacy() {
    let plan = planned("legacy");
    let (df, context, _, _) = dockerfile(&plan);
    assert_eq!(df, fixture("legacy/Dockerfile"));
    assert_eq!(context, fixture("legacy"));
    assert_eq!(
        plan.ports,
        [
            PortPublish {
                container_port: 8081,
                protocol: Protocol::Tcp,
                host_ip: None,
                host_port: Some(8081)
            },
            PortPublish {
                container_port: 443,
                protocol: Protocol::Tcp,
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(8443)
            },
        ]
    );
    // extensions/settings: VS Code's keys, ignored like customizations.
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn host_requirements() {
    let plan = planned("host-requirements");
    assert_eq!(
        plan.limits,
        Limits {
            cpus: Some(2.0),
            memory_bytes: Some(1 << 30),
            storage_bytes: Some(8 << 30),
        }
    );
    assert_eq!(plan.ports, [local_port(8080), local_port(8443)]);
    assert!(plan.init);
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn run_args() {
    let plan = planned("run-args");
    assert_eq!(plan.cap_add, ["NET_ADMIN"]);
    assert_eq!(plan.security_opt, ["no-new-privileges"]);
    assert_eq!(plan.container_env["FROM_RUN_ARGS"], "1");
    assert_eq!(plan.container_env["SECOND"], "two");
    assert_eq!(plan.limits.memory_bytes, Some(512 << 20));
    assert_eq!(plan.limits.cpus, Some(1.5));
    assert_eq!(plan.labels["com.example.team"], "agents");
    assert_eq!(plan.container_user.as_deref(), Some("agent"));
    assert_eq!(plan.remote_user.as_deref(), Some("agent"));
    assert!(plan.init);
    assert_eq!(
        plan.mounts,
        [MountPlan {
            kind: MountKind::Tmpfs { size_bytes: None },
            target: "/run-args-tmp".into(),
            read_only: false
        }]
    );
    assert_eq!(
        plan.ports,
        [PortPublish {
            container_port: 80,
            protocol: Protocol::Tcp,
            host_ip: Some("127.0.0.1".into()),
            host_port: Some(18080)
        }]
    );
    assert_eq!(plan.warnings.len(), 2, "{:?}", plan.warnings);
    assert!(plan.warnings[0].contains("runArgs: --device is not supported"));
    assert!(plan.warnings[1].contains("runArgs: --shm-size is not supported"));
}

#[test]
fn unsupported_keys_are_all_named() {
    let plan = planned("unsupported");
    let w = plan.warnings.join("\n");
    for key in [
        "\"dockerComposeFile\"",
        "\"service\"",
        "\"runServices\"",
        "\"initializeCommand\"",
        "\"userEnvProbe\"",
        "\"updateRemoteUserUID\"",
        "\"secrets\"",
        "\"otherPortsAttributes\"",
        "\"hostRequirements.gpu\"",
        "\"notAKey\"",
        "overrideCommand: false is not supported",
        "\"ghcr.io/devcontainers/features/common-utils:2\" is not a local feature",
        "\"https://example.invalid/feature.tgz\" is not a local feature",
    ] {
        assert!(w.contains(key), "{key} missing from:\n{w}");
    }
    assert_eq!(plan.warnings.len(), 13, "{w}");
    // Each warning points into the file.
    for warning in &plan.warnings {
        assert!(
            warning.starts_with(&format!(
                "{}:",
                fixture("unsupported/.devcontainer/devcontainer.json").display()
            )),
            "{warning}"
        );
    }
    assert_eq!(image(&plan), "localhost/headjack-test/busybox:latest");
}

/// The generated files of the local feature's layer (the copies of the feature folder
/// excepted), by path.
fn generated(layer: &FeatureLayer) -> BTreeMap<String, String> {
    layer
        .files
        .iter()
        .filter_map(|f| match &f.source {
            ContextSource::Text { content, .. } => Some((f.path.clone(), content.clone())),
            ContextSource::Copy(_) => None,
        })
        .chain([(LAYER_DOCKERFILE.to_string(), layer.dockerfile.clone())])
        .collect()
}

#[test]
fn local_feature() {
    let plan = planned("local-feature");
    assert_eq!(image(&plan), "docker.io/library/debian:bookworm-slim");
    let layer = plan.features.as_ref().expect("a feature layer");
    assert_eq!(layer.feature_ids, ["hello"]);
    // The feature's hook runs before the definition's.
    assert_eq!(
        hooks(&plan),
        [
            (
                Hook::PostCreate,
                vec![(None, sh("hello > /tmp/feature-hello"))]
            ),
            (
                Hook::PostCreate,
                vec![(None, sh("hello > /tmp/definition-hello"))]
            )
        ]
    );
    assert_eq!(plan.hooks[0].origin, HookOrigin::Feature("hello".into()));
    assert_eq!(plan.hooks[1].origin, HookOrigin::Definition);
    let copies: Vec<_> = layer
        .files
        .iter()
        .filter_map(|f| match &f.source {
            ContextSource::Copy(src) => Some((f.path.as_str(), src.clone())),
            ContextSource::Text { .. } => None,
        })
        .collect();
    let feature_dir = fixture("local-feature/.devcontainer/hello");
    assert_eq!(
        copies,
        [
            (
                "0_hello/devcontainer-feature.json",
                feature_dir.join("devcontainer-feature.json")
            ),
            ("0_hello/install.sh", feature_dir.join("install.sh")),
        ]
    );

    // The generated files equal the golden copy that build-all.sh builds.
    let golden = root().join("expected/local-feature-layer");
    let files = generated(layer);
    if std::env::var_os("HEADJACK_UPDATE_GOLDEN").is_some() {
        for (path, content) in &files {
            let dest = golden.join(path);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::write(dest, content).unwrap();
        }
    }
    for (path, content) in &files {
        let want = std::fs::read_to_string(golden.join(path))
            .unwrap_or_else(|e| panic!("{}: {e}", golden.join(path).display()));
        assert_eq!(content, &want, "{path} differs from the golden copy");
    }
    let on_disk = walkdir::WalkDir::new(&golden)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .count();
    assert_eq!(on_disk, files.len(), "stray files in {}", golden.display());
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn bad_fixtures_fail_clearly() {
    let cases = [
        (
            "bad/invalid-jsonc",
            "bad/invalid-jsonc/.devcontainer/devcontainer.json:3:33: invalid JSONC: Expected comma",
        ),
        (
            "bad/missing-dockerfile",
            "build.dockerfile: the Dockerfile ",
        ),
        (
            "bad/privileged",
            "bad/privileged/.devcontainer/devcontainer.json:5:16: privileged: true: a privileged container",
        ),
        (
            "bad/bad-mount",
            "bad/bad-mount/.devcontainer/devcontainer.json:6:3: mounts[0]: the bind source \"data\"",
        ),
        (
            "bad/bad-memory",
            "bad/bad-memory/.devcontainer/devcontainer.json:5:13: hostRequirements.memory: \"lots\" is not a size",
        ),
        (
            "bad/no-base",
            "the definition names neither an image (\"image\") nor a Dockerfile",
        ),
        ("bad/several", "holds 2 dev container definitions"),
    ];
    for (name, want) in cases {
        let e = load_fixture(name).unwrap_err();
        assert_eq!(
            e.kind(),
            crate::error::ErrorKind::InvalidBase,
            "{name}: {e}"
        );
        assert!(e.to_string().contains(want), "{name}: {e}\n  wants {want}");
    }
    let missing = load_fixture("bad/missing-dockerfile")
        .unwrap_err()
        .to_string();
    assert!(
        missing.contains(&format!(
            "{} does not exist",
            fixture("bad/missing-dockerfile/.devcontainer/Dockerfile.missing").display()
        )),
        "{missing}"
    );
    // Privileged is fine once allowed.
    let allowed = load(
        &fixture("bad/privileged"),
        Path::new("/"),
        None,
        &PlanOptions {
            allow_privileged: true,
            ..options()
        },
    )
    .unwrap();
    assert!(allowed.privileged);
    // A failing hook is a spawn-time failure: the plan is fine.
    let failing = planned("bad/failing-hook");
    assert_eq!(
        hooks(&failing)[1],
        (
            Hook::PostCreate,
            vec![
                (Some("fine".into()), sh("true")),
                (
                    Some("broken".into()),
                    sh("echo 'setting up failed' >&2; exit 3")
                ),
            ]
        )
    );
}

#[test]
fn every_fixture_is_covered() {
    // A new fixture folder must get a test above.
    let known = [
        "bad",
        "dockerfile-args-target",
        "env-vars",
        "expected",
        "go",
        "hooks",
        "host-requirements",
        "image-plain",
        "legacy",
        "local-feature",
        "mounts",
        "multi-folder",
        "node",
        "python",
        "run-args",
        "rust",
        "unsupported",
    ];
    let mut found: Vec<String> = std::fs::read_dir(root())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    assert_eq!(found, known);
    // Every good fixture folder is something the base-string rules send here — except
    // `legacy`, whose folder also holds a Dockerfile: a folder's Dockerfile keeps meaning
    // that Dockerfile, so its definition is named by path.
    for name in known.iter().filter(|n| !["bad", "expected"].contains(n)) {
        assert_eq!(
            is_devcontainer_base(&format!("./{name}"), &root(), None),
            *name != "legacy",
            "{name}"
        );
    }
    assert!(is_devcontainer_base(
        "./legacy/.devcontainer",
        &root(),
        None
    ));
}
