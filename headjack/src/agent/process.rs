//! Background processes: started through the agent, they outlive the call — and the host
//! process — that started them. The agent keeps each one's exit status and the last part of its
//! output (a bounded ring) until it is forgotten, so any process that holds the instance (another
//! one after a crash, through `Client::attach`) can list them, replay and follow their output,
//! kill them and collect their status.

use std::sync::Arc;

use bytes::Bytes;
use headjack_agent::client::{AttachEvent, AttachHandle, ExecRequest};
use headjack_agent::proto::capability;
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
        let (mut handle, _) = self.follow(replay).await?;
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
                        Some(Ok(AttachEvent::Replayed)) => continue,
                        Some(Ok(AttachEvent::Gap(n))) => gap_chunk(n),
                        Some(Ok(AttachEvent::Output(c))) => output_chunk(c),
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

    /// Opens the agent's attach stream; also says whether the agent marks the replay's end.
    async fn follow(&self, replay: bool) -> Result<(AttachHandle, bool)> {
        self.session
            .bounded(&format!("attaching to process {}", self.id), async {
                let channel = self.session.channel().await?;
                let marked = channel.agent().capabilities & capability::REPLAY_MARK != 0;
                let handle = channel.attach(self.id, replay).await.map_err(from_agent)?;
                Ok((handle, marked))
            })
            .await
    }

    /// What the agent keeps of the process's output now (the last part of it), without
    /// following: for an ended process its whole kept output; for a running one, what it had
    /// written when asked (the agent marks where that replay ends; an agent too old to mark it
    /// is read until its replay goes quiet for 100 ms). A gap is reported as one line on
    /// stderr, as in [`Process::attach`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] for a process the agent does not know (forgotten);
    /// [`ErrorKind::Conflict`] when the instance is not running.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping it stops reading; the process goes on.
    pub async fn output(&self) -> Result<Vec<Chunk>> {
        let (mut handle, marked) = self.follow(true).await?;
        let quiet = std::time::Duration::from_millis(100);
        let mut out = Vec::new();
        loop {
            let event = if marked {
                handle.next().await
            } else {
                match tokio::time::timeout(quiet, handle.next()).await {
                    Ok(e) => e,
                    Err(_) => return Ok(out),
                }
            };
            match event {
                None | Some(Ok(AttachEvent::Replayed | AttachEvent::Exited(_))) => return Ok(out),
                Some(Err(e)) => return Err(from_agent(e)),
                Some(Ok(AttachEvent::Gap(n))) => out.push(gap_chunk(n)),
                Some(Ok(AttachEvent::Output(c))) => out.push(output_chunk(c)),
            }
        }
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the process and everything it started.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] for a number that is not a signal; [`ErrorKind::NotFound`]
    /// for a process the agent does not know.
    pub async fn kill(&self, signal: i32) -> Result<()> {
        self.session
            .bounded(&format!("signalling process {}", self.id), async {
                self.session
                    .channel()
                    .await?
                    .kill(self.id, signal)
                    .await
                    .map_err(from_agent)
            })
            .await
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
            .bounded(&format!("forgetting process {}", self.id), async {
                self.session
                    .channel()
                    .await?
                    .forget(self.id)
                    .await
                    .map_err(from_agent)
            })
            .await
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
        let what = format!("starting {:?} in the background", exec.argv[0]);
        let ch = self.bounded(&what, self.channel()).await?;
        self.bounded(&what, async {
            ch.start_process(req).await.map_err(from_agent)
        })
        .await
        .map_err(|e| {
            Error::new(
                e.kind(),
                format!("starting {}: {}", exec.argv[0], e.message()),
            )
        })
    }

    /// The background processes the agent knows.
    pub(crate) async fn processes(&self) -> Result<Vec<ProcessInfo>> {
        let list = self
            .bounded("listing background processes", async {
                self.channel().await?.processes().await.map_err(from_agent)
            })
            .await?;
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

/// The number of signal `name`: a name with or without `SIG`, any case (`TERM`, `sigkill`), or a
/// number from 1 to 64 — what [`Process::kill`] takes, for front doors that get text.
///
/// # Errors
///
/// [`ErrorKind::InvalidArgument`] for anything else, naming what is accepted.
pub fn signal_number(name: &str) -> Result<i32> {
    const NAMES: &[(&str, i32)] = &[
        ("HUP", libc::SIGHUP),
        ("INT", libc::SIGINT),
        ("QUIT", libc::SIGQUIT),
        ("ABRT", libc::SIGABRT),
        ("KILL", libc::SIGKILL),
        ("USR1", libc::SIGUSR1),
        ("SEGV", libc::SIGSEGV),
        ("USR2", libc::SIGUSR2),
        ("PIPE", libc::SIGPIPE),
        ("ALRM", libc::SIGALRM),
        ("TERM", libc::SIGTERM),
        ("CONT", libc::SIGCONT),
        ("STOP", libc::SIGSTOP),
        ("TSTP", libc::SIGTSTP),
        ("WINCH", libc::SIGWINCH),
    ];
    let t = name.trim();
    if let Ok(n) = t.parse::<i64>() {
        return if (1..=64).contains(&n) {
            Ok(n as i32)
        } else {
            Err(Error::invalid_argument(format!(
                "{name:?} is not a signal number (1 to 64)"
            )))
        };
    }
    let upper = t.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    NAMES
        .iter()
        .find(|(n, _)| *n == bare)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            Error::invalid_argument(format!(
                "{name:?} is not a signal (use a name such as TERM, KILL, INT, HUP, or a number)"
            ))
        })
}

/// The line that reports output the agent's ring dropped before this reader got it.
fn gap_chunk(lost: u64) -> Chunk {
    Chunk {
        stream: StreamKind::Stderr,
        data: Bytes::from(format!(
            "headjack: {lost} bytes of this process's earlier output were dropped (the agent \
             keeps only the most recent)\n"
        )),
    }
}

/// A chunk of the agent's output as headjack reports it.
pub(crate) fn output_chunk(c: headjack_agent::client::Chunk) -> Chunk {
    Chunk {
        stream: match c.stream {
            headjack_agent::client::StreamKind::Stdout => StreamKind::Stdout,
            headjack_agent::client::StreamKind::Stderr => StreamKind::Stderr,
        },
        data: Bytes::from(c.data),
    }
}

#[cfg(test)]
mod tests {
    use super::signal_number;

    #[test]
    fn signal_names_and_numbers() {
        assert_eq!(signal_number("TERM").unwrap(), libc::SIGTERM);
        assert_eq!(signal_number("sigkill").unwrap(), libc::SIGKILL);
        assert_eq!(signal_number(" 9 ").unwrap(), 9);
        for bad in ["0", "65", "-1", "BOGUS", "", "SIG"] {
            let e = signal_number(bad).unwrap_err();
            assert_eq!(e.kind(), crate::error::ErrorKind::InvalidArgument, "{bad}");
            assert!(e.message().contains("signal"), "{e}");
        }
    }
}
