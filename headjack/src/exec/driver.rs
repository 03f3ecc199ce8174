//! Runs one command through the engine's exec and drives it: moves output to the
//! [`ExecStream`], holds back the runtime's report of a command it could not start, and enforces
//! the timeout.
//!
//! The engine API has no way to kill an exec (moby#35703). Every exec therefore carries a
//! unique marker in its environment; on timeout or cancellation a second exec, run as the same
//! user, kills every process whose environment holds the marker — the command and everything
//! it started.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::stream::{ExecResizer, ExecStdin, ExecStream};
use super::{Chunk, Exec, ExecOutput, ExitStatus, StreamKind};
use crate::engine::{
    Engine, ExecParams, OutputStream, StartFailure, looks_like_start_failure, start_failure,
};
use crate::error::{Error, ErrorKind, Result};

/// The environment variable that marks an exec's processes so they can be killed.
pub(crate) const EXEC_MARKER_VAR: &str = "HEADJACK_EXEC_ID";

/// Starts `exec` in `container`; output flows through the returned stream.
pub(crate) async fn start(
    engine: &Engine,
    container: &str,
    default_user: Option<&str>,
    exec: Exec,
) -> Result<ExecStream> {
    exec.validate()?;
    let marker = crate::labels::random_id();
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
    let stdin = input.map(|sink| ExecStdin::new(sink, exec.tty));
    let (feed, keep_stdin) = match (exec.stdin, stdin) {
        (Some(data), Some(stdin)) => (Some((data, stdin)), None),
        (None, stdin) => (None, stdin),
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
    Ok(ExecStream::new(
        rx,
        status_rx,
        keep_stdin,
        ExecResizer::engine(engine.clone(), exec_id),
    ))
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

impl StartFailure {
    fn exit_code(self) -> i64 {
        match self {
            StartFailure::NotFound => ExitStatus::COMMAND_NOT_FOUND,
            StartFailure::NotExecutable => ExitStatus::CANNOT_EXECUTE,
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
