//! The two faces of the binding: the sync API ([`Blocking`]: a call returns its value) and the
//! asyncio API ([`Asyncio`]: a call returns a coroutine). Every operation is written once,
//! generic over the face (see the `face_methods!` users in `instance`, `stream`, `pool`,
//! `client`), so the two APIs cannot drift apart.

use std::future::Future;

use pyo3::prelude::*;

use crate::aio::{Coroutine, convert};
use crate::errors::Outcome;
use crate::progress::Relay;
use crate::runtime::block;

/// A value a call can return to Python.
pub(crate) trait Ret: for<'py> IntoPyObject<'py> + Send + 'static {}
impl<T> Ret for T where T: for<'py> IntoPyObject<'py> + Send + 'static {}

/// How a call reaches Python.
pub(crate) trait Face {
    /// What a call returning `T` gives Python.
    type Out<T: Ret>: for<'py> IntoPyObject<'py>;

    /// Runs `fut` (named `name`, e.g. `"AsyncInstance.exec"`), delivering progress to
    /// `progress`.
    fn call<T: Ret>(
        py: Python<'_>,
        name: &'static str,
        fut: impl Future<Output = Outcome<T>> + Send + 'static,
        progress: Option<Relay>,
    ) -> PyResult<Self::Out<T>>;

    /// Like [`Face::call`] for a method of `owner`, which a coroutine keeps alive until it is
    /// done (as a bound method keeps its `self`): an instance whose handle is collected is
    /// removed, and a pending call on it must keep it.
    fn call_for<T: Ret>(
        py: Python<'_>,
        name: &'static str,
        owner: &Bound<'_, PyAny>,
        fut: impl Future<Output = Outcome<T>> + Send + 'static,
    ) -> PyResult<Self::Out<T>>;

    /// Returns `value` without running anything (works in a forked child).
    fn ready<T: Ret>(py: Python<'_>, name: &'static str, value: T) -> PyResult<Self::Out<T>>;
}

/// The sync API: calls block (with the GIL released) and return their value.
pub(crate) struct Blocking;

impl Face for Blocking {
    type Out<T: Ret> = T;

    fn call<T: Ret>(
        py: Python<'_>,
        _name: &'static str,
        fut: impl Future<Output = Outcome<T>> + Send + 'static,
        progress: Option<Relay>,
    ) -> PyResult<T> {
        block(py, fut, progress.as_ref())
    }

    fn call_for<T: Ret>(
        py: Python<'_>,
        name: &'static str,
        _owner: &Bound<'_, PyAny>,
        fut: impl Future<Output = Outcome<T>> + Send + 'static,
    ) -> PyResult<T> {
        // The caller holds `owner` until the call returns.
        Self::call(py, name, fut, None)
    }

    fn ready<T: Ret>(_py: Python<'_>, _name: &'static str, value: T) -> PyResult<T> {
        Ok(value)
    }
}

/// The asyncio API: calls return a coroutine that does the work when awaited.
pub(crate) struct Asyncio;

impl Face for Asyncio {
    type Out<T: Ret> = Coroutine;

    fn call<T: Ret>(
        _py: Python<'_>,
        name: &'static str,
        fut: impl Future<Output = Outcome<T>> + Send + 'static,
        progress: Option<Relay>,
    ) -> PyResult<Coroutine> {
        let work = Box::pin(async move { fut.await.map(convert) });
        Ok(Coroutine::new(name, work, progress))
    }

    fn call_for<T: Ret>(
        py: Python<'_>,
        name: &'static str,
        owner: &Bound<'_, PyAny>,
        fut: impl Future<Output = Outcome<T>> + Send + 'static,
    ) -> PyResult<Coroutine> {
        Ok(Self::call(py, name, fut, None)?.owned_by(owner))
    }

    fn ready<T: Ret>(_py: Python<'_>, name: &'static str, value: T) -> PyResult<Coroutine> {
        Ok(Coroutine::ready(name, convert(value)))
    }
}
