//! An [`Exec`] run by the agent, delivered as an [`ExecStream`] with the same observable
//! behaviour as the engine path: chunks, then an [`ExitStatus`]; timeouts and cancels kill the
//! command and every process it started (the agent's shim reaps the whole tree, so the kill is
//! confirmed, never assumed); a command that cannot start gives the same one line on stderr.

use bytes::Bytes;
use headjack_agent::client::{self as agent, ExecControl, ExecHandle, ExecRequest};
use headjack_agent::proto::{self, StartFailureKind};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot};

use super::{Session, from_agent};
use crate::engine::StartFailure;
use crate::error::Result;
use crate::exec::{Chunk, Exec, ExecResizer, ExecStdin, ExecStream, ExitStatus, StreamKind};

/// Whether `exec` must go through the engine's exec although the instance runs the agent: it
/// names a user, and the agent cannot switch users (all capabilities dropped).
pub(crate) async fn needs_engine(session: &Session, exec: &Exec) -> Result<bool> {
    Ok(exec.user.is_some() && !session.can_switch_user().await?)
}

/// Starts `exec` through the agent. `oom_seen` is the instance's count of OOM kills already
/// reported (shared with the engine path).
pub(crate) async fn exec_through(
    session: &std::sync::Arc<Session>,
    exec: Exec,
    oom_seen: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> Result<ExecStream> {
    exec.validate()?;
    let what = format!("starting {:?}", exec.argv[0]);
    let mut req = ExecRequest::new(exec.argv.iter().cloned())
        .tty(exec.tty)
        .stdin(exec.stdin.is_some() || exec.stdin_stream);
    for (k, v) in &exec.env {
        req = req.env(k, v);
    }
    if let Some(w) = &exec.workdir {
        req = req.workdir(w);
    }
    if let Some(u) = &exec.user {
        req = req.user(u);
    }
    if let Some(t) = exec.timeout {
        req = req.timeout(t);
    }
    let (channel, handle) = session
        .bounded(&what, async {
            let channel = session.channel().await?;
            let handle = channel.exec(req).await.map_err(from_agent)?;
            Ok((channel, handle))
        })
        .await?;
    let control = handle.control();
    let stdin = if let Some(data) = exec.stdin.clone() {
        let control = control.clone();
        tokio::spawn(async move {
            // A command that exits without reading its input makes this fail: that is fine.
            if control.write_stdin(&data).await.is_ok() {
                let _ = control.close_stdin();
            }
        });
        None
    } else if exec.stdin_stream {
        Some(stdin_pipe(control.clone()))
    } else {
        None
    };
    let (tx, rx) = mpsc::channel(64);
    let (status_tx, status_rx) = oneshot::channel();
    let failure_line = FailureLine {
        program: exec.argv[0].clone(),
        workdir: exec.workdir.clone(),
        user: exec.user.clone(),
        memory_limit: session.memory_limit,
        oom: Some((session.clone(), oom_seen)),
    };
    let resizer = ExecResizer::agent(control.clone());
    let liveness = session.clone();
    tokio::spawn(async move {
        let status = forward(handle, control, tx, failure_line, (liveness, channel)).await;
        let _ = status_tx.send(status);
    });
    Ok(ExecStream::new(rx, status_rx, stdin, resizer))
}

/// Interactive standard input: an [`ExecStdin`] writing into a pipe that a task drains into the
/// agent (waiting on its flow control); closing it ends the command's input (on a terminal the
/// agent turns that into ^D, as a user would type it).
fn stdin_pipe(control: ExecControl) -> ExecStdin {
    let (ours, mut theirs) = tokio::io::duplex(64 << 10);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match theirs.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if control.write_stdin(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = control.close_stdin();
    });
    ExecStdin::new(Box::pin(ours), false)
}

/// What the one headjack line for a command that could not start says.
struct FailureLine {
    program: String,
    workdir: Option<String>,
    user: Option<String>,
    memory_limit: Option<u64>,
    /// Where to look when the command ended like a kill: the session and the instance's count
    /// of OOM kills already reported.
    oom: Option<(
        std::sync::Arc<Session>,
        std::sync::Arc<std::sync::atomic::AtomicU64>,
    )>,
}

/// Moves the command's output to the stream's reader until it ends; when the reader goes away
/// first (the stream was dropped or cancelled), kills the command's tree and waits for the
/// agent to confirm it ended.
async fn forward(
    mut handle: ExecHandle,
    control: ExecControl,
    tx: mpsc::Sender<Result<Chunk>>,
    failure: FailureLine,
    (session, channel): (std::sync::Arc<Session>, agent::Channel),
) -> Result<ExitStatus> {
    // A command may be silent for hours, but the agent answers a request at once: after a
    // silence as long as the engine-call bound, a cheap request tells a quiet command from a
    // channel that stopped moving (a frozen engine relays nothing).
    let bound = session.bound();
    loop {
        let next = tokio::select! {
            next = handle.next() => next,
            _ = tokio::time::sleep(bound) => {
                if tokio::time::timeout(bound, channel.processes()).await.is_err() {
                    let _ = control.kill(libc::SIGKILL);
                    let e = session.silent(&format!("running {:?}", failure.program), bound);
                    let _ = tx
                        .send(Err(crate::error::Error::new(e.kind(), e.message())))
                        .await;
                    return Err(e);
                }
                continue;
            }
            _ = tx.closed() => {
                let _ = control.kill(libc::SIGKILL);
                // The agent reports the exit once the whole tree is gone.
                let status = handle.wait().await.map_err(from_agent)?;
                return Ok(map_status(&status));
            }
        };
        match next {
            Some(Ok(c)) => {
                let chunk = Chunk {
                    stream: match c.stream {
                        agent::StreamKind::Stdout => StreamKind::Stdout,
                        agent::StreamKind::Stderr => StreamKind::Stderr,
                    },
                    data: Bytes::from(c.data),
                };
                if tx.send(Ok(chunk)).await.is_err() {
                    let _ = control.kill(libc::SIGKILL);
                    let status = handle.wait().await.map_err(from_agent)?;
                    return Ok(map_status(&status));
                }
            }
            Some(Err(e)) => {
                let what = format!("running {}", failure.program);
                let e = from_agent(e).context(&what);
                let e = session.explain_closed(&what, e).await;
                let _ = tx
                    .send(Err(crate::error::Error::new(e.kind(), e.message())))
                    .await;
                return Err(e);
            }
            None => break,
        }
    }
    let Some(agent_status) = handle.status().cloned() else {
        return Err(crate::error::Error::internal(
            "the agent ended an exec without its status",
        ));
    };
    if let Some(f) = &agent_status.start_failure {
        let line = match start_failure(f.kind) {
            Some(kind) => kind.message(
                &failure.program,
                failure.workdir.as_deref(),
                failure.user.as_deref(),
            ),
            None => format!("headjack: {}\n", f.message),
        };
        let _ = tx
            .send(Ok(Chunk {
                stream: StreamKind::Stderr,
                data: Bytes::from(line),
            }))
            .await;
    }
    let mut status = map_status(&agent_status);
    // The agent sees an OOM kill of the command itself; a kill of a process the command waited
    // for (a shell's child) shows as exit 137: the cgroup's counter tells.
    if status.code == 128 + 9
        && !status.timed_out
        && let Some((session, seen)) = &failure.oom
    {
        status.oom_killed |= crate::exec::oom_kill_seen(seen, || async {
            let mut text = None::<String>;
            for path in crate::exec::OOM_COUNTERS {
                if let Ok(b) = session.read_file(path, 64 << 10).await {
                    text.get_or_insert_default()
                        .push_str(&String::from_utf8_lossy(&b));
                }
            }
            text
        })
        .await;
    }
    if status.oom_killed {
        let limit = failure
            .memory_limit
            .map(|m| format!(" (limit {})", crate::spec::human_bytes(m)))
            .unwrap_or_default();
        let line = format!(
            "headjack: {}: killed: out of memory{limit}\n",
            failure.program
        );
        let _ = tx
            .send(Ok(Chunk {
                stream: StreamKind::Stderr,
                data: Bytes::from(line),
            }))
            .await;
    }
    Ok(status)
}

/// The core's kind of a start failure the agent reported (`None`: say the agent's words).
fn start_failure(kind: StartFailureKind) -> Option<StartFailure> {
    match kind {
        StartFailureKind::NotFound => Some(StartFailure::NotFound),
        StartFailureKind::NotExecutable => Some(StartFailure::NotExecutable),
        StartFailureKind::NoWorkdir => Some(StartFailure::WorkdirMissing),
        StartFailureKind::UnknownUser => Some(StartFailure::UnknownUser),
        StartFailureKind::UnknownGroup => Some(StartFailure::UnknownGroup),
        _ => None,
    }
}

/// The agent's exit status as the core reports it (the agent confirms every kill: a timed-out
/// command is reported once its whole process tree is gone).
pub(crate) fn map_status(s: &proto::ExitStatus) -> ExitStatus {
    ExitStatus {
        code: i64::from(s.code),
        timed_out: s.timed_out,
        oom_killed: s.oom_killed,
        kill_failed: false,
    }
}
