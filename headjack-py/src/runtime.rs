//! Running core futures for Python on the core's one process-wide runtime
//! (`headjack::blocking`), shared by the sync and asyncio faces.
//!
//! The rule that keeps interpreter shutdown safe: the runtime's threads never touch Python.
//! They run the future and hand back Rust values ([`Update`]); everything that needs the GIL —
//! converting results, raising, calling a `progress=` callable — happens on the thread that
//! made the call ([`block`]) or on the event loop's thread (`aio`).

use std::future::{Future, pending};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::Duration;

use pyo3::prelude::*;
use tokio::sync::mpsc::UnboundedReceiver;

use headjack::Progress;

use crate::errors::{Failure, Outcome, or_raise, to_py};
use crate::progress::Relay;

/// How often a blocked sync call wakes up to let Python handle signals (Ctrl-C).
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// What the task running a call reports, in order: progress events, then the outcome.
pub(crate) enum Update<T> {
    Progress(Progress),
    Done(Outcome<T>),
}

/// The shared runtime, or the exception saying why there is none (a forked child).
pub(crate) fn runtime(py: Python<'_>) -> PyResult<&'static tokio::runtime::Runtime> {
    headjack::blocking::runtime().map_err(|e| to_py(py, Failure::Core(e)))
}

/// Runs `fut` to completion, passing each progress event from `events` and then the outcome
/// to `report` (which must not touch Python: it runs on a runtime thread).
pub(crate) async fn drive<T>(
    fut: impl Future<Output = Outcome<T>>,
    mut events: Option<UnboundedReceiver<Progress>>,
    mut report: impl FnMut(Update<T>),
) {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            biased;
            event = next_event(&mut events) => match event {
                Some(e) => report(Update::Progress(e)),
                None => events = None,
            },
            outcome = &mut fut => {
                if let Some(rx) = events.as_mut() {
                    while let Ok(e) = rx.try_recv() {
                        report(Update::Progress(e));
                    }
                }
                report(Update::Done(outcome));
                return;
            }
        }
    }
}

/// The next event; never resolves when there are no (more) events to wait for.
async fn next_event(events: &mut Option<UnboundedReceiver<Progress>>) -> Option<Progress> {
    match events {
        Some(rx) => rx.recv().await,
        None => pending().await,
    }
}

/// Runs `fut` on the shared runtime and waits for it with the GIL released, delivering its
/// progress events to `progress` on this thread. Every [`SIGNAL_POLL`] the wait lets Python
/// run its signal handlers: if one raises (Ctrl-C gives `KeyboardInterrupt`), the future is
/// dropped — which kills a running exec inside the container — and the exception propagates.
pub(crate) fn block<F, T>(py: Python<'_>, fut: F, progress: Option<&Relay>) -> PyResult<T>
where
    F: Future<Output = Outcome<T>> + Send + 'static,
    T: Send + 'static,
{
    let rt = runtime(py)?;
    let (tx, rx) = channel();
    let events = progress.and_then(Relay::take_events);
    let task = rt.spawn(drive(fut, events, move |u| {
        let _ = tx.send(u);
    }));
    // Dropping the call (an exception in a progress callable, Ctrl-C) stops the work.
    let task = AbortOnDrop(task.abort_handle());
    let mut rx = rx;
    loop {
        let (got, back) = py.detach(move || (rx.recv_timeout(SIGNAL_POLL), rx));
        rx = back;
        match got {
            Ok(Update::Progress(event)) => {
                if let Some(relay) = progress {
                    relay.deliver(py, &event);
                }
            }
            Ok(Update::Done(outcome)) => return or_raise(py, outcome),
            Err(RecvTimeoutError::Timeout) => py.check_signals()?,
            Err(RecvTimeoutError::Disconnected) => {
                drop(task);
                return Err(to_py(
                    py,
                    Failure::Runtime("the task running this call stopped unexpectedly".into()),
                ));
            }
        }
    }
}

/// Aborts a task when dropped.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
