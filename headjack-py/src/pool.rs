//! `Pool` (sync) and `AsyncPool` (asyncio): thin wrappers over `headjack::Pool`, instances
//! spawned ahead of time and handed out at once, written once (`pool_class!`).

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use headjack::pool::Claim;

use crate::convert;

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

/// The claim `take`'s keywords make (`None`: a plain take); refused options fail here, before
/// anything is taken.
#[allow(clippy::too_many_arguments)]
fn claim(
    py: Python<'_>,
    env: Option<&Bound<'_, PyAny>>,
    workdir: Option<&Bound<'_, PyAny>>,
    user: Option<&Bound<'_, PyAny>>,
    files: Option<&Bound<'_, PyAny>>,
    labels: Option<&Bound<'_, PyAny>>,
    other: Option<&Bound<'_, PyDict>>,
) -> PyResult<Option<Claim>> {
    if let Some((key, _)) = other.and_then(|o| o.iter().next()) {
        let name = key.str().map(|s| s.to_string()).unwrap_or_default();
        return Err(to_py(py, Failure::from(Claim::refuse(&name))));
    }
    let mut c = Claim::new();
    if let Some(e) = env.filter(|e| !e.is_none()) {
        for (k, v) in convert::str_map(e, "env")? {
            c = c.env(k, v);
        }
    }
    if let Some(w) = convert::opt_string(workdir, "workdir")? {
        c = c.workdir(w);
    }
    if let Some(u) = convert::opt_string(user, "user")? {
        c = c.user(u);
    }
    if let Some(f) = files.filter(|f| !f.is_none()) {
        let map = f
            .cast::<PyDict>()
            .map_err(|_| convert::wrong("files", "a dict of {path: bytes or str}", f))?;
        for (k, v) in map.iter() {
            let path = convert::string(&k, "a files key")?;
            c = c.file(path, convert::data(&v, "a files value")?);
        }
    }
    if let Some(l) = labels.filter(|l| !l.is_none()) {
        for (k, v) in convert::str_map(l, "labels")? {
            c = c.label(k, v);
        }
    }
    Ok((!c.is_empty()).then_some(c))
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
            /// replacement is spawned in the background. The keywords are a claim applied to
            /// the running instance (no new container): `env`, `workdir` and `user` become the
            /// defaults of every command run in it, `files` ({path: bytes or str}) are written,
            /// `labels` kept by the handle (`claim_labels`). Any other spawn option (base,
            /// memory, mounts, ...) needs a new container and raises InvalidArgumentError.
            #[pyo3(signature = (*, env=None, workdir=None, user=None, files=None, labels=None, **other))]
            #[allow(clippy::too_many_arguments)]
            fn take(
                &self,
                py: Python<'_>,
                env: Option<&Bound<'_, PyAny>>,
                workdir: Option<&Bound<'_, PyAny>>,
                user: Option<&Bound<'_, PyAny>>,
                files: Option<&Bound<'_, PyAny>>,
                labels: Option<&Bound<'_, PyAny>>,
                other: Option<&Bound<'_, PyDict>>,
            ) -> PyResult<<$face as Face>::Out<$instance>> {
                let claim = claim(py, env, workdir, user, files, labels, other)?;
                let pool = self.held.get().map_err(|f| to_py(py, f))?;
                <$face>::call(py, concat!(stringify!($cls), ".take"), async move {
                    let instance = match claim {
                        None => pool.take().await?,
                        Some(c) => pool.take_with(c).await?,
                    };
                    Ok($instance::from(Slot::new(instance)))
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
