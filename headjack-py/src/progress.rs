//! Pull and build progress for a Python callable, delivered on the thread that made the call
//! (the caller's thread for the sync API, the event loop's for asyncio) — never on headjack's
//! runtime threads, which must not touch Python (the interpreter may be shutting down).

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use tokio::sync::mpsc;

use headjack::Progress;
use headjack::progress::ProgressFn;

/// A `progress=` callable and the events the core emitted for it, waiting to be delivered.
pub(crate) struct Relay {
    callable: Py<PyAny>,
    events: Mutex<Option<mpsc::UnboundedReceiver<Progress>>>,
}

impl Relay {
    /// A relay for `callable`, and the core callback feeding it. Events emitted once the call
    /// that took the relay has returned (e.g. a pool's background refills) are dropped.
    pub(crate) fn new(callable: Py<PyAny>) -> (Relay, ProgressFn) {
        let (tx, rx) = mpsc::unbounded_channel();
        let relay = Relay {
            callable,
            events: Mutex::new(Some(rx)),
        };
        let emit = ProgressFn::new(move |event: &Progress| {
            let _ = tx.send(event.clone());
        });
        (relay, emit)
    }

    /// The events, for the task that runs the call (once).
    pub(crate) fn take_events(&self) -> Option<mpsc::UnboundedReceiver<Progress>> {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Calls the callable with one event. An exception in it is reported as unraisable and does
    /// not stop the work.
    pub(crate) fn deliver(&self, py: Python<'_>, event: &Progress) {
        let call = || -> PyResult<()> {
            self.callable.bind(py).call1((event_dict(py, event)?,))?;
            Ok(())
        };
        if let Err(e) = call() {
            e.write_unraisable(py, Some(self.callable.bind(py)));
        }
    }
}

/// One event as a dict: `{"kind": "pull", "image", "layer", "status", "current", "total"}` or
/// `{"kind": "build", "tag", "line"}`, `{"kind": "hook", "hook", "entry", "line"}` (a
/// devcontainer.json lifecycle hook's output) or `{"kind": "warning", "source", "message"}`,
/// flattened through the core's accessors.
fn event_dict<'py>(py: Python<'py>, event: &Progress) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("kind", event.kind())?;
    match event.kind() {
        "pull" => {
            d.set_item("image", event.image())?;
            d.set_item("layer", event.layer())?;
            d.set_item("status", event.status())?;
            d.set_item("current", event.current())?;
            d.set_item("total", event.total())?;
        }
        "build" => {
            d.set_item("tag", event.image())?;
            d.set_item("line", event.line())?;
        }
        "hook" => {
            d.set_item("hook", event.image())?;
            if let Progress::Hook { entry, .. } = event {
                d.set_item("entry", entry.as_deref())?;
            }
            d.set_item("line", event.line())?;
        }
        "warning" => {
            d.set_item("source", event.image())?;
            d.set_item("message", event.line())?;
        }
        _ => {
            d.set_item("image", event.image())?;
        }
    }
    Ok(d)
}
