//! What to launch: [`Spec`], a builder that carries everything [`crate::spawn`] needs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::base::{Base, Dockerfile, SecretSource};
use crate::error::{Error, Result};
use crate::progress::{Progress, ProgressFn};
use crate::reference::ImageRef;

mod sandbox;
mod validate;
mod values;
pub use sandbox::Publish;
pub(crate) use sandbox::check_volume_name as sandbox_check_volume_name;
pub use values::{BaseArg, Mount, Network, PullPolicy, Readiness, Workspace};
pub(crate) use values::{BuildOptions, MountKind};

/// Everything needed to launch an instance. Build it with chained calls:
///
/// ```no_run
/// # async fn f() -> headjack::Result<()> {
/// let env = headjack::spawn(
///     headjack::Spec::new()
///         .base("docker.io/library/debian:bookworm-slim")
///         .workspace("./my-repo")
///         .env("TOKEN", "secret")
///         .memory(2 << 30)
///         .network(headjack::Network::None),
/// )
/// .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Spec {
    pub(crate) base: Option<BaseArg>,
    pub(crate) base_dir: Option<PathBuf>,
    pub(crate) name: Option<String>,
    pub(crate) workspace: Option<PathBuf>,
    pub(crate) workspace_target: Option<String>,
    pub(crate) workspace_read_only: bool,
    pub(crate) build: BuildOptions,
    pub(crate) mounts: Vec<Mount>,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) user: Option<String>,
    pub(crate) workdir: Option<String>,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) cpus: Option<f64>,
    pub(crate) memory: Option<u64>,
    pub(crate) pids: Option<i64>,
    pub(crate) network: Option<Network>,
    pub(crate) runtime: Option<String>,
    pub(crate) pull: PullPolicy,
    pub(crate) platform: Option<String>,
    pub(crate) expires_after: Option<Duration>,
    pub(crate) readiness: Option<Readiness>,
    pub(crate) progress: Option<ProgressFn>,
    pub(crate) hardened: bool,
    pub(crate) init: Option<Vec<String>>,
    pub(crate) detached: bool,
    pub(crate) engine_exec: bool,
    pub(crate) ports: Vec<Publish>,
    pub(crate) limits: sandbox::Limits,
    pub(crate) allow_privileged: bool,
    pub(crate) egress: Option<crate::egress::Egress>,
}

impl Spec {
    /// The default pids limit: enough for builds and test runners, low enough to stop a fork bomb.
    pub const DEFAULT_PIDS_LIMIT: i64 = 4096;

    /// An empty spec: the default base, bridge network, default limits.
    pub fn new() -> Spec {
        Spec::default()
    }

    /// The base: a string (`""` for the default, an image reference, or a Dockerfile path —
    /// see [`Base::parse`]) or an explicit [`Base`] / [`Dockerfile`] / [`ImageRef`].
    pub fn base(mut self, base: impl Into<BaseArg>) -> Spec {
        self.base = Some(base.into());
        self
    }

    /// Directory that relative paths (Dockerfile, workspace, bind mounts) resolve against.
    /// Default: the process's current directory.
    pub fn base_dir(mut self, dir: impl Into<PathBuf>) -> Spec {
        self.base_dir = Some(dir.into());
        self
    }

    /// A container name (must be unique on the engine). Default: `headjack-<instance id>`.
    pub fn name(mut self, name: impl Into<String>) -> Spec {
        self.name = Some(name.into());
        self
    }

    /// Bind-mounts host directory `dir` at `/workspace` (see [`Spec::workspace_target`],
    /// [`Spec::workspace_read_only`]); it becomes the working directory.
    pub fn workspace(mut self, dir: impl Into<PathBuf>) -> Spec {
        self.workspace = Some(dir.into());
        self
    }

    /// Mounts the workspace read-only (default: read-write).
    pub fn workspace_read_only(mut self, read_only: bool) -> Spec {
        self.workspace_read_only = read_only;
        self
    }

    /// Where the workspace is mounted (default [`Workspace::DEFAULT_TARGET`]). Without a
    /// [`Spec::workspace`], `spawn` rejects it.
    pub fn workspace_target(mut self, target: impl Into<String>) -> Spec {
        self.workspace_target = Some(target.into());
        self
    }

    /// Sets a build argument of a Dockerfile base (`--build-arg key=value`); it takes part in
    /// the build's cache key. A spec with build options and a base that is not a Dockerfile is
    /// rejected by `spawn`.
    pub fn build_arg(mut self, key: impl Into<String>, value: impl Into<String>) -> Spec {
        self.build.args.insert(key.into(), value.into());
        self
    }

    /// Makes a build secret available to the Dockerfile base's `RUN --mount=type=secret,id=<id>`
    /// steps (see [`crate::base::Dockerfile::secret`]): never in the image, its history, labels,
    /// logs or errors; its id, not its value, is part of the cache key. A spec with build
    /// options and a base that is not a Dockerfile is rejected by `spawn`.
    pub fn build_secret(mut self, id: impl Into<String>, source: SecretSource) -> Spec {
        self.build.secrets.insert(id.into(), source);
        self
    }

    /// Builds this stage of a multi-stage Dockerfile base (`--target`).
    pub fn build_target(mut self, stage: impl Into<String>) -> Spec {
        self.build.target = Some(stage.into());
        self
    }

    /// Builds a Dockerfile base without the engine's layer cache, even when an image with its
    /// content key exists.
    pub fn build_no_cache(mut self, no_cache: bool) -> Spec {
        self.build.no_cache = no_cache;
        self
    }

    /// Adds a mount.
    pub fn mount(mut self, mount: Mount) -> Spec {
        self.mounts.push(mount);
        self
    }

    /// Sets an environment variable for the container and every exec.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Spec {
        self.env.insert(key.into(), value.into());
        self
    }

    /// The user every exec runs as unless it says otherwise (`name`, `uid` or `uid:gid`).
    pub fn user(mut self, user: impl Into<String>) -> Spec {
        self.user = Some(user.into());
        self
    }

    /// The working directory. Default: the workspace mount if any, else the image's.
    pub fn workdir(mut self, dir: impl Into<String>) -> Spec {
        self.workdir = Some(dir.into());
        self
    }

    /// Adds a label to the container (the keys in [`crate::labels::RESERVED`] are headjack's own).
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Spec {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// CPU limit in cores (e.g. `1.5`).
    pub fn cpus(mut self, cpus: f64) -> Spec {
        self.cpus = Some(cpus);
        self
    }

    /// Memory limit in bytes (swap is limited to the same amount).
    pub fn memory(mut self, bytes: u64) -> Spec {
        self.memory = Some(bytes);
        self
    }

    /// Maximum number of processes (default [`Spec::DEFAULT_PIDS_LIMIT`]).
    pub fn pids(mut self, limit: i64) -> Spec {
        self.pids = Some(limit);
        self
    }

    /// The network (default [`Network::Bridge`]).
    pub fn network(mut self, network: Network) -> Spec {
        self.network = Some(network);
        self
    }

    /// An engine runtime, e.g. `runsc` for gVisor.
    pub fn runtime(mut self, runtime: impl Into<String>) -> Spec {
        self.runtime = Some(runtime.into());
        self
    }

    /// When to pull an image base (default [`PullPolicy::Missing`]).
    pub fn pull(mut self, policy: PullPolicy) -> Spec {
        self.pull = policy;
        self
    }

    /// The platform to pull or build for, e.g. `linux/amd64`.
    pub fn platform(mut self, platform: impl Into<String>) -> Spec {
        self.platform = Some(platform.into());
        self
    }

    /// After this long, [`crate::client::Client::sweep`] may remove the instance even if its owner lives.
    pub fn expires_after(mut self, lifetime: Duration) -> Spec {
        self.expires_after = Some(lifetime);
        self
    }

    /// Waits for this check to pass before `spawn` returns.
    pub fn readiness(mut self, check: Readiness) -> Spec {
        self.readiness = Some(check);
        self
    }

    /// Receives pull and build progress.
    pub fn progress(mut self, f: impl Fn(&Progress) + Send + Sync + 'static) -> Spec {
        self.progress = Some(ProgressFn::new(f));
        self
    }

    /// Receives pull and build progress (an already shared callback).
    pub fn progress_fn(mut self, f: ProgressFn) -> Spec {
        self.progress = Some(f);
        self
    }

    /// The hardened preset: all capabilities dropped, read-only root filesystem with a tmpfs
    /// `/tmp`, and no network unless [`Spec::network`] names one explicitly.
    pub fn hardened(mut self, hardened: bool) -> Spec {
        self.hardened = hardened;
        self
    }

    /// Makes the instance outlive this process: it gets no owner, so
    /// [`crate::client::Client::sweep`] removes it only once its lifetime ([`Spec::expires_after`])
    /// has passed. Combine with [`crate::Instance::keep`] (dropping the handle still removes it
    /// otherwise). Meant for instances handed over to others, e.g. `headjack run --keep`.
    pub fn detached(mut self, detached: bool) -> Spec {
        self.detached = detached;
        self
    }

    /// Runs commands through the engine's exec instead of headjack's in-container agent (the
    /// default runs the agent as PID 1: commands start in about a millisecond, timeouts kill
    /// every process a command started, files stream, background processes outlive this
    /// process). Background processes and the agent's file operations are then unavailable.
    pub fn engine_exec(mut self, engine_exec: bool) -> Spec {
        self.engine_exec = engine_exec;
        self
    }

    /// Whether commands go through the engine's exec ([`Spec::engine_exec`]).
    pub fn is_engine_exec(&self) -> bool {
        self.engine_exec
    }

    /// Overrides the keep-alive command (default: the image's `io.headjack.init` label, else
    /// `sleep infinity`).
    pub fn init<I, S>(mut self, command: I) -> Spec
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.init = Some(command.into_iter().map(Into::into).collect());
        self
    }

    /// Allows a privileged container when the base asks for one (a dev container definition's
    /// `privileged: true`, or `--privileged` in its `runArgs`); without it such a base is
    /// refused. Off by default.
    pub fn allow_privileged(mut self, allow: bool) -> Spec {
        self.allow_privileged = allow;
        self
    }

    /// Whether [`Spec::allow_privileged`] was set.
    pub fn is_privileged_allowed(&self) -> bool {
        self.allow_privileged
    }

    /// The directory relative paths resolve against.
    pub(crate) fn resolved_base_dir(&self) -> Result<PathBuf> {
        match &self.base_dir {
            Some(d) if d.is_absolute() => Ok(d.clone()),
            other => {
                let cwd = std::env::current_dir()
                    .map_err(|e| Error::io("reading the current directory", e))?;
                Ok(other.as_ref().map(|d| cwd.join(d)).unwrap_or(cwd))
            }
        }
    }

    /// The base, parsed (once per spawn) and with paths made absolute; the spec's build
    /// options are merged into a Dockerfile base.
    pub(crate) fn resolved_base(&self) -> Result<Base> {
        let dir = self.resolved_base_dir()?;
        let base = match &self.base {
            None => Base::Default,
            Some(BaseArg::Text(s)) => Base::parse_in(s, &dir)?,
            Some(BaseArg::Base(Base::Dockerfile(d))) => {
                Base::Dockerfile(d.clone().resolve_paths(&dir))
            }
            Some(BaseArg::Base(b)) => b.clone(),
        };
        match base {
            Base::Dockerfile(d) => Ok(Base::Dockerfile(self.build.apply(d))),
            // Build options apply to its Dockerfile, if it has one (spawn::devcontainer).
            Base::DevContainer(d) => Ok(Base::DevContainer(d)),
            other if self.build.is_set() => Err(Error::invalid_argument(format!(
                "build options (build args, target, no-cache) were given but the base {other} is \
                 not a Dockerfile"
            ))),
            other => Ok(other),
        }
    }

    /// Checks the base string now, as `spawn` will read it (against the current base
    /// directory): for bindings and command lines that want to report a bad base at once.
    ///
    /// # Errors
    ///
    /// [`crate::error::ErrorKind::InvalidBase`] for an unusable base string (bad reference, missing
    /// Dockerfile).
    pub fn check_base(&self) -> Result<()> {
        match &self.base {
            Some(BaseArg::Text(s)) => Base::parse_in(s, &self.resolved_base_dir()?).map(|_| ()),
            _ => Ok(()),
        }
    }

    /// The base as given (`None`: the default base).
    pub fn get_base(&self) -> Option<&BaseArg> {
        self.base.as_ref()
    }

    /// The directory relative paths resolve against, if set.
    pub fn get_base_dir(&self) -> Option<&Path> {
        self.base_dir.as_deref()
    }

    /// The environment variables set for the container and every exec.
    pub fn get_env(&self) -> &BTreeMap<String, String> {
        &self.env
    }

    /// The labels added to the container.
    pub fn get_labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }

    /// The extra mounts.
    pub fn get_mounts(&self) -> &[Mount] {
        &self.mounts
    }

    /// Whether the hardened preset is on.
    pub fn is_hardened(&self) -> bool {
        self.hardened
    }

    /// Whether the instance is detached from this process.
    pub fn is_detached(&self) -> bool {
        self.detached
    }

    /// The workspace, if one is set.
    pub fn get_workspace(&self) -> Option<Workspace> {
        self.workspace.as_ref().map(|host| Workspace {
            host: host.clone(),
            target: self
                .workspace_target
                .clone()
                .unwrap_or_else(|| Workspace::DEFAULT_TARGET.to_string()),
            read_only: self.workspace_read_only,
        })
    }
}

impl Spec {
    /// An egress policy: the instance reaches only what it allows (or all but what it denies),
    /// through headjack's egress proxy, fail-closed — it sits on a network of its own with no
    /// route out, so a program ignoring the proxy settings reaches nothing. The patterns are
    /// checked at spawn (see [`crate::Egress`]). Not with [`Network::None`] or a named network.
    pub fn egress(mut self, egress: crate::egress::Egress) -> Spec {
        self.egress = Some(egress);
        self
    }

    /// The egress policy, if any ([`Spec::egress`]).
    pub fn get_egress(&self) -> Option<&crate::egress::Egress> {
        self.egress.as_ref()
    }
}

/// `bytes` for people: `64 MiB`, `1.5 GiB`, `512 B`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 || v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Resolves `p` against `dir`, expanding a leading `~/`.
pub(crate) fn absolute(dir: &Path, p: &Path) -> PathBuf {
    if let Ok(rest) = p.strip_prefix("~")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_rejects_bad_values_with_clear_messages() {
        let e = Spec::new().cpus(-1.0).validate().unwrap_err();
        assert!(e.message().contains("cpus"), "{e}");
        // Values that used to wrap or vanish on their way to the engine (issue 9, item 9).
        for bad in [
            Spec::new().memory(1 << 63),
            Spec::new().memory(u64::MAX),
            Spec::new().cpus(5e-10),
            Spec::new().cpus(f64::INFINITY),
            Spec::new().pids(i64::MAX),
            Spec::new().mount(Mount::tmpfs("/t", Some(1 << 63))),
            Spec::new().expires_after(Duration::MAX),
            Spec::new().expires_after(Duration::ZERO),
            Spec::new().env("A", "x\0y"),
        ] {
            let e = bad.validate().unwrap_err();
            assert_eq!(
                e.kind(),
                crate::error::ErrorKind::InvalidArgument,
                "{bad:?}"
            );
        }
        let e = Spec::new().memory(u64::MAX).validate().unwrap_err();
        assert!(
            e.message().contains(&u64::MAX.to_string()),
            "names the value: {e}"
        );
        Spec::new()
            .memory(i64::MAX as u64)
            .cpus(0.01)
            .pids(Spec::MAX_PIDS)
            .expires_after(Spec::MAX_LIFETIME)
            .validate()
            .unwrap();
        let e = Spec::new().cpus(f64::NAN).validate().unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::InvalidArgument);
        assert!(Spec::new().memory(1024).validate().is_err());
        assert!(Spec::new().pids(0).validate().is_err());
        assert!(
            Spec::new()
                .label("io.headjack.managed", "x")
                .validate()
                .is_err()
        );
        assert!(Spec::new().env("A=B", "x").validate().is_err());
        assert!(
            Spec::new()
                .mount(Mount::tmpfs("relative", None))
                .validate()
                .is_err()
        );
        assert!(Spec::new().init(Vec::<String>::new()).validate().is_err());
        assert!(Spec::new().workspace_target("/w").validate().is_err());
        // Order-free: the target may come before the workspace.
        Spec::new()
            .workspace_target("/w")
            .workspace(".")
            .validate()
            .unwrap();
        assert!(
            Spec::new()
                .workspace(".")
                .workspace_target("rel")
                .validate()
                .is_err()
        );
        Spec::new()
            .workspace(".")
            .workspace_target("/w")
            .validate()
            .unwrap();
        Spec::new()
            .cpus(0.5)
            .memory(64 << 20)
            .pids(10)
            .env("A", "b")
            .validate()
            .unwrap();
    }

    #[test]
    fn parsing_helpers() {
        assert_eq!(Network::parse("none"), Network::None);
        assert_eq!(Network::parse("bridge"), Network::Bridge);
        assert_eq!(Network::parse("mynet"), Network::Named("mynet".into()));
        assert_eq!(PullPolicy::parse("never").unwrap(), PullPolicy::Never);
        assert!(
            PullPolicy::parse("sometimes")
                .unwrap_err()
                .message()
                .contains("sometimes")
        );
    }

    #[test]
    fn human_bytes_reads_well() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(64 << 20), "64 MiB");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
    }

    #[test]
    fn absolute_paths() {
        let d = Path::new("/base");
        assert_eq!(absolute(d, Path::new("x")), PathBuf::from("/base/x"));
        assert_eq!(absolute(d, Path::new("/y")), PathBuf::from("/y"));
    }
}
