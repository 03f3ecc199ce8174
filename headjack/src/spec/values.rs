//! The values a [`Spec`](super::Spec) is made of: network, pull policy, mounts, readiness,
//! the base argument, the workspace, build options.

use super::*;

/// Where the container's network goes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Network {
    /// The engine's default bridge (outbound access).
    #[default]
    Bridge,
    /// No network at all: only a loopback interface.
    None,
    /// A named engine network (it must exist).
    Named(String),
}

impl Network {
    /// Parses `bridge`, `none` or any other name (a named network).
    pub fn parse(s: &str) -> Network {
        match s {
            "" | "bridge" | "default" => Network::Bridge,
            "none" => Network::None,
            other => Network::Named(other.to_string()),
        }
    }

    pub(crate) fn mode(&self) -> String {
        match self {
            Network::Bridge => "bridge".into(),
            Network::None => "none".into(),
            Network::Named(n) => n.clone(),
        }
    }
}

/// When to contact the registry for an image base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Pull only when the image is not present locally.
    #[default]
    Missing,
    /// Always pull (picks up a moved tag); fails when the registry cannot be reached.
    Always,
    /// Never pull: a missing image is an `ImageNotFound` error.
    Never,
}

impl PullPolicy {
    /// Parses `missing`, `always` or `never`.
    pub fn parse(s: &str) -> Result<PullPolicy> {
        match s {
            "missing" => Ok(PullPolicy::Missing),
            "always" => Ok(PullPolicy::Always),
            "never" => Ok(PullPolicy::Never),
            other => Err(Error::invalid_argument(format!(
                "unknown pull policy {other:?}: use \"missing\", \"always\" or \"never\""
            ))),
        }
    }
}

/// An extra mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub(crate) kind: MountKind,
    pub(crate) target: String,
    pub(crate) read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MountKind {
    Bind(PathBuf),
    Volume(String),
    Tmpfs(Option<u64>),
}

impl Mount {
    /// Bind-mounts host directory or file `host` at `target` (read-write unless
    /// [`Mount::read_only`]). Relative host paths resolve against the spec's base directory.
    pub fn bind(host: impl Into<PathBuf>, target: impl Into<String>) -> Mount {
        Mount {
            kind: MountKind::Bind(host.into()),
            target: target.into(),
            read_only: false,
        }
    }

    /// Mounts engine volume `name` (created by the engine if missing) at `target`.
    pub fn volume(name: impl Into<String>, target: impl Into<String>) -> Mount {
        Mount {
            kind: MountKind::Volume(name.into()),
            target: target.into(),
            read_only: false,
        }
    }

    /// Mounts a fresh in-memory filesystem at `target`, optionally bounded to `size_bytes`.
    pub fn tmpfs(target: impl Into<String>, size_bytes: Option<u64>) -> Mount {
        Mount {
            kind: MountKind::Tmpfs(size_bytes),
            target: target.into(),
            read_only: false,
        }
    }

    /// Makes the mount read-only.
    pub fn read_only(mut self) -> Mount {
        self.read_only = true;
        self
    }
}

/// A readiness check: `command` is run until it exits 0 or `timeout` passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub(crate) command: Vec<String>,
    pub(crate) timeout: Duration,
    pub(crate) interval: Duration,
}

impl Readiness {
    /// Retries `command` every 100 ms for up to `timeout`.
    pub fn command<I, S>(command: I, timeout: Duration) -> Readiness
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Readiness {
            command: command.into_iter().map(Into::into).collect(),
            timeout,
            interval: Duration::from_millis(100),
        }
    }

    /// Changes the pause between attempts.
    pub fn interval(mut self, interval: Duration) -> Readiness {
        self.interval = interval;
        self
    }
}

/// The base a spec names: a string to parse at spawn time, or an explicit [`Base`].
#[derive(Debug, Clone)]
pub enum BaseArg {
    /// Parsed with [`Base::parse_in`] against the spec's base directory when spawning.
    Text(String),
    /// Used as is.
    Base(Base),
}

impl From<&str> for BaseArg {
    fn from(s: &str) -> Self {
        BaseArg::Text(s.to_string())
    }
}
impl From<String> for BaseArg {
    fn from(s: String) -> Self {
        BaseArg::Text(s)
    }
}
impl From<&String> for BaseArg {
    fn from(s: &String) -> Self {
        BaseArg::Text(s.clone())
    }
}
impl From<Base> for BaseArg {
    fn from(b: Base) -> Self {
        BaseArg::Base(b)
    }
}
impl From<Dockerfile> for BaseArg {
    fn from(d: Dockerfile) -> Self {
        BaseArg::Base(Base::Dockerfile(d))
    }
}
impl From<ImageRef> for BaseArg {
    fn from(r: ImageRef) -> Self {
        BaseArg::Base(Base::Image(r))
    }
}

/// A host directory bind-mounted into the instance, which becomes its working directory
/// (unless [`Spec::workdir`] says otherwise). [`Spec::workspace`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    /// The host directory (relative paths resolve against the spec's base directory).
    pub host: PathBuf,
    /// Where it is mounted in the container (default [`Workspace::DEFAULT_TARGET`]).
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
}

impl Workspace {
    /// Where the workspace is mounted unless told otherwise.
    pub const DEFAULT_TARGET: &str = "/workspace";
}

/// Build options for a Dockerfile base, set on the spec so they do not depend on the order of
/// calls (they are merged into the [`Dockerfile`] when the base is resolved).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BuildOptions {
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub secrets: BTreeMap<String, SecretSource>,
}

impl BuildOptions {
    pub(crate) fn is_set(&self) -> bool {
        *self != BuildOptions::default()
    }

    /// `d` with these options on top of its own (the spec's win).
    pub(crate) fn apply(&self, mut d: Dockerfile) -> Dockerfile {
        for (k, v) in &self.args {
            d = d.build_arg(k, v);
        }
        if let Some(t) = &self.target {
            d = d.target(t);
        }
        if self.no_cache {
            d = d.no_cache(true);
        }
        for (id, source) in &self.secrets {
            d = d.secret(id, source.clone());
        }
        d
    }
}
