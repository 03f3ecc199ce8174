//! Python bindings for headjack: the native module `headjack._headjack`.
//!
//! Thin by rule: every behaviour lives in the core crate. This crate converts arguments
//! (`convert`, `options`) and results (`types`), maps `headjack::ErrorKind` to exception
//! classes once (`errors`), and runs each call on the core's shared runtime through one of two
//! faces (`face`): blocking with the GIL released (`runtime`), or as an asyncio coroutine
//! (`aio`). Each class pair (sync and async) is written once over the face.
//!
//! Modules depend only on the ones listed before them: `convert`, `errors`, `fork`,
//! `progress` ← `runtime` ← `aio` ← `face` ← `types` ← `options` ← `stream` ← `process` ← `instance` ←
//! `pool` ← `client`.

use pyo3::prelude::*;

mod convert;
mod errors;
mod fork;
mod progress;

mod runtime;

mod aio;

mod face;

mod types;

mod options;

mod stream;

mod process;

mod instance;

mod pool;

mod client;

/// The native module.
#[pymodule(gil_used = false)]
fn _headjack(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // Not in `__all__` (`add` would put it there): private, for the consistency test.
    m.as_any().setattr(
        "_SPAWN_OPTIONS",
        pyo3::types::PyTuple::new(m.py(), options::names())?,
    )?;
    errors::register(m)?;
    m.add_function(wrap_pyfunction!(client::spawn, m)?)?;
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
    m.add_class::<stream::StatsStream>()?;
    m.add_class::<stream::AsyncStatsStream>()?;
    m.add_class::<types::PyDockerfile>()?;
    m.add_class::<types::PyMount>()?;
    m.add_class::<types::ExecResult>()?;
    m.add_class::<types::ExitStatus>()?;
    m.add_class::<types::Chunk>()?;
    m.add_class::<types::InstanceInfo>()?;
    m.add_class::<types::EngineInfo>()?;
    m.add_class::<types::VolumeInfo>()?;
    m.add_class::<types::BuiltImage>()?;
    m.add_class::<types::ResolvedImage>()?;
    m.add_class::<types::EgressDecision>()?;
    m.add_class::<process::Process>()?;
    m.add_class::<process::AsyncProcess>()?;
    m.add_class::<process::ProcessInfo>()?;
    m.add_function(wrap_pyfunction!(client::attach, m)?)?;
    Ok(())
}
