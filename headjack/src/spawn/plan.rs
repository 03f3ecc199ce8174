//! Step 2 of spawning: a spec → the container to create. Pure (it only reads the host paths it
//! mounts), so every rule is table-tested without an engine.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use super::resolve::ResolvedImage;
use crate::agent;
use crate::base::Base;
use crate::engine::{ContainerPlan, PlanMount};
use crate::error::{Error, ErrorKind, Result};
use crate::labels::{self, Owner};
use crate::spec::{MountKind, Network, Spec, absolute};

/// The keep-alive command when the image does not name one (`io.headjack.init`).
const DEFAULT_INIT: [&str; 2] = ["sleep", "infinity"];

/// The owner label of an instance spawned now by this process (none when detached).
pub(crate) fn owner_label(spec: &Spec) -> String {
    if spec.detached {
        labels::DETACHED.to_string()
    } else {
        Owner::current().to_label()
    }
}

/// The container for instance `id` of `spec`, running `image`; with `agent` (the volume that
/// carries it), headjack's agent is its PID 1.
pub(crate) fn plan(
    spec: &Spec,
    base: &Base,
    image: &ResolvedImage,
    id: &str,
    owner: &str,
    now: SystemTime,
    agent: Option<&str>,
) -> Result<ContainerPlan> {
    let dir = spec.resolved_base_dir()?;
    let mut mounts = Vec::new();
    let mut workdir = spec.workdir.clone();
    if let Some(ws) = spec.get_workspace() {
        let host = absolute(&dir, &ws.host);
        let host = host.canonicalize().map_err(|e| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "workspace {} cannot be used: {e}; create it or fix the path",
                    host.display()
                ),
            )
        })?;
        if !host.is_dir() {
            return Err(Error::invalid_argument(format!(
                "workspace {} is not a directory",
                host.display()
            )));
        }
        mounts.push(PlanMount::Bind {
            source: host.display().to_string(),
            target: ws.target.clone(),
            read_only: ws.read_only,
        });
        workdir.get_or_insert(ws.target);
    }
    for m in &spec.mounts {
        mounts.push(match &m.kind {
            MountKind::Bind(p) => {
                let host = absolute(&dir, p);
                if !host.exists() {
                    return Err(Error::invalid_argument(format!(
                        "bind mount source {} does not exist",
                        host.display()
                    )));
                }
                PlanMount::Bind {
                    source: host.display().to_string(),
                    target: m.target.clone(),
                    read_only: m.read_only,
                }
            }
            MountKind::Volume(name) => PlanMount::Volume {
                name: name.clone(),
                target: m.target.clone(),
                read_only: m.read_only,
            },
            MountKind::Tmpfs(size) => PlanMount::Tmpfs {
                target: m.target.clone(),
                // Validated to fit (Spec::validate).
                size: size.map(|s| s.min(i64::MAX as u64) as i64),
            },
        });
    }
    if spec.hardened && !spec.mounts.iter().any(|m| m.target == "/tmp") {
        mounts.push(PlanMount::Tmpfs {
            target: "/tmp".into(),
            size: None,
        });
    }
    let init = match &spec.init {
        Some(cmd) => Some(cmd.clone()),
        None => match image.details.labels.get(labels::INIT) {
            Some(cmd) => Some(shell_words::split(cmd).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidBase,
                    format!(
                        "image {} has an unparseable {} label {cmd:?}: {e}",
                        image.reference,
                        labels::INIT
                    ),
                )
            })?),
            None => None,
        },
    };
    // The user commands run as unless they say otherwise.
    let default_user = spec.user.clone().or_else(|| image.details.user.clone());
    let expires_at = spec
        .expires_after
        .map(|life| (now.duration_since(UNIX_EPOCH).unwrap_or_default() + life).as_secs());
    let (entrypoint, user) = match agent {
        // The agent is PID 1 and runs the init (if any) under it. It runs as root so it can run
        // each command as its user — except with the hardened preset, whose dropped
        // capabilities forbid switching users: then it runs as the default user itself.
        Some(volume) => {
            mounts.push(PlanMount::Volume {
                name: volume.to_string(),
                target: agent::delivery::MOUNT.to_string(),
                read_only: true,
            });
            let mut argv = vec![agent::delivery::PATH.to_string()];
            let user = match (&default_user, spec.hardened) {
                (Some(u), false) => {
                    argv.extend(["--user".to_string(), u.clone()]);
                    Some("0".to_string())
                }
                (u, true) => u.clone(),
                (None, false) => Some("0".to_string()),
            };
            if let Some(at) = expires_at {
                argv.extend(["--expires-at".to_string(), at.to_string()]);
            }
            if let Some(init) = init {
                argv.push("--".to_string());
                argv.extend(init);
            }
            (argv, user)
        }
        // Without the agent to enforce a lifetime, the default keep-alive ends with it.
        None => (
            init.unwrap_or_else(|| match spec.expires_after {
                Some(life) => vec!["sleep".to_string(), life.as_secs().max(1).to_string()],
                None => DEFAULT_INIT.iter().map(|s| s.to_string()).collect(),
            }),
            spec.user.clone(),
        ),
    };
    let mut all_labels: HashMap<String, String> = spec
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    all_labels.insert(labels::MANAGED.into(), "true".into());
    all_labels.insert(labels::INSTANCE.into(), id.to_string());
    all_labels.insert(labels::BASE.into(), base.to_string());
    all_labels.insert(labels::IMAGE.into(), image.reference.clone());
    all_labels.insert(labels::OWNER.into(), owner.to_string());
    if let Some(at) = expires_at {
        // Validated to at most 100 years (Spec::validate): no overflow.
        all_labels.insert(labels::EXPIRES.into(), at.to_string());
    }
    if agent.is_some() {
        all_labels.insert(labels::AGENT.into(), agent::delivery::version().to_string());
        if let Some(u) = &default_user {
            all_labels.insert(labels::USER.into(), u.clone());
        }
    }
    let network = match (&spec.network, spec.hardened) {
        (Some(n), _) => n.clone(),
        (None, true) => Network::None,
        (None, false) => Network::Bridge,
    };
    Ok(ContainerPlan {
        name: Some(
            spec.name
                .clone()
                .unwrap_or_else(|| format!("headjack-{id}")),
        ),
        image: image.reference.clone(),
        entrypoint,
        env: spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        user,
        workdir,
        labels: all_labels,
        mounts,
        nano_cpus: spec.cpus.map(|c| (c * 1e9) as i64),
        memory: spec.memory.map(|m| m.min(i64::MAX as u64) as i64),
        pids: Some(spec.pids.unwrap_or(Spec::DEFAULT_PIDS_LIMIT)),
        network: Some(network.mode()),
        runtime: spec.runtime.clone(),
        cap_drop_all: spec.hardened,
        read_only_root: spec.hardened,
        hostname: None,
        agent: agent.is_some(),
        ports: spec
            .ports
            .iter()
            .map(|p| (p.host_ip.to_string(), p.host_port, p.container_port))
            .collect(),
        extra: spec.extra_limits(),
        cap_add: Vec::new(),
        security_opt: Vec::new(),
        privileged: false,
        dns: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ImageDetails;
    use crate::spec::Mount;
    use std::time::Duration;

    fn image(labels: &[(&str, &str)]) -> ResolvedImage {
        ResolvedImage {
            reference: "localhost/x:1".into(),
            id: "sha256:1".into(),
            built: false,
            details: ImageDetails {
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Default::default()
            },
        }
    }

    fn plan_of(spec: &Spec) -> Result<ContainerPlan> {
        let at = UNIX_EPOCH + Duration::from_secs(1000);
        plan(spec, &Base::Default, &image(&[]), "abc", "h/1/2", at, None)
    }

    #[test]
    fn defaults() {
        let p = plan_of(&Spec::new()).unwrap();
        assert_eq!(p.name.as_deref(), Some("headjack-abc"));
        assert_eq!(p.entrypoint, ["sleep", "infinity"]);
        assert_eq!(p.pids, Some(Spec::DEFAULT_PIDS_LIMIT));
        assert_eq!(p.network.as_deref(), Some("bridge"));
        assert!(!p.cap_drop_all && !p.read_only_root);
        assert!(p.mounts.is_empty() && p.workdir.is_none());
        assert_eq!(p.labels[labels::MANAGED], "true");
        assert_eq!(p.labels[labels::INSTANCE], "abc");
        assert_eq!(p.labels[labels::OWNER], "h/1/2");
        assert_eq!(p.labels[labels::IMAGE], "localhost/x:1");
        assert!(!p.labels.contains_key(labels::EXPIRES));
    }

    #[test]
    fn table_of_spec_rules() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().to_path_buf();
        type Check = fn(&ContainerPlan);
        let cases: Vec<(&str, Spec, Check)> =
            vec![
                (
                    "hardened drops caps, root read-only, /tmp tmpfs, no network",
                    Spec::new().hardened(true),
                    |p| {
                        assert!(p.cap_drop_all && p.read_only_root);
                        assert_eq!(p.network.as_deref(), Some("none"));
                        assert!(p.mounts.iter().any(
                            |m| matches!(m, PlanMount::Tmpfs { target, .. } if target == "/tmp")
                        ));
                    },
                ),
                (
                    "hardened with an explicit network keeps it",
                    Spec::new()
                        .hardened(true)
                        .network(Network::Named("n".into())),
                    |p| {
                        assert_eq!(p.network.as_deref(), Some("n"));
                    },
                ),
                (
                    "hardened(false) is off again",
                    Spec::new().hardened(true).hardened(false),
                    |p| {
                        assert!(!p.cap_drop_all);
                    },
                ),
                (
                    "a user /tmp mount replaces the hardened one",
                    Spec::new()
                        .hardened(true)
                        .mount(Mount::tmpfs("/tmp", Some(1 << 20))),
                    |p| {
                        assert_eq!(p.mounts.len(), 1);
                    },
                ),
                (
                    "limits",
                    Spec::new().cpus(1.5).memory(64 << 20).pids(10),
                    |p| {
                        assert_eq!(p.nano_cpus, Some(1_500_000_000));
                        assert_eq!(p.memory, Some(64 << 20));
                        assert_eq!(p.pids, Some(10));
                    },
                ),
                (
                    "expiry is now + lifetime",
                    Spec::new().expires_after(Duration::from_secs(60)),
                    |p| {
                        assert_eq!(p.labels[labels::EXPIRES], "1060");
                    },
                ),
                (
                    "init overrides the keep-alive",
                    Spec::new().init(["/bin/init", "-x"]),
                    |p| {
                        assert_eq!(p.entrypoint, ["/bin/init", "-x"]);
                    },
                ),
                (
                    "env and user label",
                    Spec::new().env("A", "1").user("1000").label("k", "v"),
                    |p| {
                        assert_eq!(p.env, ["A=1"]);
                        assert_eq!(p.user.as_deref(), Some("1000"));
                        assert_eq!(p.labels["k"], "v");
                    },
                ),
                ("name", Spec::new().name("mine"), |p| {
                    assert_eq!(p.name.as_deref(), Some("mine"));
                }),
            ];
        for (what, spec, check) in cases {
            let p = plan_of(&spec).unwrap_or_else(|e| panic!("{what}: {e}"));
            check(&p);
        }
        // The workspace, in any call order, becomes the workdir at its target.
        for spec in [
            Spec::new()
                .workspace(&ws)
                .workspace_target("/w")
                .workspace_read_only(true),
            Spec::new()
                .workspace_read_only(true)
                .workspace_target("/w")
                .workspace(&ws),
        ] {
            let p = plan_of(&spec).unwrap();
            assert_eq!(p.workdir.as_deref(), Some("/w"));
            assert!(
                matches!(&p.mounts[0], PlanMount::Bind { target, read_only: true, .. } if target == "/w")
            );
        }
        let p = plan_of(&Spec::new().workspace(&ws).workdir("/elsewhere")).unwrap();
        assert_eq!(p.workdir.as_deref(), Some("/elsewhere"));
    }

    #[test]
    fn bad_inputs_are_clear_errors() {
        let e = plan_of(&Spec::new().workspace("/no/such/dir/here")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.message().contains("/no/such/dir/here"), "{e}");
        let e = plan_of(&Spec::new().mount(Mount::bind("/no/such/src", "/x"))).unwrap_err();
        assert!(e.message().contains("does not exist"), "{e}");
        let at = UNIX_EPOCH;
        let e = plan(
            &Spec::new(),
            &Base::Default,
            &image(&[(labels::INIT, "\"unclosed")]),
            "a",
            "o",
            at,
            None,
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidBase);
    }

    #[test]
    fn image_init_label_is_honoured() {
        let p = plan(
            &Spec::new(),
            &Base::Default,
            &image(&[(labels::INIT, "my-init --serve")]),
            "a",
            "o",
            UNIX_EPOCH,
            None,
        )
        .unwrap();
        assert_eq!(p.entrypoint, ["my-init", "--serve"]);
    }

    #[test]
    fn with_the_agent_it_is_pid_1_and_runs_the_init() {
        let at = UNIX_EPOCH + Duration::from_secs(1000);
        let with = |spec: &Spec, labels: &[(&str, &str)], user: Option<&str>| {
            let mut img = image(labels);
            img.details.user = user.map(str::to_string);
            plan(spec, &Base::Default, &img, "a", "o", at, Some("vol")).unwrap()
        };
        let path = agent::delivery::PATH;
        // No init, no user: the agent alone, as root; its volume read-only; stdio for its channel.
        let p = with(&Spec::new(), &[], None);
        assert_eq!(p.entrypoint, [path]);
        assert_eq!(p.user.as_deref(), Some("0"));
        assert!(p.agent);
        assert!(p.mounts.iter().any(|m| matches!(m, PlanMount::Volume { name, target, read_only: true } if name == "vol" && target == agent::delivery::MOUNT)));
        assert_eq!(p.labels[labels::AGENT], agent::delivery::version());
        // The image's user becomes the agent's default user; the init runs under the agent.
        let p = with(
            &Spec::new(),
            &[(labels::INIT, "my-init --serve")],
            Some("1000"),
        );
        assert_eq!(
            p.entrypoint,
            [path, "--user", "1000", "--", "my-init", "--serve"]
        );
        assert_eq!(p.labels[labels::USER], "1000");
        // The spec's user and lifetime.
        let p = with(
            &Spec::new()
                .user("agent")
                .expires_after(Duration::from_secs(60)),
            &[],
            Some("1000"),
        );
        assert_eq!(
            p.entrypoint,
            [path, "--user", "agent", "--expires-at", "1060"]
        );
        // Hardened: no capabilities to switch users, so the agent runs as the default user.
        let p = with(&Spec::new().hardened(true), &[], Some("1000"));
        assert_eq!(p.entrypoint, [path]);
        assert_eq!(p.user.as_deref(), Some("1000"));
    }
}
