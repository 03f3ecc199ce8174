//! Turning Python arguments into core values, with TypeError/ValueError messages that name the
//! argument and what was expected (never a panic).

use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use headjack::spec::{PullPolicy, Readiness};
use headjack::{Mount, Network, Progress, Spec};

use crate::types::{PyDockerfile, PyMount};

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

fn wrong(what: &str, expected: &str, v: &Bound<'_, PyAny>) -> PyErr {
    PyTypeError::new_err(format!("{what} must be {expected}, not {}", type_name(v)))
}

/// A `str`.
pub(crate) fn string(v: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    let s = v.cast::<PyString>().map_err(|_| wrong(what, "a str", v))?;
    Ok(s.to_cow()?.into_owned())
}

/// `None` or a `str`.
pub(crate) fn opt_string(v: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<String>> {
    match v {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => string(v, what).map(Some),
    }
}

/// A `str` or `os.PathLike`.
pub(crate) fn path(v: &Bound<'_, PyAny>, what: &str) -> PyResult<PathBuf> {
    if v.is_instance_of::<PyString>() || v.hasattr("__fspath__")? {
        v.extract::<PathBuf>()
            .map_err(|_| wrong(what, "a str or os.PathLike", v))
    } else {
        Err(wrong(what, "a str or os.PathLike", v))
    }
}

/// A `bool` (not any truthy object, so that swapped arguments are caught).
pub(crate) fn boolean(v: &Bound<'_, PyAny>, what: &str) -> PyResult<bool> {
    v.cast::<PyBool>()
        .map(|b| b.is_true())
        .map_err(|_| wrong(what, "a bool", v))
}

/// `None` (False) or a `bool`.
pub(crate) fn opt_bool(v: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<bool> {
    match v {
        None => Ok(false),
        Some(v) if v.is_none() => Ok(false),
        Some(v) => boolean(v, what),
    }
}

/// A number of seconds (int or float, not bool), finite and not negative.
pub(crate) fn seconds(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Duration> {
    if v.is_instance_of::<PyBool>()
        || !(v.is_instance_of::<PyInt>() || v.is_instance_of::<PyFloat>())
    {
        return Err(wrong(what, "a number of seconds (int or float)", v));
    }
    let s: f64 = v.extract()?;
    Duration::try_from_secs_f64(s).map_err(|_| {
        PyValueError::new_err(format!(
            "{what} must be a finite, non-negative number of seconds, got {s}"
        ))
    })
}

/// `None` or seconds.
pub(crate) fn opt_seconds(v: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<Duration>> {
    match v {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => seconds(v, what).map(Some),
    }
}

/// A non-negative `int` (not bool).
pub(crate) fn count(v: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    if v.is_instance_of::<PyBool>() || !v.is_instance_of::<PyInt>() {
        return Err(wrong(what, "an int", v));
    }
    let n: i128 = v
        .extract()
        .map_err(|_| PyValueError::new_err(format!("{what} is out of range")))?;
    u64::try_from(n).map_err(|_| PyValueError::new_err(format!("{what} must be >= 0, got {n}")))
}

/// A list or tuple of `str` (a lone `str` is refused: it would be split into characters).
pub(crate) fn argv(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<String>> {
    if v.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a list of str, not a single str; for a shell command use [\"sh\", \"-c\", command]"
        )));
    }
    if !(v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>()) {
        return Err(wrong(what, "a list of str", v));
    }
    let mut out = Vec::new();
    for (i, item) in v.try_iter()?.enumerate() {
        let item = item?;
        out.push(string(&item, &format!("{what}[{i}]"))?);
    }
    Ok(out)
}

/// A mapping of `str` to `str`.
pub(crate) fn str_map(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<(String, String)>> {
    if !v.hasattr("items")? || v.is_instance_of::<PyString>() {
        return Err(wrong(what, "a dict of str to str", v));
    }
    let mut out = Vec::new();
    for pair in v.call_method0("items")?.try_iter()? {
        let pair = pair?;
        let (k, val): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair.extract()?;
        let key = string(&k, &format!("{what} keys"))?;
        let value = string(&val, &format!("{what}[{key:?}]"))?;
        out.push((key, value));
    }
    Ok(out)
}

/// `bytes`, `bytearray`, `memoryview` or `str` (encoded as UTF-8).
pub(crate) fn data(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<u8>> {
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(s.to_cow()?.as_bytes().to_vec());
    }
    if let Ok(b) = v.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if v.is_instance_of::<pyo3::types::PyByteArray>()
        || v.is_instance_of::<pyo3::types::PyMemoryView>()
    {
        let b = v.py().get_type::<PyBytes>().call1((v,))?;
        return Ok(b.cast::<PyBytes>()?.as_bytes().to_vec());
    }
    Err(wrong(what, "bytes or str", v))
}

/// The keyword arguments that describe a spawn (see the `.pyi` for their meaning).
pub(crate) const SPEC_KEYS: &[&str] = &[
    "base_dir",
    "name",
    "workspace",
    "workspace_read_only",
    "workspace_target",
    "mounts",
    "env",
    "user",
    "workdir",
    "labels",
    "cpus",
    "memory",
    "pids",
    "network",
    "runtime",
    "pull",
    "platform",
    "expires_after",
    "readiness",
    "readiness_timeout",
    "readiness_interval",
    "progress",
    "hardened",
    "detached",
    "init",
];

/// Builds a [`Spec`] from `base` and the spawn keyword arguments of `func`.
pub(crate) fn spec(
    func: &str,
    base: Option<&Bound<'_, PyAny>>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Spec> {
    let mut spec = Spec::new();
    if let Some(b) = base.filter(|b| !b.is_none()) {
        if let Ok(d) = b.cast::<PyDockerfile>() {
            spec = spec.base(d.get().inner.clone());
        } else if b.is_instance_of::<PyString>() {
            spec = spec.base(string(b, "base")?);
        } else if b.hasattr("__fspath__")? {
            let p = path(b, "base")?;
            spec = spec.base(headjack::Dockerfile::new(p));
        } else {
            return Err(wrong("base", "a str, a headjack.Dockerfile or None", b));
        }
    }
    let Some(kwargs) = kwargs else {
        return Ok(spec);
    };
    let mut readiness: Option<Vec<String>> = None;
    let mut ready_timeout = Duration::from_secs(60);
    let mut ready_interval: Option<Duration> = None;
    for (k, v) in kwargs.iter() {
        let key = string(&k, "keyword names")?;
        let what = key.as_str();
        if v.is_none() {
            if SPEC_KEYS.contains(&what) {
                continue;
            }
            return Err(unexpected(func, what));
        }
        spec = match what {
            "base_dir" => spec.base_dir(path(&v, what)?),
            "name" => spec.name(string(&v, what)?),
            "workspace" => spec.workspace(path(&v, what)?),
            "workspace_read_only" => spec.workspace_read_only(boolean(&v, what)?),
            "workspace_target" => spec.workspace_target(string(&v, what)?),
            "mounts" => {
                if !(v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>()) {
                    return Err(wrong(what, "a list of headjack.Mount", &v));
                }
                for (i, m) in v.try_iter()?.enumerate() {
                    let m = m?;
                    let mount: Mount = m
                        .cast::<PyMount>()
                        .map_err(|_| wrong(&format!("mounts[{i}]"), "a headjack.Mount", &m))?
                        .get()
                        .inner
                        .clone();
                    spec = spec.mount(mount);
                }
                spec
            }
            "env" => str_map(&v, what)?
                .into_iter()
                .fold(spec, |s, (k, v)| s.env(k, v)),
            "labels" => str_map(&v, what)?
                .into_iter()
                .fold(spec, |s, (k, v)| s.label(k, v)),
            "user" => spec.user(string(&v, what)?),
            "workdir" => spec.workdir(string(&v, what)?),
            "cpus" => {
                if v.is_instance_of::<PyBool>()
                    || !(v.is_instance_of::<PyInt>() || v.is_instance_of::<PyFloat>())
                {
                    return Err(wrong(what, "a number of CPU cores (int or float)", &v));
                }
                spec.cpus(v.extract::<f64>()?)
            }
            "memory" => spec.memory(count(&v, what)?),
            "pids" => {
                let n = count(&v, what)?;
                spec.pids(
                    i64::try_from(n).map_err(|_| PyValueError::new_err("pids is out of range"))?,
                )
            }
            "network" => spec.network(Network::parse(&string(&v, what)?)),
            "runtime" => spec.runtime(string(&v, what)?),
            "pull" => {
                let p = string(&v, what)?;
                spec.pull(
                    PullPolicy::parse(&p)
                        .map_err(|e| PyValueError::new_err(e.message().to_string()))?,
                )
            }
            "platform" => spec.platform(string(&v, what)?),
            "expires_after" => spec.expires_after(seconds(&v, what)?),
            "readiness" => {
                readiness = Some(argv(&v, what)?);
                spec
            }
            "readiness_timeout" => {
                ready_timeout = seconds(&v, what)?;
                spec
            }
            "readiness_interval" => {
                ready_interval = Some(seconds(&v, what)?);
                spec
            }
            "progress" => {
                if !v.is_callable() {
                    return Err(wrong(what, "a callable taking one dict", &v));
                }
                spec.progress_fn(progress_fn(v.unbind()))
            }
            "hardened" => spec.hardened(boolean(&v, what)?),
            "detached" => spec.detached(boolean(&v, what)?),
            "init" => spec.init(argv(&v, what)?),
            other => return Err(unexpected(func, other)),
        };
    }
    if let Some(cmd) = readiness {
        let mut check = Readiness::command(cmd, ready_timeout);
        if let Some(i) = ready_interval {
            check = check.interval(i);
        }
        spec = spec.readiness(check);
    }
    Ok(spec)
}

fn unexpected(func: &str, key: &str) -> PyErr {
    PyTypeError::new_err(format!(
        "{func}() got an unexpected keyword argument '{key}'"
    ))
}

/// A progress callback calling a Python callable, with the GIL, on the thread doing the work.
/// An exception in the callable is reported as unraisable and does not stop the work.
fn progress_fn(callable: Py<PyAny>) -> headjack::progress::ProgressFn {
    headjack::progress::ProgressFn::new(move |event: &Progress| {
        if crate::runtime::is_forked_child() {
            return;
        }
        Python::try_attach(|py| {
            let call = || -> PyResult<()> {
                let d = progress_dict(py, event)?;
                callable.bind(py).call1((d,))?;
                Ok(())
            };
            if let Err(e) = call() {
                e.write_unraisable(py, Some(callable.bind(py)));
            }
        });
    })
}

/// One progress event as a dict: `{"kind": "pull", "image", "layer", "status", "current",
/// "total"}` or `{"kind": "build", "tag", "line"}`.
fn progress_dict<'py>(py: Python<'py>, event: &Progress) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    match event {
        Progress::Pull {
            image,
            layer,
            status,
            current,
            total,
        } => {
            d.set_item("kind", "pull")?;
            d.set_item("image", image)?;
            d.set_item("layer", layer)?;
            d.set_item("status", status)?;
            d.set_item("current", current)?;
            d.set_item("total", total)?;
        }
        Progress::Build { tag, line } => {
            d.set_item("kind", "build")?;
            d.set_item("tag", tag)?;
            d.set_item("line", line)?;
        }
        other => {
            d.set_item("kind", "other")?;
            d.set_item("event", format!("{other:?}"))?;
        }
    }
    Ok(d)
}
