//! headjack from synchronous code: the process-wide runtime the bindings (C, Python) and sync
//! callers share, how a future is run to completion from a plain thread, and how cleanup that
//! must happen in `Drop` reaches the engine from any context.
//!
//! The runtime is created on first use and never dropped (its threads live as long as the
//! process). It does not survive `fork()`: in a forked child every call fails with
//! [`ErrorKind::Forked`], and instances inherited from the parent are never removed by the child
//! (see [`crate::Instance`]).

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Runtime;

use crate::error::{Error, ErrorKind, Result};

/// The runtime and the process that created it.
struct Shared {
    runtime: Runtime,
    pid: u32,
}

static SHARED: OnceLock<std::result::Result<Shared, String>> = OnceLock::new();

/// The process-wide multi-thread runtime, created on first use (so a process that loads headjack
/// but only uses it after `fork()` works).
///
/// # Errors
///
/// [`ErrorKind::Forked`] in a child forked after the runtime started (its worker threads do not
/// exist there); [`ErrorKind::Internal`] when the runtime cannot be built.
pub fn runtime() -> Result<&'static Runtime> {
    let shared = SHARED.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("headjack-rt")
            .build()
            .map(|runtime| Shared {
                runtime,
                pid: std::process::id(),
            })
            .map_err(|e| e.to_string())
    });
    match shared {
        Ok(s) if s.pid == std::process::id() => Ok(&s.runtime),
        Ok(s) => Err(forked_error(s.pid)),
        Err(e) => Err(Error::internal(format!(
            "cannot start headjack's runtime: {e}"
        ))),
    }
}

/// Whether this process is a `fork()` of one whose headjack runtime had started.
pub fn is_forked_child() -> bool {
    matches!(SHARED.get(), Some(Ok(s)) if s.pid != std::process::id())
}

pub(crate) fn forked_error(parent: u32) -> Error {
    Error::new(
        ErrorKind::Forked,
        format!(
            "headjack was first used in process {parent} and this process ({}) is a fork() of it; \
             its runtime does not survive fork: use headjack only in the parent, or only after \
             exec() in the child",
            std::process::id()
        ),
    )
}

/// Runs `fut` to completion on the calling thread, driven by the shared runtime (so callbacks it
/// makes run on this thread too).
///
/// # Errors
///
/// [`ErrorKind::Forked`] in a forked child; [`ErrorKind::Conflict`] when called from a thread
/// that is already running a tokio runtime (e.g. from inside a headjack callback) — blocking
/// there would stall that runtime.
pub fn block_on<F: Future>(fut: F) -> Result<F::Output> {
    let rt = runtime()?;
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::new(
            ErrorKind::Conflict,
            "a blocking headjack call was made from a thread running a tokio runtime (or from \
             inside a headjack callback); use the async API there, or copy what you need in the \
             callback and call headjack after it returns",
        ));
    }
    Ok(rt.block_on(fut))
}

/// Runs cleanup `work` to completion from a `Drop`, whatever the context: inside a multi-thread
/// runtime, on a current-thread runtime, or with no runtime at all (e.g. at process exit). The
/// work runs on its own thread with its own small runtime, so it never waits on the caller's
/// executor (which may be the one that would have to drive it).
pub(crate) fn finish_in_drop<F>(what: &'static str, work: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let run = move || match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(work),
        Err(e) => tracing::error!(error = %e, "cannot {what}: no runtime"),
    };
    let handle = match std::thread::Builder::new()
        .name("headjack-drop".into())
        .spawn(run)
    {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "cannot {what}: no thread");
            return;
        }
    };
    let join = move || {
        let _ = handle.join();
    };
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(join)
        }
        _ => join(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_on_runs_and_refuses_inside_a_runtime() {
        assert_eq!(block_on(async { 41 + 1 }).unwrap(), 42);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let e = rt.block_on(async { block_on(async {}) }).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert!(!is_forked_child());
    }

    #[test]
    fn finish_in_drop_works_from_every_context() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let done = Arc::new(AtomicUsize::new(0));
        let bump = |d: &Arc<AtomicUsize>| {
            let d = d.clone();
            async move {
                d.fetch_add(1, Ordering::SeqCst);
            }
        };
        finish_in_drop("test", bump(&done));
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(async { finish_in_drop("test", bump(&done)) });
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap()
            .block_on(async { finish_in_drop("test", bump(&done)) });
        assert_eq!(done.load(Ordering::SeqCst), 3);
    }
}
