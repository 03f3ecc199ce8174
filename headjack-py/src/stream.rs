//! Output streams: `ExecStream` / `AsyncExecStream` (a running command: the core's
//! `SharedExec`), `LogStream` / `AsyncLogStream` (the keep-alive process's output) and
//! `StatsStream` / `AsyncStatsStream` (resource use sampled at an interval). Sync
//! ones are iterators, async ones async iterators; each pair is written once, over the face.
//! Closing (or dropping) a stream of a running command kills it in the container.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use headjack::exec::SharedExec;

use crate::convert;
use crate::errors::Outcome;
use crate::face::{Asyncio, Blocking, Face, Ret};
use crate::fork::{ParentOnly, is_forked_child};
use crate::types::{Chunk, ExitStatus, NextChunk, StatsDict, stats_dict};

/// A running command, shared by the stream object and the calls in flight on it.
pub(crate) type SharedStream = Arc<ParentOnly<SharedExec>>;

/// Runs a close operation; in a forked child there is nothing of this process's to close, and
/// the call returns `value` at once instead of failing.
pub(crate) fn closing<F: Face, T: Ret>(
    py: Python<'_>,
    name: &'static str,
    fut: impl Future<Output = Outcome<T>> + Send + 'static,
    value: T,
) -> PyResult<F::Out<T>> {
    if is_forked_child() {
        return F::ready(py, name, value);
    }
    F::call(py, name, fut, None)
}

fn dims(rows: &Bound<'_, PyAny>, cols: &Bound<'_, PyAny>) -> PyResult<(u16, u16)> {
    let r = convert::count(rows, "rows")?;
    let c = convert::count(cols, "cols")?;
    let conv = |v: u64, what: &str| {
        u16::try_from(v).ok().filter(|v| *v > 0).ok_or_else(|| {
            pyo3::exceptions::PyValueError::new_err(format!("{what} must be between 1 and 65535"))
        })
    };
    Ok((conv(r, "rows")?, conv(c, "cols")?))
}

/// The methods both exec stream classes share, for face `$face`, plus the class's own.
macro_rules! exec_stream_methods {
    ($cls:ident, $face:ty, { $($own:tt)* }) => {
        #[pymethods]
        impl $cls {
            /// Waits for the command to end (closing its standard input and discarding output
            /// not yet read) and returns its status.
            fn wait(&self, py: Python<'_>) -> PyResult<<$face as Face>::Out<ExitStatus>> {
                let exec = self.exec.clone();
                <$face>::call(py, concat!(stringify!($cls), ".wait"), async move {
                    Ok(ExitStatus { inner: exec.wait().await? })
                }, None)
            }

            /// How the command ended, once the stream is exhausted (else None).
            #[getter]
            fn status(&self) -> Option<ExitStatus> {
                self.exec.status().map(|inner| ExitStatus { inner })
            }

            /// Writes to the command's standard input (only with `interactive=True`).
            fn write(
                &self,
                py: Python<'_>,
                data: &Bound<'_, PyAny>,
            ) -> PyResult<<$face as Face>::Out<()>> {
                let data = convert::data(data, "data")?;
                let exec = self.exec.clone();
                <$face>::call(py, concat!(stringify!($cls), ".write"), async move {
                    Ok(exec.write(&data).await?)
                }, None)
            }

            /// Closes standard input: the command sees end-of-file. Idempotent.
            fn close_stdin(&self, py: Python<'_>) -> PyResult<<$face as Face>::Out<()>> {
                let exec = self.exec.clone();
                <$face>::call(py, concat!(stringify!($cls), ".close_stdin"), async move {
                    Ok(exec.close_stdin().await?)
                }, None)
            }

            /// Resizes the terminal of a `tty=True` command.
            fn resize(
                &self,
                py: Python<'_>,
                rows: &Bound<'_, PyAny>,
                cols: &Bound<'_, PyAny>,
            ) -> PyResult<<$face as Face>::Out<()>> {
                let (r, c) = dims(rows, cols)?;
                let exec = self.exec.clone();
                <$face>::call(py, concat!(stringify!($cls), ".resize"), async move {
                    Ok(exec.resize(r, c).await?)
                }, None)
            }

            /// Stops reading; a command still running is killed inside the container, and this
            /// returns once it is (a thread or task blocked reading the output gets the end of
            /// it). Idempotent.
            fn close(&self, py: Python<'_>) -> PyResult<<$face as Face>::Out<()>> {
                let exec = self.exec.clone();
                closing::<$face, _>(py, concat!(stringify!($cls), ".close"), async move {
                    exec.close().await;
                    Ok(())
                }, ())
            }

            $($own)*
        }
    };
}

/// A running command's output, chunk by chunk (an iterator of `Chunk`). After the last chunk,
/// `status` holds how it ended. Closing it (or leaving its `with` block, or dropping it) before
/// the end kills the command inside the container.
#[pyclass(module = "headjack", frozen)]
pub(crate) struct ExecStream {
    exec: SharedStream,
}

impl From<SharedStream> for ExecStream {
    fn from(exec: SharedStream) -> Self {
        ExecStream { exec }
    }
}

exec_stream_methods!(ExecStream, Blocking, {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Chunk>> {
        let exec = self.exec.clone();
        Blocking::call(
            py,
            "ExecStream.__next__",
            async move { Ok(exec.next().await?.map(Chunk::from)) },
            None,
        )
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }
});

/// The asyncio form of `ExecStream`: `async for chunk in stream`, `await stream.wait()`.
#[pyclass(module = "headjack", frozen)]
pub(crate) struct AsyncExecStream {
    exec: SharedStream,
}

impl From<SharedStream> for AsyncExecStream {
    fn from(exec: SharedStream) -> Self {
        AsyncExecStream { exec }
    }
}

exec_stream_methods!(AsyncExecStream, Asyncio, {
    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __anext__(&self, py: Python<'_>) -> PyResult<crate::aio::Coroutine> {
        let exec = self.exec.clone();
        Asyncio::call(
            py,
            "AsyncExecStream.__anext__",
            async move { Ok(NextChunk(exec.next().await?.map(Chunk::from))) },
            None,
        )
    }

    fn __aenter__(slf: PyRef<'_, Self>, py: Python<'_>) -> PyResult<crate::aio::Coroutine> {
        let me: Py<Self> = slf.into();
        Asyncio::ready(py, "AsyncExecStream.__aenter__", me)
    }

    #[pyo3(signature = (*_exc))]
    fn __aexit__(
        &self,
        py: Python<'_>,
        _exc: &Bound<'_, PyTuple>,
    ) -> PyResult<crate::aio::Coroutine> {
        let exec = self.exec.clone();
        closing::<Asyncio, _>(
            py,
            "AsyncExecStream.__aexit__",
            async move {
                exec.close().await;
                Ok(false)
            },
            false,
        )
    }
});

type BoxChunks = Pin<Box<dyn Stream<Item = headjack::Result<headjack::exec::Chunk>> + Send>>;

/// The keep-alive process's output, shared by a log stream object and the calls in flight.
pub(crate) struct Logs {
    stream: tokio::sync::Mutex<Option<BoxChunks>>,
}

/// A log stream shared by the stream object and the calls in flight on it.
pub(crate) type SharedLogs = Arc<ParentOnly<Logs>>;

impl Logs {
    pub(crate) fn shared(
        stream: impl Stream<Item = headjack::Result<headjack::exec::Chunk>> + Send + 'static,
    ) -> SharedLogs {
        Arc::new(ParentOnly::new(Logs {
            stream: tokio::sync::Mutex::new(Some(Box::pin(stream))),
        }))
    }

    async fn next(&self) -> Outcome<Option<Chunk>> {
        let mut st = self.stream.lock().await;
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

    async fn close(&self) {
        *self.stream.lock().await = None;
    }
}

/// The methods both log stream classes share.
macro_rules! log_stream_methods {
    ($cls:ident, $face:ty, { $($own:tt)* }) => {
        #[pymethods]
        impl $cls {
            /// Stops reading. Idempotent.
            fn close(&self, py: Python<'_>) -> PyResult<<$face as Face>::Out<()>> {
                let logs = self.logs.clone();
                closing::<$face, _>(py, concat!(stringify!($cls), ".close"), async move {
                    logs.close().await;
                    Ok(())
                }, ())
            }

            $($own)*
        }
    };
}

/// The keep-alive process's output as an iterator of `Chunk` (with `follow=True` it waits for
/// new output until closed or the container stops).
#[pyclass(module = "headjack", frozen)]
pub(crate) struct LogStream {
    logs: SharedLogs,
}

impl From<SharedLogs> for LogStream {
    fn from(logs: SharedLogs) -> Self {
        LogStream { logs }
    }
}

log_stream_methods!(LogStream, Blocking, {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Chunk>> {
        let logs = self.logs.clone();
        Blocking::call(
            py,
            "LogStream.__next__",
            async move { logs.next().await },
            None,
        )
    }
});

/// The asyncio form of `LogStream` (`async for chunk in stream`).
#[pyclass(module = "headjack", frozen)]
pub(crate) struct AsyncLogStream {
    logs: SharedLogs,
}

impl From<SharedLogs> for AsyncLogStream {
    fn from(logs: SharedLogs) -> Self {
        AsyncLogStream { logs }
    }
}

log_stream_methods!(AsyncLogStream, Asyncio, {
    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __anext__(&self, py: Python<'_>) -> PyResult<crate::aio::Coroutine> {
        let logs = self.logs.clone();
        Asyncio::call(
            py,
            "AsyncLogStream.__anext__",
            async move { Ok(NextChunk(logs.next().await?)) },
            None,
        )
    }
});

/// An instance's resource use sampled at an interval: the core's `StatsSampler` (its pacing and
/// end), shared by a stats stream object and the calls in flight on it, with the instance.
pub(crate) struct Sampler {
    inst: Arc<ParentOnly<headjack::Instance>>,
    state: tokio::sync::Mutex<headjack::instance::StatsSampler>,
    /// close() was called (seen without waiting for a sample in flight).
    closed: std::sync::atomic::AtomicBool,
}

/// A sampler shared by the stream object and the calls in flight.
pub(crate) type SharedSampler = Arc<ParentOnly<Sampler>>;

impl Sampler {
    pub(crate) fn shared(
        inst: Arc<ParentOnly<headjack::Instance>>,
        interval: Duration,
    ) -> SharedSampler {
        Arc::new(ParentOnly::new(Sampler {
            inst,
            state: tokio::sync::Mutex::new(headjack::instance::StatsSampler::new(interval)),
            closed: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    async fn next(&self) -> Outcome<Option<StatsDict>> {
        use std::sync::atomic::Ordering::SeqCst;
        let mut sampler = self.state.lock().await;
        if self.closed.load(SeqCst) {
            sampler.end();
        }
        match sampler.next(&self.inst).await {
            // close() while this waited for the interval: no more samples.
            Some(Ok(_)) if self.closed.load(SeqCst) => {
                sampler.end();
                Ok(None)
            }
            Some(Ok(s)) => Ok(Some(stats_dict(s))),
            Some(Err(e)) => Err(e.into()),
            None => Ok(None),
        }
    }

    async fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The next sample of an async stats stream: a dict, or `StopAsyncIteration` at the end.
struct NextStats(Option<StatsDict>);

impl<'py> IntoPyObject<'py> for NextStats {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;
    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.0 {
            Some(s) => Ok(s.into_pyobject(py)?.into_any()),
            None => Err(pyo3::exceptions::PyStopAsyncIteration::new_err(())),
        }
    }
}

/// The methods both stats stream classes share.
macro_rules! stats_stream_methods {
    ($cls:ident, $face:ty, { $($own:tt)* }) => {
        #[pymethods]
        impl $cls {
            /// Stops sampling: the iteration ends. Idempotent.
            fn close(&self, py: Python<'_>) -> PyResult<<$face as Face>::Out<()>> {
                let sampler = self.sampler.clone();
                closing::<$face, _>(py, concat!(stringify!($cls), ".close"), async move {
                    sampler.close().await;
                    Ok(())
                }, ())
            }

            $($own)*
        }
    };
}

/// An instance's resource use every `interval` (`Instance.stats_stream()`): an iterator of the
/// dicts `Instance.stats()` returns, ending when the instance stops or is removed.
#[pyclass(module = "headjack", frozen)]
pub(crate) struct StatsStream {
    sampler: SharedSampler,
}

impl From<SharedSampler> for StatsStream {
    fn from(sampler: SharedSampler) -> Self {
        StatsStream { sampler }
    }
}

stats_stream_methods!(StatsStream, Blocking, {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<StatsDict>> {
        let sampler = self.sampler.clone();
        Blocking::call(
            py,
            "StatsStream.__next__",
            async move { sampler.next().await },
            None,
        )
    }
});

/// The asyncio form of `StatsStream` (`async for sample in stream`).
#[pyclass(module = "headjack", frozen)]
pub(crate) struct AsyncStatsStream {
    sampler: SharedSampler,
}

impl From<SharedSampler> for AsyncStatsStream {
    fn from(sampler: SharedSampler) -> Self {
        AsyncStatsStream { sampler }
    }
}

stats_stream_methods!(AsyncStatsStream, Asyncio, {
    fn __aiter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __anext__(&self, py: Python<'_>) -> PyResult<crate::aio::Coroutine> {
        let sampler = self.sampler.clone();
        Asyncio::call(
            py,
            "AsyncStatsStream.__anext__",
            async move { Ok(NextStats(sampler.next().await?)) },
            None,
        )
    }
});
