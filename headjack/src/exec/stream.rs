//! The handles of a running command: [`ExecStream`] (its output, then its status), [`ExecStdin`]
//! (its standard input) and [`ExecResizer`] (its terminal size).

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

use super::{Chunk, ExitStatus};
use crate::engine::{Engine, InputSink};
use crate::error::{Error, Result};

/// Output of a running command, chunk by chunk. Dropping it before the end kills the command.
///
/// Implements [`Stream`]; [`ExecStream::next`] is the same without importing a trait.
pub struct ExecStream {
    chunks: mpsc::Receiver<Result<Chunk>>,
    status: Option<oneshot::Receiver<Result<ExitStatus>>>,
    stdin: Option<ExecStdin>,
    resizer: ExecResizer,
}

impl ExecStream {
    /// A stream fed by a driver: output on `chunks` (closing it asks the driver to kill the
    /// command), then the status on `status`.
    pub(crate) fn new(
        chunks: mpsc::Receiver<Result<Chunk>>,
        status: oneshot::Receiver<Result<ExitStatus>>,
        stdin: Option<ExecStdin>,
        resizer: ExecResizer,
    ) -> ExecStream {
        ExecStream {
            chunks,
            status: Some(status),
            stdin,
            resizer,
        }
    }

    /// A stream of a command that already ended: `chunks`, then `status`.
    pub(crate) fn ended(chunks: Vec<Chunk>, status: ExitStatus) -> ExecStream {
        let (tx, rx) = mpsc::channel(chunks.len().max(1));
        for c in chunks {
            let _ = tx.try_send(Ok(c));
        }
        let (status_tx, status_rx) = oneshot::channel();
        let _ = status_tx.send(Ok(status));
        ExecStream::new(rx, status_rx, None, ExecResizer::none())
    }

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
        self.stdin.take()
    }

    /// Resizes the terminal of a [`Exec::tty`] exec.
    pub async fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        self.resizer().resize(rows, cols).await
    }

    /// A handle that resizes this exec's terminal from elsewhere, e.g. a task forwarding
    /// SIGWINCH while another reads the output.
    pub fn resizer(&self) -> ExecResizer {
        self.resizer.clone()
    }
}

/// Resizes the terminal of a [`Exec::tty`] exec; independent of the [`ExecStream`] it came from
/// (cheap to clone, usable from any task while the stream is read).
#[derive(Clone)]
pub struct ExecResizer {
    target: ResizeTarget,
}

/// Where a resize goes.
#[derive(Clone)]
enum ResizeTarget {
    /// An engine exec.
    Engine {
        engine: Box<Engine>,
        exec_id: String,
    },
    /// A command that never got a terminal (it could not be started).
    Nothing,
}

impl ExecResizer {
    /// Resizes the terminal of engine exec `exec_id`.
    pub(crate) fn engine(engine: Engine, exec_id: String) -> ExecResizer {
        ExecResizer {
            target: ResizeTarget::Engine {
                engine: Box::new(engine),
                exec_id,
            },
        }
    }

    /// For a command without a terminal to resize.
    pub(crate) fn none() -> ExecResizer {
        ExecResizer {
            target: ResizeTarget::Nothing,
        }
    }

    /// Sets the terminal to `rows` × `cols`. A resize after the command ended may fail with
    /// [`ErrorKind::NotFound`] or [`ErrorKind::Conflict`] (the engine forgets ended execs).
    pub async fn resize(&self, rows: u16, cols: u16) -> Result<()> {
        if rows == 0 || cols == 0 {
            return Err(Error::invalid_argument(format!(
                "a terminal of {rows} rows × {cols} columns: both must be at least 1"
            )));
        }
        match &self.target {
            ResizeTarget::Engine { engine, exec_id } => {
                engine.resize_exec(exec_id, rows, cols).await
            }
            ResizeTarget::Nothing => Err(Error::new(
                crate::error::ErrorKind::Conflict,
                "the command has no terminal to resize (it did not start)",
            )),
        }
    }
}

impl std::fmt::Debug for ExecResizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let exec_id = match &self.target {
            ResizeTarget::Engine { exec_id, .. } => exec_id.as_str(),
            ResizeTarget::Nothing => "",
        };
        f.debug_struct("ExecResizer")
            .field("exec_id", &exec_id)
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
    /// Standard input writing to `inner`; `tty` when it feeds a terminal.
    pub(crate) fn new(inner: InputSink, tty: bool) -> ExecStdin {
        ExecStdin {
            inner,
            tty,
            line_pending: false,
        }
    }

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
