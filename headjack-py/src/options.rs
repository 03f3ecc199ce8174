//! The keyword arguments that describe an instance (`spawn`, `pool`, `resolve`, on both faces),
//! turned into a core `Spec`.
//!
//! The options are defined once, in `headjack/_options.py` (`SpawnOptions`: names, types and
//! docs, which the stubs and the README use). [`OPTIONS`] is how each is applied, in the same
//! order; `tests/test_faces.py` checks that the two lists, both faces and the stubs agree.

use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyInt, PyList, PyString, PyTuple};

use headjack::spec::{PullPolicy, Readiness};
use headjack::{Mount, Network, Spec};

use crate::convert::{argv, boolean, count, number, path, seconds, str_map, string, wrong};
use crate::progress::Relay;
use crate::types::{PyDockerfile, PyMount};

/// A spec in the making, with the options that only make sense together.
struct Draft {
    spec: Spec,
    readiness: Option<Vec<String>>,
    readiness_timeout: Duration,
    readiness_interval: Option<Duration>,
    progress: Option<Relay>,
}

impl Draft {
    fn with(&mut self, f: impl FnOnce(Spec) -> Spec) {
        self.spec = f(std::mem::take(&mut self.spec));
    }
}

/// How one option changes the draft: `(draft, value, option name)`.
type Apply = fn(&mut Draft, &Bound<'_, PyAny>, &str) -> PyResult<()>;

/// Sets one spec field from a converted value.
fn set<T>(d: &mut Draft, value: PyResult<T>, f: impl FnOnce(Spec, T) -> Spec) -> PyResult<()> {
    let value = value?;
    d.spec = f(std::mem::take(&mut d.spec), value);
    Ok(())
}

/// Every option, in the order of `SpawnOptions`.
const OPTIONS: &[(&str, Apply)] = &[
    ("base_dir", |d, v, w| {
        set(d, path(v, w), |s, p| s.base_dir(p))
    }),
    ("name", |d, v, w| set(d, string(v, w), |s, n| s.name(n))),
    ("workspace", |d, v, w| {
        set(d, path(v, w), |s, p| s.workspace(p))
    }),
    ("workspace_read_only", |d, v, w| {
        set(d, boolean(v, w), |s, b| s.workspace_read_only(b))
    }),
    ("workspace_target", |d, v, w| {
        set(d, string(v, w), |s, t| s.workspace_target(t))
    }),
    ("mounts", apply_mounts),
    ("env", |d, v, w| {
        set(d, str_map(v, w), |s, pairs| {
            pairs.into_iter().fold(s, |s, (k, v)| s.env(k, v))
        })
    }),
    ("user", |d, v, w| set(d, string(v, w), |s, u| s.user(u))),
    ("workdir", |d, v, w| {
        set(d, string(v, w), |s, p| s.workdir(p))
    }),
    ("labels", |d, v, w| {
        set(d, str_map(v, w), |s, pairs| {
            pairs.into_iter().fold(s, |s, (k, v)| s.label(k, v))
        })
    }),
    ("cpus", |d, v, w| {
        set(
            d,
            number(v, w, "a number of CPU cores (int or float)"),
            |s, n| s.cpus(n),
        )
    }),
    ("memory", |d, v, w| set(d, count(v, w), |s, n| s.memory(n))),
    ("pids", |d, v, w| {
        // Past i64 the core's own range check names the limit.
        set(d, count(v, w), |s, n| {
            s.pids(i64::try_from(n).unwrap_or(i64::MAX))
        })
    }),
    ("network", |d, v, w| {
        set(d, string(v, w), |s, n| s.network(Network::parse(&n)))
    }),
    ("runtime", |d, v, w| {
        set(d, string(v, w), |s, r| s.runtime(r))
    }),
    ("pull", |d, v, w| {
        let policy = string(v, w).and_then(|p| {
            PullPolicy::parse(&p).map_err(|e| PyValueError::new_err(e.message().to_string()))
        });
        set(d, policy, |s, p| s.pull(p))
    }),
    ("platform", |d, v, w| {
        set(d, string(v, w), |s, p| s.platform(p))
    }),
    ("expires_after", |d, v, w| {
        set(d, seconds(v, w), |s, t| s.expires_after(t))
    }),
    ("readiness", |d, v, w| {
        d.readiness = Some(argv(v, w)?);
        Ok(())
    }),
    ("readiness_timeout", |d, v, w| {
        d.readiness_timeout = seconds(v, w)?;
        Ok(())
    }),
    ("readiness_interval", |d, v, w| {
        d.readiness_interval = Some(seconds(v, w)?);
        Ok(())
    }),
    ("progress", |d, v, w| {
        if !v.is_callable() {
            return Err(wrong(w, "a callable taking one dict", v));
        }
        let (relay, emit) = Relay::new(v.clone().unbind());
        d.progress = Some(relay);
        set(d, Ok(emit), |s, e| s.progress_fn(e))
    }),
    ("hardened", |d, v, w| {
        set(d, boolean(v, w), |s, b| s.hardened(b))
    }),
    ("allow_privileged", |d, v, w| {
        set(d, boolean(v, w), |s, b| s.allow_privileged(b))
    }),
    ("detached", |d, v, w| {
        set(d, boolean(v, w), |s, b| s.detached(b))
    }),
    ("init", |d, v, w| set(d, argv(v, w), |s, a| s.init(a))),
    ("egress", |d, v, w| {
        set(d, crate::convert::egress(v, w), |s, e| s.egress(e))
    }),
    ("publish", apply_publish),
    ("volumes", |d, v, w| {
        set(d, str_map(v, w), |s, pairs| {
            pairs
                .into_iter()
                .fold(s, |s, (name, target)| match target.strip_suffix(":ro") {
                    Some(t) => s.volume_read_only(name, t),
                    None => s.volume(name, target),
                })
        })
    }),
    ("shm_size", |d, v, w| {
        set(d, count(v, w), |s, n| s.shm_size(n))
    }),
    ("cpuset", |d, v, w| set(d, string(v, w), |s, c| s.cpuset(c))),
    ("ulimits", apply_ulimits),
    ("disk", |d, v, w| set(d, count(v, w), |s, n| s.disk(n))),
];

/// One ulimit value: an `int` (not bool) in the 64-bit signed range; -1 is unlimited (the core
/// checks the rest: not below -1, soft at most hard).
fn ulimit_value(v: &Bound<'_, PyAny>, what: &str) -> PyResult<i64> {
    if v.is_instance_of::<PyBool>() || !v.is_instance_of::<PyInt>() {
        return Err(wrong(what, "an int (-1 for unlimited)", v));
    }
    v.extract::<i64>().map_err(|_| {
        PyValueError::new_err(format!(
            "{what} must be from -1 (unlimited) to {}, got {v}",
            i64::MAX
        ))
    })
}

/// `ulimits={"nofile": (soft, hard), "core": 0}`: a pair, or one int for both.
fn apply_ulimits(d: &mut Draft, v: &Bound<'_, PyAny>, what: &str) -> PyResult<()> {
    if !v.hasattr("items")? || v.is_instance_of::<PyString>() {
        return Err(wrong(
            what,
            "a dict of name to (soft, hard) or to one int for both",
            v,
        ));
    }
    for pair in v.call_method0("items")?.try_iter()? {
        let (k, val): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair?.extract()?;
        let name = string(&k, &format!("{what} keys"))?;
        let item = format!("{what}[{name:?}]");
        let (soft, hard) = if val.is_instance_of::<PyTuple>() || val.is_instance_of::<PyList>() {
            let pair: Vec<Bound<'_, PyAny>> = val.try_iter()?.collect::<PyResult<_>>()?;
            let [soft, hard] = pair.as_slice() else {
                return Err(PyValueError::new_err(format!(
                    "{item} must be (soft, hard) or one int, got {} values",
                    pair.len()
                )));
            };
            (
                ulimit_value(soft, &format!("{item}[0]"))?,
                ulimit_value(hard, &format!("{item}[1]"))?,
            )
        } else {
            let n = ulimit_value(&val, &item)?;
            (n, n)
        };
        d.with(|s| s.ulimit(name, soft, hard));
    }
    Ok(())
}

fn apply_publish(d: &mut Draft, v: &Bound<'_, PyAny>, what: &str) -> PyResult<()> {
    if !(v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>()) {
        return Err(wrong(
            what,
            "a list of ports (int or \"HOST_PORT:PORT\")",
            v,
        ));
    }
    for (i, p) in v.try_iter()?.enumerate() {
        let p = p?;
        let text = if p.is_instance_of::<PyString>() {
            string(&p, &format!("{what}[{i}]"))?
        } else {
            count(&p, &format!("{what}[{i}]"))?.to_string()
        };
        let publish = headjack::spec::Publish::parse(&text)
            .map_err(|e| PyValueError::new_err(e.message().to_string()))?;
        d.with(|s| s.publish_port(publish));
    }
    Ok(())
}

fn apply_mounts(d: &mut Draft, v: &Bound<'_, PyAny>, what: &str) -> PyResult<()> {
    if !(v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>()) {
        return Err(wrong(what, "a list of headjack.Mount", v));
    }
    for (i, m) in v.try_iter()?.enumerate() {
        let m = m?;
        let mount: Mount = m
            .cast::<PyMount>()
            .map_err(|_| wrong(&format!("{what}[{i}]"), "a headjack.Mount", &m))?
            .get()
            .inner
            .clone();
        d.with(|s| s.mount(mount));
    }
    Ok(())
}

/// The option names, in order (the native module exports them as `_SPAWN_OPTIONS`).
pub(crate) fn names() -> Vec<&'static str> {
    OPTIONS.iter().map(|(name, _)| *name).collect()
}

/// What `spawn`, `pool` and `resolve` were asked for: the spec, and where its progress goes.
pub(crate) struct Request {
    pub(crate) spec: Spec,
    pub(crate) progress: Option<Relay>,
}

/// Builds the request of `func` from `base` and its keyword arguments. `None` values mean "not
/// given".
pub(crate) fn request(
    func: &str,
    base: Option<&Bound<'_, PyAny>>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Request> {
    let mut d = Draft {
        spec: Spec::new(),
        readiness: None,
        readiness_timeout: Duration::from_secs(60),
        readiness_interval: None,
        progress: None,
    };
    if let Some(b) = base.filter(|b| !b.is_none()) {
        if let Ok(df) = b.cast::<PyDockerfile>() {
            d.with(|s| s.base(df.get().inner.clone()));
        } else if b.is_instance_of::<PyString>() {
            let b = string(b, "base")?;
            d.with(|s| s.base(b));
        } else if b.hasattr("__fspath__")? {
            let p = path(b, "base")?;
            d.with(|s| s.base(headjack::Dockerfile::new(p)));
        } else {
            return Err(wrong("base", "a str, a headjack.Dockerfile or None", b));
        }
    }
    for (k, v) in kwargs.into_iter().flat_map(|kw| kw.iter()) {
        let key = string(&k, "keyword names")?;
        let Some((name, apply)) = OPTIONS.iter().find(|(name, _)| *name == key) else {
            return Err(PyTypeError::new_err(format!(
                "{func}() got an unexpected keyword argument '{key}'"
            )));
        };
        if !v.is_none() {
            apply(&mut d, &v, name)?;
        }
    }
    if let Some(command) = d.readiness.take() {
        let mut check = Readiness::command(command, d.readiness_timeout);
        if let Some(i) = d.readiness_interval {
            check = check.interval(i);
        }
        d.with(|s| s.readiness(check));
    }
    Ok(Request {
        spec: d.spec,
        progress: d.progress,
    })
}
