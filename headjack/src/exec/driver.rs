//! Runs one command through the engine's exec and drives it: moves output to the
//! [`ExecStream`], holds back the runtime's report of a command it could not start, and enforces
//! the timeout.
//!
//! The engine API has no way to kill an exec (moby#35703). Every exec therefore carries a
//! unique marker in its environment; on timeout or cancellation a second exec, run as the same
//! user, kills every process whose environment holds the marker — the command and everything
//! it started.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::stream::{ExecResizer, ExecStdin, ExecStream};
use super::{Chunk, Exec, ExecOutput, ExitStatus, StreamKind};
use crate::engine::{
    Engine, ExecOutputChunk, ExecParams, OutputStream, StartFailure, identity_failure,
    looks_like_start_failure, start_failure,
};
use crate::error::{Error, ErrorKind, Result};

/// How long a killed command may take to be reported ended before the kill counts as failed.
const KILL_CONFIRMATION: Duration = Duration::from_secs(3);

/// The environment variable that marks an exec's processes so they can be killed.
pub(crate) const EXEC_MARKER_VAR: &str = "HEADJACK_EXEC_ID";

/// Starts `exec` in `container`; output flows through the returned stream.
pub(crate) async fn start(
    engine: &Engine,
    container: &str,
    oom_seen: Arc<AtomicU64>,
    exec: Exec,
) -> Result<ExecStream> {
    exec.validate()?;
    let marker = crate::labels::random_id();
    let mut env: Vec<String> = exec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.push(format!("{EXEC_MARKER_VAR}={marker}"));
    let user = exec.user.clone();
    let params = ExecParams {
        cmd: exec.argv.clone(),
        env,
        workdir: exec.workdir.clone(),
        user: user.clone(),
        stdin: exec.stdin.is_some() || exec.stdin_stream,
        tty: exec.tty,
    };
    let (exec_id, output, input) = match engine.exec(container, params).await {
        Ok(started) => started,
        // Podman refuses an unknown user when starting the exec (Docker runs it and reports
        // 126): give both the same outcome, exit 126 with one clear line on stderr.
        Err(e) => match identity_failure(&e.message().to_ascii_lowercase()) {
            Some(failure) => {
                let line = failure.message(&exec.argv[0], exec.workdir.as_deref(), user.as_deref());
                return Ok(ExecStream::ended(
                    vec![Chunk {
                        stream: StreamKind::Stderr,
                        data: Bytes::from(line),
                    }],
                    ExitStatus {
                        code: failure.exit_code(),
                        timed_out: false,
                        oom_killed: false,
                        kill_failed: false,
                    },
                ));
            }
            None => return Err(e),
        },
    };
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
        workdir: exec.workdir.clone(),
        // A timeout too long to represent is no timeout at all.
        deadline: exec.timeout.and_then(|t| Instant::now().checked_add(t)),
        oom_seen,
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
        oom_killed: false,
        kill_failed: false,
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
    out.oom_killed = status.oom_killed;
    out.kill_failed = status.kill_failed;
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
    workdir: Option<String>,
    deadline: Option<Instant>,
    /// The container's OOM-kill count when last looked at (shared by the instance's execs).
    oom_seen: Arc<AtomicU64>,
}

enum End {
    Finished,
    TimedOut,
    Cancelled,
    /// The engine stopped answering: nothing more can be learnt or done through it.
    EngineLost,
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
                // A silent command is normal; a silent engine is not: after a quiet spell, ask
                // the engine about the exec, so a frozen or vanished engine ends this stream
                // within its call bound instead of hanging the caller.
                _ = tokio::time::sleep(self.engine.timeout()) => {
                    match self.engine.exec_state(&self.exec_id).await {
                        Err(e) if matches!(e.kind(), ErrorKind::Timeout | ErrorKind::EngineUnavailable) => {
                            permit.send(Err(e.context(format!("running {}", self.program))));
                            break End::EngineLost;
                        }
                        _ => continue,
                    }
                }
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
        if matches!(end, End::EngineLost) {
            return Err(Error::new(
                ErrorKind::EngineUnavailable,
                format!(
                    "running {}: the engine stopped answering while the command ran; its \
                     outcome is unknown",
                    self.program
                ),
            ));
        }
        let timed_out = matches!(end, End::TimedOut);
        let mut kill_failed = false;
        if !matches!(end, End::Finished) {
            tracing::debug!(exec = %self.exec_id, timed_out, "killing exec processes");
            self.kill_processes().await;
            drop(output);
            // The kill reaches the processes carrying the marker; whether the command itself
            // ended is the engine's to say. Never claim a kill that did not happen.
            kill_failed = !self.ended_within(KILL_CONFIRMATION).await;
            if kill_failed {
                tracing::warn!(exec = %self.exec_id, program = %self.program,
                    "a timed-out or cancelled command could not be killed; it may still run");
            }
        }
        let mut code = if kill_failed {
            -1
        } else {
            self.exit_code().await?
        };
        let report: Vec<u8> = held.iter().flat_map(|c| c.data.iter().copied()).collect();
        let failure = Some(&report)
            .filter(|r| matches!(end, End::Finished) && !r.is_empty())
            .and_then(|r| start_failure(code, r));
        if failure == Some(StartFailure::ContainerStopped) {
            return Err(self
                .vanished(Error::new(ErrorKind::Conflict, "the container stopped"))
                .await);
        }
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
                    data: Bytes::from(failure.message(
                        &self.program,
                        self.workdir.as_deref(),
                        self.user.as_deref(),
                    )),
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
        let oom_killed = !kill_failed
            && !timed_out
            && code == 128 + 9
            && super::oom_kill_seen(&self.oom_seen, || self.oom_counters()).await;
        if oom_killed {
            let line = format!(
                "headjack: {}: killed: out of memory{}\n",
                self.program,
                self.limit_text().await
            );
            let _ = tx
                .send(Ok(Chunk {
                    stream: StreamKind::Stderr,
                    data: Bytes::from(line),
                }))
                .await;
        }
        Ok(ExitStatus {
            code,
            timed_out,
            oom_killed,
            kill_failed,
        })
    }

    /// Whether the exec ended within `wait` (polling the engine).
    async fn ended_within(&self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            match self.engine.exec_state(&self.exec_id).await {
                Ok(st) if !st.running => return true,
                // Gone with its container: nothing of it runs any more.
                Err(e) if e.kind() == ErrorKind::NotFound => return true,
                _ => {}
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The text of the container's OOM-kill counters (cgroup v1's `memory.oom_control`, v2's
    /// `memory.events`), read with `cat` inside it: the engines do not report OOM kills of
    /// exec'd processes in their inspect data. `None` when it cannot be read (no `cat` in the
    /// image, the engine failing).
    async fn oom_counters(&self) -> Option<String> {
        let params = ExecParams {
            cmd: std::iter::once("cat")
                .chain(super::OOM_COUNTERS)
                .map(String::from)
                .collect(),
            ..Default::default()
        };
        let (_, mut out, _) = self.engine.exec(&self.container, params).await.ok()?;
        let mut text = Vec::new();
        let read = async {
            while let Some(Ok(chunk)) = out.next().await {
                if let ExecOutputChunk::Stdout(b) = chunk {
                    text.extend_from_slice(&b);
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .ok()?;
        Some(String::from_utf8_lossy(&text).into_owned()).filter(|t| t.contains("oom_kill "))
    }

    /// ` (limit 64 MiB)`, or nothing when the limit is unknown.
    async fn limit_text(&self) -> String {
        match self.engine.inspect(&self.container).await {
            Ok(c) => c
                .memory_limit
                .filter(|m| *m > 0)
                .map(|m| format!(" (limit {})", crate::spec::human_bytes(m as u64)))
                .unwrap_or_default(),
            Err(_) => String::new(),
        }
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

/// The most output held back as a possible start-failure report (the runtime's is a few lines).
const MAX_START_REPORT: usize = 4096;
