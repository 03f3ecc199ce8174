//! Background processes: started through the agent, they outlive the call — and the host
//! process — that started them. The agent keeps each one's exit status and the last part of its
//! output (a bounded ring) until it is forgotten, so any process that holds the instance (another
//! one after a crash, through `Client::attach`) can list them, replay and follow their output,
//! kill them and collect their status.

use std::sync::Arc;

use bytes::Bytes;
use headjack_agent::client::{AttachEvent, ExecRequest};
use tokio::sync::{mpsc, oneshot};

use super::exec::map_status;
use super::{Session, from_agent};
use crate::error::{Error, ErrorKind, Result};
use crate::exec::{Chunk, Exec, ExecResizer, ExecStream, ExitStatus, StreamKind};

/// A background process of an instance (see [`crate::Instance::start_process`]). Cheap to
/// clone; the process is not affected when the handle is dropped.
#[derive(Clone)]
pub struct Process {
    id: u64,
    session: Arc<Session>,
}

/// What [`crate::Instance::processes`] reports about one background process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Its ID (for [`crate::Instance::process`]).
    pub id: u64,
    /// Its PID in the container (0 if it never started).
    pub pid: u32,
    /// Its argument vector.
    pub argv: Vec<String>,
    /// How it ended, once it has.
    pub status: Option<ExitStatus>,
    /// When it started, milliseconds since the epoch.
    pub started_ms: u64,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process").field("id", &self.id).finish()
    }
}

impl Process {
    pub(crate) fn new(id: u64, session: Arc<Session>) -> Process {
        Process { id, session }
    }

    /// Its ID, stable for the instance's life.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Its output: first what the agent kept (the last part of it, when `replay`), then live
    /// output until it ends; the stream's status is the process's. A gap (output the ring dropped
    /// before this reader got it) is reported as one line on stderr. Dropping the stream stops
    /// following; the process goes on.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] for a process the agent does not know (forgotten).
    pub async fn attach(&self, replay: bool) -> Result<ExecStream> {
        let mut handle = self
            .session
            .channel()
            .await?
            .attach(self.id, replay)
            .await
            .map_err(from_agent)?;
        let (tx, rx) = mpsc::channel(64);
        let (status_tx, status_rx) = oneshot::channel();
        tokio::spawn(async move {
            let status = async {
                loop {
                    let event = tokio::select! {
                        e = handle.next() => e,
                        _ = tx.closed() => return Err(Error::new(ErrorKind::Conflict, "stopped following")),
                    };
                    let chunk = match event {
                        None => {
                            return Err(Error::new(
                                ErrorKind::Conflict,
                                "the agent stopped the attach before the process ended",
                            ));
                        }
                        Some(Err(e)) => return Err(from_agent(e)),
                        Some(Ok(AttachEvent::Exited(s))) => return Ok(map_status(&s)),
                        Some(Ok(AttachEvent::Gap(n))) => Chunk {
                            stream: StreamKind::Stderr,
                            data: Bytes::from(format!(
                                "headjack: {n} bytes of this process's earlier output were dropped (the agent keeps only the most recent)\n"
                            )),
                        },
                        Some(Ok(AttachEvent::Output(c))) => Chunk {
                            stream: match c.stream {
                                headjack_agent::client::StreamKind::Stdout => StreamKind::Stdout,
                                headjack_agent::client::StreamKind::Stderr => StreamKind::Stderr,
                            },
                            data: Bytes::from(c.data),
                        },
                    };
                    if tx.send(Ok(chunk)).await.is_err() {
                        return Err(Error::new(ErrorKind::Conflict, "stopped following"));
                    }
                }
            }
            .await;
            let _ = status_tx.send(status);
        });
        Ok(ExecStream::new(rx, status_rx, None, ExecResizer::none()))
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the process and everything it started.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] for a number that is not a signal; [`ErrorKind::NotFound`]
    /// for a process the agent does not know.
    pub async fn kill(&self, signal: i32) -> Result<()> {
        self.session
            .channel()
            .await?
            .kill(self.id, signal)
            .await
            .map_err(from_agent)
    }

    /// Waits until the process ended and returns how.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] for a process the agent does not know.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the process goes on.
    pub async fn wait(&self) -> Result<ExitStatus> {
        let s = self
            .session
            .channel()
            .await?
            .wait(self.id)
            .await
            .map_err(from_agent)?;
        Ok(map_status(&s))
    }

    /// Lets the agent drop what it keeps of an ended process.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Conflict`] while it still runs; [`ErrorKind::NotFound`] for an unknown one.
    pub async fn forget(&self) -> Result<()> {
        self.session
            .channel()
            .await?
            .forget(self.id)
            .await
            .map_err(from_agent)
    }
}

impl Session {
    /// Starts `exec` in the background.
    pub(crate) async fn start_process(&self, exec: &Exec) -> Result<u64> {
        exec.validate()?;
        if exec.stdin.is_some() || exec.stdin_stream {
            return Err(Error::invalid_argument(
                "a background process has no standard input: give it its input as a file",
            ));
        }
        let mut req = ExecRequest::new(exec.argv.iter().cloned()).tty(exec.tty);
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
        let ch = self.channel().await?;
        ch.start_process(req).await.map_err(|e| {
            let e = from_agent(e);
            Error::new(
                e.kind(),
                format!("starting {}: {}", exec.argv[0], e.message()),
            )
        })
    }

    /// The background processes the agent knows.
    pub(crate) async fn processes(&self) -> Result<Vec<ProcessInfo>> {
        let list = self
            .channel()
            .await?
            .processes()
            .await
            .map_err(from_agent)?;
        Ok(list
            .into_iter()
            .filter(|p| p.background && !p.init)
            .map(|p| ProcessInfo {
                id: p.id,
                pid: p.pid,
                argv: p
                    .argv
                    .iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect(),
                status: p.status.as_ref().map(map_status),
                started_ms: p.started_ms,
            })
            .collect())
    }
}
