//! [`plan()`]: a parsed definition + the host workspace + the caller's choices → a
//! [`DevContainerPlan`], everything a spawn needs in plain values (absolute paths, bytes,
//! argv lists), with every variable resolved that can be before the container exists.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::config::{
    AppPort, DevContainerConfig, ForwardPort, Hook, LifecycleCommand, Located, MountEntry,
};
use super::discover::normalize;
use super::features::{self, FeatureLayer, LocalFeature};
use super::jsonc::{Pos, error_at};
use super::mounts::{MountKind, MountPlan, mount_from_object, parse_mount};
use super::run_args::RunArgs;
use super::run_args::parse_run_args;
use super::units::{PortPublish, Protocol, Publish, parse_bytes, parse_publish};
use super::vars::{
    Field, Vars, devcontainer_id, has_container_env, resolve_container_env,
    resolve_known_container_env,
};
use crate::error::Result;
use crate::reference::ImageRef;

/// The label holding the host workspace folder (the devcontainers CLI's id label).
pub const LABEL_LOCAL_FOLDER: &str = "devcontainer.local_folder";
/// The label holding the definition file (the devcontainers CLI's id label).
pub const LABEL_CONFIG_FILE: &str = "devcontainer.config_file";

mod resolver;
mod types;

use resolver::{Resolver, extend_unique, folder_name};
pub use types::*;

/// Plans the container `config` describes for the host folder `workspace` (relative paths
/// resolve against the current directory). Reads the file system (the Dockerfile, context
/// and local features must exist) but no engine.
///
/// # Errors
///
/// [`crate::error::ErrorKind::InvalidBase`], naming file, line and column, for: no `image` or
/// `build.dockerfile`; a Dockerfile or context that does not exist (with the path looked
/// for); an invalid image reference; a bad mount, port, size or `runArgs` value;
/// `privileged` without [`PlanOptions::allow_privileged`]; a variable without a name; a
/// local feature that cannot be read. [`crate::error::ErrorKind::Io`] when a feature folder cannot
/// be listed.
pub fn plan(
    config: &DevContainerConfig,
    workspace: &Path,
    options: &PlanOptions,
) -> Result<DevContainerPlan> {
    let absolute =
        |p: &Path| normalize(&std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()));
    let file = absolute(&config.file);
    let config_dir = file.parent().unwrap_or(Path::new("/")).to_path_buf();
    let cx = Ctx {
        config,
        file: &file,
        config_dir: &config_dir,
    };
    let workspace = absolute(workspace);
    let local_folder = workspace.to_string_lossy().into_owned();
    let id_labels = BTreeMap::from([
        (LABEL_LOCAL_FOLDER.to_string(), local_folder.clone()),
        (
            LABEL_CONFIG_FILE.to_string(),
            file.to_string_lossy().into_owned(),
        ),
    ]);
    let id = devcontainer_id(&id_labels);

    // workspaceFolder first: the other strings may use ${containerWorkspaceFolder}.
    let mut r = Resolver {
        vars: Vars {
            local_env: &options.local_env,
            local_workspace: &local_folder,
            container_workspace: None,
            devcontainer_id: &id,
        },
        warnings: config.warnings.clone(),
    };
    let default_folder = format!("/workspaces/{}", folder_name(&workspace));
    let container_folder = workspace_folder(&cx, &mut r, &default_folder)?;
    r.vars.container_workspace = Some(&container_folder);

    let base = plan_base(&cx, &mut r)?;
    // runArgs first: several settings below merge with them.
    let (run, run_pos) = run_args(&cx, &mut r, options)?;
    let Users {
        container_env,
        mut remote_env,
        container_user,
        remote_user,
    } = env_and_users(&cx, &mut r, &run, run_pos)?;
    let mount = workspace_mount(&cx, &mut r, &container_folder, default_folder)?;
    let local = local_features(&cx, &mut r)?;
    let feature_layer = if local.is_empty() {
        None
    } else {
        Some(features::layer(
            &local,
            container_user.as_deref(),
            remote_user.as_deref(),
        )?)
    };
    let mounts = mounts(&cx, &mut r, &local, &run)?;
    let mut hooks = hooks(&cx, &mut r, &local)?;
    resolve_known(&mut remote_env, &mut hooks, &container_env);
    let security = security(&cx, &mut r, &local, &run, run_pos, options)?;
    let ports = ports(&cx, &mut r, &run)?;
    let limits = limits(&cx, &run)?;
    let name = the_rest(&cx, &mut r)?;
    let mut labels = id_labels;
    labels.extend(run.labels.iter().cloned());
    // The resolver borrows the id and the folder: done with it.
    let warnings = r.warnings;

    Ok(DevContainerPlan {
        config_file: file.clone(),
        name,
        devcontainer_id: id,
        base,
        features: feature_layer,
        container_env,
        remote_env,
        container_user,
        remote_user,
        workspace: WorkspacePlan {
            host_dir: workspace,
            container_folder,
            mount,
        },
        mounts,
        hooks,
        cap_add: security.cap_add,
        security_opt: security.security_opt,
        init: security.init,
        privileged: security.privileged,
        ports,
        limits,
        network: run.network,
        labels,
        warnings,
    })
}

/// What every planning step reads: the definition, its file (absolute) and folder.
struct Ctx<'c> {
    config: &'c DevContainerConfig,
    file: &'c Path,
    config_dir: &'c Path,
}

impl Ctx<'_> {
    /// An error at `pos` of the definition.
    fn at(&self, pos: Pos, what: String) -> crate::error::Error {
        error_at(self.file, pos, what)
    }

    /// A warning at `pos` of the definition.
    fn warning(&self, pos: impl std::fmt::Display, what: impl std::fmt::Display) -> String {
        format!("{}:{pos}: {what}", self.file.display())
    }
}

/// `workspaceFolder` (absolute in the container), or the default `/workspaces/<folder>`.
fn workspace_folder(cx: &Ctx, r: &mut Resolver, default_folder: &str) -> Result<String> {
    let Some(wf) = &cx.config.workspace_folder else {
        return Ok(default_folder.to_string());
    };
    let folder = r.text(cx.file, wf, Field::Container, "workspaceFolder")?;
    if !folder.starts_with('/') {
        return Err(cx.at(
            wf.pos,
            format!("workspaceFolder: {folder:?} is not an absolute path in the container"),
        ));
    }
    Ok(folder)
}

/// The base: `build` (a Dockerfile that must exist, its context, args, target) or `image`.
fn plan_base(cx: &Ctx, r: &mut Resolver) -> Result<PlanBase> {
    let (config, file, config_dir) = (cx.config, cx.file, cx.config_dir);
    let Some(build) = &config.build else {
        let Some(image) = &config.image else {
            return Err(cx.at(
                Pos { line: 1, column: 1 },
                "the definition names neither an image (\"image\") nor a Dockerfile \
                 (\"build.dockerfile\"); Docker Compose definitions are not supported"
                    .to_string(),
            ));
        };
        let text = r.text(file, image, Field::Build, "image")?;
        let reference =
            ImageRef::parse(&text).map_err(|e| cx.at(image.pos, format!("image: {e}")))?;
        return Ok(PlanBase::Image {
            reference: reference.to_string(),
        });
    };
    if let Some(image) = &config.image {
        r.warnings.push(cx.warning(
            image.pos,
            "\"image\" is ignored because a Dockerfile is set",
        ));
    }
    let rel = r.text(file, &build.dockerfile, Field::Build, "build.dockerfile")?;
    let dockerfile = normalize(&config_dir.join(&rel));
    if !dockerfile.is_file() {
        return Err(cx.at(
            build.dockerfile.pos,
            format!(
                "build.dockerfile: the Dockerfile {} does not exist (paths are relative to \
                 {}, the definition's folder)",
                dockerfile.display(),
                config_dir.display()
            ),
        ));
    }
    let context = match &build.context {
        Some(c) => {
            let rel = r.text(file, c, Field::Build, "build.context")?;
            let context = normalize(&config_dir.join(rel));
            if !context.is_dir() {
                return Err(cx.at(
                    c.pos,
                    format!(
                        "build.context: the directory {} does not exist (paths are relative \
                         to {}, the definition's folder)",
                        context.display(),
                        config_dir.display()
                    ),
                ));
            }
            context
        }
        None => config_dir.to_path_buf(),
    };
    let mut build_args = BTreeMap::new();
    for (k, v) in &build.args {
        let value = r.text(file, v, Field::Build, &format!("build.args.{k}"))?;
        build_args.insert(k.clone(), value);
    }
    let target = build
        .target
        .as_ref()
        .map(|t| r.text(file, t, Field::Build, "build.target"))
        .transpose()?;
    Ok(PlanBase::Dockerfile {
        dockerfile,
        context,
        build_args,
        target,
    })
}

/// `runArgs`, parsed, with the position warnings and errors point at.
fn run_args(cx: &Ctx, r: &mut Resolver, options: &PlanOptions) -> Result<(RunArgs, Pos)> {
    let mut run_warnings = Vec::new();
    let run_args_text = cx
        .config
        .run_args
        .iter()
        .enumerate()
        .map(|(i, a)| r.text(cx.file, a, Field::Container, &format!("runArgs[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    let run_pos = cx
        .config
        .run_args
        .first()
        .map(|a| a.pos)
        .unwrap_or_default();
    let run = parse_run_args(&run_args_text, &options.local_env, &mut run_warnings)
        .map_err(|e| cx.at(run_pos, e))?;
    r.warnings
        .extend(run_warnings.into_iter().map(|w| cx.warning(run_pos, w)));
    Ok((run, run_pos))
}

/// Environment and users, from the definition and `runArgs`.
struct Users {
    container_env: BTreeMap<String, String>,
    remote_env: BTreeMap<String, Option<String>>,
    container_user: Option<String>,
    remote_user: Option<String>,
}

/// `containerEnv` (+ `runArgs -e`), `remoteEnv`, `containerUser` (`runArgs --user` wins),
/// `remoteUser` (default: the container's).
fn env_and_users(cx: &Ctx, r: &mut Resolver, run: &RunArgs, run_pos: Pos) -> Result<Users> {
    let (config, file) = (cx.config, cx.file);
    let mut container_env = BTreeMap::new();
    for (k, v) in &config.container_env {
        let value = r.text(file, v, Field::Container, &format!("containerEnv.{k}"))?;
        container_env.insert(k.clone(), value);
    }
    container_env.extend(run.env.iter().cloned());
    let mut remote_env = BTreeMap::new();
    for (k, v) in &config.remote_env {
        let value = v
            .as_ref()
            .map(|v| r.text(file, v, Field::Remote, &format!("remoteEnv.{k}")))
            .transpose()?;
        remote_env.insert(k.clone(), value);
    }
    let mut container_user = config
        .container_user
        .as_ref()
        .map(|u| r.text(file, u, Field::Container, "containerUser"))
        .transpose()?;
    if let Some(user) = &run.user {
        if container_user.as_ref().is_some_and(|u| u != user) {
            r.warnings.push(cx.warning(
                run_pos,
                format!("runArgs --user {user} overrides containerUser, as in docker run"),
            ));
        }
        container_user = Some(user.clone());
    }
    let remote_user = match &config.remote_user {
        Some(u) => Some(r.text(file, u, Field::Container, "remoteUser")?),
        None => container_user.clone(),
    };
    Ok(Users {
        container_env,
        remote_env,
        container_user,
        remote_user,
    })
}

/// `workspaceMount` (`""`: none), or the default bind of the workspace at `default_folder`.
fn workspace_mount(
    cx: &Ctx,
    r: &mut Resolver,
    container_folder: &str,
    default_folder: String,
) -> Result<WorkspaceMount> {
    let Some(wm) = &cx.config.workspace_mount else {
        return Ok(WorkspaceMount::Default {
            target: default_folder,
        });
    };
    let text = r.text(cx.file, wm, Field::Container, "workspaceMount")?;
    if text.trim().is_empty() {
        return Ok(WorkspaceMount::None);
    }
    let mut notes = Vec::new();
    let m = parse_mount(&text, &mut notes)
        .map_err(|e| cx.at(wm.pos, format!("workspaceMount: {e}")))?;
    r.warnings.extend(
        notes
            .into_iter()
            .map(|n| cx.warning(wm.pos, format!("workspaceMount: {n}"))),
    );
    if cx.config.workspace_folder.is_none() {
        r.warnings.push(cx.warning(
            wm.pos,
            format!(
                "workspaceMount is set without workspaceFolder, so execs start in \
                 {container_folder}; set workspaceFolder to the mount's folder"
            ),
        ));
    }
    Ok(WorkspaceMount::Custom(m))
}

/// The local features (`./folder`), read; other features are warnings.
fn local_features(cx: &Ctx, r: &mut Resolver) -> Result<Vec<LocalFeature>> {
    let mut local = Vec::new();
    for f in &cx.config.features {
        if f.id.value.starts_with("./") || f.id.value.starts_with("../") {
            local.push(features::read_local_feature(
                f,
                cx.file,
                cx.config_dir,
                &mut r.warnings,
            )?);
        } else {
            r.warnings.push(cx.warning(
                f.id.pos,
                format!(
                    "features: {:?} is not a local feature (\"./folder\"); features from a \
                     registry or URL are not supported; skipped",
                    f.id.value
                ),
            ));
        }
    }
    Ok(local)
}

/// Mounts: the definition's, the features', `runArgs`'; a warning for an engine socket.
fn mounts(
    cx: &Ctx,
    r: &mut Resolver,
    local: &[LocalFeature],
    run: &RunArgs,
) -> Result<Vec<MountPlan>> {
    let mut mounts = Vec::new();
    for (i, m) in cx.config.mounts.iter().enumerate() {
        mounts.push(r.mount(cx.file, m, &format!("mounts[{i}]"))?);
    }
    for f in local {
        for (i, m) in f.mounts.iter().enumerate() {
            mounts.push(r.mount(&f.file, m, &format!("mounts[{i}]"))?);
        }
    }
    mounts.extend(run.mounts.iter().cloned());
    for m in &mounts {
        if let MountKind::Bind { source } = &m.kind
            && (source.ends_with("docker.sock") || source.ends_with("podman.sock"))
        {
            r.warnings.push(format!(
                "{}: the mount of {} gives the container control of the engine (and so of the host)",
                cx.file.display(),
                source.display()
            ));
        }
    }
    Ok(mounts)
}

/// Hooks: per hook, the features' steps (in install order), then the definition's.
fn hooks(cx: &Ctx, r: &mut Resolver, local: &[LocalFeature]) -> Result<Vec<HookStep>> {
    let mut hooks = Vec::new();
    for hook in Hook::ALL {
        for f in local {
            for (h, command) in f.lifecycle.iter().filter(|(h, _)| *h == hook) {
                hooks.push(r.hook_step(&f.file, *h, HookOrigin::Feature(f.id.clone()), command)?);
            }
        }
        for (h, command) in cx.config.lifecycle.iter().filter(|(h, _)| *h == hook) {
            hooks.push(r.hook_step(cx.file, *h, HookOrigin::Definition, command)?);
        }
    }
    Ok(hooks)
}

/// `${containerEnv:X}` for an X the definition sets is known now; the rest waits for the
/// container ([`DevContainerPlan::resolve_container_env`]).
fn resolve_known(
    remote_env: &mut BTreeMap<String, Option<String>>,
    hooks: &mut [HookStep],
    container_env: &BTreeMap<String, String>,
) {
    for value in remote_env.values_mut().flatten() {
        *value = resolve_known_container_env(value, container_env);
    }
    for arg in hooks
        .iter_mut()
        .flat_map(|s| &mut s.commands)
        .flat_map(|c| &mut c.argv)
    {
        *arg = resolve_known_container_env(arg, container_env);
    }
}

/// Security settings, merged from the definition, its features and `runArgs`.
struct Security {
    cap_add: Vec<String>,
    security_opt: Vec<String>,
    init: bool,
    privileged: bool,
}

/// `capAdd`, `securityOpt`, `init`, and `privileged` (refused unless the caller allows it).
fn security(
    cx: &Ctx,
    r: &mut Resolver,
    local: &[LocalFeature],
    run: &RunArgs,
    run_pos: Pos,
    options: &PlanOptions,
) -> Result<Security> {
    let (config, file) = (cx.config, cx.file);
    let mut cap_add = Vec::new();
    for c in &config.cap_add {
        extend_unique(&mut cap_add, [r.text(file, c, Field::Container, "capAdd")?]);
    }
    extend_unique(&mut cap_add, local.iter().flat_map(|f| f.cap_add.clone()));
    extend_unique(&mut cap_add, run.cap_add.iter().cloned());
    let mut security_opt = Vec::new();
    for s in &config.security_opt {
        extend_unique(
            &mut security_opt,
            [r.text(file, s, Field::Container, "securityOpt")?],
        );
    }
    extend_unique(
        &mut security_opt,
        local.iter().flat_map(|f| f.security_opt.clone()),
    );
    extend_unique(&mut security_opt, run.security_opt.iter().cloned());
    let init = config.init.unwrap_or(false)
        || run.init.unwrap_or(false)
        || local.iter().any(|f| f.init == Some(true));

    let mut privileged_at: Vec<(PathBuf, Pos, String)> = Vec::new();
    if let Some(p) = config.privileged.as_ref().filter(|p| p.value) {
        privileged_at.push((file.to_path_buf(), p.pos, "privileged: true".into()));
    }
    if run.privileged == Some(true) {
        privileged_at.push((file.to_path_buf(), run_pos, "runArgs --privileged".into()));
    }
    for f in local {
        if let Some(p) = f.privileged.as_ref().filter(|p| p.value) {
            privileged_at.push((
                f.file.clone(),
                p.pos,
                format!("feature {} asks for privileged: true", f.id),
            ));
        }
    }
    if let (Some((where_file, pos, what)), false) =
        (privileged_at.first(), options.allow_privileged)
    {
        return Err(error_at(
            where_file,
            *pos,
            format!(
                "{what}: a privileged container can take over the host; headjack refuses it \
                 unless the caller allows it explicitly (allow_privileged)"
            ),
        ));
    }
    Ok(Security {
        cap_add,
        security_opt,
        init,
        privileged: !privileged_at.is_empty(),
    })
}

/// Ports: `forwardPorts` on `127.0.0.1` (engine-chosen host port), `appPort` as written,
/// `runArgs -p`.
fn ports(cx: &Ctx, r: &mut Resolver, run: &RunArgs) -> Result<Vec<PortPublish>> {
    let mut ports = Vec::new();
    for p in &cx.config.forward_ports {
        let port = match &p.value {
            ForwardPort::Port(port) => Some(*port),
            ForwardPort::HostPort(host, port)
                if matches!(host.as_str(), "localhost" | "127.0.0.1" | "::1") =>
            {
                Some(*port)
            }
            ForwardPort::HostPort(host, port) => {
                r.warnings.push(cx.warning(
                    p.pos,
                    format!(
                        "forwardPorts: \"{host}:{port}\" is a port of another host (a Docker \
                         Compose service); only the container's own ports are published; skipped"
                    ),
                ));
                None
            }
        };
        if let Some(port) = port {
            extend_unique(
                &mut ports,
                [PortPublish {
                    container_port: port,
                    protocol: Protocol::Tcp,
                    host_ip: Some("127.0.0.1".into()),
                    host_port: None,
                }],
            );
        }
    }
    for p in &cx.config.app_port {
        match &p.value {
            AppPort::Port(port) => extend_unique(
                &mut ports,
                [PortPublish {
                    container_port: *port,
                    protocol: Protocol::Tcp,
                    host_ip: None,
                    host_port: Some(*port),
                }],
            ),
            AppPort::Text(s) => {
                let s = r.raw(cx.file, p.pos, s, Field::Container, "appPort")?;
                match parse_publish(&s, true).map_err(|e| cx.at(p.pos, format!("appPort: {e}")))? {
                    Publish::One(publish) => extend_unique(&mut ports, [publish]),
                    Publish::Range => r.warnings.push(cx.warning(
                        p.pos,
                        format!("appPort: {s:?}: port ranges are not supported; skipped"),
                    )),
                }
            }
        }
    }
    extend_unique(&mut ports, run.ports.iter().cloned());
    Ok(ports)
}

/// Limits: `hostRequirements.cpus|memory|storage` (`runArgs --cpus/--memory` win).
fn limits(cx: &Ctx, run: &RunArgs) -> Result<Limits> {
    let hr = &cx.config.host_requirements;
    let size = |v: &Option<Located<String>>, key: &str| -> Result<Option<u64>> {
        v.as_ref()
            .map(|s| parse_bytes(&s.value).map_err(|e| cx.at(s.pos, format!("{key}: {e}"))))
            .transpose()
    };
    Ok(Limits {
        cpus: run.cpus.or(hr.cpus.as_ref().map(|c| f64::from(c.value))),
        memory_bytes: match run.memory {
            Some(m) => Some(m),
            None => size(&hr.memory, "hostRequirements.memory")?,
        },
        storage_bytes: size(&hr.storage, "hostRequirements.storage")?,
    })
}

/// The rest: `overrideCommand: false` (a warning) and `name`.
fn the_rest(cx: &Ctx, r: &mut Resolver) -> Result<Option<String>> {
    if let Some(o) = cx.config.override_command.as_ref().filter(|o| !o.value) {
        r.warnings.push(cx.warning(
            o.pos,
            "overrideCommand: false is not supported: headjack always runs its own keep-alive \
             command, not the image's",
        ));
    }
    cx.config
        .name
        .as_ref()
        .map(|n| r.text(cx.file, n, Field::Container, "name"))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    /// A project folder with `.devcontainer/devcontainer.json` = `text` and `files`.
    struct Project {
        dir: tempfile::TempDir,
    }

    impl Project {
        fn new(text: &str, files: &[&str]) -> Project {
            let dir = tempfile::tempdir().unwrap();
            let dc = dir.path().join("proj/.devcontainer");
            std::fs::create_dir_all(&dc).unwrap();
            std::fs::write(dc.join("devcontainer.json"), text).unwrap();
            for f in files {
                let p = dir.path().join("proj").join(f);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                if f.ends_with('/') {
                    std::fs::create_dir_all(&p).unwrap();
                } else {
                    std::fs::write(&p, "FROM scratch\n").unwrap();
                }
            }
            Project { dir }
        }

        fn root(&self) -> PathBuf {
            self.dir.path().join("proj")
        }

        fn config_file(&self) -> PathBuf {
            self.root().join(".devcontainer/devcontainer.json")
        }

        fn plan_with(&self, options: &PlanOptions) -> Result<DevContainerPlan> {
            let config = DevContainerConfig::read(&self.config_file())?;
            plan(&config, &self.root(), options)
        }

        fn plan(&self) -> Result<DevContainerPlan> {
            self.plan_with(&options())
        }
    }

    fn options() -> PlanOptions {
        PlanOptions {
            local_env: BTreeMap::from([
                ("USER".to_string(), "me".to_string()),
                ("TOKEN".to_string(), "s3cret".to_string()),
            ]),
            allow_privileged: false,
        }
    }

    fn ok(text: &str, files: &[&str]) -> (Project, DevContainerPlan) {
        let p = Project::new(text, files);
        let plan = p.plan().unwrap_or_else(|e| panic!("{text}: {e}"));
        (p, plan)
    }

    fn err(text: &str, files: &[&str]) -> String {
        let p = Project::new(text, files);
        let e = p.plan().expect_err(text);
        assert_eq!(e.kind(), ErrorKind::InvalidBase, "{e}");
        e.to_string()
    }

    #[test]
    fn image_base_and_defaults() {
        let (p, plan) = ok(r#"{"image": "debian:bookworm-slim"}"#, &[]);
        assert_eq!(
            plan.base,
            PlanBase::Image {
                reference: "docker.io/library/debian:bookworm-slim".into()
            }
        );
        assert_eq!(plan.config_file, p.config_file());
        assert_eq!(plan.workspace.host_dir, p.root());
        assert_eq!(plan.workspace.container_folder, "/workspaces/proj");
        assert_eq!(
            plan.workspace.mount,
            WorkspaceMount::Default {
                target: "/workspaces/proj".into()
            }
        );
        assert_eq!(plan.devcontainer_id.len(), 52);
        assert_eq!(
            plan.labels,
            BTreeMap::from([
                (
                    LABEL_CONFIG_FILE.to_string(),
                    p.config_file().to_string_lossy().into_owned()
                ),
                (
                    LABEL_LOCAL_FOLDER.to_string(),
                    p.root().to_string_lossy().into_owned()
                ),
            ])
        );
        assert_eq!(plan.devcontainer_id, devcontainer_id(&plan.labels));
        assert!(plan.hooks.is_empty() && plan.mounts.is_empty() && plan.ports.is_empty());
        assert_eq!(plan.limits, Limits::default());
        assert!(!plan.init && !plan.privileged);
        assert!(plan.container_user.is_none() && plan.remote_user.is_none());
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
        assert!(!plan.needs_container_env());
    }

    #[test]
    fn dockerfile_base_forms() {
        let (p, plan) = ok(
            r#"{"build": {"dockerfile": "Dockerfile", "context": "..", "args": {"V": "${localEnv:USER}", "ID": "${devcontainerId}"}, "target": "dev"}}"#,
            &[".devcontainer/Dockerfile"],
        );
        let PlanBase::Dockerfile {
            dockerfile,
            context,
            build_args,
            target,
        } = &plan.base
        else {
            panic!("{:?}", plan.base)
        };
        assert_eq!(dockerfile, &p.root().join(".devcontainer/Dockerfile"));
        assert_eq!(context, &p.root());
        assert_eq!(build_args["V"], "me");
        assert_eq!(build_args["ID"], "${devcontainerId}");
        assert!(
            plan.warnings[0]
                .contains("build.args.ID: ${devcontainerId} cannot be used in build settings"),
            "{:?}",
            plan.warnings
        );
        assert_eq!(target.as_deref(), Some("dev"));

        // Legacy keys; the context defaults to the definition's folder.
        for text in [
            r#"{"dockerFile": "../Dockerfile", "context": ".."}"#,
            r#"{"dockerfile": "../Dockerfile", "context": ".."}"#,
        ] {
            let (p, plan) = ok(text, &["Dockerfile"]);
            assert_eq!(
                plan.base,
                PlanBase::Dockerfile {
                    dockerfile: p.root().join("Dockerfile"),
                    context: p.root(),
                    build_args: BTreeMap::new(),
                    target: None
                }
            );
        }
        let (p, plan) = ok(
            r#"{"build": {"dockerfile": "Dockerfile"}, "image": "x"}"#,
            &[".devcontainer/Dockerfile"],
        );
        let PlanBase::Dockerfile { context, .. } = &plan.base else {
            panic!()
        };
        assert_eq!(context, &p.root().join(".devcontainer"));
        assert!(
            plan.warnings[0].contains("\"image\" is ignored"),
            "{:?}",
            plan.warnings
        );
    }

    #[test]
    fn environment_users_and_variables() {
        let (p, plan) = ok(
            r#"{
  "image": "debian:bookworm-slim",
  "workspaceFolder": "/work/${localWorkspaceFolderBasename}",
  "containerEnv": {"WS": "${containerWorkspaceFolder}", "HOSTWS": "${localWorkspaceFolder}", "ID": "${devcontainerId}", "D": "${localEnv:NOPE:fallback}"},
  "remoteEnv": {"PATH": "${containerEnv:PATH}:/extra", "TOKEN": "${localEnv:TOKEN}", "UNSET_ME": null, "B": "${containerWorkspaceFolderBasename}", "KNOWN": "${containerEnv:D}!"},
  "containerUser": "root", "remoteUser": "${localEnv:USER}",
  "postCreateCommand": "echo ${containerEnv:HOME:/root} > /tmp/h"
}"#,
            &[],
        );
        assert_eq!(plan.workspace.container_folder, "/work/proj");
        // workspaceFolder moves the exec folder, not the default mount (as the CLI).
        assert_eq!(
            plan.workspace.mount,
            WorkspaceMount::Default {
                target: "/workspaces/proj".into()
            }
        );
        assert_eq!(plan.container_env["WS"], "/work/proj");
        assert_eq!(plan.container_env["HOSTWS"], p.root().to_string_lossy());
        assert_eq!(plan.container_env["ID"], plan.devcontainer_id);
        assert_eq!(plan.container_env["D"], "fallback");
        assert_eq!(plan.remote_env["TOKEN"].as_deref(), Some("s3cret"));
        assert_eq!(plan.remote_env["UNSET_ME"], None);
        assert_eq!(plan.remote_env["B"].as_deref(), Some("proj"));
        // Set by containerEnv, so known before the container exists.
        assert_eq!(plan.remote_env["KNOWN"].as_deref(), Some("fallback!"));
        assert_eq!(plan.container_user.as_deref(), Some("root"));
        assert_eq!(plan.remote_user.as_deref(), Some("me"));
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);

        let mut plan = plan;
        assert!(plan.needs_container_env());
        plan.resolve_container_env(&BTreeMap::from([(
            "PATH".to_string(),
            "/usr/bin:/bin".to_string(),
        )]));
        assert_eq!(
            plan.remote_env["PATH"].as_deref(),
            Some("/usr/bin:/bin:/extra")
        );
        assert_eq!(plan.hooks[0].commands[0].argv[2], "echo /root > /tmp/h");
        assert!(!plan.needs_container_env());

        // remoteUser defaults to containerUser.
        let (_, plan) = ok(r#"{"image": "x:1", "containerUser": "dev"}"#, &[]);
        assert_eq!(plan.remote_user.as_deref(), Some("dev"));
    }

    #[test]
    fn workspace_mount_forms() {
        let (p, plan) = ok(
            r#"{"image": "x:1", "workspaceMount": "source=${localWorkspaceFolder}/src,target=/src,type=bind,consistency=cached", "workspaceFolder": "/src"}"#,
            &[],
        );
        assert_eq!(
            plan.workspace.mount,
            WorkspaceMount::Custom(MountPlan {
                kind: MountKind::Bind {
                    source: p.root().join("src")
                },
                target: "/src".into(),
                read_only: false
            })
        );
        assert_eq!(plan.workspace.container_folder, "/src");
        let (_, plan) = ok(r#"{"image": "x:1", "workspaceMount": ""}"#, &[]);
        assert_eq!(plan.workspace.mount, WorkspaceMount::None);
        let (_, plan) = ok(
            r#"{"image": "x:1", "workspaceMount": "type=volume,source=ws,target=/ws"}"#,
            &[],
        );
        assert!(
            plan.warnings[0].contains("workspaceMount is set without workspaceFolder"),
            "{:?}",
            plan.warnings
        );
    }

    #[test]
    fn mounts_both_forms() {
        let (p, plan) = ok(
            r#"{"image": "x:1", "mounts": [
  "source=${localWorkspaceFolder}/data,target=/data,type=bind,readonly",
  "source=cache-${devcontainerId},target=/cache,type=volume",
  "type=tmpfs,target=/scratch,tmpfs-size=64m",
  {"type": "bind", "source": "${localEnv:HOME:/home/me}", "target": "/host-home"},
  {"type": "volume", "source": "named", "target": "/named"},
  {"type": "volume", "target": "/anon"},
], "runArgs": ["-v", "/var/run/docker.sock:/var/run/docker.sock"]}"#,
            &[],
        );
        let kinds: Vec<_> = plan
            .mounts
            .iter()
            .map(|m| (m.kind.clone(), m.target.as_str(), m.read_only))
            .collect();
        let id = plan.devcontainer_id.clone();
        assert_eq!(
            kinds,
            [
                (
                    MountKind::Bind {
                        source: p.root().join("data")
                    },
                    "/data",
                    true
                ),
                (
                    MountKind::Volume {
                        name: Some(format!("cache-{id}"))
                    },
                    "/cache",
                    false
                ),
                (
                    MountKind::Tmpfs {
                        size_bytes: Some(64 << 20)
                    },
                    "/scratch",
                    false
                ),
                (
                    MountKind::Bind {
                        source: "/home/me".into()
                    },
                    "/host-home",
                    false
                ),
                (
                    MountKind::Volume {
                        name: Some("named".into())
                    },
                    "/named",
                    false
                ),
                (MountKind::Volume { name: None }, "/anon", false),
                (
                    MountKind::Bind {
                        source: "/var/run/docker.sock".into()
                    },
                    "/var/run/docker.sock",
                    false
                ),
            ]
        );
        assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
        assert!(plan.warnings[0].contains("gives the container control of the engine"));
    }

    #[test]
    fn hooks_all_forms_in_order() {
        let (_, plan) = ok(
            r#"{"image": "x:1",
  "postAttachCommand": "echo attach",
  "postStartCommand": ["echo", "${containerWorkspaceFolder}"],
  "postCreateCommand": {"deps": "make deps", "db": ["./db.sh", "init"]},
  "updateContentCommand": "",
  "onCreateCommand": "echo create"}"#,
            &[],
        );
        let steps: Vec<_> = plan
            .hooks
            .iter()
            .map(|s| {
                (
                    s.hook,
                    s.commands
                        .iter()
                        .map(|c| (c.name.clone(), c.argv.join(" ")))
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        let sh = |s: &str| format!("/bin/sh -c {s}");
        assert_eq!(
            steps,
            [
                (Hook::OnCreate, vec![(None, sh("echo create"))]),
                (
                    Hook::PostCreate,
                    vec![
                        (Some("deps".into()), sh("make deps")),
                        (Some("db".into()), "./db.sh init".into())
                    ]
                ),
                (
                    Hook::PostStart,
                    vec![(None, "echo /workspaces/proj".into())]
                ),
                (Hook::PostAttach, vec![(None, sh("echo attach"))]),
            ]
        );
        assert!(
            plan.hooks
                .iter()
                .all(|s| s.origin == HookOrigin::Definition)
        );
        assert!(Hook::PostStart.runs_on_every_start() && !Hook::PostCreate.runs_on_every_start());
    }

    #[test]
    fn security_ports_limits_and_run_args() {
        let (_, plan) = ok(
            r#"{"image": "x:1",
  "capAdd": ["SYS_PTRACE"], "securityOpt": ["seccomp=unconfined"], "init": true,
  "forwardPorts": [3000, "localhost:8080", "db:5432"],
  "appPort": [8000, "127.0.0.1:9001:9000/udp", "7000-7001:7000-7001"],
  "hostRequirements": {"cpus": 4, "memory": "8gb", "storage": "32gb"},
  "runArgs": ["--cap-add=SYS_PTRACE", "--cap-add", "NET_ADMIN", "--security-opt", "label=disable",
              "-e", "FROM_RUN=1", "--network=none", "--label", "team=core", "--memory=2g",
              "-p", "5000:5000", "--device", "/dev/fuse", "--hostname=box"],
  "containerEnv": {"FROM_RUN": "0"}}"#,
            &[],
        );
        assert_eq!(plan.cap_add, ["SYS_PTRACE", "NET_ADMIN"]);
        assert_eq!(plan.security_opt, ["seccomp=unconfined", "label=disable"]);
        assert!(plan.init);
        assert_eq!(plan.container_env["FROM_RUN"], "1");
        assert_eq!(plan.network.as_deref(), Some("none"));
        assert_eq!(plan.labels["team"], "core");
        let port = |c, p: Protocol, ip: Option<&str>, h| PortPublish {
            container_port: c,
            protocol: p,
            host_ip: ip.map(String::from),
            host_port: h,
        };
        assert_eq!(
            plan.ports,
            [
                port(3000, Protocol::Tcp, Some("127.0.0.1"), None),
                port(8080, Protocol::Tcp, Some("127.0.0.1"), None),
                port(8000, Protocol::Tcp, None, Some(8000)),
                port(9000, Protocol::Udp, Some("127.0.0.1"), Some(9001)),
                port(5000, Protocol::Tcp, None, Some(5000)),
            ]
        );
        assert_eq!(
            plan.limits,
            Limits {
                cpus: Some(4.0),
                memory_bytes: Some(2 << 30),
                storage_bytes: Some(32 << 30)
            }
        );
        let w = plan.warnings.join("\n");
        assert!(w.contains("\"db:5432\" is a port of another host"), "{w}");
        assert!(w.contains("port ranges are not supported"), "{w}");
        assert!(w.contains("runArgs: --device is not supported"), "{w}");
        assert!(w.contains("runArgs: --hostname is not supported"), "{w}");
        assert_eq!(plan.warnings.len(), 4, "{w}");
    }

    #[test]
    fn privileged_needs_permission() {
        for text in [
            r#"{"image": "x:1", "privileged": true}"#,
            r#"{"image": "x:1", "runArgs": ["--privileged"]}"#,
        ] {
            let p = Project::new(text, &[]);
            let e = p.plan().unwrap_err().to_string();
            assert!(
                e.contains("headjack refuses it unless the caller allows it"),
                "{e}"
            );
            assert!(e.contains("devcontainer.json:1:"), "{e}");
            let allowed = p
                .plan_with(&PlanOptions {
                    allow_privileged: true,
                    ..options()
                })
                .unwrap();
            assert!(allowed.privileged);
        }
        let (_, plan) = ok(r#"{"image": "x:1", "privileged": false}"#, &[]);
        assert!(!plan.privileged);
    }

    #[test]
    fn accepted_and_warned_keys() {
        let (_, plan) = ok(
            r#"{"image": "x:1", "name": "${localEnv:USER}'s box", "overrideCommand": false, "shutdownAction": "none",
  "features": {"ghcr.io/devcontainers/features/node:1": {}}, "dockerComposeFile": "x.yml"}"#,
            &[],
        );
        assert_eq!(plan.name.as_deref(), Some("me's box"));
        let w = plan.warnings.join("\n");
        assert!(w.contains("unsupported key \"dockerComposeFile\""), "{w}");
        assert!(w.contains("overrideCommand: false is not supported"), "{w}");
        assert!(
            w.contains("\"ghcr.io/devcontainers/features/node:1\" is not a local feature"),
            "{w}"
        );
        assert_eq!(plan.warnings.len(), 3, "{w}");
    }

    #[test]
    fn errors_name_the_spot() {
        let cases: [(&str, &[&str], &str); 17] = [
            ("{\n  \"image\": \"x\",,\n}", &[], "devcontainer.json:2:"),
            (
                "{\"image\": \"x\" \"name\": \"y\"}",
                &[],
                "invalid JSONC: Expected comma",
            ),
            (
                "{\n  \"build\": {\"dockerfile\": \"Dockerfile\"}\n}",
                &[],
                "devcontainer.json:2:27: build.dockerfile: the Dockerfile ",
            ),
            (
                "{\"build\": {\"dockerfile\": \"../nope/Dockerfile\"}}",
                &[],
                "/proj/nope/Dockerfile does not exist (paths are relative to ",
            ),
            (
                "{\"build\": {\"dockerfile\": \"Dockerfile\", \"context\": \"../gone\"}}",
                &[".devcontainer/Dockerfile"],
                "build.context: the directory ",
            ),
            (
                "{\"build\": {\"dockerfile\": \".\"}}",
                &[],
                "build.dockerfile: the Dockerfile ",
            ),
            (
                "{\"name\": \"no base\"}",
                &[],
                ":1:1: the definition names neither an image",
            ),
            (
                "{\"image\": \"Not/Valid\"}",
                &[],
                ":1:11: image: invalid image reference \"Not/Valid\"",
            ),
            (
                "{\"image\": \"x:1\",\n \"mounts\": [\"type=bind,target=/x\"]}",
                &[],
                ":2:13: mounts[0]: bind mount",
            ),
            (
                "{\"image\": \"x:1\", \"mounts\": [\"source=rel,target=/x,type=bind\"]}",
                &[],
                "mounts[0]: the bind source \"rel\"",
            ),
            (
                "{\"image\": \"x:1\", \"mounts\": [{\"source\": \"/a\", \"target\": \"/b\"}]}",
                &[],
                "mounts[0]: mount {type: ?",
            ),
            (
                "{\"image\": \"x:1\", \"mounts\": [\"type=bind,source=/a,target=/b,bogus=1\"]}",
                &[],
                "unknown key \"bogus\"",
            ),
            (
                "{\"image\": \"x:1\",\n  \"hostRequirements\": {\"memory\": \"4 gigs\"}}",
                &[],
                ":2:34: hostRequirements.memory: \"4 gigs\" is not a size",
            ),
            (
                "{\"image\": \"x:1\", \"hostRequirements\": {\"storage\": \"0gb\"}}",
                &[],
                "hostRequirements.storage: \"0gb\" is zero",
            ),
            (
                "{\"image\": \"x:1\", \"runArgs\": [\"--memory\", \"huge\"]}",
                &[],
                "runArgs: --memory: \"huge\" is not a size",
            ),
            (
                "{\"image\": \"x:1\", \"workspaceFolder\": \"rel\"}",
                &[],
                "workspaceFolder: \"rel\" is not an absolute path",
            ),
            (
                "{\"image\": \"x:1\", \"remoteEnv\": {\"A\": \"${localEnv}\"}}",
                &[],
                "remoteEnv.A: ${localEnv} needs a variable name",
            ),
        ];
        for (text, files, want) in cases {
            let got = err(text, files);
            assert!(got.contains(want), "{text}\n  got: {got}\n want: {want}");
            assert!(
                got.contains("/proj/.devcontainer/devcontainer.json:"),
                "{got}"
            );
        }
        let e = err("{\"appPort\": \"x:y\", \"image\": \"x:1\"}", &[]);
        assert!(e.contains("appPort: \"x:y\" is not a port mapping"), "{e}");
    }

    #[test]
    fn workspace_override_changes_the_id() {
        let p = Project::new(r#"{"image": "x:1"}"#, &["other/"]);
        let config = DevContainerConfig::read(&p.config_file()).unwrap();
        let a = plan(&config, &p.root(), &options()).unwrap();
        let b = plan(&config, &p.root().join("other"), &options()).unwrap();
        assert_ne!(a.devcontainer_id, b.devcontainer_id);
        assert_eq!(b.workspace.container_folder, "/workspaces/other");
        // Stable: the same inputs give the same id.
        assert_eq!(
            a.devcontainer_id,
            plan(&config, &p.root(), &options())
                .unwrap()
                .devcontainer_id
        );
    }

    /// A JSON value built from fragments that exercise the parsers.
    fn value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-2i64..70000).prop_map(Value::from),
            Just(Value::from(1.5)),
            prop::sample::select(vec![
                "",
                "x",
                "é",
                "/abs",
                "rel",
                "./hello",
                "../up",
                "4gb",
                "lots",
                "0",
                "${localEnv:USER}",
                "${localEnv}",
                "${containerEnv:PATH}",
                "${devcontainerId}",
                "${nope}",
                "${",
                "type=bind,source=/a,target=/b",
                "type=tmpfs,target=/t",
                "source=v,target=/v",
                "target=rel",
                "\"q",
                "-e",
                "--privileged",
                "--memory",
                "--cpus=x",
                "-p",
                "8080:80",
                "127.0.0.1::80",
                "db:5432",
                "Dockerfile",
                "debian:bookworm-slim",
                "Bad/Ref",
                "bind",
                "volume",
            ])
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop::sample::select(vec![
                            "dockerfile",
                            "context",
                            "args",
                            "target",
                            "type",
                            "source",
                            "a",
                            "cpus",
                            "memory",
                            "storage",
                            "gpu",
                        ]),
                        inner
                    ),
                    0..4
                )
                .prop_map(|m| Value::Object(
                    m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]

        // A fuzz of the whole path from text to plan: any definition gives a plan or an
        // error that points into the file, never a panic.
        #[test]
        fn any_definition_plans_or_errors(
            members in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "name", "image", "build", "dockerFile", "context", "containerEnv",
                        "remoteEnv", "containerUser", "remoteUser", "workspaceFolder",
                        "workspaceMount", "mounts", "onCreateCommand", "postCreateCommand",
                        "postStartCommand", "capAdd", "securityOpt", "init", "privileged",
                        "forwardPorts", "appPort", "hostRequirements", "runArgs", "features",
                        "overrideCommand", "shutdownAction", "customizations", "other",
                    ]),
                    value(),
                ),
                0..8,
            ),
            with_image in proptest::prelude::any::<bool>(),
        ) {
            let mut object = serde_json::Map::new();
            if with_image {
                object.insert("image".into(), "debian:bookworm-slim".into());
            }
            for (k, v) in members {
                object.insert(k.to_string(), v);
            }
            let text = serde_json::Value::Object(object).to_string();
            let p = Project::new(&text, &[".devcontainer/Dockerfile", ".devcontainer/hello/install.sh"]);
            match p.plan() {
                Ok(plan) => {
                    proptest::prop_assert!(plan.config_file.is_absolute());
                    proptest::prop_assert_eq!(plan.devcontainer_id.len(), 52);
                }
                Err(e) => {
                    let message = e.to_string();
                    proptest::prop_assert!(
                        message.contains("devcontainer.json:") || message.contains("devcontainer-feature.json"),
                        "an error without a position: {}",
                        message
                    );
                }
            }
        }
    }
}
