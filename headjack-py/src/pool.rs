//! `Pool` (sync) and `AsyncPool` (asyncio): thin wrappers over `headjack::Pool`, instances
//! spawned ahead of time and handed out at once.

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;

use crate::errors::{Failure, Outcome};
use crate::instance::{AsyncInstance, Instance, Slot};
use crate::runtime::{awaitable, block, is_forked_child};

/// The pool behind both classes; `None` once closed.
#[derive(Default)]
struct Held(Mutex<Option<Arc<headjack::Pool>>>);

impl Held {
    fn new(pool: headjack::Pool) -> Held {
        Held(Mutex::new(Some(Arc::new(pool))))
    }

    fn get(&self) -> Outcome<Arc<headjack::Pool>> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| {
                Failure::from(headjack::Error::new(
                    headjack::ErrorKind::NotFound,
                    "the pool was closed",
                ))
            })
    }

    /// Takes the pool out; dropping it removes the instances still waiting (blocking work, so
    /// it happens with the GIL released).
    fn close(&self, py: Python<'_>) {
        let pool = self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
        py.detach(move || drop(pool));
    }

    fn ready(&self) -> usize {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map_or(0, |p| p.ready())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // A forked child must not remove its parent's instances.
        if is_forked_child()
            && let Some(p) = self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
        {
            std::mem::forget(p);
        }
    }
}

/// Instances of one spec spawned ahead of time (sync API): `take()` returns one at once and a
/// replacement is spawned in the background. Closing the pool (or `with`) removes the
/// instances still waiting; taken instances belong to the caller.
#[pyclass(module = "headjack", frozen)]
pub(crate) struct Pool {
    held: Held,
}

impl Pool {
    pub(crate) fn new(pool: headjack::Pool) -> Pool {
        Pool {
            held: Held::new(pool),
        }
    }
}

#[pymethods]
impl Pool {
    /// A ready instance (from the pool, or freshly spawned when it is empty).
    fn take(&self, py: Python<'_>) -> PyResult<Instance> {
        let pool = self.held.get().map_err(|f| crate::errors::to_py(py, f))?;
        let inst = block(py, async move { Ok(pool.take().await?) })?;
        Ok(Instance::new(Slot::new(inst)))
    }

    /// How many instances are ready right now.
    #[getter]
    fn ready(&self) -> usize {
        self.held.ready()
    }

    /// Removes the instances still waiting. Idempotent.
    fn close(&self, py: Python<'_>) {
        self.held.close(py);
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (_exc_type=None, _exc=None, _tb=None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        self.held.close(py);
        false
    }
}

/// Instances of one spec spawned ahead of time (asyncio API); see `Pool`.
#[pyclass(module = "headjack", frozen)]
pub(crate) struct AsyncPool {
    held: Held,
}

impl AsyncPool {
    pub(crate) fn new(pool: headjack::Pool) -> AsyncPool {
        AsyncPool {
            held: Held::new(pool),
        }
    }
}

#[pymethods]
impl AsyncPool {
    /// Resolves to a ready AsyncInstance (from the pool, or freshly spawned when it is empty).
    fn take<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let pool = self.held.get().map_err(|f| crate::errors::to_py(py, f))?;
        awaitable(py, async move {
            let inst = pool.take().await?;
            Ok(AsyncInstance::new(Slot::new(inst)))
        })
    }

    /// How many instances are ready right now.
    #[getter]
    fn ready(&self) -> usize {
        self.held.ready()
    }

    /// Removes the instances still waiting. Idempotent.
    fn close(&self, py: Python<'_>) {
        self.held.close(py);
    }

    fn __aenter__<'py>(slf: PyRef<'py, Self>, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let me: Py<Self> = slf.into();
        awaitable(py, async move { Ok(me) })
    }

    #[pyo3(signature = (_exc_type=None, _exc=None, _tb=None))]
    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        _exc_type: Option<&Bound<'py, PyAny>>,
        _exc: Option<&Bound<'py, PyAny>>,
        _tb: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let pool = self.held.0.lock().unwrap_or_else(|p| p.into_inner()).take();
        awaitable(py, async move {
            // Dropping the pool removes its waiting instances: blocking work, off the loop.
            let _ = tokio::task::spawn_blocking(move || drop(pool)).await;
            Ok(false)
        })
    }
}
