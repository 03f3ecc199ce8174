//! `Process` (sync) and `AsyncProcess` (asyncio): two faces of one handle to a background
//! process of an instance, written once (`process_class!`), and `ProcessInfo`. Everything they
//! do is the core's `headjack::instance::Process`; dropping a handle leaves the process running.

use std::sync::Arc;

use pyo3::prelude::*;

use headjack::exec::SharedExec;
use headjack::instance::Process as Core;

use crate::convert;
use crate::errors::{Failure, to_py};
use crate::face::{Asyncio, Blocking, Face};
use crate::fork::ParentOnly;
use crate::stream::{AsyncExecStream, ExecStream};
use crate::types::{Chunk, ExitStatus};

/// A core process handle, shared by its Python handle and the calls in flight.
pub(crate) type Shared = Arc<ParentOnly<Core>>;

/// Wraps a core handle.
pub(crate) fn shared(p: Core) -> Shared {
    Arc::new(ParentOnly::new(p))
}

/// A signal given as a number or a name ("TERM", "SIGKILL"); default SIGTERM.
fn signal(py: Python<'_>, v: Option<&Bound<'_, PyAny>>) -> PyResult<i32> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return headjack::instance::signal_number("TERM").map_err(|e| to_py(py, Failure::Core(e)));
    };
    let text = if v.is_instance_of::<pyo3::types::PyBool>() {
        return Err(convert::wrong(
            "signal",
            "a signal number or name (e.g. 15 or \"TERM\")",
            v,
        ));
    } else if let Ok(n) = v.extract::<i64>() {
        n.to_string()
    } else if let Ok(s) = v.extract::<String>() {
        s
    } else {
        return Err(convert::wrong(
            "signal",
            "a signal number or name (e.g. 15 or \"TERM\")",
            v,
        ));
    };
    headjack::instance::signal_number(&text).map_err(|e| to_py(py, Failure::Core(e)))
}

/// What `Instance.processes()` reports about one background process.
#[pyclass(module = "headjack", frozen, get_all)]
pub(crate) struct ProcessInfo {
    /// Its ID (for `Instance.process(id)`).
    id: u64,
    /// Its PID in the container (0 if it never started).
    pid: u32,
    /// Its argument vector.
    argv: Vec<String>,
    /// How it ended, or None while it runs.
    status: Option<ExitStatus>,
    /// When it started, milliseconds since the epoch.
    started_ms: u64,
}

impl From<headjack::instance::ProcessInfo> for ProcessInfo {
    fn from(p: headjack::instance::ProcessInfo) -> Self {
        ProcessInfo {
            id: p.id,
            pid: p.pid,
            argv: p.argv,
            status: p.status.map(|inner| ExitStatus { inner }),
            started_ms: p.started_ms,
        }
    }
}

#[pymethods]
impl ProcessInfo {
    /// True while the process runs.
    #[getter]
    fn running(&self) -> bool {
        self.status.is_none()
    }

    fn __repr__(&self) -> String {
        let state = match &self.status {
            None => "running".to_string(),
            Some(s) => format!("exited {}", s.inner.code),
        };
        format!(
            "ProcessInfo(id={}, pid={}, argv={:?}, {state})",
            self.id, self.pid, self.argv
        )
    }
}

/// A process class for face `$face`, whose output streams are `$stream`.
macro_rules! process_class {
    ($(#[$doc:meta])* $cls:ident, $face:ty, $stream:ident) => {
        $(#[$doc])*
        #[pyclass(module = "headjack", frozen)]
        pub(crate) struct $cls {
            inner: Shared,
        }

        impl From<Shared> for $cls {
            fn from(inner: Shared) -> Self {
                $cls { inner }
            }
        }

        #[pymethods]
        impl $cls {
            /// Its ID, stable for the instance's life (give it to `Instance.process(id)`, e.g.
            /// in another process after a restart).
            #[getter]
            fn id(&self) -> u64 {
                self.inner.id()
            }

            /// Its output as a stream: first what the agent kept (the most recent part; with
            /// replay=False nothing of the past), then live output until the process ends;
            /// the stream's status is the process's. Closing the stream stops following; the
            /// process goes on.
            #[pyo3(signature = (*, replay=None))]
            fn attach(
                slf: &Bound<'_, Self>,
                py: Python<'_>,
                replay: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<<$face as Face>::Out<$stream>> {
                let replay = match replay.filter(|r| !r.is_none()) {
                    None => true,
                    Some(r) => convert::boolean(r, "replay")?,
                };
                let p = slf.get().inner.clone();
                let name = concat!(stringify!($cls), ".attach");
                <$face>::call_for(py, name, slf.as_any(), async move {
                    let stream = p.attach(replay).await?;
                    Ok($stream::from(Arc::new(ParentOnly::new(SharedExec::new(stream)))))
                })
            }

            /// What the agent keeps of its output now (the most recent part), without
            /// following.
            fn output(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<<$face as Face>::Out<Vec<Chunk>>> {
                let p = slf.get().inner.clone();
                let name = concat!(stringify!($cls), ".output");
                <$face>::call_for(py, name, slf.as_any(), async move {
                    Ok(p.output().await?.into_iter().map(Chunk::from).collect::<Vec<_>>())
                })
            }

            /// Sends `signal` (a number or a name such as "KILL"; default SIGTERM) to the
            /// process and everything it started.
            #[pyo3(signature = (signal=None))]
            fn kill(
                slf: &Bound<'_, Self>,
                py: Python<'_>,
                signal: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<<$face as Face>::Out<()>> {
                let s = self::signal(py, signal)?;
                let p = slf.get().inner.clone();
                let name = concat!(stringify!($cls), ".kill");
                <$face>::call_for(py, name, slf.as_any(), async move { Ok(p.kill(s).await?) })
            }

            /// Waits until the process ended and returns how.
            fn wait(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<<$face as Face>::Out<ExitStatus>> {
                let p = slf.get().inner.clone();
                let name = concat!(stringify!($cls), ".wait");
                <$face>::call_for(py, name, slf.as_any(), async move {
                    Ok(ExitStatus { inner: p.wait().await? })
                })
            }

            /// Lets the agent drop what it keeps of the ended process (ConflictError while it
            /// runs).
            fn forget(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<<$face as Face>::Out<()>> {
                let p = slf.get().inner.clone();
                let name = concat!(stringify!($cls), ".forget");
                <$face>::call_for(py, name, slf.as_any(), async move { Ok(p.forget().await?) })
            }

            fn __repr__(&self) -> String {
                format!("{}(id={})", stringify!($cls), self.inner.id())
            }
        }
    };
}

process_class!(
    /// A background process of an instance (sync API), from `Instance.start_process()` or
    /// `Instance.process(id)`. Dropping the handle leaves the process running.
    Process,
    Blocking,
    ExecStream
);

process_class!(
    /// A background process of an instance (asyncio API): every operation returns a coroutine.
    AsyncProcess,
    Asyncio,
    AsyncExecStream
);
