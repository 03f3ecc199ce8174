//! The one tokio runtime shared by the sync and asyncio APIs, the fork guard, and the helper
//! that runs a core future from a sync call with the GIL released.

use std::future::Future;
use std::sync::OnceLock;
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::time::Duration;

use pyo3::prelude::*;
use tokio::runtime::Runtime;

use crate::errors::{self, Failure};

/// The runtime and the process that created it.
struct Shared {
    runtime: Runtime,
    pid: u32,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

/// How often a blocked sync call wakes up to let Python handle signals (Ctrl-C).
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// True in a child forked after the runtime started: its worker threads do not exist there.
pub(crate) fn is_forked_child() -> bool {
    SHARED.get().is_some_and(|s| s.pid != std::process::id())
}

/// The shared runtime, created on first use (so a process that imports headjack but only
/// uses it after `fork()` works). Fails in a forked child of a process that already used it.
pub(crate) fn runtime() -> Result<&'static Runtime, Failure> {
    if is_forked_child() {
        return Err(Failure::Forked);
    }
    if let Some(s) = SHARED.get() {
        return Ok(&s.runtime);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("headjack-rt")
        .build()
        .map_err(|e| Failure::Runtime(e.to_string()))?;
    let shared = SHARED.get_or_init(|| Shared {
        runtime,
        pid: std::process::id(),
    });
    // The asyncio bridge uses the same runtime. Setting it twice only fails when it is already set
    // to this very runtime, which is fine.
    let _ = pyo3_async_runtimes::tokio::init_with_runtime(&shared.runtime);
    Ok(&shared.runtime)
}

/// Runs `fut` on the shared runtime and waits for it with the GIL released. Every
/// [`SIGNAL_POLL`] the wait lets Python run its signal handlers: if one raises (Ctrl-C gives
/// `KeyboardInterrupt`), the future is dropped — which kills a running exec inside the
/// container — and the exception propagates.
pub(crate) fn block<F, T>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = Result<T, Failure>> + Send + 'static,
    T: Send + 'static,
{
    let rt = runtime().map_err(|f| errors::to_py(py, f))?;
    let (tx, rx) = sync_channel(1);
    let task = rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    let mut rx = rx;
    loop {
        let (got, back) = py.detach(move || (rx.recv_timeout(SIGNAL_POLL), rx));
        rx = back;
        match got {
            Ok(result) => return result.map_err(|f| errors::to_py(py, f)),
            Err(RecvTimeoutError::Timeout) => {
                if let Err(interrupt) = py.check_signals() {
                    task.abort();
                    return Err(interrupt);
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(errors::to_py(
                    py,
                    Failure::Runtime("the task running this call stopped unexpectedly".into()),
                ));
            }
        }
    }
}

/// Turns `fut` into an asyncio awaitable on the shared runtime. Cancelling the awaitable drops
/// the future (for an exec: kills the command inside the container).
pub(crate) fn awaitable<'py, F, T>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = Result<T, Failure>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    runtime().map_err(|f| errors::to_py(py, f))?;
    pyo3_async_runtimes::tokio::future_into_py(py, async move {
        match fut.await {
            Ok(v) => Ok(v),
            Err(f) => Err(Python::attach(|py| errors::to_py(py, f))),
        }
    })
}
