//! Python bindings for headjack: the native module `headjack._headjack`.
//!
//! Thin by rule: every behaviour lives in the core crate. This crate converts arguments and
//! results, maps `headjack::ErrorKind` to exception classes once (`errors`), runs sync calls on
//! the shared runtime with the GIL released (`runtime::block`) and turns async calls into
//! asyncio awaitables (`runtime::awaitable`).

use pyo3::prelude::*;
use pyo3::types::PyDict;

mod args;
mod client;
mod errors;
mod instance;
mod pool;
mod runtime;
mod stream;
mod types;

/// Spawns an instance on the default engine (sync). See `Client.spawn`.
#[pyfunction]
#[pyo3(signature = (base=None, **kwargs))]
fn spawn(
    py: Python<'_>,
    base: Option<&Bound<'_, PyAny>>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<instance::Instance> {
    // Check arguments before connecting, so bad input fails fast even without an engine.
    args::spec("spawn", base, kwargs)?;
    client::Client::shared(py)?.do_spawn(py, base, kwargs)
}

/// The native module.
#[pymodule(gil_used = false)]
fn _headjack(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    m.add_function(wrap_pyfunction!(spawn, m)?)?;
    m.add_class::<client::Client>()?;
    m.add_class::<client::AsyncClient>()?;
    m.add_class::<instance::Instance>()?;
    m.add_class::<instance::AsyncInstance>()?;
    m.add_class::<pool::Pool>()?;
    m.add_class::<pool::AsyncPool>()?;
    m.add_class::<stream::ExecStream>()?;
    m.add_class::<stream::AsyncExecStream>()?;
    m.add_class::<stream::LogStream>()?;
    m.add_class::<stream::AsyncLogStream>()?;
    m.add_class::<types::PyDockerfile>()?;
    m.add_class::<types::PyMount>()?;
    m.add_class::<types::ExecResult>()?;
    m.add_class::<types::ExitStatus>()?;
    m.add_class::<types::Chunk>()?;
    m.add_class::<types::InstanceInfo>()?;
    m.add_class::<types::EngineInfo>()?;
    m.add_class::<types::BuiltImage>()?;
    m.add_class::<types::ResolvedImage>()?;
    Ok(())
}
