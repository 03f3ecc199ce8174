//! The exception hierarchy, mapped once from `headjack::ErrorKind`, and `Failure`, what a call
//! that went wrong carries until it becomes an exception (on a Python thread).
//!
//! `HeadjackError` is the base; each kind has one subclass. Some also derive from the builtin
//! that Python code already catches for that situation (`TimeoutError`, `ValueError`,
//! `OSError`, `RuntimeError`). The classes are created at import with `type(...)`, because a
//! class with two bases cannot be declared with `create_exception!`.

use pyo3::exceptions::{PyException, PyOSError, PyRuntimeError, PyTimeoutError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyTuple, PyType};

use headjack::ErrorKind;

/// Makes the Python object an exception carries as `.result` (on a Python thread).
pub(crate) type MakeResult = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

/// A failure inside a call: from the core, or from the binding's own plumbing.
pub(crate) enum Failure {
    /// A core error (mapped by its kind).
    Core(headjack::Error),
    /// A core error raised by `check=True`, with the result that caused it.
    Checked(headjack::Error, MakeResult),
    /// A task running the call vanished.
    Runtime(String),
}

impl From<headjack::Error> for Failure {
    fn from(e: headjack::Error) -> Self {
        Failure::Core(e)
    }
}

/// `Result` for work done off the GIL.
pub(crate) type Outcome<T> = Result<T, Failure>;

/// (class name, kind name, extra builtin base, docstring). Index 0 is the base class.
const CLASSES: &[(&str, Option<ErrorKind>, Extra, &str)] = &[
    (
        "HeadjackError",
        None,
        Extra::None,
        "Base class of every error headjack raises.",
    ),
    (
        "EngineUnavailableError",
        Some(ErrorKind::EngineUnavailable),
        Extra::None,
        "No container engine answered (no socket, refused, or not a Docker-compatible API).",
    ),
    (
        "InvalidBaseError",
        Some(ErrorKind::InvalidBase),
        Extra::Value,
        "A base string could not be understood (bad image reference, missing Dockerfile, ...).",
    ),
    (
        "ImageNotFoundError",
        Some(ErrorKind::ImageNotFound),
        Extra::None,
        "An image is not present locally and could not or may not be pulled.",
    ),
    (
        "PullError",
        Some(ErrorKind::PullFailed),
        Extra::None,
        "A registry pull failed (network, authentication, unknown manifest).",
    ),
    (
        "BuildError",
        Some(ErrorKind::BuildFailed),
        Extra::None,
        "A Dockerfile build failed; `.step` names the failing step, `.log_tail` holds its last output lines.",
    ),
    (
        "NotFoundError",
        Some(ErrorKind::NotFound),
        Extra::None,
        "A container, instance, exec or path does not exist (also: the instance was closed).",
    ),
    (
        "ConflictError",
        Some(ErrorKind::Conflict),
        Extra::None,
        "The request conflicts with the current state (name in use, container not running, ...).",
    ),
    (
        "HeadjackTimeoutError",
        Some(ErrorKind::Timeout),
        Extra::Timeout,
        "A deadline passed: an exec run with check=True timed out, a readiness check, an engine call.",
    ),
    (
        "ExecError",
        Some(ErrorKind::ExecFailed),
        Extra::None,
        "A command could not be run, or (with check=True) exited non-zero.",
    ),
    (
        "LocalIOError",
        Some(ErrorKind::Io),
        Extra::OS,
        "A local I/O error (reading a build context, writing a copied file, ...).",
    ),
    (
        "InvalidArgumentError",
        Some(ErrorKind::InvalidArgument),
        Extra::Value,
        "An argument is unusable (empty argv, a path escaping its target, a reserved label, ...).",
    ),
    (
        "InternalError",
        Some(ErrorKind::Internal),
        Extra::None,
        "A bug, or an engine answer headjack does not understand.",
    ),
    (
        "ForkedError",
        Some(ErrorKind::Forked),
        Extra::Runtime,
        "This process is a fork() of one that already used headjack: use headjack in the parent, or start children with multiprocessing's 'spawn' or 'forkserver' method. Closing an inherited instance or pool in the child leaves the parent's containers alone.",
    ),
    (
        "UnsupportedError",
        Some(ErrorKind::Unsupported),
        Extra::None,
        "The engine (or this platform) cannot do what was asked; the message says why.",
    ),
];

#[derive(Clone, Copy)]
enum Extra {
    None,
    Timeout,
    Value,
    OS,
    Runtime,
}

static TYPES: PyOnceLock<Vec<Py<PyType>>> = PyOnceLock::new();

fn types(py: Python<'_>) -> &Vec<Py<PyType>> {
    TYPES.get_or_init(py, || {
        create(py).expect("creating headjack's exception classes")
    })
}

fn create(py: Python<'_>) -> PyResult<Vec<Py<PyType>>> {
    let type_ = py.get_type::<PyType>();
    let mut out: Vec<Py<PyType>> = Vec::new();
    for (name, kind, extra, doc) in CLASSES {
        let ns = PyDict::new(py);
        ns.set_item("__module__", "headjack")?;
        ns.set_item("__doc__", *doc)?;
        ns.set_item("kind", kind.map(|k| k.as_str()))?;
        if kind.is_none() {
            ns.set_item("message", "")?;
        }
        if *name == "BuildError" {
            ns.set_item("step", py.None())?;
            ns.set_item("log_tail", PyTuple::empty(py))?;
        }
        if matches!(kind, Some(ErrorKind::Timeout) | Some(ErrorKind::ExecFailed)) {
            ns.set_item("result", py.None())?;
        }
        let mut bases: Vec<Bound<'_, PyType>> = Vec::new();
        match out.first() {
            None => bases.push(py.get_type::<PyException>()),
            Some(base) => bases.push(base.bind(py).clone()),
        }
        match extra {
            Extra::None => {}
            Extra::Timeout => bases.push(py.get_type::<PyTimeoutError>()),
            Extra::Value => bases.push(py.get_type::<PyValueError>()),
            Extra::OS => bases.push(py.get_type::<PyOSError>()),
            Extra::Runtime => bases.push(py.get_type::<PyRuntimeError>()),
        }
        let cls = type_.call1((*name, PyTuple::new(py, bases)?, ns))?;
        out.push(cls.cast_into::<PyType>()?.unbind());
    }
    Ok(out)
}

/// Adds every class to the module, plus the alias `ExecTimeoutError`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    for ((name, ..), cls) in CLASSES.iter().zip(types(py)) {
        m.add(*name, cls.bind(py))?;
    }
    m.add("ExecTimeoutError", class_for(py, Some(ErrorKind::Timeout)))?;
    Ok(())
}

fn class_for(py: Python<'_>, kind: Option<ErrorKind>) -> Bound<'_, PyType> {
    let idx = CLASSES
        .iter()
        .position(|(_, k, ..)| *k == kind)
        .unwrap_or(0);
    types(py)[idx].bind(py).clone()
}

/// The base class, `HeadjackError`.
pub(crate) fn base(py: Python<'_>) -> Bound<'_, PyType> {
    class_for(py, None)
}

fn build(py: Python<'_>, e: &headjack::Error) -> PyResult<PyErr> {
    let cls = class_for(py, Some(e.kind()));
    let message = match e.kind() {
        ErrorKind::Forked => format!(
            "{} (with multiprocessing, use the 'spawn' or 'forkserver' start method)",
            e.message()
        ),
        _ => e.message().to_string(),
    };
    let exc = cls.call1((message.as_str(),))?;
    exc.setattr("message", message)?;
    if cls.is(&types(py)[0]) {
        // A kind this binding does not know yet: keep its stable name on the instance.
        exc.setattr("kind", e.kind().as_str())?;
    }
    if e.kind() == ErrorKind::BuildFailed {
        exc.setattr("step", e.build_step())?;
        exc.setattr("log_tail", PyList::new(py, e.build_log())?)?;
    }
    Ok(PyErr::from_value(exc))
}

fn plain(py: Python<'_>, message: String) -> PyErr {
    match base(py).call1((message.as_str(),)) {
        Ok(exc) => {
            let _ = exc.setattr("message", message);
            PyErr::from_value(exc)
        }
        Err(e) => e,
    }
}

/// The Python exception for a failure.
pub(crate) fn to_py(py: Python<'_>, f: Failure) -> PyErr {
    match f {
        Failure::Core(e) => build(py, &e).unwrap_or_else(|err| err),
        Failure::Checked(e, result) => match build(py, &e) {
            Ok(err) => {
                if let Ok(obj) = result(py) {
                    let _ = err.value(py).setattr("result", obj);
                }
                err
            }
            Err(err) => err,
        },
        Failure::Runtime(m) => plain(py, format!("headjack's runtime failed: {m}")),
    }
}

/// `Ok`, or the Python exception for the failure.
pub(crate) fn or_raise<T>(py: Python<'_>, outcome: Outcome<T>) -> PyResult<T> {
    outcome.map_err(|f| to_py(py, f))
}
