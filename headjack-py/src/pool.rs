//! `Pool` (sync) and `AsyncPool` (asyncio): thin wrappers over `headjack::Pool`, instances
//! spawned ahead of time and handed out at once, written once (`pool_class!`).

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::errors::{Failure, Outcome, to_py};
use crate::face::{Asyncio, Blocking, Face};
use crate::fork::ParentOnly;
use crate::instance::{AsyncInstance, Exited, Instance, Slot, raised};
use crate::stream::closing;

type Shared = Arc<ParentOnly<headjack::Pool>>;

/// The pool behind both classes; `None` once closed.
pub(crate) struct Held(Mutex<Option<Shared>>);

impl Held {
    pub(crate) fn new(pool: headjack::Pool) -> Held {
        Held(Mutex::new(Some(Arc::new(ParentOnly::new(pool)))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Shared>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self) -> Outcome<Shared> {
        self.lock().clone().ok_or_else(|| {
            Failure::from(headjack::Error::new(
                headjack::ErrorKind::NotFound,
                "the pool was closed",
            ))
        })
    }

    fn ready(&self) -> usize {
        self.lock().as_ref().map_or(0, |p| p.ready())
    }
}

/// Lets go of the pool: dropping it removes the instances still waiting (blocking work, so it
/// runs on a blocking thread). In a forked child the drop abandons them (see `fork`).
async fn close(pool: Option<Shared>) -> Outcome<()> {
    let _ = tokio::task::spawn_blocking(move || drop(pool)).await;
    Ok(())
}

/// Leaves a `with` / `async with` block: closes the pool.
fn leave<F: Face>(
    py: Python<'_>,
    name: &'static str,
    held: &Held,
    exc: &Bound<'_, PyTuple>,
) -> PyResult<F::Out<Exited>> {
    let exited = Exited::after(close(held.lock().take()), raised(exc));
    closing::<F, _>(py, name, exited, Exited::none())
}

/// A pool class for face `$face`, handing out `$instance`s: every method both classes share,
/// plus the class's own (its context manager protocol).
macro_rules! pool_class {
    ($(#[$doc:meta])* $cls:ident, $face:ty, $instance:ident, { $($own:tt)* }) => {
        $(#[$doc])*
        #[pyclass(module = "headjack", frozen)]
        pub(crate) struct $cls {
            held: Held,
        }

        impl From<Held> for $cls {
            fn from(held: Held) -> Self {
                $cls { held }
            }
        }

        #[pymethods]
        impl $cls {
            /// A ready instance (from the pool, or freshly spawned when it is empty); a
            /// replacement is spawned in the background.
            fn take(&self, py: Python<'_>) -> PyResult<<$face as Face>::Out<$instance>> {
                let pool = self.held.get().map_err(|f| to_py(py, f))?;
                <$face>::call(py, concat!(stringify!($cls), ".take"), async move {
                    Ok($instance::from(Slot::new(pool.take().await?)))
                }, None)
            }

            /// How many instances are ready right now.
            #[getter]
            fn ready(&self) -> usize {
                self.held.ready()
            }

            /// Removes the instances still waiting (taken ones belong to the caller).
            /// Idempotent. In a forked child it only lets go of them: they are the parent's.
            fn close(&self, py: Python<'_>) -> PyResult<<$face as Face>::Out<()>> {
                let pool = self.held.lock().take();
                closing::<$face, _>(py, concat!(stringify!($cls), ".close"), close(pool), ())
            }

            $($own)*
        }
    };
}

pool_class!(
    /// Instances of one spec spawned ahead of time (sync API): `take()` returns one at once and
    /// a replacement is spawned in the background. Closing the pool (or `with`) removes the
    /// instances still waiting; taken instances belong to the caller.
    Pool, Blocking, Instance, {
    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*exc))]
    fn __exit__(&self, py: Python<'_>, exc: &Bound<'_, PyTuple>) -> PyResult<Exited> {
        leave::<Blocking>(py, "Pool.__exit__", &self.held, exc)
    }
});

pool_class!(
    /// Instances of one spec spawned ahead of time (asyncio API); see `Pool`.
    AsyncPool, Asyncio, AsyncInstance, {
    fn __aenter__(slf: PyRef<'_, Self>, py: Python<'_>) -> PyResult<crate::aio::Coroutine> {
        let me: Py<Self> = slf.into();
        Asyncio::ready(py, "AsyncPool.__aenter__", me)
    }

    #[pyo3(signature = (*exc))]
    fn __aexit__(
        &self,
        py: Python<'_>,
        exc: &Bound<'_, PyTuple>,
    ) -> PyResult<crate::aio::Coroutine> {
        leave::<Asyncio>(py, "AsyncPool.__aexit__", &self.held, exc)
    }
});
