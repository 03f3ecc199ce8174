//! asyncio: every async method returns a [`Coroutine`], a real coroutine object (so
//! `asyncio.create_task(env.exec([...]))` works) whose work starts when it is first awaited
//! and stops when it is cancelled, closed or collected.
//!
//! The runtime's threads never touch Python (see `runtime`): the task doing the work stores
//! its progress and outcome in a [`Job`] and wakes the event loop through a socket the loop
//! watches ([`LoopWaker`], one per loop). The loop's thread then resolves the asyncio future
//! the coroutine waits on, and the coroutine — on that thread, with the GIL — delivers progress
//! and converts the outcome. Nothing is left for a runtime thread to do in Python when the
//! interpreter shuts down.

use std::future::Future;
use std::io::{ErrorKind as IoKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use pyo3::BoundObject;
use pyo3::exceptions::{PyRuntimeError, PyStopIteration};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use headjack::Progress;

use crate::errors::{Outcome, to_py};
use crate::progress::Relay;
use crate::runtime::{Update, drive, runtime};

/// Turns a call's value into its Python object, on the loop's thread.
pub(crate) type Convert = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

/// The work of a coroutine: a future ending in a value to convert.
pub(crate) type Work = Pin<Box<dyn Future<Output = Outcome<Convert>> + Send>>;

/// The usual conversion of `value`.
pub(crate) fn convert<T>(value: T) -> Convert
where
    T: for<'py> IntoPyObject<'py> + Send + 'static,
{
    Box::new(move |py| {
        value
            .into_pyobject(py)
            .map(|v| v.into_any().unbind())
            .map_err(Into::into)
    })
}

/// What the task doing a coroutine's work has to say, waiting for the loop's thread.
#[derive(Default)]
struct Job {
    updates: Mutex<Updates>,
    /// The asyncio future the coroutine awaits until the next update. Set and resolved only on
    /// the loop's thread.
    waiter: Mutex<Option<Py<PyAny>>>,
}

#[derive(Default)]
struct Updates {
    events: Vec<Progress>,
    outcome: Option<Outcome<Convert>>,
}

impl Job {
    fn push(&self, update: Update<Convert>) {
        let mut u = self.updates.lock().unwrap_or_else(|p| p.into_inner());
        match update {
            Update::Progress(e) => u.events.push(e),
            Update::Done(o) => u.outcome = Some(o),
        }
    }

    fn take(&self) -> Updates {
        std::mem::take(&mut *self.updates.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Wakes one event loop from any thread, without Python: a byte on a socket the loop reads.
struct Wakeup {
    tx: UnixStream,
    rx: UnixStream,
    ready: Mutex<Vec<Arc<Job>>>,
}

impl Wakeup {
    fn new() -> std::io::Result<Wakeup> {
        let (tx, rx) = UnixStream::pair()?;
        tx.set_nonblocking(true)?;
        rx.set_nonblocking(true)?;
        Ok(Wakeup {
            tx,
            rx,
            ready: Mutex::new(Vec::new()),
        })
    }

    /// Queues `job` for the loop and wakes it. A full socket means a wake is already pending.
    fn post(&self, job: Arc<Job>) {
        self.ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(job);
        let _ = (&self.tx).write(&[1]);
    }
}

/// The reader callback registered with an event loop (`loop.add_reader`): resolves the futures
/// of the coroutines whose work has something new.
#[pyclass(module = "headjack", frozen)]
struct LoopWaker {
    wakeup: Arc<Wakeup>,
}

#[pymethods]
impl LoopWaker {
    fn __call__(&self, py: Python<'_>) -> PyResult<()> {
        let mut sink = [0u8; 256];
        loop {
            match (&self.wakeup.rx).read(&mut sink) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == IoKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        let jobs =
            std::mem::take(&mut *self.wakeup.ready.lock().unwrap_or_else(|p| p.into_inner()));
        for job in jobs {
            let waiter = job.waiter.lock().unwrap_or_else(|p| p.into_inner()).take();
            let Some(w) = waiter else { continue };
            let w = w.bind(py);
            // A cancelled task already cancelled the future it awaited.
            let wake = || -> PyResult<()> {
                if !w.call_method0("done")?.is_truthy()? {
                    w.call_method1("set_result", (py.None(),))?;
                }
                Ok(())
            };
            // One future that cannot be woken must not keep the others waiting.
            if let Err(e) = wake() {
                e.write_unraisable(py, Some(w));
            }
        }
        Ok(())
    }
}

/// `asyncio`, imported once.
fn asyncio(py: Python<'_>) -> PyResult<&Bound<'_, PyModule>> {
    static ASYNCIO: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    ASYNCIO
        .get_or_try_init(py, || Ok::<_, PyErr>(py.import("asyncio")?.unbind()))
        .map(|m| m.bind(py))
}

/// The wakeup of `event_loop`, registered with it on first use.
fn wakeup_for(py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> PyResult<Arc<Wakeup>> {
    // Keyed weakly: a loop that is gone takes its waker (and socket) with it.
    static WAKERS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let wakers = WAKERS
        .get_or_try_init(py, || {
            Ok::<_, PyErr>(
                py.import("weakref")?
                    .getattr("WeakKeyDictionary")?
                    .call0()?
                    .unbind(),
            )
        })?
        .bind(py);
    if let Ok(w) = wakers
        .call_method1("get", (event_loop,))?
        .cast::<LoopWaker>()
    {
        return Ok(w.get().wakeup.clone());
    }
    let wakeup = Arc::new(Wakeup::new().map_err(|e| {
        PyRuntimeError::new_err(format!(
            "headjack cannot create the socket that wakes the event loop: {e}"
        ))
    })?);
    let waker = Bound::new(
        py,
        LoopWaker {
            wakeup: wakeup.clone(),
        },
    )?;
    event_loop.call_method1("add_reader", (wakeup.rx.as_raw_fd(), &waker))?;
    wakers.set_item(event_loop, waker)?;
    Ok(wakeup)
}

enum State {
    /// Not awaited yet: nothing runs.
    Fresh(Work),
    /// A value known at once (no work on the runtime).
    Ready(Convert),
    /// The work runs on the runtime.
    Running {
        job: Arc<Job>,
        task: tokio::task::AbortHandle,
    },
    /// Finished, failed, cancelled or closed.
    Done,
}

/// A coroutine returned by headjack's async methods. Await it, or schedule it with
/// `asyncio.create_task`; its work starts when it is first awaited. Cancelling the task that
/// awaits it (or closing or dropping it) stops the work: a running command is killed inside the
/// container.
#[pyclass(module = "headjack", name = "Coroutine", frozen)]
pub(crate) struct Coroutine {
    name: &'static str,
    state: Mutex<State>,
    progress: Option<Relay>,
    /// The object whose method this is, kept alive until the coroutine is done.
    owner: Mutex<Option<Py<PyAny>>>,
}

impl Coroutine {
    /// A coroutine running `work`, delivering its progress to `progress`.
    pub(crate) fn new(name: &'static str, work: Work, progress: Option<Relay>) -> Coroutine {
        Coroutine {
            name,
            state: Mutex::new(State::Fresh(work)),
            progress,
            owner: Mutex::new(None),
        }
    }

    /// Keeps `owner` alive until the coroutine is done.
    pub(crate) fn owned_by(self, owner: &Bound<'_, PyAny>) -> Coroutine {
        *self.owner.lock().unwrap_or_else(|p| p.into_inner()) = Some(owner.clone().unbind());
        self
    }

    /// A coroutine that returns `value` at once.
    pub(crate) fn ready(name: &'static str, value: Convert) -> Coroutine {
        Coroutine {
            name,
            state: Mutex::new(State::Ready(value)),
            progress: None,
            owner: Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops the work, if any runs, and lets go of the owner. Called with the GIL (from
    /// Python, or when the coroutine is collected).
    fn finish(&self) {
        let state = std::mem::replace(&mut *self.lock(), State::Done);
        if let State::Running { task, .. } = state {
            task.abort();
        }
        self.release_owner();
    }

    fn release_owner(&self) {
        let owner = self.owner.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(owner);
    }

    /// Starts the work on the runtime, reporting to the running loop.
    fn start<'py>(&self, py: Python<'py>, work: Work) -> PyResult<(Arc<Job>, Bound<'py, PyAny>)> {
        let event_loop = asyncio(py)?.call_method0("get_running_loop")?;
        let rt = runtime(py)?;
        let wakeup = wakeup_for(py, &event_loop)?;
        let job = Arc::new(Job::default());
        let events = self.progress.as_ref().and_then(Relay::take_events);
        let for_task = job.clone();
        let task = rt.spawn(drive(work, events, move |update| {
            for_task.push(update);
            wakeup.post(for_task.clone());
        }));
        *self.lock() = State::Running {
            job: job.clone(),
            task: task.abort_handle(),
        };
        Ok((job, event_loop))
    }

    /// Delivers what the work reported; returns its value when it is done, or the future to
    /// yield to the loop until it has more.
    fn step(
        &self,
        py: Python<'_>,
        job: &Arc<Job>,
        event_loop: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let updates = job.take();
        if let Some(relay) = &self.progress {
            for event in &updates.events {
                relay.deliver(py, event);
            }
        }
        if let Some(outcome) = updates.outcome {
            *self.lock() = State::Done;
            self.release_owner();
            let value = outcome.map_err(|f| to_py(py, f))?(py)?;
            return Err(PyStopIteration::new_err((value,)));
        }
        let event_loop = match event_loop {
            Some(l) => l,
            None => asyncio(py)?.call_method0("get_running_loop")?,
        };
        let waiter = event_loop.call_method0("create_future")?;
        // What `Future.__await__` sets before yielding: the awaiting task then waits on it.
        waiter.setattr("_asyncio_future_blocking", true)?;
        *job.waiter.lock().unwrap_or_else(|p| p.into_inner()) = Some(waiter.clone().unbind());
        Ok(waiter.unbind())
    }
}

impl Drop for Coroutine {
    fn drop(&mut self) {
        self.finish();
    }
}

#[pymethods]
impl Coroutine {
    /// Resumes the coroutine (asyncio calls it; `value` is ignored).
    #[pyo3(signature = (_value=None))]
    fn send(&self, py: Python<'_>, _value: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        let state = std::mem::replace(&mut *self.lock(), State::Done);
        match state {
            State::Fresh(work) => match self.start(py, work) {
                Ok((job, event_loop)) => self.step(py, &job, Some(event_loop)),
                Err(e) => {
                    self.release_owner();
                    Err(e)
                }
            },
            State::Running { job, task } => {
                *self.lock() = State::Running {
                    job: job.clone(),
                    task,
                };
                self.step(py, &job, None)
            }
            State::Ready(value) => {
                self.release_owner();
                Err(PyStopIteration::new_err((value(py)?,)))
            }
            State::Done => Err(PyRuntimeError::new_err(format!(
                "cannot reuse already awaited coroutine {}",
                self.name
            ))),
        }
    }

    /// Raises an exception in the coroutine (asyncio's cancellation): stops the work and
    /// re-raises it.
    #[pyo3(signature = (typ, val=None, tb=None))]
    fn throw(
        &self,
        py: Python<'_>,
        typ: &Bound<'_, PyAny>,
        val: Option<&Bound<'_, PyAny>>,
        tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        self.finish();
        let base = py.get_type::<pyo3::exceptions::PyBaseException>();
        let exc = if typ.is_instance(&base)? {
            typ.clone()
        } else if let Some(v) = val.filter(|v| v.is_instance(&base).unwrap_or(false)) {
            v.clone()
        } else {
            match val.filter(|v| !v.is_none()) {
                Some(v) => typ.call1((v,))?,
                None => typ.call0()?,
            }
        };
        if let Some(tb) = tb.filter(|t| !t.is_none()) {
            exc.call_method1("with_traceback", (tb,))?;
        }
        Err(PyErr::from_value(exc))
    }

    /// Stops the work (a running command is killed inside the container).
    fn close(&self) {
        self.finish();
    }

    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.send(py, None)
    }

    /// What it runs, e.g. `AsyncInstance.exec` (asyncio shows it in task reprs).
    #[getter(__qualname__)]
    fn qualname(&self) -> &'static str {
        self.name
    }

    /// What it runs, e.g. `AsyncInstance.exec`.
    #[getter(__name__)]
    fn name(&self) -> &'static str {
        self.name
    }

    fn __repr__(&self) -> String {
        let state = match &*self.lock() {
            State::Fresh(_) | State::Ready(_) => "not started",
            State::Running { .. } => "running",
            State::Done => "done",
        };
        format!("<headjack coroutine {} ({state})>", self.name)
    }
}
