//! A process the agent runs: an exec owned by a session, a background process, or the init.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use headjack_agent::proto::{DataKind, ExitStatus, ProcessInfo, StartFailure};

use super::ring::Ring;

/// One output pipe (or a terminal's master) being read.
pub struct Output {
    pub fd: OwnedFd,
    pub kind: DataKind,
    /// In the epoll set for readability (out of it while the owner has no credit).
    pub armed: bool,
}

/// The command's standard input, fed from the session.
pub struct Input {
    pub fd: OwnedFd,
    pub buf: Vec<u8>,
    pub pos: usize,
    /// Close once `buf` is written (end of input on a pipe).
    pub close_when_empty: bool,
    /// In the epoll set for writability (only while input waits).
    pub armed: bool,
    /// Bytes taken from the session since the last credit grant.
    pub pending_credit: u32,
    /// The last byte written does not end a line (a terminal's ^D then only flushes it).
    pub line_pending: bool,
}

/// A session following a background process's output.
pub struct Attacher {
    pub session: u64,
    pub stream: u32,
    pub pos: u64,
    pub credit: u32,
    /// Where the replay it asked for ends (the ring's end when it attached): reaching it sends
    /// `Replayed` once.
    pub replay_until: Option<u64>,
}

pub struct Proc {
    pub id: u64,
    pub argv: Vec<Vec<u8>>,
    pub background: bool,
    pub init: bool,
    pub tty: bool,
    /// The command's PID once started.
    pub pid: u32,
    /// Control pipe to the shim; dropped once released.
    pub ctl: Option<OwnedFd>,
    pub report: Option<OwnedFd>,
    pub report_buf: Vec<u8>,
    /// stdout (or the terminal), stderr.
    pub outs: [Option<Output>; 2],
    pub stdin: Option<Input>,
    /// The terminal's master, for resizing.
    pub master: Option<OwnedFd>,
    pub started_ms: u64,
    pub deadline: Option<Instant>,
    pub grace: Duration,
    /// The command's wait status and when it was reported.
    pub exited: Option<(i32, Instant)>,
    pub failure: Option<StartFailure>,
    /// The shim vanished without saying how the command ended.
    pub shim_lost: bool,
    pub timed_out: bool,
    /// Killed on request (a SIGKILL from the client is not an OOM kill).
    pub killed: bool,
    pub oom_before: Option<u64>,
    pub status: Option<ExitStatus>,
    /// The session and stream of a foreground exec.
    pub owner: Option<(u64, u32)>,
    /// Output credit the owner granted.
    pub credit: u32,
    pub ring: Option<Ring>,
    pub attachers: Vec<Attacher>,
    pub waiters: Vec<(u64, u32)>,
    pub output_bytes: u64,
}

impl Proc {
    /// The command died of SIGKILL (the only case where OOM is a question).
    pub fn sigkilled(&self) -> bool {
        self.exited
            .is_some_and(|(raw, _)| libc::WIFSIGNALED(raw) && libc::WTERMSIG(raw) == libc::SIGKILL)
    }

    pub fn running(&self) -> bool {
        self.status.is_none()
    }

    pub fn master_fd(&self) -> Option<RawFd> {
        self.master.as_ref().map(|m| m.as_raw_fd())
    }

    /// The status to report, from the command's wait status (or why it never ran).
    pub fn final_status(&self, oom_now: Option<u64>) -> ExitStatus {
        let mut st = ExitStatus {
            code: -1,
            signal: None,
            core_dumped: false,
            timed_out: self.timed_out,
            oom_killed: false,
            start_failure: None,
        };
        if let Some(f) = &self.failure {
            st.code = f.kind.exit_code();
            st.start_failure = Some(f.clone());
            return st;
        }
        let Some((raw, _)) = self.exited else {
            return st;
        };
        if libc::WIFEXITED(raw) {
            st.code = libc::WEXITSTATUS(raw);
        } else if libc::WIFSIGNALED(raw) {
            let sig = libc::WTERMSIG(raw);
            st.code = 128 + sig;
            st.signal = Some(sig);
            st.core_dumped = libc::WCOREDUMP(raw);
            st.oom_killed = sig == libc::SIGKILL
                && !self.timed_out
                && !self.killed
                && matches!((self.oom_before, oom_now), (Some(a), Some(b)) if b > a);
        }
        st
    }

    pub fn info(&self) -> ProcessInfo {
        // Long command lines are cut: a listing is not the place for a megabyte of argv.
        let mut budget = 4096usize;
        let argv = self
            .argv
            .iter()
            .map_while(|a| {
                if budget == 0 {
                    return None;
                }
                let take = a.len().min(budget);
                budget -= take;
                Some(a[..take].to_vec())
            })
            .collect();
        ProcessInfo {
            id: self.id,
            pid: self.pid,
            argv,
            background: self.background,
            tty: self.tty,
            init: self.init,
            status: self.status.clone(),
            started_ms: self.started_ms,
            output_bytes: self.output_bytes,
            ring_bytes: self.ring.as_ref().map_or(0, |r| r.capacity() as u32),
        }
    }
}

/// The memory cgroup's OOM-kill count (cgroup v2 `memory.events`, else v1
/// `memory.oom_control`), if readable. Which file answers is found once.
pub fn oom_kills() -> Option<u64> {
    static PATH: std::sync::OnceLock<Option<&'static str>> = std::sync::OnceLock::new();
    let read = |path: &str| -> Option<u64> {
        use std::io::Read;
        let mut buf = [0u8; 512];
        let mut f = std::fs::File::open(path).ok()?;
        let n = f.read(&mut buf).ok()?;
        parse_oom_kills(std::str::from_utf8(&buf[..n]).ok()?)
    };
    let path = PATH.get_or_init(|| {
        [
            "/sys/fs/cgroup/memory.events",
            "/sys/fs/cgroup/memory/memory.oom_control",
        ]
        .into_iter()
        .find(|p| read(p).is_some())
    });
    read((*path)?)
}

pub fn parse_oom_kills(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let mut f = l.split_ascii_whitespace();
        (f.next()? == "oom_kill").then(|| f.next()?.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_oom_counters() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        let v2 = "low 0\nhigh 0\nmax 2\noom 2\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(parse_oom_kills(v1), Some(3));
        assert_eq!(parse_oom_kills(v2), Some(2));
        assert_eq!(parse_oom_kills("oom_kill_disable 0\n"), None);
        assert_eq!(parse_oom_kills(""), None);
    }
}
