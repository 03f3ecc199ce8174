//! Running commands inside an instance: [`Exec`] describes one, [`ExecStream`] delivers its
//! output as it comes, [`ExecOutput`] is the collected result.
//!
//! `stream` holds the handles of a running command (output, stdin, terminal size), `shared` the
//! same behind `&self` ([`SharedExec`], for handles shared between threads); `driver` moves
//! output from the engine to them and enforces timeouts.

mod driver;
mod shared;
mod stream;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;

use crate::engine::{ExecOutputChunk, StartFailure};
use crate::error::{Error, ErrorKind, Result};

pub(crate) use driver::{collect, start};
pub use shared::SharedExec;
pub use stream::{ExecResizer, ExecStdin, ExecStream};

/// One command to run in an instance.
#[derive(Debug, Clone)]
pub struct Exec {
    pub(crate) argv: Vec<String>,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) workdir: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) stdin: Option<Bytes>,
    pub(crate) stdin_stream: bool,
    pub(crate) tty: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) max_output: usize,
}

impl Exec {
    /// Default bound on collected output, per stream.
    pub const DEFAULT_MAX_OUTPUT: usize = 16 << 20;

    /// A command given as its argument vector (no shell involved).
    pub fn new<I, S>(argv: I) -> Exec
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Exec {
            argv: argv.into_iter().map(Into::into).collect(),
            env: BTreeMap::new(),
            workdir: None,
            user: None,
            stdin: None,
            stdin_stream: false,
            tty: false,
            timeout: None,
            max_output: Exec::DEFAULT_MAX_OUTPUT,
        }
    }

    /// Adds an environment variable (on top of the instance's).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Exec {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Runs in this directory instead of the instance's workdir.
    pub fn workdir(mut self, dir: impl Into<String>) -> Exec {
        self.workdir = Some(dir.into());
        self
    }

    /// Runs as this user (`name`, `uid` or `uid:gid`) instead of the instance's.
    pub fn user(mut self, user: impl Into<String>) -> Exec {
        self.user = Some(user.into());
        self
    }

    /// Feeds these bytes to the command's standard input, then closes it.
    pub fn stdin(mut self, data: impl Into<Bytes>) -> Exec {
        self.stdin = Some(data.into());
        self
    }

    /// Keeps standard input open for writing through [`ExecStream::take_stdin`].
    pub fn interactive(mut self, interactive: bool) -> Exec {
        self.stdin_stream = interactive;
        self
    }

    /// Allocates a terminal (stdout and stderr arrive merged as stdout).
    pub fn tty(mut self, tty: bool) -> Exec {
        self.tty = tty;
        self
    }

    /// Kills the command (and everything it started) inside the container after `timeout`
    /// (`None`: no timeout, the default).
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> Exec {
        self.timeout = timeout.into();
        self
    }

    /// Bounds collected output per stream (default [`Exec::DEFAULT_MAX_OUTPUT`]); the rest is
    /// discarded and the `truncated` flag set. Streaming is not bounded.
    pub fn max_output(mut self, bytes: usize) -> Exec {
        self.max_output = bytes;
        self
    }

    /// The program (`argv[0]`).
    pub fn get_program(&self) -> &str {
        self.argv.first().map(String::as_str).unwrap_or_default()
    }

    /// The whole argument vector, program included.
    pub fn get_argv(&self) -> &[String] {
        &self.argv
    }

    /// The environment variables added for this command.
    pub fn get_env(&self) -> &BTreeMap<String, String> {
        &self.env
    }

    /// The timeout, if any.
    pub fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Whether standard input stays open for writing.
    pub fn is_interactive(&self) -> bool {
        self.stdin_stream
    }

    /// Whether a terminal is allocated.
    pub fn is_tty(&self) -> bool {
        self.tty
    }

    /// The bound on collected output, per stream.
    pub fn get_max_output(&self) -> usize {
        self.max_output
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.argv.is_empty() {
            return Err(Error::invalid_argument(
                "cannot run an empty command: give at least the program name",
            ));
        }
        if self.argv[0].is_empty() {
            return Err(Error::invalid_argument("the program name is empty"));
        }
        if self.argv.iter().any(|a| a.contains('\0')) {
            return Err(Error::invalid_argument(
                "command arguments cannot contain NUL bytes",
            ));
        }
        for (k, v) in &self.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(Error::invalid_argument(format!(
                    "invalid environment variable name {k:?}"
                )));
            }
            if v.contains('\0') {
                return Err(Error::invalid_argument(format!(
                    "environment variable {k:?}: values cannot contain NUL bytes"
                )));
            }
        }
        for (what, v) in [("workdir", &self.workdir), ("user", &self.user)] {
            if v.as_deref()
                .is_some_and(|v| v.contains('\0') || v.is_empty())
            {
                return Err(Error::invalid_argument(format!(
                    "the {what} {v:?} is empty or contains NUL bytes"
                )));
            }
        }
        Ok(())
    }
}

impl<S: Into<String>, const N: usize> From<[S; N]> for Exec {
    fn from(argv: [S; N]) -> Exec {
        Exec::new(argv)
    }
}
impl<S: Into<String>> From<Vec<S>> for Exec {
    fn from(argv: Vec<S>) -> Exec {
        Exec::new(argv)
    }
}
impl From<&[&str]> for Exec {
    fn from(argv: &[&str]) -> Exec {
        Exec::new(argv.iter().copied())
    }
}

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// Standard output (and all output of a TTY exec).
    Stdout,
    /// Standard error.
    Stderr,
}

/// A piece of output, as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Where it came from.
    pub stream: StreamKind,
    /// The bytes (arbitrary binary data).
    pub data: Bytes,
}

impl From<ExecOutputChunk> for Chunk {
    fn from(c: ExecOutputChunk) -> Chunk {
        match c {
            ExecOutputChunk::Stdout(data) => Chunk {
                stream: StreamKind::Stdout,
                data,
            },
            ExecOutputChunk::Stderr(data) => Chunk {
                stream: StreamKind::Stderr,
                data,
            },
        }
    }
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    /// The exit code (128 + N when a signal N ended it, as shells report it); 127 when the
    /// command does not exist; -1 if it is unknown (the engine never said, or the command could
    /// not be killed).
    pub code: i64,
    /// The command ran past its timeout and was killed (see [`ExitStatus::kill_failed`]).
    pub timed_out: bool,
    /// The memory limit killed the command (or a process it waited for).
    pub oom_killed: bool,
    /// The command timed out or was cancelled, but headjack could not confirm it was killed:
    /// processes may still run in the container. On the engine's exec path this happens when
    /// the image has no `/bin/sh`, or when the command dropped headjack's marker from its
    /// environment (`env -i`).
    pub kill_failed: bool,
}

impl ExitStatus {
    /// Exit code reported when the command does not exist in the container (as shells do).
    pub const COMMAND_NOT_FOUND: i64 = 127;

    /// Exit code reported when the command exists but cannot be run (not executable, a
    /// directory).
    pub const CANNOT_EXECUTE: i64 = 126;

    /// How the command ended: `killed: out of memory` when the memory limit killed it,
    /// `timed out`, `killed by signal N` or `exited with code N`.
    pub fn exit_reason(&self) -> String {
        if self.oom_killed {
            "killed: out of memory".to_string()
        } else if self.timed_out {
            "timed out".to_string()
        } else if self.code > 128 && self.code < 128 + 65 {
            format!("killed by signal {}", self.code - 128)
        } else {
            format!("exited with code {}", self.code)
        }
    }

    /// Exit code 0 and no timeout.
    pub fn success(&self) -> bool {
        self.code == 0 && !self.timed_out
    }
}

/// The collected result of [`crate::Instance::exec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// The exit code; 127 when the command does not exist; -1 if the engine never said.
    pub exit_code: i64,
    /// Standard output, up to the bound.
    pub stdout: Vec<u8>,
    /// Standard error, up to the bound.
    pub stderr: Vec<u8>,
    /// Standard output went past the bound; the rest was discarded.
    pub stdout_truncated: bool,
    /// Standard error went past the bound; the rest was discarded.
    pub stderr_truncated: bool,
    /// The command ran past its timeout and was killed (see [`ExecOutput::kill_failed`]).
    pub timed_out: bool,
    /// The memory limit killed the command (or a process it waited for).
    pub oom_killed: bool,
    /// The command timed out, but headjack could not confirm it was killed: processes may still
    /// run in the container (see [`ExitStatus::kill_failed`]).
    pub kill_failed: bool,
}

impl ExecOutput {
    /// Exit code 0 and no timeout.
    pub fn success(&self) -> bool {
        self.exit_code == 0 && !self.timed_out
    }

    /// Standard output as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard error as text (invalid UTF-8 replaced).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Turns a timeout into a [`ErrorKind::Timeout`] error and a non-zero exit into an
    /// [`ErrorKind::ExecFailed`] error carrying the end of stderr.
    pub fn check(self) -> Result<ExecOutput> {
        if self.timed_out && self.kill_failed {
            return Err(Error::new(
                ErrorKind::Timeout,
                "the command ran past its timeout and headjack could not kill it: it may still \
                 run in the container (the image needs /bin/sh for the kill, and the command \
                 must keep its environment)",
            ));
        }
        if self.timed_out {
            return Err(Error::new(
                ErrorKind::Timeout,
                "the command ran past its timeout and was killed",
            ));
        }
        if self.exit_code != 0 {
            let tail =
                String::from_utf8_lossy(&self.stderr[self.stderr.len().saturating_sub(2000)..]);
            let how = if self.oom_killed {
                "was killed: out of memory".to_string()
            } else {
                format!("exited with code {}", self.exit_code)
            };
            return Err(Error::new(
                ErrorKind::ExecFailed,
                format!("the command {how}: {}", tail.trim()),
            ));
        }
        Ok(self)
    }
}

/// The files where the kernel counts a memory cgroup's OOM kills, seen from inside a container
/// (cgroup v1, v2).
pub(crate) const OOM_COUNTERS: [&str; 2] = [
    "/sys/fs/cgroup/memory/memory.oom_control",
    "/sys/fs/cgroup/memory.events",
];

/// Whether the container's memory limit killed a process since the instance last looked.
/// `read` returns the text of [`OOM_COUNTERS`] (`None` when it could not be read); `seen` is the
/// instance's count already reported. Called only for a command that died of SIGKILL, so the
/// read is retried a few times, briefly: a read that failed (the engine busy right after the
/// kill) or a count that has not moved yet must not turn an OOM kill into a plain "exit 137".
pub(crate) async fn oom_kill_seen<F, Fut>(seen: &std::sync::atomic::AtomicU64, mut read: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<String>>,
{
    for attempt in 0..4u64 {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
        }
        let Some(text) = read().await else {
            tracing::debug!(attempt, "could not read the OOM-kill counters");
            continue;
        };
        let count = oom_kill_count(&text);
        if count > seen.fetch_max(count, std::sync::atomic::Ordering::SeqCst) {
            return true;
        }
        tracing::debug!(attempt, count, "no new OOM kill counted");
    }
    false
}

/// The largest `oom_kill N` count in the text of [`OOM_COUNTERS`].
pub(crate) fn oom_kill_count(text: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.strip_prefix("oom_kill "))
        .filter_map(|n| n.trim().parse().ok())
        .max()
        .unwrap_or(0)
}

impl StartFailure {
    pub(crate) fn exit_code(self) -> i64 {
        match self {
            StartFailure::NotFound => ExitStatus::COMMAND_NOT_FOUND,
            _ => ExitStatus::CANNOT_EXECUTE,
        }
    }

    /// headjack's one line on stderr for a command that could not be started.
    pub(crate) fn message(
        self,
        program: &str,
        workdir: Option<&str>,
        user: Option<&str>,
    ) -> String {
        let user = user.unwrap_or("the container's user");
        match self {
            StartFailure::NotFound => format!(
                "headjack: {program}: command not found in the container (not on $PATH, or no such file)\n"
            ),
            StartFailure::NotExecutable => format!(
                "headjack: {program}: cannot be run in the container (permission denied: not executable, or a directory)\n"
            ),
            StartFailure::WorkdirMissing => format!(
                "headjack: {program}: the working directory {} does not exist in the container\n",
                workdir.unwrap_or("(the container's)")
            ),
            StartFailure::UnknownUser => format!(
                "headjack: {program}: user {user} does not exist in the container (no entry in its /etc/passwd)\n"
            ),
            StartFailure::UnknownGroup => format!(
                "headjack: {program}: the group of user {user} does not exist in the container (no entry in its /etc/group)\n"
            ),
            StartFailure::ContainerStopped => {
                format!("headjack: {program}: the container is not running any more\n")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_defaults_unset_wraps_the_command_in_env_unless_it_sets_the_variable() {
        let d = ExecDefaults::new().env("A", "1").unset("B").unset("C");
        assert_eq!(d.get_unset().len(), 2);
        let e = d.apply(Exec::new(["sh", "-c", "echo"]));
        assert_eq!(
            e.argv,
            ["env", "-u", "B", "-u", "C", "--", "sh", "-c", "echo"]
        );
        assert_eq!(e.env.get("A").map(String::as_str), Some("1"));
        // The command's own value wins over the unset.
        let e = d.apply(Exec::new(["true"]).env("B", "mine").env("C", "too"));
        assert_eq!(e.argv, ["true"]);
        // env and unset of one key: the last one wins.
        let d = ExecDefaults::new().unset("X").env("X", "1");
        assert!(d.get_unset().is_empty() && !d.is_empty());
        let d = ExecDefaults::new().env("X", "1").unset("X");
        assert!(d.get_env().is_empty() && !d.is_empty());
        assert_eq!(
            d.apply(Exec::new(["true"])).argv,
            ["env", "-u", "X", "--", "true"]
        );
        // Bad names are refused.
        for bad in ["", "A=B", "A\0"] {
            let e = ExecDefaults::new().unset(bad).validate().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad:?}");
        }
    }

    /// The OOM check: a failed read or a count that has not moved yet is retried; a count seen
    /// once is not reported twice.
    #[tokio::test]
    async fn oom_kills_are_counted_once_and_reads_retried() {
        use std::sync::atomic::AtomicU64;
        let seen = AtomicU64::new(0);
        // Two failed reads, then the counter: still an OOM kill.
        let mut reads = vec![None, None, Some("oom_kill 1\n".to_string())].into_iter();
        assert!(oom_kill_seen(&seen, || std::future::ready(reads.next().flatten())).await);
        // The same count again (a plain `kill -9`): not an OOM kill, after every retry.
        let mut calls = 0;
        let plain = oom_kill_seen(&seen, || {
            calls += 1;
            std::future::ready(Some("under_oom 0\noom_kill 1\n".to_string()))
        })
        .await;
        assert!(!plain);
        assert_eq!(calls, 4);
        // A count that moves only on the second look.
        let mut reads = ["oom_kill 1", "oom_kill 2"].into_iter();
        assert!(oom_kill_seen(&seen, || std::future::ready(reads.next().map(String::from))).await);
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 2);
        // Never readable: unknown, so not claimed.
        assert!(!oom_kill_seen(&seen, || std::future::ready(None)).await);
    }

    #[test]
    fn empty_or_bad_commands_are_rejected() {
        assert_eq!(
            Exec::new(Vec::<String>::new())
                .validate()
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidArgument
        );
        assert!(Exec::new([""]).validate().is_err());
        assert!(Exec::new(["a\0b"]).validate().is_err());
        assert!(Exec::new(["true"]).env("A=B", "c").validate().is_err());
        Exec::new(["true"]).env("A", "b=c").validate().unwrap();
        assert!(Exec::new(["true"]).env("A", "b\0c").validate().is_err());
        assert!(Exec::new(["true"]).workdir("").validate().is_err());
        assert!(Exec::new(["true"]).user("a\0").validate().is_err());
        // A timeout too long to represent is accepted (it never fires), not a panic.
        Exec::new(["true"])
            .timeout(Duration::MAX)
            .validate()
            .unwrap();
    }

    #[test]
    fn check_maps_timeouts_and_failures() {
        let base = ExecOutput {
            exit_code: 0,
            stdout: vec![],
            stderr: b"boom".to_vec(),
            stdout_truncated: false,
            stderr_truncated: false,
            timed_out: false,
            oom_killed: false,
            kill_failed: false,
        };
        assert!(base.clone().check().is_ok());
        let e = ExecOutput {
            exit_code: 2,
            ..base.clone()
        }
        .check()
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ExecFailed);
        assert!(e.message().contains("boom"));
        let e = ExecOutput {
            timed_out: true,
            exit_code: 137,
            ..base.clone()
        }
        .check()
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert!(e.message().contains("was killed"), "{e}");
        let e = ExecOutput {
            timed_out: true,
            kill_failed: true,
            exit_code: -1,
            ..base.clone()
        }
        .check()
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert!(e.message().contains("may still run"), "{e}");
        let e = ExecOutput {
            oom_killed: true,
            exit_code: 137,
            ..base
        }
        .check()
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ExecFailed);
        assert!(e.message().contains("out of memory"), "{e}");
    }
}

/// What every command run in an instance gets unless the command says otherwise: environment
/// variables (a command's own [`Exec::env`] wins per key), the user and the working directory.
/// Set on an instance with [`crate::Instance::set_exec_defaults`]; a devcontainer's
/// `remoteEnv`/`remoteUser`/`workspaceFolder` arrive this way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecDefaults {
    pub(crate) env: BTreeMap<String, String>,
    /// Variables removed from every command's environment (unless it sets them itself).
    pub(crate) unset: std::collections::BTreeSet<String>,
    pub(crate) user: Option<String>,
    pub(crate) workdir: Option<String>,
}

impl ExecDefaults {
    /// No defaults: commands run as the instance was launched.
    pub fn new() -> ExecDefaults {
        ExecDefaults::default()
    }

    /// Adds an environment variable every command gets (unless it sets the same key).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> ExecDefaults {
        let key = key.into();
        self.unset.remove(&key);
        self.env.insert(key, value.into());
        self
    }

    /// Removes an environment variable (one of the image's or the spawn's) from every
    /// command's environment, unless the command sets it itself (a dev container's
    /// `remoteEnv` entry with a `null` value). Done by running commands as
    /// `env -u KEY… -- argv…`, so the image needs an `env` program (every distribution and
    /// busybox has one); a command whose program is missing then fails with exit code 127
    /// and `env`'s message.
    pub fn unset(mut self, key: impl Into<String>) -> ExecDefaults {
        let key = key.into();
        self.env.remove(&key);
        self.unset.insert(key);
        self
    }

    /// Runs commands as this user (`name`, `uid` or `uid:gid`) unless they name one.
    pub fn user(mut self, user: impl Into<String>) -> ExecDefaults {
        self.user = Some(user.into());
        self
    }

    /// Runs commands in this directory unless they name one.
    pub fn workdir(mut self, dir: impl Into<String>) -> ExecDefaults {
        self.workdir = Some(dir.into());
        self
    }

    /// The default environment variables.
    pub fn get_env(&self) -> &BTreeMap<String, String> {
        &self.env
    }

    /// The variables removed from every command's environment ([`ExecDefaults::unset`]).
    pub fn get_unset(&self) -> &std::collections::BTreeSet<String> {
        &self.unset
    }

    /// The default user, if any.
    pub fn get_user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The default working directory, if any.
    pub fn get_workdir(&self) -> Option<&str> {
        self.workdir.as_deref()
    }

    /// Whether there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.env.is_empty()
            && self.unset.is_empty()
            && self.user.is_none()
            && self.workdir.is_none()
    }

    /// Checks the defaults as a command's own settings are checked.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] for an invalid variable name, an empty user or directory,
    /// or NUL bytes.
    pub fn validate(&self) -> Result<()> {
        for k in &self.unset {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(Error::invalid_argument(format!(
                    "exec defaults: invalid environment variable name {k:?} to unset"
                )));
            }
        }
        let probe = self.apply(Exec::new(["true"]));
        probe
            .validate()
            .map_err(|e| Error::invalid_argument(format!("exec defaults: {}", e.message())))
    }

    /// `exec` with the defaults filled in where it left them open.
    pub(crate) fn apply(&self, mut exec: Exec) -> Exec {
        for (k, v) in &self.env {
            exec.env.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if exec.user.is_none() {
            exec.user = self.user.clone();
        }
        if exec.workdir.is_none() {
            exec.workdir = self.workdir.clone();
        }
        let unset: Vec<&String> = self
            .unset
            .iter()
            .filter(|k| !exec.env.contains_key(*k))
            .collect();
        if !unset.is_empty() && !exec.argv.is_empty() {
            let mut argv = vec!["env".to_string()];
            for k in unset {
                argv.push("-u".into());
                argv.push(k.clone());
            }
            argv.push("--".into());
            argv.append(&mut exec.argv);
            exec.argv = argv;
        }
        exec
    }
}
