//! The label contract with the engine (DESIGN §6): how headjack recognises its own containers
//! and images, and who owns them.

use std::collections::HashMap;

/// Marks every container headjack creates.
pub const MANAGED: &str = "io.headjack.managed";
/// The instance ID (also in the container name unless one was given).
pub const INSTANCE: &str = "io.headjack.instance";
/// The base as the caller asked for it.
pub const BASE: &str = "io.headjack.base";
/// The resolved image reference the container runs.
pub const IMAGE: &str = "io.headjack.image";
/// `<host>/<pid>/<process start time>` of the process that spawned the container.
pub const OWNER: &str = "io.headjack.owner";
/// The owner value of an instance spawned with [`crate::Spec::detached`]: never an orphan.
pub const DETACHED: &str = "detached";
/// Unix seconds after which `sweep` may remove the container.
pub const EXPIRES: &str = "io.headjack.expires";
/// Image label: the command that keeps a container alive (default `sleep infinity`).
pub const INIT: &str = "io.headjack.init";
/// Image label: the cache key of a headjack build. Read when present; headjack does not set
/// it at build time (each build label costs the classic builder a commit step) — the key is in
/// the tag `localhost/headjack/<slug>:<key16>` and recorded in the cache directory.
pub const BUILD_KEY: &str = "io.headjack.build.key";
/// Image label: what a headjack build was built from (the Dockerfile path). Read when present,
/// like [`BUILD_KEY`].
pub const BUILD_SOURCE: &str = "io.headjack.build.source";
/// The container labels headjack sets itself; a spec may not set them.
pub const RESERVED: [&str; 6] = [MANAGED, INSTANCE, BASE, IMAGE, OWNER, EXPIRES];
/// Label on the containers and images headjack's own test suites create.
pub const TEST: &str = "io.headjack.test";

/// A random identifier: 12 lowercase hex digits (instance IDs, exec markers).
pub(crate) fn random_id() -> String {
    format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

/// Who owns a container: this process, identified so that a recycled PID is not mistaken for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    pub host: String,
    pub pid: u32,
    pub start_time: u64,
}

impl Owner {
    /// The owner label of the current process.
    pub(crate) fn current() -> Owner {
        let pid = std::process::id();
        Owner {
            host: hostname(),
            pid,
            start_time: process_start_time(pid).unwrap_or(0),
        }
    }

    pub(crate) fn to_label(&self) -> String {
        format!("{}/{}/{}", self.host, self.pid, self.start_time)
    }

    pub(crate) fn parse(s: &str) -> Option<Owner> {
        let mut parts = s.rsplitn(3, '/');
        let start_time = parts.next()?.parse().ok()?;
        let pid = parts.next()?.parse().ok()?;
        let host = parts.next()?.to_string();
        Some(Owner {
            host,
            pid,
            start_time,
        })
    }

    /// Whether this owner is a process on this host that no longer exists. An owner on
    /// another host is never judged dead: we cannot see its processes.
    pub(crate) fn is_gone_from_this_host(&self) -> bool {
        if self.host != hostname() {
            return false;
        }
        match process_start_time(self.pid) {
            None => true,
            Some(t) => t != self.start_time,
        }
    }
}

/// The host name, as the kernel reports it.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Start time of a process in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
pub(crate) fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The labels on a container that make it findable by `list`, `attach` and `sweep`.
pub(crate) fn is_managed(labels: &HashMap<String, String>) -> bool {
    labels.get(MANAGED).map(String::as_str) == Some("true")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_round_trips_and_tolerates_slashes_in_host() {
        let o = Owner {
            host: "a/b".into(),
            pid: 42,
            start_time: 7,
        };
        assert_eq!(Owner::parse(&o.to_label()), Some(o));
        assert_eq!(Owner::parse("nohost"), None);
        assert_eq!(Owner::parse("h/x/1"), None);
    }

    #[test]
    fn current_process_is_alive_and_dead_pid_is_gone() {
        let me = Owner::current();
        assert!(me.start_time > 0);
        assert!(!me.is_gone_from_this_host());
        let recycled = Owner {
            start_time: me.start_time + 1,
            ..me.clone()
        };
        assert!(recycled.is_gone_from_this_host());
        let elsewhere = Owner {
            host: "some-other-host".into(),
            pid: 1,
            start_time: 1,
        };
        assert!(!elsewhere.is_gone_from_this_host());
    }
}
