//! Turning Python arguments into Rust values, with TypeError/ValueError messages that name the
//! argument and what was expected (never a panic). A leaf: it knows nothing of headjack.

use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyFloat, PyInt, PyList, PyString, PyTuple};

fn type_name(v: &Bound<'_, PyAny>) -> String {
    v.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// A TypeError: `what` must be `expected`, not the type of `v`.
pub(crate) fn wrong(what: &str, expected: &str, v: &Bound<'_, PyAny>) -> PyErr {
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

/// An `int` or `float` (not bool) as `f64`.
pub(crate) fn number(v: &Bound<'_, PyAny>, what: &str, expected: &str) -> PyResult<f64> {
    if v.is_instance_of::<PyBool>()
        || !(v.is_instance_of::<PyInt>() || v.is_instance_of::<PyFloat>())
    {
        return Err(wrong(what, expected, v));
    }
    // An int too large for a float is infinite, and refused below as out of range.
    v.extract::<f64>().or(Ok(f64::INFINITY))
}

/// A number of seconds (int or float, not bool), finite, not negative, and representable
/// (up to about 1.8e19 s); what the core does with a very long one (saturate or refuse) is the
/// core's call.
pub(crate) fn seconds(v: &Bound<'_, PyAny>, what: &str) -> PyResult<Duration> {
    let s = number(v, what, "a number of seconds (int or float)")?;
    Duration::try_from_secs_f64(s).map_err(|_| {
        PyValueError::new_err(format!(
            "{what} must be a finite, non-negative number of seconds (at most {:.3e}), got {v}",
            Duration::MAX.as_secs_f64()
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

/// A non-negative `int` (not bool) that fits in 64 bits.
pub(crate) fn count(v: &Bound<'_, PyAny>, what: &str) -> PyResult<u64> {
    if v.is_instance_of::<PyBool>() || !v.is_instance_of::<PyInt>() {
        return Err(wrong(what, "an int", v));
    }
    let out_of_range =
        || PyValueError::new_err(format!("{what} must be from 0 to {}, got {v}", u64::MAX));
    let n: i128 = v.extract().map_err(|_| out_of_range())?;
    if n < 0 {
        return Err(PyValueError::new_err(format!(
            "{what} must be >= 0, got {n}"
        )));
    }
    u64::try_from(n).map_err(|_| out_of_range())
}

/// A non-negative `int` that fits in a `usize` (sizes, byte counts).
pub(crate) fn size(v: &Bound<'_, PyAny>, what: &str) -> PyResult<usize> {
    let n = count(v, what)?;
    usize::try_from(n).map_err(|_| {
        PyValueError::new_err(format!("{what} must be from 0 to {}, got {n}", usize::MAX))
    })
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

/// An egress policy: `{"allow": [patterns]}` or `{"deny": [patterns]}`.
pub(crate) fn egress(v: &Bound<'_, PyAny>, what: &str) -> PyResult<headjack::Egress> {
    let expected = "a dict {\"allow\": [patterns]} or {\"deny\": [patterns]}";
    let d = v
        .cast::<pyo3::types::PyDict>()
        .map_err(|_| wrong(what, expected, v))?;
    if d.len() != 1 {
        return Err(PyTypeError::new_err(format!(
            "{what} must be {expected}: exactly one of the keys \"allow\" and \"deny\""
        )));
    }
    let Some((k, list)) = d.iter().next() else {
        return Err(wrong(what, expected, v));
    };
    let key = string(&k, &format!("{what} key"))?;
    if list.is_instance_of::<PyString>()
        || !(list.is_instance_of::<PyList>() || list.is_instance_of::<PyTuple>())
    {
        return Err(wrong(&format!("{what}[{key:?}]"), "a list of str", &list));
    }
    let mut patterns = Vec::new();
    for (i, item) in list.try_iter()?.enumerate() {
        patterns.push(string(&item?, &format!("{what}[{key:?}][{i}]"))?);
    }
    match key.as_str() {
        "allow" => Ok(headjack::Egress::allow(patterns)),
        "deny" => Ok(headjack::Egress::deny(patterns)),
        other => Err(PyTypeError::new_err(format!(
            "{what} must be {expected}, not a dict with key {other:?}"
        ))),
    }
}
