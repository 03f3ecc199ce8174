//! What a [`Spec`] accepts: the limits and the checks made before anything reaches the engine.

use super::*;

impl Spec {
    /// The largest pids limit (the kernel's `PID_MAX_LIMIT`).
    pub const MAX_PIDS: i64 = 4 << 20;
    /// The smallest memory limit the engines accept.
    pub const MIN_MEMORY: u64 = 6 << 20;
    /// The smallest CPU limit the engines accept, in cores.
    pub const MIN_CPUS: f64 = 0.01;
    /// The longest lifetime `expires_after` takes (about 100 years).
    pub const MAX_LIFETIME: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

    /// Checks values that the engine would reject with a less helpful message, or that would
    /// wrap or vanish on their way to it (a memory limit above `i64::MAX`, a CPU limit that
    /// rounds to "no limit").
    pub(crate) fn validate(&self) -> Result<()> {
        if let Some(c) = self.cpus
            && !(c.is_finite() && (Spec::MIN_CPUS..=1e6).contains(&c))
        {
            return Err(Error::invalid_argument(format!(
                "cpus {c}: the CPU limit must be a number of cores between {} and the engine's \
                 CPU count",
                Spec::MIN_CPUS
            )));
        }
        if let Some(m) = self.memory
            && !(Spec::MIN_MEMORY..=i64::MAX as u64).contains(&m)
        {
            return Err(Error::invalid_argument(format!(
                "memory limit {m} bytes: it must be between {} (6 MiB, the engines' minimum) and \
                 {} bytes",
                Spec::MIN_MEMORY,
                i64::MAX
            )));
        }
        if let Some(p) = self.pids
            && !(1..=Spec::MAX_PIDS).contains(&p)
        {
            return Err(Error::invalid_argument(format!(
                "pids limit {p}: it must be between 1 and {}",
                Spec::MAX_PIDS
            )));
        }
        if self.expires_after == Some(Duration::ZERO) {
            // The agent enforces the lifetime: a zero one would end the instance before any
            // command could run in it.
            return Err(Error::invalid_argument(
                "expires_after 0s: a lifetime must be positive (the instance would stop before \
                 it could be used); leave it unset for no expiry",
            ));
        }
        if let Some(life) = self.expires_after
            && life > Spec::MAX_LIFETIME
        {
            return Err(Error::invalid_argument(format!(
                "expires_after {life:?}: a lifetime must be at most 100 years"
            )));
        }
        for m in &self.mounts {
            if let MountKind::Tmpfs(Some(size)) = m.kind
                && size > i64::MAX as u64
            {
                return Err(Error::invalid_argument(format!(
                    "tmpfs size {size} bytes at {}: it must be at most {} bytes",
                    m.target,
                    i64::MAX
                )));
            }
        }
        for (k, v) in &self.env {
            if v.contains('\0') {
                return Err(Error::invalid_argument(format!(
                    "environment variable {k:?}: values cannot contain NUL bytes"
                )));
            }
        }
        for key in self.labels.keys() {
            if crate::labels::RESERVED.contains(&key.as_str()) {
                return Err(Error::invalid_argument(format!(
                    "label {key:?} is reserved for headjack; choose another key"
                )));
            }
        }
        for k in self.env.keys() {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(Error::invalid_argument(format!(
                    "invalid environment variable name {k:?}"
                )));
            }
        }
        if let Some(r) = &self.readiness
            && r.command.is_empty()
        {
            return Err(Error::invalid_argument("the readiness command is empty"));
        }
        if let Some(cmd) = &self.init
            && cmd.is_empty()
        {
            return Err(Error::invalid_argument("the init command is empty"));
        }
        if self.workspace.is_none() {
            if let Some(t) = &self.workspace_target {
                return Err(Error::invalid_argument(format!(
                    "the workspace target {t:?} was given without a workspace: set the workspace \
                     directory too (it needs a workspace to mount)"
                )));
            }
            if self.workspace_read_only {
                return Err(Error::invalid_argument(
                    "a read-only workspace was asked for without a workspace: set the workspace \
                     directory too (it needs a workspace to mount)",
                ));
            }
        }
        if let Some(t) = &self.workspace_target
            && !t.starts_with('/')
        {
            return Err(Error::invalid_argument(format!(
                "workspace target {t:?} must be an absolute path inside the container"
            )));
        }
        for m in &self.mounts {
            if !m.target.starts_with('/') {
                return Err(Error::invalid_argument(format!(
                    "mount target {:?} must be an absolute path inside the container",
                    m.target
                )));
            }
        }
        self.validate_sandbox()?;
        self.validate_egress()?;
        Ok(())
    }

    /// An egress policy needs its own network: not `none`, not a named one.
    fn validate_egress(&self) -> Result<()> {
        let Some(egress) = &self.egress else {
            return Ok(());
        };
        egress.validate()?;
        match &self.network {
            Some(Network::None) => Err(Error::invalid_argument(format!(
                "an egress policy ({}-list of {} pattern(s)) was given with network `none`: an \
                 instance without a network reaches nothing, so there is nothing to filter; drop \
                 the egress policy for no network at all, or drop `network none` for a filtered one",
                if egress.is_allow_list() {
                    "allow"
                } else {
                    "deny"
                },
                egress.patterns().len()
            ))),
            Some(Network::Named(n)) => Err(Error::invalid_argument(format!(
                "an egress policy was given with network {n:?}: an instance with an egress policy \
                 sits on a network of its own that headjack makes (with no route out but its \
                 proxy); drop the network or the egress policy"
            ))),
            _ => Ok(()),
        }
    }
}
