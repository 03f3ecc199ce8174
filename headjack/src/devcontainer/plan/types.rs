//! What a plan is made of: the caller's options and the planned base, workspace, hooks,
//! limits and the rest, in plain values.

use super::*;

/// The caller's choices for [`plan()`].
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// The environment `${localEnv:…}` and `runArgs` `-e NAME` read (normally the process's:
    /// [`PlanOptions::from_process_env`]).
    pub local_env: BTreeMap<String, String>,
    /// Allow `privileged: true` (in the definition, its `runArgs` or a local feature).
    /// Without it such a definition is refused.
    pub allow_privileged: bool,
}

impl PlanOptions {
    /// Options with the process's environment (variables that are not UTF-8 are skipped)
    /// and privileged containers refused.
    pub fn from_process_env() -> PlanOptions {
        PlanOptions {
            local_env: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            allow_privileged: false,
        }
    }
}

/// What the container is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanBase {
    /// A registry image (normalised, fully qualified).
    Image {
        /// The reference, e.g. `docker.io/library/debian:bookworm-slim`.
        reference: String,
    },
    /// A Dockerfile build.
    Dockerfile {
        /// The Dockerfile (absolute; it exists).
        dockerfile: PathBuf,
        /// The build context directory (absolute; it exists).
        context: PathBuf,
        /// `build.args`, variables resolved.
        build_args: BTreeMap<String, String>,
        /// `build.target`.
        target: Option<String>,
    },
}

/// How the workspace reaches the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkspaceMount {
    /// The default: the host workspace folder bind-mounted read-write at `target`
    /// (`/workspaces/<folder name>`, whatever `workspaceFolder` says — as the CLI does).
    Default {
        /// Where it is mounted.
        target: String,
    },
    /// `workspaceMount` replaced the default bind.
    Custom(MountPlan),
    /// `workspaceMount` is `""`: no workspace mount at all.
    None,
}

/// The workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspacePlan {
    /// The workspace folder on the host (absolute).
    pub host_dir: PathBuf,
    /// `workspaceFolder`: the working directory of every exec and hook (default
    /// `/workspaces/<folder name>`).
    pub container_folder: String,
    /// The mount.
    pub mount: WorkspaceMount,
}

/// Who a hook step comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookOrigin {
    /// The definition.
    Definition,
    /// The local feature with this id.
    Feature(String),
}

/// One command of a hook step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookCommand {
    /// The entry's name in the object form; `None` for the string and array forms.
    pub name: Option<String>,
    /// What to execute (`/bin/sh -c <string>` for the string form).
    pub argv: Vec<String>,
}

/// A hook step: commands that run in parallel; the step succeeds when all of them do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookStep {
    /// The hook.
    pub hook: Hook,
    /// Where it was written.
    pub origin: HookOrigin,
    /// The commands (one for the string/array forms).
    pub commands: Vec<HookCommand>,
}

/// Resource limits.
///
/// `hostRequirements` are minimums in the specification; as limits they can exceed what the
/// engine has (Docker refuses more CPUs than it has), so the spawn should cap `cpus` at the
/// engine's CPU count. `storage_bytes` needs an engine and storage driver that support a
/// size option (overlay2 on xfs with project quotas, …).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Limits {
    /// CPUs (`hostRequirements.cpus`; `runArgs --cpus` wins).
    pub cpus: Option<f64>,
    /// Memory in bytes (`hostRequirements.memory`; `runArgs --memory` wins).
    pub memory_bytes: Option<u64>,
    /// Storage in bytes (`hostRequirements.storage`).
    pub storage_bytes: Option<u64>,
}

/// Everything a spawn needs from a dev container definition.
#[derive(Debug, Clone, PartialEq)]
pub struct DevContainerPlan {
    /// The definition file (absolute).
    pub config_file: PathBuf,
    /// `name`.
    pub name: Option<String>,
    /// The `${devcontainerId}` of this definition and workspace.
    pub devcontainer_id: String,
    /// What the container is made from.
    pub base: PlanBase,
    /// Local features to install on top of `base`, if any.
    pub features: Option<FeatureLayer>,
    /// `containerEnv` (and `runArgs -e`): the container's environment.
    pub container_env: BTreeMap<String, String>,
    /// `remoteEnv`: added to every exec and hook; `None` unsets the variable. May hold
    /// `${containerEnv:…}` until [`DevContainerPlan::resolve_container_env`].
    pub remote_env: BTreeMap<String, Option<String>>,
    /// `containerUser` (or `runArgs --user`): the user the container runs as; `None`: the
    /// image's.
    pub container_user: Option<String>,
    /// The user execs and hooks run as: `remoteUser`, else `container_user`; `None`: the
    /// image's.
    pub remote_user: Option<String>,
    /// The workspace.
    pub workspace: WorkspacePlan,
    /// `mounts` (definition, features, `runArgs`), in that order.
    pub mounts: Vec<MountPlan>,
    /// The hook steps, in the order they run.
    pub hooks: Vec<HookStep>,
    /// Capabilities to add.
    pub cap_add: Vec<String>,
    /// Security options.
    pub security_opt: Vec<String>,
    /// Run an init process as PID 1.
    pub init: bool,
    /// Privileged (only ever true when [`PlanOptions::allow_privileged`] was set).
    pub privileged: bool,
    /// Ports to publish.
    pub ports: Vec<PortPublish>,
    /// Resource limits.
    pub limits: Limits,
    /// `runArgs --network`.
    pub network: Option<String>,
    /// Labels to put on the container.
    pub labels: BTreeMap<String, String>,
    /// Everything not supported or not acted on, each naming file, line and column.
    pub warnings: Vec<String>,
}

impl DevContainerPlan {
    /// Whether `remote_env` or a hook still holds `${containerEnv:…}`, to be resolved with
    /// [`DevContainerPlan::resolve_container_env`] once the container exists.
    pub fn needs_container_env(&self) -> bool {
        self.remote_env
            .values()
            .flatten()
            .any(|v| has_container_env(v))
            || self
                .hooks
                .iter()
                .flat_map(|s| &s.commands)
                .flat_map(|c| &c.argv)
                .any(|a| has_container_env(a))
    }

    /// Resolves `${containerEnv:X[:default]}` in `remote_env` and the hooks against the
    /// container's environment (as the engine reports it: the image's variables overlaid by
    /// `containerEnv`). A variable the container lacks becomes its default, else empty.
    pub fn resolve_container_env(&mut self, container_env: &BTreeMap<String, String>) {
        let resolve = |s: &mut String| {
            // The first pass already refused `${containerEnv}` without a name, the only error.
            if let Ok(resolved) = resolve_container_env(s, container_env) {
                *s = resolved;
            }
        };
        self.remote_env.values_mut().flatten().for_each(resolve);
        self.hooks
            .iter_mut()
            .flat_map(|s| &mut s.commands)
            .flat_map(|c| &mut c.argv)
            .for_each(resolve);
    }
}
