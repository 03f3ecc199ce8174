//! [`SharedExec`]: a running command behind `&self`, for callers that share it between threads
//! or tasks (the C and Python bindings hand it to their users as one handle).
//!
//! Output, standard input and the terminal size are driven independently: a reader blocked on
//! the next chunk never keeps another thread from writing the input the command waits for, from
//! resizing, or from closing the handle — and closing wakes that reader.

use std::sync::Mutex as StdMutex;

use tokio::sync::{Mutex, watch};

use super::{Chunk, ExecResizer, ExecStdin, ExecStream, ExitStatus};
use crate::error::{Error, ErrorKind, Result};

/// A running command that many threads or tasks may use at once. Create it from an
/// [`ExecStream`]; dropping it (or [`SharedExec::close`]) before the command ended kills the
/// command inside the container.
pub struct SharedExec {
    stream: Mutex<Option<ExecStream>>,
    stdin: Mutex<Option<ExecStdin>>,
    resizer: ExecResizer,
    /// Set by `close`; wakes a reader blocked on the next chunk.
    closed: watch::Sender<bool>,
    status: StdMutex<Option<ExitStatus>>,
}

impl std::fmt::Debug for SharedExec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedExec")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl From<ExecStream> for SharedExec {
    fn from(stream: ExecStream) -> SharedExec {
        SharedExec::new(stream)
    }
}

impl SharedExec {
    /// Shares `stream` (and its standard input, if it has one).
    pub fn new(mut stream: ExecStream) -> SharedExec {
        let stdin = stream.take_stdin();
        SharedExec {
            resizer: stream.resizer(),
            stream: Mutex::new(Some(stream)),
            stdin: Mutex::new(stdin),
            closed: watch::Sender::new(false),
            status: StdMutex::new(None),
        }
    }

    /// How the command ended, once the output was read to its end or [`SharedExec::wait`]
    /// returned; `None` before.
    pub fn status(&self) -> Option<ExitStatus> {
        *self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_status(&self, s: ExitStatus) {
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
    }

    /// Resolves once `close` was called.
    async fn close_requested(&self) {
        let mut rx = self.closed.subscribe();
        let _ = rx.wait_for(|closed| *closed).await;
    }

    /// The next piece of output; `None` at the end (then [`SharedExec::status`] is set) or once
    /// the handle was closed. Concurrent readers take turns.
    ///
    /// # Errors
    ///
    /// Engine or agent failures while reading, as [`ExecStream::next`] reports them.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a chunk is only taken from the stream when it is returned.
    pub async fn next(&self) -> Result<Option<Chunk>> {
        let mut slot = self.stream.lock().await;
        let Some(stream) = slot.as_mut() else {
            return Ok(None);
        };
        let next = tokio::select! {
            biased;
            // `close` takes the stream and kills the command.
            _ = self.close_requested() => return Ok(None),
            next = stream.next() => next,
        };
        match next {
            Some(Ok(c)) => Ok(Some(c)),
            Some(Err(e)) => Err(e),
            None => {
                let stream = slot.take();
                drop(slot);
                *self.stdin.lock().await = None;
                if let Some(s) = stream {
                    self.set_status(s.wait().await?);
                }
                Ok(None)
            }
        }
    }

    /// Closes standard input (the command sees end-of-file), waits for the command to end
    /// (discarding output not yet read) and returns its status.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Conflict`] when the handle was closed before the command ended (it was
    /// killed and has no status); engine or agent failures.
    pub async fn wait(&self) -> Result<ExitStatus> {
        // An interactive command may be waiting for the end of its input.
        let _ = self.close_stdin().await;
        while self.next().await?.is_some() {}
        self.status().ok_or_else(|| {
            Error::new(
                ErrorKind::Conflict,
                "the command was closed before it ended, so it has no exit status",
            )
        })
    }

    /// Writes to the command's standard input.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Conflict`] when standard input is not open (the command was not started
    /// interactive, or its input was closed); [`ErrorKind::Io`] when the command stopped reading.
    pub async fn write(&self, data: &[u8]) -> Result<()> {
        match self.stdin.lock().await.as_mut() {
            Some(sink) => sink.write(data).await,
            None => Err(Error::new(
                ErrorKind::Conflict,
                "this command's standard input is not open: start it interactive, and write \
                 before closing its input",
            )),
        }
    }

    /// Closes standard input (the command sees end-of-file). Idempotent.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`] when the end-of-file cannot be delivered.
    pub async fn close_stdin(&self) -> Result<()> {
        let sink = self.stdin.lock().await.take();
        match sink {
            Some(sink) => sink.close().await,
            None => Ok(()),
        }
    }

    /// Resizes the terminal of a command started with a terminal.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] for a zero dimension; engine errors (a command that
    /// ended may be gone).
    pub async fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        self.resizer.resize(rows, cols).await
    }

    /// Kills the command if it still runs (it and everything it started), waking a reader
    /// blocked in [`SharedExec::next`] or [`SharedExec::wait`], and returns once the kill went
    /// through: the command is gone when it returns (or known unkillable, see
    /// [`ExitStatus::kill_failed`]). Idempotent.
    pub async fn close(&self) {
        self.closed.send_replace(true);
        // The stream first: killing the command also frees a writer blocked on a full pipe.
        let stream = self.stream.lock().await.take();
        if let Some(s) = stream {
            let _ = s.cancel().await;
        }
        *self.stdin.lock().await = None;
    }
}
