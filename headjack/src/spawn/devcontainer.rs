//! A dev container definition as a base (docs/ARCHITECTURE.md#devcontainer): the definition is
//! planned (`crate::devcontainer`, pure) and the plan applied around the ordinary pipeline —
//! before it, a spec with the definition's settings and a concrete base (its image or
//! Dockerfile); between resolve and plan, the local-feature layer; after launch, the exec
//! defaults (`remoteEnv`, `remoteUser`, `workspaceFolder`) and the lifecycle hooks.

use std::collections::BTreeMap;

use crate::base::{Base, DevContainer, Dockerfile};
use crate::devcontainer::{
    self as dc, BASE_IMAGE_ARG, DevContainerPlan, HookStep, IMAGE_USER_ARG, LAYER_DOCKERFILE,
    MountPlan, PlanBase, PlanOptions, WorkspaceMount,
};
use crate::engine::{ContainerPlan, Engine};
use crate::error::{Error, ErrorKind, Result};
use crate::exec::{Exec, ExecDefaults};
use crate::instance::Instance;
use crate::progress::{Progress, ProgressFn};
use crate::reference::ImageRef;
use crate::spec::{Mount, Network, Spec, absolute};

use tracing::Instrument;

use super::resolve::ResolvedImage;

/// Lines of a failing hook's output quoted in its error.
const HOOK_TAIL_LINES: usize = 20;

/// A definition made ready for the pipeline.
pub(crate) struct Prepared {
    /// The caller's spec with the definition's settings under it (the caller's win).
    pub spec: Spec,
    /// The definition's image or Dockerfile.
    pub base: Base,
    /// The plan, for what happens after resolve and after launch.
    pub plan: DevContainerPlan,
}

/// Reads and plans the definition, reports its warnings, and folds it into a spec.
///
/// # Errors
///
/// [`ErrorKind::InvalidBase`] for a definition that cannot be used (its message starts with
/// `file:line:column:`); the spec's own validation errors.
pub(crate) fn prepare(spec: &Spec, definition: &DevContainer) -> Result<Prepared> {
    let dir = spec.resolved_base_dir()?;
    let workspace = spec.workspace.as_ref().map(|w| absolute(&dir, w));
    let options = PlanOptions {
        allow_privileged: spec.allow_privileged,
        ..PlanOptions::from_process_env()
    };
    let mut plan = dc::load(
        &definition.config_file,
        &dir,
        Some(workspace.as_deref().unwrap_or(&definition.workspace)),
        &options,
    )?;
    let source = definition.config_file.display().to_string();
    let base = match &plan.base {
        PlanBase::Image { reference } => {
            if spec.build.is_set() {
                return Err(Error::invalid_argument(format!(
                    "build options (build args, target, no-cache, secrets) were given but the \
                     dev container definition {source} names an image ({reference}), not a \
                     Dockerfile"
                )));
            }
            Base::Image(ImageRef::parse(reference)?)
        }
        PlanBase::Dockerfile {
            dockerfile,
            context,
            build_args,
            target,
        } => {
            let mut d = Dockerfile::new(dockerfile).context(context);
            for (k, v) in build_args {
                d = d.build_arg(k, v);
            }
            if let Some(t) = target {
                d = d.target(t);
            }
            Base::Dockerfile(spec.build.apply(d))
        }
    };

    let mut s = spec.clone();
    let mut env = plan.container_env.clone();
    env.extend(spec.env.clone());
    s.env = env;
    s.user = spec.user.clone().or_else(|| plan.container_user.clone());
    s.workdir = spec
        .workdir
        .clone()
        .or_else(|| Some(plan.workspace.container_folder.clone()));
    // The workspace is the definition's mount now (the caller's folder took its place).
    s.workspace = None;
    s.workspace_target = None;
    let mut mounts = Vec::new();
    match &plan.workspace.mount {
        WorkspaceMount::Default { target } => {
            let mut m = Mount::bind(&plan.workspace.host_dir, target);
            if spec.workspace_read_only {
                m = m.read_only();
            }
            mounts.push(m);
        }
        WorkspaceMount::Custom(m) => mounts.push(to_mount(m, &source)?),
        WorkspaceMount::None => {}
    }
    for m in &plan.mounts {
        mounts.push(to_mount(m, &source)?);
    }
    mounts.extend(spec.mounts.iter().cloned());
    s.mounts = mounts;
    // hostRequirements are minimums; as limits they cannot exceed what the machine has (the
    // engine refuses more CPUs than it has). The caller's limits win.
    let host_cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    s.cpus = spec
        .cpus
        .or_else(|| plan.limits.cpus.map(|c| c.min(host_cpus)));
    s.memory = spec.memory.or(plan.limits.memory_bytes);
    if let Some(bytes) = plan.limits.storage_bytes {
        plan.warnings.push(format!(
            "{source}: hostRequirements.storage ({}) is not applied: headjack sets no storage \
             limit from a definition",
            crate::spec::human_bytes(bytes)
        ));
    }
    // forwardPorts / appPort / runArgs -p: TCP ports, unless the caller publishes the same
    // container port.
    let mut ports = spec.ports.clone();
    for p in &plan.ports {
        let what = format!("port {}/{}", p.container_port, p.protocol);
        if p.protocol != dc::Protocol::Tcp {
            plan.warnings.push(format!(
                "{source}: {what} is not published: headjack publishes TCP ports only"
            ));
            continue;
        }
        if ports.iter().any(|q| q.container_port == p.container_port) {
            continue;
        }
        let ip = match p.host_ip.as_deref() {
            None => std::net::IpAddr::from([0, 0, 0, 0]),
            Some(ip) => match ip.trim_matches(['[', ']']).parse() {
                Ok(ip) => ip,
                Err(_) => {
                    plan.warnings.push(format!(
                        "{source}: {what} is not published: {ip:?} is not an IP address"
                    ));
                    continue;
                }
            },
        };
        ports.push(crate::spec::Publish {
            host_ip: ip,
            host_port: p.host_port.unwrap_or(0),
            container_port: p.container_port,
        });
    }
    s.ports = ports;
    if s.network.is_none() {
        s.network = plan.network.as_deref().map(Network::parse);
    }
    let mut labels = plan.labels.clone();
    labels.extend(spec.labels.clone());
    // Says the instance saved its exec defaults and postStartCommand ([`STATE_FILE`]).
    labels.insert(
        crate::labels::DEVCONTAINER_STATE.to_string(),
        STATE_VERSION.to_string(),
    );
    s.labels = labels;
    s.validate()
        .map_err(|e| e.context(format!("dev container definition {source}")))?;
    for w in &plan.warnings {
        tracing::warn!(definition = %source, warning = %w, "dev container definition");
        ProgressFn::emit(
            spec.progress.as_ref(),
            Progress::Warning {
                source: source.clone(),
                message: w.clone(),
            },
        );
    }
    Ok(Prepared {
        spec: s,
        base,
        plan,
    })
}

/// A definition's mount as a spec mount.
fn to_mount(m: &MountPlan, source: &str) -> Result<Mount> {
    let mount = match &m.kind {
        dc::MountKind::Bind { source } => Mount::bind(source, &m.target),
        dc::MountKind::Volume { name: Some(name) } => Mount::volume(name, &m.target),
        dc::MountKind::Volume { name: None } => {
            return Err(Error::new(
                ErrorKind::InvalidBase,
                format!(
                    "{source}: the anonymous volume at {} is not supported: give it a source \
                     (a volume name)",
                    m.target
                ),
            ));
        }
        dc::MountKind::Tmpfs { size_bytes } => Mount::tmpfs(&m.target, *size_bytes),
    };
    Ok(if m.read_only {
        mount.read_only()
    } else {
        mount
    })
}

/// Builds the local-feature layer on top of `image`, when the definition has one (once per
/// content, as any Dockerfile).
pub(crate) async fn features(
    engine: &Engine,
    plan: &DevContainerPlan,
    spec: &Spec,
    image: ResolvedImage,
) -> Result<ResolvedImage> {
    let Some(layer) = &plan.features else {
        return Ok(image);
    };
    // A fresh directory per spawn (the build key is the content, not the place); its name
    // gives the image its name (localhost/headjack/devcontainer-features).
    let tmp = crate::build::cache_dir()
        .join("devcontainer-features")
        .join(crate::labels::random_id());
    let dir = tmp.join("devcontainer-features");
    let written = layer.write_context(&dir);
    let built = match written {
        Ok(()) => build_layer(engine, plan, spec, &image, &dir).await,
        Err(e) => Err(e),
    };
    if let Err(e) = std::fs::remove_dir_all(&tmp) {
        tracing::debug!(error = %e, dir = %tmp.display(), "removing the features context");
    }
    built
}

/// Builds the written features context `dir` on top of `image`.
async fn build_layer(
    engine: &Engine,
    plan: &DevContainerPlan,
    spec: &Spec,
    image: &ResolvedImage,
    dir: &std::path::Path,
) -> Result<ResolvedImage> {
    let Some(layer) = &plan.features else {
        return Ok(image.clone());
    };
    let user = image
        .details
        .user
        .clone()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "root".to_string());
    let d = Dockerfile::new(dir.join(LAYER_DOCKERFILE))
        .build_arg(BASE_IMAGE_ARG, &image.reference)
        .build_arg(IMAGE_USER_ARG, user);
    let built = crate::build::resolve(engine, &d, spec.pull, spec.progress.as_ref())
        .await
        .map_err(|e| {
            e.context(format!(
                "installing the local features {} of {}",
                layer.feature_ids.join(", "),
                plan.config_file.display()
            ))
        })?;
    Ok(ResolvedImage {
        reference: built.tag,
        id: built.details.id.clone(),
        built: built.built || image.built,
        details: built.details,
        warnings: image.warnings.clone(),
    })
}

/// The container settings a spec has no words for: capabilities, security options,
/// privileged (already refused by planning unless the caller allowed it).
pub(crate) fn apply_to_container(plan: &DevContainerPlan, container: &mut ContainerPlan) {
    container.cap_add.extend(plan.cap_add.iter().cloned());
    container
        .security_opt
        .extend(plan.security_opt.iter().cloned());
    container.privileged = plan.privileged;
}

/// Where a dev container instance keeps what it needs after spawn ([`DevcState`]): in the
/// container's own filesystem (root's, mode 0600), so that it stays with the container, its
/// restarts and its forks (a fork's snapshot carries it), and out of the engine's labels, which
/// anyone who can list containers reads (`remoteEnv` values can be secrets, e.g.
/// `${localEnv:GITHUB_TOKEN}`). The container's label [`crate::labels::DEVCONTAINER_STATE`]
/// says it is there.
pub(crate) const STATE_FILE: &str = "/etc/headjack-devcontainer.json";

/// The format of [`STATE_FILE`] (the value of its label).
pub(crate) const STATE_VERSION: &str = "1";

/// What a dev container instance needs beyond its spawn: the exec defaults (`remoteEnv`,
/// `remoteUser`, `workspaceFolder`) and the hooks that run on every start
/// (`postStartCommand`). Saved in [`STATE_FILE`]; read back by `Client::attach`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct DevcState {
    /// The definition's path on the host that spawned the instance (for messages).
    pub config_file: String,
    /// The exec defaults ([`DevcState::defaults`]).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub unset: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    /// The steps run again on every start, in order.
    #[serde(default)]
    pub post_start: Vec<SavedStep>,
}

impl DevcState {
    /// The exec defaults it holds.
    pub(crate) fn defaults(&self) -> ExecDefaults {
        let mut d = ExecDefaults::new();
        for (k, v) in &self.env {
            d = d.env(k, v);
        }
        for k in &self.unset {
            d = d.unset(k);
        }
        if let Some(u) = &self.user {
            d = d.user(u);
        }
        if let Some(w) = &self.workdir {
            d = d.workdir(w);
        }
        d
    }
}

/// A hook step as saved: its commands run in parallel.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct SavedStep {
    /// The key, e.g. `postStartCommand`.
    pub hook: String,
    /// The local feature that wrote it (`None`: the definition).
    pub feature: Option<String>,
    pub commands: Vec<SavedCommand>,
}

/// One command of a [`SavedStep`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct SavedCommand {
    /// The entry's name (object form).
    pub name: Option<String>,
    pub argv: Vec<String>,
}

impl SavedStep {
    fn of(step: &HookStep) -> SavedStep {
        SavedStep {
            hook: step.hook.key().to_string(),
            feature: match &step.origin {
                dc::HookOrigin::Definition => None,
                dc::HookOrigin::Feature(f) => Some(f.clone()),
            },
            commands: step
                .commands
                .iter()
                .map(|c| SavedCommand {
                    name: c.name.clone(),
                    argv: c.argv.clone(),
                })
                .collect(),
        }
    }
}

/// When a hook runs: what a failure's message says happened to the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HookWhen {
    /// At spawn: the instance is removed.
    Spawn,
    /// At a later start: the instance stays (running).
    Start,
}

/// Saves `state` in the instance's [`STATE_FILE`]. A failure (a read-only root filesystem) is
/// a warning, returned: the handle keeps the state in memory, an attached handle will not have
/// it.
async fn save_state(instance: &Instance, state: &DevcState) -> Option<String> {
    let saved = match serde_json::to_vec(state) {
        Ok(json) => instance.write_root_file(STATE_FILE, &json, 0o600).await,
        Err(e) => Err(Error::new(ErrorKind::Internal, e.to_string())),
    };
    let e = saved.err()?;
    Some(format!(
        "{}: the exec defaults and postStartCommand could not be saved in the instance ({e}): \
         a handle from Client::attach runs commands without remoteEnv, remoteUser and \
         workspaceFolder, and its restarts do not run postStartCommand",
        state.config_file
    ))
}

/// Reads the state an instance saved at spawn (`Client::attach`).
///
/// # Errors
///
/// [`ErrorKind::NotFound`] when the file is missing; the file's read errors; a file that is not
/// a state as an internal error.
pub(crate) async fn load_state(instance: &Instance) -> Result<DevcState> {
    let json = instance.read_root_file(STATE_FILE, 1 << 20).await?;
    let state: DevcState = serde_json::from_slice(&json).map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!(
                "{STATE_FILE} in instance {} is not readable: {e}",
                instance.id()
            ),
        )
    })?;
    state.defaults().validate()?;
    Ok(state)
}

/// After launch: the exec defaults, then the hooks in order. On an error the caller removes
/// the instance.
///
/// # Errors
///
/// [`ErrorKind::ExecFailed`] naming the hook (and entry) that failed, its exit code and the
/// end of its output; engine errors.
pub(crate) async fn after_launch(
    instance: &Instance,
    mut plan: DevContainerPlan,
    progress: Option<&ProgressFn>,
    workdir: Option<String>,
) -> Result<()> {
    if plan.needs_container_env() {
        let env = container_env(instance).await?;
        plan.resolve_container_env(&env);
    }
    let mut defaults = ExecDefaults::new();
    if let Some(dir) = workdir {
        defaults = defaults.workdir(dir);
    }
    if let Some(user) = &plan.remote_user {
        defaults = defaults.user(user);
    }
    for (k, v) in &plan.remote_env {
        defaults = match v {
            Some(v) => defaults.env(k, v),
            // null unsets the variable (one of the image's or containerEnv's).
            None => defaults.unset(k),
        };
    }
    instance
        .set_exec_defaults(defaults.clone())
        .map_err(|e| e.context(format!("remoteEnv of {}", plan.config_file.display())))?;
    let file = plan.config_file.display().to_string();
    let steps: Vec<SavedStep> = plan.hooks.iter().map(SavedStep::of).collect();
    let state = DevcState {
        config_file: file.clone(),
        env: defaults.get_env().clone(),
        unset: defaults.get_unset().iter().cloned().collect(),
        user: defaults.get_user().map(str::to_string),
        workdir: defaults.get_workdir().map(str::to_string),
        post_start: plan
            .hooks
            .iter()
            .filter(|s| s.hook.runs_on_every_start())
            .map(SavedStep::of)
            .collect(),
    };
    if let Some(w) = save_state(instance, &state).await {
        tracing::warn!(definition = %file, warning = %w, "dev container definition");
        ProgressFn::emit(
            progress,
            Progress::Warning {
                source: file.clone(),
                message: w.clone(),
            },
        );
        plan.warnings.push(w);
    }
    instance.set_warnings(plan.warnings.clone());
    instance.set_devcontainer(state);
    run_steps(instance, &file, &steps, progress, HookWhen::Spawn).await
}

/// Runs hook steps in order (each step's commands in parallel).
///
/// # Errors
///
/// As [`after_launch`].
pub(crate) async fn run_steps(
    instance: &Instance,
    file: &str,
    steps: &[SavedStep],
    progress: Option<&ProgressFn>,
    when: HookWhen,
) -> Result<()> {
    for step in steps {
        let span = tracing::info_span!("headjack.devcontainer.hook", hook = %step.hook);
        let runs = step
            .commands
            .iter()
            .map(|c| run_hook(instance, file, step, c, progress, when));
        for r in futures_util::future::join_all(runs).instrument(span).await {
            r?;
        }
    }
    Ok(())
}

/// The container's environment (the image's, overlaid by `containerEnv`), as `env` prints it.
async fn container_env(instance: &Instance) -> Result<BTreeMap<String, String>> {
    let out = instance.exec(Exec::new(["env"])).await?;
    Ok(out
        .stdout_text()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// One command of a hook step, its output lines as progress.
async fn run_hook(
    instance: &Instance,
    file: &str,
    step: &SavedStep,
    command: &SavedCommand,
    progress: Option<&ProgressFn>,
    when: HookWhen,
) -> Result<()> {
    let hook = step.hook.as_str();
    let what = match (&command.name, &step.feature) {
        (Some(n), None) => format!("{hook} entry {n:?}"),
        (Some(n), Some(f)) => format!("{hook} entry {n:?} of feature {f}"),
        (None, None) => hook.to_string(),
        (None, Some(f)) => format!("{hook} of feature {f}"),
    };
    let mut stream = instance
        .exec_stream(Exec::new(command.argv.clone()))
        .await
        .map_err(|e| e.context(format!("{file}: running {what}")))?;
    let mut tail: std::collections::VecDeque<String> = Default::default();
    let mut partial = String::new();
    let mut emit = |line: String| {
        tracing::info!(hook, line = %line, "hook output");
        ProgressFn::emit(
            progress,
            Progress::Hook {
                hook: hook.to_string(),
                entry: command.name.clone(),
                line: line.clone(),
            },
        );
        if tail.len() == HOOK_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    };
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        partial.push_str(&String::from_utf8_lossy(&chunk.data));
        while let Some(i) = partial.find('\n') {
            let line: String = partial.drain(..=i).collect();
            emit(line.trim_end_matches(['\n', '\r']).to_string());
        }
    }
    if !partial.is_empty() {
        emit(std::mem::take(&mut partial));
    }
    let status = stream.wait().await?;
    if status.success() {
        return Ok(());
    }
    let how = if status.timed_out {
        "a timeout".to_string()
    } else {
        format!("exit code {}", status.code)
    };
    let output = if tail.is_empty() {
        "it printed nothing".to_string()
    } else {
        format!(
            "the end of its output:\n{}",
            tail.into_iter().collect::<Vec<_>>().join("\n")
        )
    };
    let fate = match when {
        HookWhen::Spawn => "the instance was removed",
        HookWhen::Start => "the instance was started and keeps running",
    };
    Err(Error::new(
        ErrorKind::ExecFailed,
        format!(
            "{file}: the dev container hook {what} ({}) failed with {how}; {fate}. Fix the \
             command in the definition. {output}",
            command.argv.join(" ")
        ),
    ))
}
