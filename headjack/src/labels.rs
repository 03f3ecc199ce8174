//! The label contract with the engine (docs/ARCHITECTURE.md#labels): how headjack recognises its own containers
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
/// The process that spawned the container: `<host>/<boot id>/<pid namespace>/<pid>/<start time>` (see docs/ARCHITECTURE.md#labels).
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
/// On an instance: the version (content hash) of the in-container agent that is its PID 1. On a
/// volume: the agent binary it carries. (Absent: the instance uses the engine's exec.)
pub const AGENT: &str = "io.headjack.agent";
/// On an instance that runs the agent: the user its commands run as by default (the container
/// itself runs as root, so that the agent can switch users).
pub const USER: &str = "io.headjack.user";
/// On a dev container instance: its exec defaults and `postStartCommand` are saved in the
/// container (`/etc/headjack-devcontainer.json`, root's, mode 0600; not in a label, since
/// `remoteEnv` values can be secrets), for [`crate::client::Client::attach`] and restarts to
/// read back. The value is the file's format version (`1`).
pub const DEVCONTAINER_STATE: &str = "io.headjack.devcontainer.state";
/// The container labels headjack sets itself; a spec may not set them.
pub const RESERVED: [&str; 8] = [MANAGED, INSTANCE, BASE, IMAGE, OWNER, EXPIRES, AGENT, USER];
/// Label on the containers and images headjack's own test suites create.
pub const TEST: &str = "io.headjack.test";
/// On a named volume: headjack created it for [`crate::Spec::volume`] or
/// [`crate::client::Client::create_volume`] (value `true`). Its expiry, if any, is in [`EXPIRES`].
pub const VOLUME: &str = "io.headjack.volume";
/// On an image: the instance a [`crate::Instance::fork`] snapshot was taken of, to be removed
/// with the fork.
pub const FORK_SNAPSHOT: &str = "io.headjack.fork.snapshot";

/// A random identifier: 12 lowercase hex digits (instance IDs, exec markers).
pub(crate) fn random_id() -> String {
    format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

/// Who owns a container: a process, identified so that neither a recycled PID nor a PID from
/// another PID namespace or another boot is mistaken for it.
///
/// Label form: `<host>/<boot id>/<pid namespace inode>/<pid>/<start time>`; labels written by
/// headjack 0.1 (`<host>/<pid>/<start time>`) are still read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    pub host: String,
    /// The kernel's boot ID (`/proc/sys/kernel/random/boot_id`); `None` in 0.1 labels.
    pub boot: Option<String>,
    /// The inode of the owner's PID namespace (`/proc/self/ns/pid`); `None` in 0.1 labels.
    pub pidns: Option<u64>,
    /// The PID inside that namespace.
    pub pid: u32,
    /// Start time in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
    pub start_time: u64,
}

/// Whether an owner process still lives, as far as this process can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    Alive,
    Gone,
    /// Another host, another boot, or a PID namespace this process cannot see into.
    Unknown,
}

/// The inode of the initial PID namespace (the kernel's `PROC_PID_INIT_INO`): a process in it
/// sees every process of the machine.
const INITIAL_PIDNS: u64 = 0xEFFF_FFFC;

impl Owner {
    /// The owner label of the current process.
    pub(crate) fn current() -> Owner {
        let pid = std::process::id();
        Owner {
            host: hostname(),
            boot: boot_id(),
            pidns: pid_namespace("self"),
            pid,
            start_time: process_start_time(pid).unwrap_or(0),
        }
    }

    pub(crate) fn to_label(&self) -> String {
        match (&self.boot, self.pidns) {
            (Some(boot), Some(ns)) => {
                format!("{}/{boot}/{ns}/{}/{}", self.host, self.pid, self.start_time)
            }
            _ => format!("{}/{}/{}", self.host, self.pid, self.start_time),
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Owner> {
        let mut parts = s.rsplitn(3, '/');
        let start_time = parts.next()?.parse().ok()?;
        let pid = parts.next()?.parse().ok()?;
        let rest = parts.next()?;
        // `host/boot/pidns` or, from 0.1, just `host` (which may itself contain slashes).
        let mut front = rest.rsplitn(3, '/');
        let (ns, boot, host) = (front.next(), front.next(), front.next());
        if let (Some(ns), Some(boot), Some(host)) = (ns, boot, host)
            && let Ok(ns) = ns.parse::<u64>()
            && is_boot_id(boot)
        {
            return Some(Owner {
                host: host.to_string(),
                boot: Some(boot.to_string()),
                pidns: Some(ns),
                pid,
                start_time,
            });
        }
        Some(Owner {
            host: rest.to_string(),
            boot: None,
            pidns: None,
            pid,
            start_time,
        })
    }

    /// Whether the owner still lives, judged from this process's view of the machine.
    pub(crate) fn liveness(&self) -> Liveness {
        self.liveness_from(&View::current())
    }

    fn liveness_from(&self, view: &View) -> Liveness {
        if self.host != view.host {
            return Liveness::Unknown;
        }
        let (Some(boot), Some(ns)) = (&self.boot, self.pidns) else {
            // A 0.1 label says nothing of namespaces: judge it in our own, as 0.1 did.
            return (view.start_time)(&self.pid.to_string(), self.pid)
                .map_or(Liveness::Gone, |t| alive_if(t == self.start_time));
        };
        if view.boot.as_deref() != Some(boot.as_str()) {
            // Another boot of this host, or another machine with this host name: cannot tell.
            return Liveness::Unknown;
        }
        if view.pidns == Some(ns) {
            return (view.start_time)(&self.pid.to_string(), self.pid)
                .map_or(Liveness::Gone, |t| alive_if(t == self.start_time));
        }
        if view.pidns != Some(INITIAL_PIDNS) {
            // A sibling or parent namespace is invisible from here.
            return Liveness::Unknown;
        }
        // From the initial namespace every process is visible: look for one in the owner's
        // namespace with the owner's PID there (the last NSpid entry) and start time.
        let mut unreadable = false;
        for entry in (view.processes)() {
            // PID 1 as seen from the initial namespace is that namespace's init (whose links a
            // sandboxed root may not read): never an owner in another namespace.
            if entry == "1" {
                continue;
            }
            match (view.namespace_of)(&entry) {
                Namespace::Of(n) if n == ns => {}
                Namespace::Of(_) | Namespace::Gone => continue,
                Namespace::Unreadable => {
                    unreadable = true;
                    continue;
                }
            }
            if (view.inner_pid)(&entry) == Some(self.pid)
                && (view.start_time)(&entry, 0) == Some(self.start_time)
            {
                return Liveness::Alive;
            }
        }
        if unreadable {
            Liveness::Unknown
        } else {
            Liveness::Gone
        }
    }
}

fn alive_if(alive: bool) -> Liveness {
    if alive {
        Liveness::Alive
    } else {
        Liveness::Gone
    }
}

fn is_boot_id(s: &str) -> bool {
    s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// The PID namespace of a process, as far as this process can read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Namespace {
    Of(u64),
    /// Exited, or a zombie: not a live process.
    Gone,
    /// Not ours to look at.
    Unreadable,
}

/// What this process sees of the machine (replaceable in tests).
struct View {
    host: String,
    boot: Option<String>,
    pidns: Option<u64>,
    /// The `/proc` entries (PIDs as seen from here).
    processes: fn() -> Vec<String>,
    /// The PID namespace of a `/proc` entry.
    namespace_of: fn(&str) -> Namespace,
    /// A process's PID in its own (innermost) namespace.
    inner_pid: fn(&str) -> Option<u32>,
    /// The start time of a `/proc` entry (the second argument is unused by the real view).
    start_time: fn(&str, u32) -> Option<u64>,
}

impl View {
    fn current() -> View {
        View {
            host: hostname(),
            boot: boot_id(),
            pidns: pid_namespace("self"),
            processes: || {
                std::fs::read_dir("/proc")
                    .map(|d| {
                        d.filter_map(|e| e.ok())
                            .filter_map(|e| e.file_name().into_string().ok())
                            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
                            .collect()
                    })
                    .unwrap_or_default()
            },
            namespace_of: |entry| match std::fs::read_link(format!("/proc/{entry}/ns/pid")) {
                Ok(link) => link
                    .to_str()
                    .and_then(parse_namespace_link)
                    .map_or(Namespace::Gone, Namespace::Of),
                // Another user's process, without the right to look: it may be the owner.
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Namespace::Unreadable,
                // Exited meanwhile, or a zombie (no namespace any more): not a live owner.
                Err(_) => Namespace::Gone,
            },
            inner_pid: |entry| {
                let status = std::fs::read_to_string(format!("/proc/{entry}/status")).ok()?;
                let line = status.lines().find(|l| l.starts_with("NSpid:"))?;
                line.split_whitespace().last()?.parse().ok()
            },
            start_time: |entry, _| stat_start_time(entry),
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

/// The kernel's boot ID.
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| is_boot_id(s))
}

/// The PID namespace inode of `/proc/<entry>` (`self` for this process).
fn pid_namespace(entry: &str) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/{entry}/ns/pid")).ok()?;
    parse_namespace_link(link.to_str()?)
}

/// `pid:[4026531836]` → 4026531836.
fn parse_namespace_link(text: &str) -> Option<u64> {
    text.strip_prefix("pid:[")?.strip_suffix(']')?.parse().ok()
}

/// Start time of a process in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
pub(crate) fn process_start_time(pid: u32) -> Option<u64> {
    stat_start_time(&pid.to_string())
}

/// The start time of a live process; `None` for a process that is gone — including a zombie,
/// which has exited but not been reaped yet (it keeps its `/proc` entry, PID and start time).
fn stat_start_time(entry: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{entry}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// The labels on a container that make it findable by `list`, `attach` and `sweep`.
pub(crate) fn is_managed(labels: &HashMap<String, String>) -> bool {
    labels.get(MANAGED).map(String::as_str) == Some("true")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOT: &str = "1467d2ee-fa6e-4d94-9372-3959d09287a0";

    #[test]
    fn owner_round_trips_and_reads_old_labels() {
        let o = Owner {
            host: "a/b".into(),
            boot: Some(BOOT.into()),
            pidns: Some(4026532000),
            pid: 42,
            start_time: 7,
        };
        assert_eq!(Owner::parse(&o.to_label()), Some(o));
        let old = Owner::parse("myhost/42/7").unwrap();
        assert_eq!(
            (old.host.as_str(), old.boot, old.pidns, old.pid),
            ("myhost", None, None, 42)
        );
        let old_slashes = Owner::parse("a/b/42/7").unwrap();
        assert_eq!(old_slashes.host, "a/b");
        assert_eq!(Owner::parse("nohost"), None);
        assert_eq!(Owner::parse("h/x/1"), None);
    }

    #[test]
    fn current_process_is_alive_and_a_recycled_pid_is_gone() {
        let me = Owner::current();
        assert!(me.start_time > 0 && me.boot.is_some() && me.pidns.is_some());
        assert_eq!(me.liveness(), Liveness::Alive);
        let recycled = Owner {
            start_time: me.start_time + 1,
            ..me.clone()
        };
        assert_eq!(recycled.liveness(), Liveness::Gone);
        let elsewhere = Owner {
            host: "some-other-host".into(),
            ..me.clone()
        };
        assert_eq!(elsewhere.liveness(), Liveness::Unknown);
        let other_boot = Owner {
            boot: Some("00000000-0000-0000-0000-000000000000".into()),
            ..me
        };
        assert_eq!(other_boot.liveness(), Liveness::Unknown);
    }

    /// A machine of three processes: 10 (ours, initial namespace), 20 (PID 1 in namespace 77,
    /// started at 500), 30 (a zombie, or unreadable).
    fn view(pidns: u64, readable: bool) -> View {
        View {
            host: "h".into(),
            boot: Some(BOOT.into()),
            pidns: Some(pidns),
            processes: || vec!["10".into(), "20".into(), "30".into()],
            namespace_of: if readable {
                |e| match e {
                    "10" => Namespace::Of(INITIAL_PIDNS),
                    "30" => Namespace::Gone, // a zombie
                    _ => Namespace::Of(77),
                }
            } else {
                |e| match e {
                    "10" => Namespace::Of(INITIAL_PIDNS),
                    "20" => Namespace::Of(77),
                    _ => Namespace::Unreadable,
                }
            },
            inner_pid: |e| match e {
                "20" => Some(1),
                other => other.parse().ok(),
            },
            start_time: |e, pid| match (e, pid) {
                ("20", _) => Some(500),
                ("1", 1) => Some(3), // our namespace's PID 1 is a different process
                _ => Some(100),
            },
        }
    }

    fn owner(ns: u64, pid: u32, start: u64) -> Owner {
        Owner {
            host: "h".into(),
            boot: Some(BOOT.into()),
            pidns: Some(ns),
            pid,
            start_time: start,
        }
    }

    #[test]
    fn owners_in_other_pid_namespaces() {
        let host = view(INITIAL_PIDNS, true);
        // PID 1 of namespace 77 lives: the host's own PID 1 (another process) is not consulted.
        assert_eq!(owner(77, 1, 500).liveness_from(&host), Liveness::Alive);
        // Same PID, other start time: that owner is gone.
        assert_eq!(owner(77, 1, 501).liveness_from(&host), Liveness::Gone);
        // A namespace with no process left: gone.
        assert_eq!(owner(88, 1, 500).liveness_from(&host), Liveness::Gone);
        // With processes it cannot read, the host cannot rule an owner out.
        assert_eq!(
            owner(88, 1, 500).liveness_from(&view(INITIAL_PIDNS, false)),
            Liveness::Unknown
        );
        assert_eq!(
            owner(77, 1, 500).liveness_from(&view(INITIAL_PIDNS, false)),
            Liveness::Alive
        );
        // From inside namespace 77, an owner in the initial (or a sibling) namespace is invisible.
        let inside = view(77, true);
        assert_eq!(
            owner(INITIAL_PIDNS, 10, 100).liveness_from(&inside),
            Liveness::Unknown
        );
        assert_eq!(owner(99, 1, 3).liveness_from(&inside), Liveness::Unknown);
        // In our own namespace, PID and start time decide.
        assert_eq!(owner(77, 1, 3).liveness_from(&inside), Liveness::Alive);
        assert_eq!(owner(77, 1, 4).liveness_from(&inside), Liveness::Gone);
    }
}
