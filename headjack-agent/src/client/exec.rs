//! Running commands: [`ExecRequest`] describes one, [`ExecHandle`] streams its output and ends
//! with its [`ExitStatus`].

use std::time::Duration;

use super::error::{Error, ErrorKind, Result};
use super::transport::{Channel, CreditMeter, Event, StreamRx};
use crate::proto::{DataKind, ExecSpec, ExitStatus, Message};

/// A command to run in the container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecRequest {
    /// The argument vector (no shell); `argv[0]` is looked up on `$PATH` unless it has a `/`.
    pub argv: Vec<String>,
    /// Variables set on top of the container's environment.
    pub env: Vec<(String, String)>,
    /// The working directory (default: the container's).
    pub workdir: Option<String>,
    /// `name`, `uid`, `uid:gid`, `name:group` (default: the agent's default user).
    pub user: Option<String>,
    /// Run on a terminal: output arrives as stdout only.
    pub tty: bool,
    /// The terminal's initial size (rows, columns).
    pub tty_size: Option<(u16, u16)>,
    /// Keep standard input open for [`ExecControl::write_stdin`] (else it reads as empty).
    pub stdin: bool,
    /// Kill the command and everything it started after this long.
    pub timeout: Option<Duration>,
    /// After the command exits, how long descendants that still hold its output open may keep
    /// the exec going (default 200 ms).
    pub grace: Option<Duration>,
    /// Background processes: how much recent output the agent keeps.
    pub ring_bytes: Option<u32>,
}

impl ExecRequest {
    /// A command given as its argument vector.
    pub fn new<I, S>(argv: I) -> ExecRequest
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ExecRequest {
            argv: argv.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets the working directory.
    pub fn workdir(mut self, dir: impl Into<String>) -> Self {
        self.workdir = Some(dir.into());
        self
    }

    /// Sets the user.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Runs on a terminal.
    pub fn tty(mut self, tty: bool) -> Self {
        self.tty = tty;
        self
    }

    /// Keeps standard input open.
    pub fn stdin(mut self, stdin: bool) -> Self {
        self.stdin = stdin;
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }

    pub(crate) fn spec(&self) -> ExecSpec {
        ExecSpec {
            argv: self.argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
            env: self
                .env
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
            workdir: self.workdir.as_ref().map(|w| w.as_bytes().to_vec()),
            user: self.user.clone(),
            tty: self.tty,
            tty_size: self.tty_size,
            stdin: self.stdin,
            timeout_ms: self
                .timeout
                .map(|t| t.as_millis().min(u64::MAX as u128) as u64),
            grace_ms: self
                .grace
                .map(|g| g.as_millis().min(u32::MAX as u128) as u32),
            ring_bytes: self.ring_bytes,
        }
    }
}

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// Standard output (all output of a terminal).
    Stdout,
    /// Standard error.
    Stderr,
}

/// A piece of output as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Where it came from.
    pub stream: StreamKind,
    /// The bytes.
    pub data: Vec<u8>,
}

impl Chunk {
    pub(crate) fn from_data(kind: DataKind, data: Vec<u8>) -> Chunk {
        Chunk {
            stream: if kind == DataKind::Stderr {
                StreamKind::Stderr
            } else {
                StreamKind::Stdout
            },
            data,
        }
    }
}

/// Everything a command wrote, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Standard output (all output on a terminal).
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
    /// How it ended.
    pub status: ExitStatus,
}

/// A running command. Read its output with [`ExecHandle::next`]; control it from anywhere with
/// an [`ExecControl`].
///
/// Dropping the handle before the command ended kills the command and everything it started
/// (the agent kills the whole process tree); so does dropping a future that holds it.
pub struct ExecHandle {
    ch: Channel,
    rx: StreamRx,
    meter: CreditMeter,
    pid: Option<u32>,
    process: Option<u64>,
    status: Option<ExitStatus>,
    failed: Option<Error>,
}

impl std::fmt::Debug for ExecHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecHandle")
            .field("stream", &self.rx.id)
            .field("pid", &self.pid)
            .field("status", &self.status)
            .finish()
    }
}

impl Channel {
    /// Starts a command; its output, stdin and status go through the returned handle.
    ///
    /// A command that cannot start (not found, not executable, no such directory, unknown user)
    /// is not an error here: its [`ExitStatus`] says why (`start_failure`, code 126/127).
    ///
    /// # Errors
    /// [`ErrorKind::ChannelClosed`] if the channel is gone; [`ErrorKind::InvalidArgument`] if
    /// the request does not fit in a frame.
    pub async fn exec(&self, req: ExecRequest) -> Result<ExecHandle> {
        let rx = self.open_stream(&Message::Exec(req.spec()))?;
        Ok(ExecHandle {
            ch: self.clone(),
            rx,
            meter: CreditMeter::new(),
            pid: None,
            process: None,
            status: None,
            failed: None,
        })
    }
}

impl ExecHandle {
    /// The next chunk of output; `None` once the command ended (then [`ExecHandle::status`]
    /// holds how).
    ///
    /// # Errors
    /// [`ErrorKind::ChannelClosed`] if the channel closed before the command ended;
    /// [`ErrorKind::Agent`] if the agent refused the request (an empty command…).
    ///
    /// # Cancel safety
    /// Cancel-safe: a chunk is only taken when it is returned.
    pub async fn next(&mut self) -> Option<Result<Chunk>> {
        loop {
            if self.status.is_some() {
                return None;
            }
            if let Some(e) = &self.failed {
                return Some(Err(e.clone()));
            }
            let ev = match self.rx.rx.recv().await {
                Some(ev) => ev,
                None => Event::Closed(
                    self.ch
                        .closed_reason()
                        .unwrap_or_else(|| Error::closed("the reader stopped")),
                ),
            };
            match ev {
                Event::Msg(Message::Data { kind, data }) => {
                    self.meter.consumed(&self.ch, self.rx.id, data.len());
                    return Some(Ok(Chunk::from_data(kind, data)));
                }
                Event::Msg(Message::Started { process, pid }) => {
                    self.pid = Some(pid);
                    self.process = Some(process);
                }
                Event::Msg(Message::Exited(st)) => {
                    self.status = Some(st);
                    self.ch.close_stream(self.rx.id);
                    return None;
                }
                Event::Msg(Message::Error(e)) => {
                    self.ch.close_stream(self.rx.id);
                    self.failed = Some(Error::agent("running the command", e));
                }
                Event::Msg(m) => {
                    tracing::debug!(kind = m.kind(), "unexpected message on an exec stream");
                }
                Event::Closed(e) => self.failed = Some(e),
            }
        }
    }

    /// How the command ended, once [`ExecHandle::next`] returned `None`.
    pub fn status(&self) -> Option<&ExitStatus> {
        self.status.as_ref()
    }

    /// The command's PID in the container, once it started and that was seen.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The agent's process id for this exec (for [`Channel::kill`], [`Channel::processes`]),
    /// once it started.
    pub fn process_id(&self) -> Option<u64> {
        self.process
    }

    /// Waits for the command to end, discarding output not read yet.
    ///
    /// # Errors
    /// As [`ExecHandle::next`].
    pub async fn wait(mut self) -> Result<ExitStatus> {
        while let Some(c) = self.next().await {
            c?;
        }
        Ok(self.status.clone().expect("set when next returns None"))
    }

    /// Collects all output and the status.
    ///
    /// # Errors
    /// As [`ExecHandle::next`].
    pub async fn output(mut self) -> Result<ExecOutput> {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        while let Some(c) = self.next().await {
            let c = c?;
            match c.stream {
                StreamKind::Stdout => stdout.extend_from_slice(&c.data),
                StreamKind::Stderr => stderr.extend_from_slice(&c.data),
            }
        }
        Ok(ExecOutput {
            stdout,
            stderr,
            status: self.status.clone().expect("set when next returns None"),
        })
    }

    /// A handle for stdin, resizing and signals, usable from another task.
    pub fn control(&self) -> ExecControl {
        ExecControl {
            ch: self.ch.clone(),
            stream: self.rx.id,
        }
    }
}

impl Drop for ExecHandle {
    fn drop(&mut self) {
        if self.status.is_none() && self.failed.is_none() {
            // Not ended: the agent kills the command's tree.
            let _ = self.ch.send(self.rx.id, &Message::Cancel);
        }
        self.ch.close_stream(self.rx.id);
    }
}

/// Stdin, terminal size and signals of a running command; cheap to clone, usable from any task
/// while another reads the output.
#[derive(Clone)]
pub struct ExecControl {
    ch: Channel,
    stream: u32,
}

impl std::fmt::Debug for ExecControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecControl")
            .field("stream", &self.stream)
            .finish()
    }
}

impl ExecControl {
    /// Writes to the command's stdin (an [`ExecRequest::stdin`] exec), waiting while the agent
    /// has a full window of it buffered.
    ///
    /// # Errors
    /// [`ErrorKind::Ended`] once the command ended; [`ErrorKind::ChannelClosed`].
    ///
    /// # Cancel safety
    /// Not cancel-safe: a cancelled write may have sent part of `data`.
    pub async fn write_stdin(&self, data: &[u8]) -> Result<()> {
        self.ch.send_data(self.stream, data).await
    }

    /// Ends stdin: the command reads end of file. On a terminal that is a ^D (twice after an
    /// unfinished line), as typed by a user; the terminal stays open.
    ///
    /// # Errors
    /// [`ErrorKind::ChannelClosed`].
    pub fn close_stdin(&self) -> Result<()> {
        self.ch.send(self.stream, &Message::StdinClose)
    }

    /// Resizes the terminal of a [`ExecRequest::tty`] exec.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for a zero size; [`ErrorKind::ChannelClosed`].
    pub fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        if rows == 0 || cols == 0 {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("a terminal of {rows} rows × {cols} columns: both must be at least 1"),
            ));
        }
        self.ch.send(self.stream, &Message::Resize { rows, cols })
    }

    /// Sends `signal` to the command and every process it started (SIGKILL: repeatedly, until
    /// none is left).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for a number that is not a signal (1 to 64);
    /// [`ErrorKind::ChannelClosed`].
    pub fn kill(&self, signal: i32) -> Result<()> {
        check_signal(signal)?;
        self.ch.send(self.stream, &Message::Signal(signal))
    }
}

/// Refuses numbers that are not signals before they reach the agent.
pub(crate) fn check_signal(signal: i32) -> Result<()> {
    if (1..=64).contains(&signal) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("{signal} is not a signal number (1 to 64)"),
        ))
    }
}
