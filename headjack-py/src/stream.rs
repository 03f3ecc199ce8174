//! Output streams: `ExecStream` / `AsyncExecStream` (a running command) and `LogStream` /
//! `AsyncLogStream` (the keep-alive process's output). Sync ones are iterators, async ones
//! async iterators. Dropping or closing a stream of a running command kills it in the container.

use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures_util::{Stream, StreamExt};
use pyo3::exceptions::PyStopAsyncIteration;
use pyo3::prelude::*;

use crate::args;
use crate::errors::{Failure, Outcome};
use crate::runtime::{awaitable, block};
use crate::types::{Chunk, ExitStatus};

/// State shared by the sync and async exec stream classes.
///
/// Output, standard input and the terminal size are driven independently: a thread blocked
/// reading output must not keep another from writing the input the command waits for, from
/// resizing, or from closing the stream.
pub(crate) struct ExecCore {
    stream: tokio::sync::Mutex<Option<headjack::ExecStream>>,
    stdin: tokio::sync::Mutex<Option<headjack::exec::ExecStdin>>,
    resizer: headjack::exec::ExecResizer,
    /// Set by `close`; wakes a reader blocked on the next chunk.
    closed: tokio::sync::watch::Sender<bool>,
    status: Mutex<Option<headjack::exec::ExitStatus>>,
}

impl ExecCore {
    pub(crate) fn new(mut stream: headjack::ExecStream) -> Arc<ExecCore> {
        let stdin = stream.take_stdin();
        Arc::new(ExecCore {
            resizer: stream.resizer(),
            stream: tokio::sync::Mutex::new(Some(stream)),
            stdin: tokio::sync::Mutex::new(stdin),
            closed: tokio::sync::watch::Sender::new(false),
            status: Mutex::new(None),
        })
    }

    fn status(&self) -> Option<headjack::exec::ExitStatus> {
        *self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_status(&self, s: headjack::exec::ExitStatus) {
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
    }

    /// Resolves once `close` was called.
    async fn close_requested(&self) {
        let mut rx = self.closed.subscribe();
        let _ = rx.wait_for(|closed| *closed).await;
    }
}

async fn next_chunk(core: Arc<ExecCore>) -> Outcome<Option<Chunk>> {
    let mut slot = core.stream.lock().await;
    let Some(stream) = slot.as_mut() else {
        return Ok(None);
    };
    let next = tokio::select! {
        next = stream.next() => next,
        // Dropping the stream (below) kills the command.
        _ = core.close_requested() => {
            *slot = None;
            return Ok(None);
        }
    };
    match next {
        Some(Ok(c)) => Ok(Some(c.into())),
        Some(Err(e)) => Err(e.into()),
        None => {
            let stream = slot.take();
            drop(slot);
            *core.stdin.lock().await = None;
            if let Some(s) = stream {
                core.set_status(s.wait().await?);
            }
            Ok(None)
        }
    }
}

async fn wait(core: Arc<ExecCore>) -> Outcome<ExitStatus> {
    *core.stdin.lock().await = None;
    let stream = core.stream.lock().await.take();
    if let Some(s) = stream {
        tokio::select! {
            status = s.wait() => core.set_status(status?),
            // Dropping the wait (and the stream in it) kills the command.
            _ = core.close_requested() => {}
        }
    }
    match core.status() {
        Some(inner) => Ok(ExitStatus { inner }),
        None => Err(Failure::Core(headjack::Error::new(
            headjack::ErrorKind::Conflict,
            "the stream was closed before the command ended, so it has no exit status",
        ))),
    }
}

fn no_stdin() -> Failure {
    Failure::Core(headjack::Error::new(
        headjack::ErrorKind::Conflict,
        "this command's standard input is not open: start it with exec_stream(..., interactive=True), and write before close_stdin()",
    ))
}

async fn write(core: Arc<ExecCore>, data: Vec<u8>) -> Outcome<()> {
    let mut stdin = core.stdin.lock().await;
    match stdin.as_mut() {
        Some(sink) => Ok(sink.write(&data).await?),
        None => Err(no_stdin()),
    }
}

async fn close_stdin(core: Arc<ExecCore>) -> Outcome<()> {
    let sink = core.stdin.lock().await.take();
    match sink {
        Some(sink) => Ok(sink.close().await?),
        None => Ok(()),
    }
}

async fn resize(core: Arc<ExecCore>, rows: u16, cols: u16) -> Outcome<()> {
    Ok(core.resizer.resize(rows, cols).await?)
}

async fn cancel(core: Arc<ExecCore>) -> Outcome<()> {
    core.closed.send_replace(true);
    // The stream first: killing the command also frees a writer blocked on a full pipe.
    *core.stream.lock().await = None;
    *core.stdin.lock().await = None;
    Ok(())
}

fn dims(rows: &Bound<'_, PyAny>, cols: &Bound<'_, PyAny>) -> PyResult<(u16, u16)> {
    let r = args::count(rows, "rows")?;
    let c = args::count(cols, "cols")?;
    let conv = |v: u64, what: &str| {
        u16::try_from(v).ok().filter(|v| *v > 0).ok_or_else(|| {
            pyo3::exceptions::PyValueError::new_err(format!("{what} must be between 1 and 65535"))
        })
    };
    Ok((conv(r, "rows")?, conv(c, "cols")?))
}

/// A running command's output, chunk by chunk (an iterator of `Chunk`). After the last chunk,
/// `status` holds how it ended. Closing it (or leaving its `with` block, or dropping it) before
/// the end kills the command inside the container.
#[pyclass(module = "headjack", frozen)]
pub(crate) struct ExecStream {
    core: Arc<ExecCore>,
}

impl ExecStream {
    pub(crate) fn new(core: Arc<ExecCore>) -> Self {
        ExecStream { core }
    }
}

#[pymethods]
impl ExecStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Chunk>> {
        block(py, next_chunk(self.core.clone()))
    }

    /// Waits for the command to end (discarding output not yet read) and returns its status.
    fn wait(&self, py: Python<'_>) -> PyResult<ExitStatus> {
        block(py, wait(self.core.clone()))
    }

    /// How the command ended, once the stream is exhausted (else None).
    #[getter]
    fn status(&self) -> Option<ExitStatus> {
        self.core.status().map(|inner| ExitStatus { inner })
    }

    /// Writes to the command's standard input (only with `interactive=True`).
    fn write(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let data = args::data(data, "data")?;
        block(py, write(self.core.clone(), data))
    }

    /// Closes standard input: the command sees end-of-file. Idempotent.
    fn close_stdin(&self, py: Python<'_>) -> PyResult<()> {
        block(py, close_stdin(self.core.clone()))
    }

    /// Resizes the terminal of a `tty=True` command.
    fn resize(
        &self,
        py: Python<'_>,
        rows: &Bound<'_, PyAny>,
        cols: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let (r, c) = dims(rows, cols)?;
        block(py, resize(self.core.clone(), r, c))
    }

    /// Stops reading; a command still running is killed inside the container. Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        block(py, cancel(self.core.clone()))
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }
}

/// The asyncio form of `ExecStream`: `async for chunk in stream`, `await stream.wait()`.
#[pyclass(module = "headjack", frozen)]
pub(crate) struct AsyncExecStream {
    core: Arc<ExecCore>,
}

impl AsyncExecStream {
    pub(crate) fn new(core: Arc<ExecCore>) -> Self {
        AsyncExecStream { core }
    }
}

#[pymethods]
impl AsyncExecStream {
    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let core = self.core.clone();
        crate::runtime::runtime().map_err(|f| crate::errors::to_py(py, f))?;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            match next_chunk(core).await {
                Ok(Some(c)) => Ok(c),
                Ok(None) => Err(PyStopAsyncIteration::new_err(())),
                Err(f) => Err(Python::attach(|py| crate::errors::to_py(py, f))),
            }
        })
    }

    /// Waits for the command to end (discarding output not yet read); returns its status.
    fn wait<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, wait(self.core.clone()))
    }

    /// How the command ended, once the stream is exhausted (else None).
    #[getter]
    fn status(&self) -> Option<ExitStatus> {
        self.core.status().map(|inner| ExitStatus { inner })
    }

    /// Writes to the command's standard input (only with `interactive=True`).
    fn write<'py>(&self, py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let data = args::data(data, "data")?;
        awaitable(py, write(self.core.clone(), data))
    }

    /// Closes standard input: the command sees end-of-file. Idempotent.
    fn close_stdin<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, close_stdin(self.core.clone()))
    }

    /// Resizes the terminal of a `tty=True` command.
    fn resize<'py>(
        &self,
        py: Python<'py>,
        rows: &Bound<'py, PyAny>,
        cols: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (r, c) = dims(rows, cols)?;
        awaitable(py, resize(self.core.clone(), r, c))
    }

    /// Stops reading; a command still running is killed inside the container. Idempotent.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, cancel(self.core.clone()))
    }

    fn __aenter__<'py>(slf: PyRef<'py, Self>, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let me: Py<Self> = slf.into();
        awaitable(py, async move { Ok(me) })
    }

    #[pyo3(signature = (*_exc))]
    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        _exc: &Bound<'py, pyo3::types::PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let core = self.core.clone();
        awaitable(py, async move {
            cancel(core).await?;
            Ok(false)
        })
    }
}

type BoxChunks = Pin<Box<dyn Stream<Item = headjack::Result<headjack::exec::Chunk>> + Send>>;

/// State shared by the log stream classes.
pub(crate) struct LogCore {
    stream: tokio::sync::Mutex<Option<BoxChunks>>,
}

impl LogCore {
    pub(crate) fn new(
        stream: impl Stream<Item = headjack::Result<headjack::exec::Chunk>> + Send + 'static,
    ) -> Arc<LogCore> {
        Arc::new(LogCore {
            stream: tokio::sync::Mutex::new(Some(Box::pin(stream))),
        })
    }
}

async fn next_log(core: Arc<LogCore>) -> Outcome<Option<Chunk>> {
    let mut st = core.stream.lock().await;
    let Some(s) = st.as_mut() else {
        return Ok(None);
    };
    match s.next().await {
        Some(Ok(c)) => Ok(Some(c.into())),
        Some(Err(e)) => Err(e.into()),
        None => {
            *st = None;
            Ok(None)
        }
    }
}

async fn close_log(core: Arc<LogCore>) -> Outcome<()> {
    *core.stream.lock().await = None;
    Ok(())
}

/// The keep-alive process's output as an iterator of `Chunk` (with `follow=True` it waits for
/// new output until closed or the container stops).
#[pyclass(module = "headjack", frozen)]
pub(crate) struct LogStream {
    core: Arc<LogCore>,
}

impl LogStream {
    pub(crate) fn new(core: Arc<LogCore>) -> Self {
        LogStream { core }
    }
}

#[pymethods]
impl LogStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Chunk>> {
        block(py, next_log(self.core.clone()))
    }

    /// Stops reading. Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        block(py, close_log(self.core.clone()))
    }
}

/// The asyncio form of `LogStream` (`async for chunk in stream`).
#[pyclass(module = "headjack", frozen)]
pub(crate) struct AsyncLogStream {
    core: Arc<LogCore>,
}

impl AsyncLogStream {
    pub(crate) fn new(core: Arc<LogCore>) -> Self {
        AsyncLogStream { core }
    }
}

#[pymethods]
impl AsyncLogStream {
    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let core = self.core.clone();
        crate::runtime::runtime().map_err(|f| crate::errors::to_py(py, f))?;
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            match next_log(core).await {
                Ok(Some(c)) => Ok(c),
                Ok(None) => Err(PyStopAsyncIteration::new_err(())),
                Err(f) => Err(Python::attach(|py| crate::errors::to_py(py, f))),
            }
        })
    }

    /// Stops reading. Idempotent.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, close_log(self.core.clone()))
    }
}
