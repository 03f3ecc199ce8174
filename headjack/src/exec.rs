//! Running commands inside an instance: [`Exec`] describes one, [`ExecStream`] delivers its
//! output as it comes, [`ExecOutput`] is the collected result.
//!
//! The engine API has no way to kill an exec (moby#35703). Every exec therefore carries a
//! unique marker in its environment; on timeout or cancellation a second exec, run as the same
//! user, kills every process whose environment holds the marker — the command and everything
//! it started.

use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::engine::{Engine, ExecOutputChunk, ExecParams, InputSink, OutputStream};
use crate::error::{Error, ErrorKind, Result};

/// The environment variable that marks an exec's processes so they can be killed.
pub(crate) const EXEC_MARKER_VAR: &str = "HEADJACK_EXEC_ID";

/// Default bound on collected output, per stream.
pub const DEFAULT_MAX_OUTPUT: usize = 16 << 20;

/// Exit code reported when the command does not exist in the container (as shells do).
pub const EXIT_COMMAND_NOT_FOUND: i64 = 127;

/// Exit code reported when the command exists but cannot be run (not executable, a directory).
pub const EXIT_CANNOT_EXECUTE: i64 = 126;

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
            max_output: DEFAULT_MAX_OUTPUT,
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
    pub fn interactive(mut self) -> Exec {
        self.stdin_stream = true;
        self
    }

    /// Allocates a terminal (stdout and stderr arrive merged as stdout).
    pub fn tty(mut self, tty: bool) -> Exec {
        self.tty = tty;
        self
    }

    /// Kills the command (and everything it started) inside the container after `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Exec {
        self.timeout = Some(timeout);
        self
    }

    /// Bounds collected output per stream (default [`DEFAULT_MAX_OUTPUT`]); the rest is
    /// discarded and the `truncated` flag set. Streaming is not bounded.
    pub fn max_output(mut self, bytes: usize) -> Exec {
        self.max_output = bytes;
        self
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
        for k in self.env.keys() {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                return Err(Error::invalid_argument(format!(
                    "invalid environment variable name {k:?}"
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
    /// The exit code; 127 when the command does not exist; -1 if the engine never said.
    pub code: i64,
    /// The command ran past its timeout and was killed.
    pub timed_out: bool,
}

impl ExitStatus {
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
    /// The command ran past its timeout and was killed.
    pub timed_out: bool,
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
        if self.timed_out {
            return Err(Error::new(
                ErrorKind::Timeout,
                "the command ran past its timeout and was killed",
            ));
        }
        if self.exit_code != 0 {
            let tail =
                String::from_utf8_lossy(&self.stderr[self.stderr.len().saturating_sub(2000)..]);
            return Err(Error::new(
                ErrorKind::ExecFailed,
                format!(
                    "the command exited with code {}: {}",
                    self.exit_code,
                    tail.trim()
                ),
            ));
        }
        Ok(self)
    }
}

/// Output of a running command, chunk by chunk. Dropping it before the end kills the command.
///
/// Implements [`Stream`]; [`ExecStream::next`] is the same without importing a trait.
pub struct ExecStream {
    chunks: mpsc::Receiver<Result<Chunk>>,
    status: Option<oneshot::Receiver<Result<ExitStatus>>>,
    stdin: Option<InputSink>,
    tty: bool,
    engine: Engine,
    exec_id: String,
}

impl ExecStream {
    /// The next chunk, or `None` when the command's output has ended.
    pub async fn next(&mut self) -> Option<Result<Chunk>> {
        self.chunks.recv().await
    }

    /// Waits for the command to end (discarding output not yet read) and returns its status.
    pub async fn wait(self) -> Result<ExitStatus> {
        self.finish().await
    }

    /// Stops the command now — it and everything it started are killed inside the container —
    /// and returns its status once the kill went through.
    pub async fn cancel(mut self) -> Result<ExitStatus> {
        // A closed channel is what the driver takes as cancellation.
        self.chunks.close();
        self.finish().await
    }

    async fn finish(mut self) -> Result<ExitStatus> {
        while self.chunks.recv().await.is_some() {}
        let rx = self
            .status
            .take()
            .ok_or_else(|| Error::internal("exec status already taken"))?;
        rx.await
            .map_err(|_| Error::internal("the exec driver stopped without a status"))?
    }

    /// The command's standard input, for an [`Exec::interactive`] exec (once).
    pub fn take_stdin(&mut self) -> Option<ExecStdin> {
        let tty = self.tty;
        self.stdin.take().map(|inner| ExecStdin {
            inner,
            tty,
            line_pending: false,
        })
    }

    /// Resizes the terminal of a [`Exec::tty`] exec.
    pub async fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        self.resizer().resize(rows, cols).await
    }

    /// A handle that resizes this exec's terminal from elsewhere, e.g. a task forwarding
    /// SIGWINCH while another reads the output.
    pub fn resizer(&self) -> ExecResizer {
        ExecResizer {
            engine: self.engine.clone(),
            exec_id: self.exec_id.clone(),
        }
    }
}

/// Resizes the terminal of a [`Exec::tty`] exec; independent of the [`ExecStream`] it came from
/// (cheap to clone, usable from any task while the stream is read).
#[derive(Clone)]
pub struct ExecResizer {
    engine: Engine,
    exec_id: String,
}

impl ExecResizer {
    /// Sets the terminal to `rows` × `cols`. A resize after the command ended may fail with
    /// [`ErrorKind::NotFound`] or [`ErrorKind::Conflict`] (the engine forgets ended execs).
    pub async fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        if rows == 0 || cols == 0 {
            return Err(Error::invalid_argument(format!(
                "a terminal of {rows} rows × {cols} columns: both must be at least 1"
            )));
        }
        self.engine.resize_exec(&self.exec_id, rows, cols).await
    }
}

impl std::fmt::Debug for ExecResizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecResizer")
            .field("exec_id", &self.exec_id)
            .finish()
    }
}

impl Stream for ExecStream {
    type Item = Result<Chunk>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.chunks.poll_recv(cx)
    }
}

/// Writable standard input of an interactive exec. [`ExecStdin::close`] it to send EOF.
pub struct ExecStdin {
    inner: InputSink,
    /// A terminal's input has no end of stream: EOF is the ^D its line discipline reads.
    tty: bool,
    /// Whether the last byte written ends a line (a ^D mid-line only flushes the line).
    line_pending: bool,
}

/// What a terminal reads as end-of-file after input whose last line is or is not complete.
fn end_of_transmission(line_pending: bool) -> &'static [u8] {
    if line_pending { b"\x04\x04" } else { b"\x04" }
}

fn ends_line(data: &[u8], before: bool) -> bool {
    data.last().map_or(before, |b| *b != b'\n' && *b != b'\r')
}

impl ExecStdin {
    /// Writes all of `data`.
    pub async fn write(&mut self, data: &[u8]) -> Result<()> {
        self.inner
            .write_all(data)
            .await
            .map_err(|e| Error::io("writing to the command's stdin", e))?;
        self.line_pending = ends_line(data, self.line_pending);
        self.inner
            .flush()
            .await
            .map_err(|e| Error::io("writing to the command's stdin", e))
    }

    /// Closes standard input: the command sees EOF. On a terminal ([`Exec::tty`]) that is the
    /// end-of-transmission character (^D) its line discipline turns into end-of-file, as when a
    /// user types it (a program that put the terminal in raw mode reads a plain 0x04).
    pub async fn close(mut self) -> Result<()> {
        if self.tty {
            // Only the ^D: shutting the connection down makes Docker hang the terminal up,
            // killing the command before it reads the end of its input.
            self.inner
                .write_all(end_of_transmission(self.line_pending))
                .await
                .map_err(|e| Error::io("closing the command's stdin", e))?;
            return self
                .inner
                .flush()
                .await
                .map_err(|e| Error::io("closing the command's stdin", e));
        }
        self.inner
            .shutdown()
            .await
            .map_err(|e| Error::io("closing the command's stdin", e))
    }
}

impl tokio::io::AsyncWrite for ExecStdin {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = self.inner.as_mut().poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            self.line_pending = ends_line(&buf[..n], self.line_pending);
        }
        written
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.inner.as_mut().poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.inner.as_mut().poll_shutdown(cx)
    }
}

/// Starts `exec` in `container`; output flows through the returned stream.
pub(crate) async fn start(
    engine: &Engine,
    container: &str,
    default_user: Option<&str>,
    exec: Exec,
) -> Result<ExecStream> {
    exec.validate()?;
    let marker = crate::instance::random_id();
    let mut env: Vec<String> = exec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.push(format!("{EXEC_MARKER_VAR}={marker}"));
    let user = exec
        .user
        .clone()
        .or_else(|| default_user.map(str::to_string));
    let params = ExecParams {
        cmd: exec.argv.clone(),
        env,
        workdir: exec.workdir.clone(),
        user: user.clone(),
        stdin: exec.stdin.is_some() || exec.stdin_stream,
        tty: exec.tty,
    };
    let (exec_id, output, input) = engine.exec(container, params).await?;
    let (tx, rx) = mpsc::channel(64);
    let (status_tx, status_rx) = oneshot::channel();
    let (feed, keep_stdin) = match (exec.stdin, input) {
        (Some(data), Some(sink)) => {
            let stdin = ExecStdin {
                inner: sink,
                tty: exec.tty,
                line_pending: false,
            };
            (Some((data, stdin)), None)
        }
        (None, sink) => (None, sink),
        (Some(_), None) => (None, None),
    };
    let driver = Driver {
        engine: engine.clone(),
        container: container.to_string(),
        exec_id: exec_id.clone(),
        marker,
        user,
        program: exec.argv[0].clone(),
        deadline: exec.timeout.map(|t| Instant::now() + t),
    };
    tokio::spawn(async move {
        let status = driver.run(output, feed, tx).await;
        let _ = status_tx.send(status);
    });
    Ok(ExecStream {
        chunks: rx,
        status: Some(status_rx),
        stdin: keep_stdin,
        tty: exec.tty,
        engine: engine.clone(),
        exec_id,
    })
}

/// Collects a stream into an [`ExecOutput`], bounding what is kept.
pub(crate) async fn collect(mut stream: ExecStream, max: usize) -> Result<ExecOutput> {
    let mut out = ExecOutput {
        exit_code: -1,
        stdout: Vec::new(),
        stderr: Vec::new(),
        stdout_truncated: false,
        stderr_truncated: false,
        timed_out: false,
    };
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let (buf, truncated) = match chunk.stream {
            StreamKind::Stdout => (&mut out.stdout, &mut out.stdout_truncated),
            StreamKind::Stderr => (&mut out.stderr, &mut out.stderr_truncated),
        };
        let room = max.saturating_sub(buf.len());
        if chunk.data.len() > room {
            *truncated = true;
        }
        buf.extend_from_slice(&chunk.data[..chunk.data.len().min(room)]);
    }
    let status = stream.wait().await?;
    out.exit_code = status.code;
    out.timed_out = status.timed_out;
    Ok(out)
}

/// Moves output from the engine to the consumer and enforces the timeout.
struct Driver {
    engine: Engine,
    container: String,
    exec_id: String,
    marker: String,
    user: Option<String>,
    program: String,
    deadline: Option<Instant>,
}

enum End {
    Finished,
    TimedOut,
    Cancelled,
}

impl Driver {
    async fn run(
        self,
        mut output: OutputStream,
        feed: Option<(Bytes, ExecStdin)>,
        tx: mpsc::Sender<Result<Chunk>>,
    ) -> Result<ExitStatus> {
        if let Some((data, mut stdin)) = feed {
            tokio::spawn(async move {
                // A command that exits without reading its input makes this fail: that is fine.
                if stdin.write(&data).await.is_ok() {
                    let _ = stdin.close().await;
                }
            });
        }
        // The runtime reports a command it cannot start as ordinary output (Docker: on stdout).
        // Output that opens like such a report is held back until the exit code says what it
        // was, so callers see headjack's one clear line instead of the runtime's text.
        let mut held: Vec<Chunk> = Vec::new();
        let mut holding = true;
        let mut queued: VecDeque<Chunk> = VecDeque::new();
        let end = loop {
            let permit = tokio::select! {
                p = tx.reserve() => match p { Ok(p) => p, Err(_) => break End::Cancelled },
                _ = sleep_until(self.deadline) => break End::TimedOut,
            };
            if let Some(chunk) = queued.pop_front() {
                permit.send(Ok(chunk));
                continue;
            }
            let item = tokio::select! {
                item = output.next() => item,
                _ = sleep_until(self.deadline) => break End::TimedOut,
                _ = tx.closed() => break End::Cancelled,
            };
            match item {
                None => break End::Finished,
                Some(Err(e)) => {
                    // Podman resets the connection when a command exits while its stdin is
                    // still being written: that is the end of the output, not a failure.
                    let ended = e.kind() == ErrorKind::EngineUnavailable
                        && matches!(self.engine.exec_state(&self.exec_id).await, Ok(st) if !st.running);
                    if !ended {
                        queued.extend(held.drain(..));
                        permit.send(Err(e));
                    }
                    break End::Finished;
                }
                Some(Ok(c)) => {
                    let chunk = Chunk::from(c);
                    holding = holding
                        && held.iter().map(|c| c.data.len()).sum::<usize>() + chunk.data.len()
                            <= MAX_START_REPORT
                        && (!held.is_empty() || looks_like_start_failure(&chunk.data));
                    if holding {
                        held.push(chunk);
                    } else {
                        queued.extend(held.drain(..));
                        queued.push_back(chunk);
                        if let Some(next) = queued.pop_front() {
                            permit.send(Ok(next));
                        }
                    }
                }
            }
        };
        let timed_out = matches!(end, End::TimedOut);
        if !matches!(end, End::Finished) {
            tracing::debug!(exec = %self.exec_id, timed_out, "killing exec processes");
            self.kill_processes().await;
            drop(output);
        }
        let mut code = self.exit_code().await?;
        let report: Vec<u8> = held.iter().flat_map(|c| c.data.iter().copied()).collect();
        let failure = Some(&report)
            .filter(|r| matches!(end, End::Finished) && !r.is_empty())
            .and_then(|r| start_failure(code, r));
        let mut tail = queued;
        match failure {
            Some(failure) => {
                tracing::debug!(
                    exec = %self.exec_id,
                    runtime = %String::from_utf8_lossy(&report).trim(),
                    "the runtime could not start the command"
                );
                code = failure.exit_code();
                tail.push_back(Chunk {
                    stream: StreamKind::Stderr,
                    data: Bytes::from(failure.message(&self.program)),
                });
            }
            None => tail.extend(held),
        }
        for chunk in tail {
            // Best effort: after a timeout or cancellation the reader may be gone.
            if tx.send(Ok(chunk)).await.is_err() {
                break;
            }
        }
        Ok(ExitStatus { code, timed_out })
    }

    /// Reads the exit code, waiting briefly for the engine to notice the process ended.
    async fn exit_code(&self) -> Result<i64> {
        // The output ends when the process does; the engine usually agrees at once.
        for attempt in 0..200u64 {
            let state = match self.engine.exec_state(&self.exec_id).await {
                Ok(state) => state,
                // Docker forgets an exec when its container stops: the command died with it.
                Err(e) if e.kind() == ErrorKind::NotFound => return Err(self.vanished(e).await),
                Err(e) => return Err(e),
            };
            if !state.running {
                return Ok(state.exit_code.unwrap_or(-1));
            }
            tokio::time::sleep(Duration::from_millis(2 + attempt.min(20))).await;
        }
        Ok(-1)
    }

    /// The error for an exec the engine no longer knows: says why when the container stopped.
    async fn vanished(&self, e: Error) -> Error {
        match self.engine.inspect(&self.container).await {
            Ok(c) if c.status != "running" => Error::new(
                ErrorKind::Conflict,
                format!(
                    "running {} in container {}: the container is not running any more \
                     (state {}, exit code {}) — it stopped while the command ran; \
                     check its init/keep-alive and logs, then start it again",
                    self.program,
                    self.container,
                    c.status,
                    c.exit_code.unwrap_or(-1)
                ),
            ),
            Err(inspect) if inspect.kind() == ErrorKind::NotFound => Error::new(
                ErrorKind::NotFound,
                format!(
                    "running {} in container {}: the container was removed while the command \
                     ran (the container is not running any more)",
                    self.program, self.container
                ),
            ),
            _ => e,
        }
    }

    /// Kills every process carrying this exec's marker, as the exec's own user (reading another
    /// user's /proc/<pid>/environ needs CAP_SYS_PTRACE, which containers lack).
    async fn kill_processes(&self) {
        let script = format!(
            "m='{EXEC_MARKER_VAR}={marker}'; i=0; while [ $i -lt 20 ]; do found=; \
             for p in /proc/[0-9]*; do if grep -qa \"$m\" \"$p/environ\" 2>/dev/null; then \
             kill -9 \"${{p#/proc/}}\" 2>/dev/null && found=1; fi; done; \
             [ -z \"$found\" ] && exit 0; i=$((i+1)); sleep 0.05; done",
            marker = self.marker
        );
        let params = ExecParams {
            cmd: vec!["/bin/sh".into(), "-c".into(), script],
            user: self.user.clone(),
            ..Default::default()
        };
        match self.engine.exec(&self.container, params).await {
            Ok((_, mut out, _)) => {
                let drain = async { while out.next().await.is_some() {} };
                if tokio::time::timeout(Duration::from_secs(10), drain)
                    .await
                    .is_err()
                {
                    tracing::warn!(exec = %self.exec_id, "killing a timed-out command took too long");
                }
            }
            Err(e) => tracing::warn!(
                exec = %self.exec_id, error = %e,
                "could not kill a timed-out command (the image needs /bin/sh and grep)"
            ),
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Docker and Podman report a missing executable as exit 126/127 plus a runtime message
/// instead of a shell's "command not found".
/// Why the runtime could not start a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StartFailure {
    NotFound,
    NotExecutable,
}

impl StartFailure {
    fn exit_code(self) -> i64 {
        match self {
            StartFailure::NotFound => EXIT_COMMAND_NOT_FOUND,
            StartFailure::NotExecutable => EXIT_CANNOT_EXECUTE,
        }
    }

    fn message(self, program: &str) -> String {
        match self {
            StartFailure::NotFound => format!(
                "headjack: {program}: command not found in the container (not on $PATH, or no such file)\n"
            ),
            StartFailure::NotExecutable => format!(
                "headjack: {program}: cannot be run in the container (permission denied: not executable, or a directory)\n"
            ),
        }
    }
}

/// The most output held back as a possible start-failure report (the runtime's is a few lines).
const MAX_START_REPORT: usize = 4096;

/// Whether the first output of an exec opens like the runtime's report of a failed start.
fn looks_like_start_failure(data: &[u8]) -> bool {
    let head = &data[..data.len().min(512)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    text.contains("exec failed") || text.contains("oci runtime")
}

/// Reads the runtime's report (and the exit code it gave) as a start failure, if it is one.
fn start_failure(code: i64, report: &[u8]) -> Option<StartFailure> {
    if code != 126 && code != 127 {
        return None;
    }
    let text = String::from_utf8_lossy(report).to_ascii_lowercase();
    if !(text.contains("oci runtime") || text.contains("exec failed")) {
        return None;
    }
    if text.contains("not found") || text.contains("no such file or directory") {
        Some(StartFailure::NotFound)
    } else if text.contains("permission denied") || text.contains("is a directory") {
        Some(StartFailure::NotExecutable)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn recognises_runtime_start_failures() {
        use StartFailure::*;
        let docker = b"OCI runtime exec failed: exec failed: container_linux.go:380: starting container process caused: exec: \"nope\": executable file not found in $PATH: unknown\r\n";
        let docker_perm = b"OCI runtime exec failed: exec failed: unable to start container process: exec: \"/etc/passwd\": permission denied: unknown\r\n";
        let crun = b"crun: executable file `nope` not found in $PATH: No such file or directory: OCI runtime attempted to invoke a command that was not found";
        let runc = b"runc: exec failed: unable to start container process: exec: \"/etc\": is a directory: OCI permission denied";
        let cases: &[(i64, &[u8], Option<StartFailure>)] = &[
            (126, docker, Some(NotFound)),
            (127, crun, Some(NotFound)),
            (126, docker_perm, Some(NotExecutable)),
            (126, runc, Some(NotExecutable)),
            (1, docker, None),
            (0, docker, None),
            (127, b"sh: something else", None),
            (126, b"my-tool: permission denied", None),
        ];
        for (code, text, want) in cases {
            assert_eq!(
                start_failure(*code, text),
                *want,
                "{code} {}",
                String::from_utf8_lossy(text)
            );
        }
        assert!(looks_like_start_failure(docker));
        assert!(looks_like_start_failure(crun));
        assert!(!looks_like_start_failure(b"hello\n"));
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
            ..base
        }
        .check()
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
    }
}
