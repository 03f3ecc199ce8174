//! Dev container definitions (`devcontainer.json`) as a base: find one ([`discover()`]), parse
//! it as JSONC ([`DevContainerConfig::parse`]), and turn it into a [`DevContainerPlan`]
//! ([`plan()`]) — plain values for the spawn pipeline, no engine involved.
//!
//! # What is understood
//!
//! | key | becomes |
//! | --- | --- |
//! | `image` | [`PlanBase::Image`] (validated and normalised) |
//! | `build.dockerfile`, `build.context`, `build.args`, `build.target`; legacy `dockerFile`/`dockerfile` + `context` | [`PlanBase::Dockerfile`], paths relative to the definition's folder, made absolute; the Dockerfile must exist |
//! | `containerEnv` | [`DevContainerPlan::container_env`] |
//! | `remoteEnv` | [`DevContainerPlan::remote_env`], for every exec and hook; `null` unsets |
//! | `containerUser`, `remoteUser` | the container's user; the user of execs and hooks (default: the container's) |
//! | `workspaceFolder`, `workspaceMount` | [`WorkspacePlan`]; `workspaceMount: ""` means no workspace mount |
//! | `mounts` | [`MountPlan`]s; string (`--mount` syntax) and object forms; bind, volume, tmpfs |
//! | `onCreateCommand`, `updateContentCommand`, `postCreateCommand`, `postStartCommand`, `postAttachCommand` | [`HookStep`]s in that order |
//! | `capAdd`, `securityOpt`, `init` | the same settings |
//! | `privileged` | refused unless [`PlanOptions::allow_privileged`] |
//! | `forwardPorts` | ports published on `127.0.0.1`, host port chosen by the engine |
//! | `appPort` (legacy) | ports published as written (`3000` → host 3000) |
//! | `hostRequirements.cpus`, `.memory`, `.storage` | [`Limits`] |
//! | `runArgs` | `--cap-add`, `--security-opt`, `-e/--env`, `-m/--memory`, `--cpus`, `--network`, `--init`, `--privileged`, `-u/--user`, `-l/--label`, `--mount`, `-v/--volume`, `-p/--publish`; other flags are warnings |
//! | `features` with `./local` folders | a generated [`FeatureLayer`] |
//! | `name`, `overrideCommand: true`, `shutdownAction` | accepted (see below) |
//!
//! Every other key is a warning naming it, with its position ("unsupported key X"), never
//! silently dropped — except the tool-specific keys of [`IGNORED_KEYS`] (`customizations`,
//! by the specification for tools to define, and its VS Code predecessors; `waitFor`).
//! Unsupported with a warning: features from a registry or URL, `dockerComposeFile` /
//! `service` / `runServices` (without `image` or `build` that is an error: there is nothing to
//! start from), `initializeCommand` (it would run on the caller's host), `userEnvProbe`,
//! `updateRemoteUserUID`, `portsAttributes`, `secrets`, `hostRequirements.gpu`,
//! `overrideCommand: false`.
//!
//! # Decisions
//!
//! - **Hooks.** A spawn is "create + start + attach", so all five hooks run at spawn, in
//!   order, as `devcontainer up` does: `onCreateCommand`, `updateContentCommand`,
//!   `postCreateCommand` (once per container), `postStartCommand` (again after each restart:
//!   [`Hook::runs_on_every_start`]), `postAttachCommand` (last). A local feature's hook runs
//!   just before the definition's same hook. String → `/bin/sh -c`, array → argv, object →
//!   named entries run in parallel, the step failing if any entry fails. Empty commands are
//!   skipped.
//! - **After spawn**: the exec defaults (`remoteEnv`, `remoteUser`, `workspaceFolder`) and
//!   the `postStartCommand` steps are saved in the container (`/etc/headjack-devcontainer.json`,
//!   root's, mode 0600; label `io.headjack.devcontainer.state`), not in a label (`remoteEnv`
//!   may hold secrets): `Client::attach` and forks restore them, `Instance::start`/`restart`
//!   run `postStartCommand` again. `postAttachCommand` runs once, at spawn.
//! - **`workspaceFolder` without `workspaceMount`**: as in the devcontainers CLI, the
//!   workspace is still mounted at `/workspaces/<folder name>`; `workspaceFolder` only sets
//!   where execs start. The CLI's "mount the enclosing git root" is not done: the workspace
//!   folder itself is mounted.
//! - **`forwardPorts`** are for the caller's own use, so they bind to `127.0.0.1` on a port
//!   the engine picks (two instances never collide); `"host:port"` of another host (a
//!   Compose service) is skipped. `appPort` keeps its legacy meaning: published as written.
//! - **`hostRequirements`** are minimums in the specification (a service picks a machine at
//!   least that big); here they become the container's limits, the nearest meaning for a
//!   library on a given machine. `runArgs --cpus/--memory` win over them.
//! - **`overrideCommand`** `true` (the default) is what headjack always does: it runs its own
//!   keep-alive command. **`shutdownAction`** is accepted and has no effect: an instance's
//!   lifetime belongs to the caller (dropped → removed, unless kept).
//! - **`${containerEnv:X}`** is resolved in `remoteEnv` and hooks: when planning if the
//!   definition's `containerEnv` sets `X`, otherwise (a variable of the image, like `PATH`)
//!   once the container's environment is known ([`DevContainerPlan::resolve_container_env`]);
//!   elsewhere it stays as written, with a warning (as in the CLI, which only has it after the
//!   container starts).
//! - **`${devcontainerId}`** is the CLI's id of the same labels ([`devcontainer_id`]), so a
//!   volume named with it is shared with the CLI's container for the same folder. It is not
//!   substituted in build settings (the CLI does not either).
//! - **Unknown `${…}` variables** stay as written with a warning, as in the CLI;
//!   `${localEnv}` without a name is an error, as in the CLI.
//! - **Base strings** ([`is_devcontainer_base`]): a path whose last component ends in
//!   `devcontainer.json` or is `.devcontainer`, or an explicit path to a folder holding a
//!   definition — unless that folder holds a `Dockerfile`/`Containerfile` itself, which keeps
//!   its meaning (name the definition by its path then).
//! - **Local features** install in the order listed, through a generated Dockerfile layer on
//!   top of the base ([`FeatureLayer`]); a feature's `containerEnv` becomes `ENV` in that
//!   layer, its mounts, capabilities, security options, `init`, `privileged` and hooks join
//!   the definition's. `dependsOn`, `installsAfter` ordering and `entrypoint` are not
//!   supported.
//! - **Labels**: `devcontainer.local_folder` and `devcontainer.config_file`, the CLI's id
//!   labels, so editors and the CLI recognise the container.
//! - **Errors** are [`crate::error::ErrorKind::InvalidBase`] and start with `file:line:column:` and
//!   the key (`mounts[2]: …`). Warnings have the same shape.

// The module's vocabulary, re-exported whole (the spawn pipeline uses part of it; the unit
// tests and the docs above the rest).
mod config;
mod discover;
mod features;
mod jsonc;
mod mounts;
mod plan;
mod run_args;
mod units;
mod vars;

#[cfg(test)]
mod fixtures;

use std::path::Path;

#[allow(unused_imports)]
pub use config::{
    AppPort, BuildConfig, DevContainerConfig, FeatureRef, ForwardPort, Hook, HostRequirements,
    IGNORED_KEYS, LifecycleCommand, Located, MountEntry, SingleCommand,
};
#[allow(unused_imports)]
pub use discover::{
    DEFINITION_DIR, DEFINITION_DOTFILE, DEFINITION_FILE, Definition, discover,
    is_devcontainer_base, workspace_of,
};
#[allow(unused_imports)]
pub use features::{
    BASE_IMAGE_ARG, ContextFile, ContextSource, FeatureLayer, IMAGE_USER_ARG, LAYER_DOCKERFILE,
};
#[allow(unused_imports)]
pub use jsonc::Pos;
#[allow(unused_imports)]
pub use mounts::{MountKind, MountPlan};
#[allow(unused_imports)]
pub use plan::{
    DevContainerPlan, HookCommand, HookOrigin, HookStep, LABEL_CONFIG_FILE, LABEL_LOCAL_FOLDER,
    Limits, PlanBase, PlanOptions, WorkspaceMount, WorkspacePlan, plan,
};
#[allow(unused_imports)]
pub use units::{PortPublish, Protocol};
#[allow(unused_imports)]
pub use vars::devcontainer_id;

use crate::error::Result;

/// Finds, reads and plans the definition `path` names (relative to `base_dir`), for the
/// workspace the definition describes ([`workspace_of`]) unless `workspace` is given.
///
/// # Errors
///
/// Those of [`discover()`], [`DevContainerConfig::read`] and [`plan()`].
pub fn load(
    path: &Path,
    base_dir: &Path,
    workspace: Option<&Path>,
    options: &PlanOptions,
) -> Result<DevContainerPlan> {
    let definition = discover(path, base_dir)?;
    let config = DevContainerConfig::read(&definition.config_file)?;
    plan(&config, workspace.unwrap_or(&definition.workspace), options)
}
