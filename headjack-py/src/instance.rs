//! `Instance` (sync) and `AsyncInstance` (asyncio): two faces of one handle to a running
//! environment, written once (`instance_class!`). Closing removes the container unless
//! `keep()` was called; so does leaving a `with` / `async with` block, and so does garbage
//! collection (the core's `Drop`). In a `fork()`ed child, closing only lets go of the handle:
//! the container is the parent's.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyTuple};

use headjack::exec::SharedExec;
use headjack::{Exec, Instance as Core};

use crate::convert;
use crate::errors::{Failure, Outcome, to_py};
use crate::face::{Asyncio, Blocking, Face};
use crate::fork::{ParentOnly, is_forked_child};
use crate::process::{self as procs, AsyncProcess, Process, ProcessInfo};
use crate::stream::{
    AsyncExecStream, AsyncLogStream, AsyncStatsStream, ExecStream, LogStream, Logs, Sampler,
    SharedStream, StatsStream, closing,
};
use crate::types::{BytesOut, Chunk, ExecResult, InstanceInfo, StatsDict, stats_dict};

/// A core instance, shared by its Python handle and the calls in flight.
type Shared = Arc<ParentOnly<Core>>;

/// The handle behind both classes: the instance until it is closed, and its names.
pub(crate) struct Slot {
    inst: Mutex<Option<Shared>>,
    id: String,
    container_id: String,
    name: String,
    image: String,
    warnings: Vec<String>,
}

impl Slot {
    pub(crate) fn new(inst: Core) -> Arc<Slot> {
        Arc::new(Slot {
            id: inst.id().to_owned(),
            container_id: inst.container_id().to_owned(),
            name: inst.name().to_owned(),
            image: inst.image().to_owned(),
            warnings: inst.warnings().to_vec(),
            inst: Mutex::new(Some(Arc::new(ParentOnly::new(inst)))),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Shared>> {
        self.inst.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self) -> Outcome<Shared> {
        self.lock().clone().ok_or_else(|| {
            Failure::Core(headjack::Error::new(
                headjack::ErrorKind::NotFound,
                format!(
                    "instance {} is closed; spawn a new one (or attach to it if it was kept)",
                    self.id
                ),
            ))
        })
    }

    fn take(&self) -> Option<Shared> {
        self.lock().take()
    }

    fn is_closed(&self) -> bool {
        self.lock().is_none()
    }

    /// Removes the instance (unless kept) when its Python handle goes away: now, on this
    /// thread, even if calls still in flight hold it (they then fail as they would after
    /// `close()`). In a forked child the instance is the parent's: it is only let go.
    fn release(&self) {
        let Some(inst) = self.take() else { return };
        if inst.is_kept() || is_forked_child() {
            return;
        }
        let remove = async move {
            if let Err(e) = inst.remove().await {
                tracing::warn!(error = %e, instance = %inst.id(), "removing an instance whose handle was collected failed");
            }
        };
        // Python threads never run a tokio runtime; should one ever, remove from a helper thread.
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| {
                s.spawn(|| headjack::blocking::block_on(remove));
            });
        } else {
            let _ = headjack::blocking::block_on(remove);
        }
    }

    fn repr(&self, kind: &str) -> String {
        let state = if self.is_closed() { ", closed" } else { "" };
        format!(
            "{kind}(id={:?}, name={:?}, image={:?}{state})",
            self.id, self.name, self.image
        )
    }
}

/// Removes the instance unless it was kept.
async fn close(taken: Option<Shared>) -> Outcome<()> {
    if let Some(inst) = taken
        && !inst.is_kept()
    {
        inst.remove().await?;
    }
    Ok(())
}

/// What leaving a `with` block returns: `False` (never swallow the block's exception), after
/// reporting a cleanup failure as unraisable when the block raised (which must not be hidden
/// behind it).
pub(crate) struct Exited {
    failure: Option<Failure>,
}

impl Exited {
    /// Nothing to report.
    pub(crate) fn none() -> Exited {
        Exited { failure: None }
    }

    /// Runs `cleanup`; its failure is raised, unless the block raised (then it is reported).
    pub(crate) async fn after(
        cleanup: impl Future<Output = Outcome<()>>,
        raised: bool,
    ) -> Outcome<Exited> {
        match cleanup.await {
            Err(f) if raised => Ok(Exited { failure: Some(f) }),
            Err(f) => Err(f),
            Ok(()) => Ok(Exited { failure: None }),
        }
    }
}

impl<'py> IntoPyObject<'py> for Exited {
    type Target = PyBool;
    type Output = Borrowed<'py, 'py, PyBool>;
    type Error = std::convert::Infallible;
    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        if let Some(f) = self.failure {
            to_py(py, f).write_unraisable(py, None);
        }
        Ok(PyBool::new(py, false))
    }
}

/// Whether an `__exit__` / `__aexit__` was called with an exception.
pub(crate) fn raised(exc: &Bound<'_, PyTuple>) -> bool {
    exc.get_item(0).is_ok_and(|t| !t.is_none())
}

#[allow(clippy::too_many_arguments)]
fn exec_args(
    argv: &Bound<'_, PyAny>,
    timeout: Option<&Bound<'_, PyAny>>,
    env: Option<&Bound<'_, PyAny>>,
    workdir: Option<&Bound<'_, PyAny>>,
    user: Option<&Bound<'_, PyAny>>,
    stdin: Option<&Bound<'_, PyAny>>,
    max_output: Option<&Bound<'_, PyAny>>,
    tty: Option<&Bound<'_, PyAny>>,
    interactive: Option<&Bound<'_, PyAny>>,
) -> PyResult<Exec> {
    let mut exec = Exec::new(convert::argv(argv, "argv")?)
        .timeout(convert::opt_seconds(timeout, "timeout")?)
        .tty(convert::opt_bool(tty, "tty")?);
    if let Some(e) = env.filter(|e| !e.is_none()) {
        for (k, v) in convert::str_map(e, "env")? {
            exec = exec.env(k, v);
        }
    }
    if let Some(w) = convert::opt_string(workdir, "workdir")? {
        exec = exec.workdir(w);
    }
    if let Some(u) = convert::opt_string(user, "user")? {
        exec = exec.user(u);
    }
    if let Some(s) = stdin.filter(|s| !s.is_none()) {
        exec = exec.stdin(convert::data(s, "stdin")?);
    }
    if let Some(m) = max_output.filter(|m| !m.is_none()) {
        exec = exec.max_output(convert::size(m, "max_output")?);
    }
    if convert::opt_bool(interactive, "interactive")? {
        if stdin.is_some_and(|s| !s.is_none()) {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "give either stdin=... (fed, then closed) or interactive=True (write it yourself), not both",
            ));
        }
        exec = exec.interactive(true);
    }
    Ok(exec)
}

async fn run_exec(slot: Arc<Slot>, exec: Exec, check: bool) -> Outcome<ExecResult> {
    let out = slot.get()?.exec(exec).await?;
    if check && let Err(e) = out.clone().check() {
        let result = ExecResult::new(out);
        let make: crate::errors::MakeResult =
            Box::new(move |py| Ok(Py::new(py, result)?.into_any()));
        return Err(Failure::Checked(e, make));
    }
    Ok(ExecResult::new(out))
}

async fn start_stream(slot: Arc<Slot>, exec: Exec) -> Outcome<SharedStream> {
    let stream = slot.get()?.exec_stream(exec).await?;
    Ok(Arc::new(ParentOnly::new(SharedExec::new(stream))))
}

/// Runs `$body` with the instance of `$slot` bound to `$i`.
macro_rules! with_inst {
    ($slot:expr, |$i:ident| $body:expr) => {{
        let slot = $slot.clone();
        async move {
            let $i = slot.get()?;
            let r: Outcome<_> = async { Ok($body) }.await;
            r
        }
    }};
}

fn grace(v: Option<&Bound<'_, PyAny>>) -> PyResult<Duration> {
    Ok(convert::opt_seconds(v, "grace")?.unwrap_or(Duration::from_secs(10)))
}

fn mode(v: Option<&Bound<'_, PyAny>>) -> PyResult<u32> {
    match v.filter(|m| !m.is_none()) {
        None => Ok(0o644),
        Some(m) => {
            let n = convert::count(m, "mode")?;
            if n > 0o7777 {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "mode must be permission bits between 0 and 0o7777, got {n:#o}"
                )));
            }
            Ok(n as u32)
        }
    }
}

fn paths_out(paths: Vec<PathBuf>) -> Vec<String> {
    paths.into_iter().map(|p| p.display().to_string()).collect()
}

/// Leaves a `with` / `async with` block: closes the instance (see [`Exited`]).
fn leave<F: Face>(
    py: Python<'_>,
    name: &'static str,
    slot: &Slot,
    exc: &Bound<'_, PyTuple>,
) -> PyResult<F::Out<Exited>> {
    let exited = Exited::after(close(slot.take()), raised(exc));
    closing::<F, _>(py, name, exited, Exited::none())
}

/// An instance class for face `$face`, whose streams are `$stream`, `$logs` and `$stats` and
/// whose background processes are `$proc`: every method both classes share, plus the class's
/// own (its context manager protocol).
macro_rules! instance_class {
    ($(#[$doc:meta])* $cls:ident, $face:ty, $stream:ident, $logs:ident, $proc:ident, $stats:ident, { $($own:tt)* }) => {
        $(#[$doc])*
        #[pyclass(module = "headjack", frozen)]
        pub(crate) struct $cls {
            slot: Arc<Slot>,
        }

        impl From<Arc<Slot>> for $cls {
            fn from(slot: Arc<Slot>) -> Self {
                $cls { slot }
            }
        }

        impl Drop for $cls {
            fn drop(&mut self) {
                self.slot.release();
            }
        }

        #[pymethods]
        impl $cls {
            /// headjack's ID for this instance (label io.headjack.instance).
            #[getter]
            fn id(&self) -> &str {
                &self.slot.id
            }

            /// The engine's container ID.
            #[getter]
            fn container_id(&self) -> &str {
                &self.slot.container_id
            }

            /// The container name.
            #[getter]
            fn name(&self) -> &str {
                &self.slot.name
            }

            /// The image reference the container runs.
            #[getter]
            fn image(&self) -> &str {
                &self.slot.image
            }

            /// What the base asked for and headjack did not apply: a devcontainer.json's
            /// unsupported keys, one message each (file:line:column: key: why).
            #[getter]
            fn warnings(&self) -> Vec<String> {
                self.slot.warnings.clone()
            }

            /// Whether close() was called (the handle is then unusable).
            #[getter]
            fn closed(&self) -> bool {
                self.slot.is_closed()
            }

            /// Whether keep() was called.
            #[getter]
            fn kept(&self) -> bool {
                self.slot.get().map(|i| i.is_kept()).unwrap_or(false)
            }

            /// Runs a command (argv list, no shell) and collects its output. A non-zero exit,
            /// a timeout or an out-of-memory kill is reported in the result; with check=True
            /// they raise ExecError / HeadjackTimeoutError (carrying `.result`). A timed-out
            /// command is killed in the container; so is a cancelled or interrupted one.
            #[pyo3(signature = (argv, *, timeout=None, env=None, workdir=None, user=None, stdin=None, check=None, max_output=None, tty=None))]
            #[allow(clippy::too_many_arguments)]
            fn exec(
                slf: &Bound<'_, Self>,
                py: Python<'_>,
                argv: &Bound<'_, PyAny>,
                timeout: Option<&Bound<'_, PyAny>>,
                env: Option<&Bound<'_, PyAny>>,
                workdir: Option<&Bound<'_, PyAny>>,
                user: Option<&Bound<'_, PyAny>>,
                stdin: Option<&Bound<'_, PyAny>>,
                check: Option<&Bound<'_, PyAny>>,
                max_output: Option<&Bound<'_, PyAny>>,
                tty: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<<$face as Face>::Out<ExecResult>> {
                let exec =
                    exec_args(argv, timeout, env, workdir, user, stdin, max_output, tty, None)?;
                let check = convert::opt_bool(check, "check")?;
                let name = concat!(stringify!($cls), ".exec");
                <$face>::call_for(py, name, slf.as_any(), run_exec(slf.get().slot.clone(), exec, check))
            }

            /// Starts a command; its output comes as it arrives, chunk by chunk.
            #[pyo3(signature = (argv, *, timeout=None, env=None, workdir=None, user=None, stdin=None, tty=None, interactive=None))]
            #[allow(clippy::too_many_arguments)]
            fn exec_stream(
                slf: &Bound<'_, Self>,
                py: Python<'_>,
                argv: &Bound<'_, PyAny>,
                timeout: Option<&Bound<'_, PyAny>>,
                env: Option<&Bound<'_, PyAny>>,
                workdir: Option<&Bound<'_, PyAny>>,
                user: Option<&Bound<'_, PyAny>>,
                stdin: Option<&Bound<'_, PyAny>>,
                tty: Option<&Bound<'_, PyAny>>,
                interactive: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<<$face as Face>::Out<$stream>> {
                let exec =
                    exec_args(argv, timeout, env, workdir, user, stdin, None, tty, interactive)?;
                let slot = slf.get().slot.clone();
                let name = concat!(stringify!($cls), ".exec_stream");
                <$face>::call_for(py, name, slf.as_any(), async move {
                    Ok($stream::from(start_stream(slot, exec).await?))
                })
            }

            /// Writes `data` (bytes or str) to absolute `path`, creating missing parent
            /// directories.
            #[pyo3(signature = (path, data, *, mode=None))]
            fn write_file(
                slf: &Bound<'_, Self>,
                py: Python<'_>,
                path: &Bound<'_, PyAny>,
                data: &Bound<'_, PyAny>,
                mode: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<<$face as Face>::Out<()>> {
                let p = convert::string(path, "path")?;
                let d = convert::data(data, "data")?;
                let m = self::mode(mode)?;
                let name = concat!(stringify!($cls), ".write_file");
                <$face>::call_for(py, name, slf.as_any(), with_inst!(slf.get().slot, |i| i.write_file_with_mode(&p, d, m).await?))
            }

            /// Reads the regular file at absolute `path`.
            fn read_file(
                slf: &Bound<'_, Self>,
                py: Python<'_>,
                path: &Bound<'_, PyAny>,
            ) -> PyResult<<$face as Face>::Out<BytesOut>> {
                let p = convert::string(path, "path")?;
                let name = concat!(stringify!($cls), ".read_file");
                <$face>::call_for(py, name, slf.as_any(), with_inst!(slf.get().slot, |i| BytesOut(i.read_file(&p).await?)))
            }

            /// Copies host file or directory `src` into existing container directory
            /// `dest_dir`.
            fn copy_in(
                slf: &Bound<'_, Self>,
                py: Python<'_>,
                src: &Bound<'_, PyAny>,
                dest_dir: &Bound<'_, PyAny>,
            ) -> PyResult<<$face as Face>::Out<()>> {
                let s = convert::path(src, "src")?;
                let d = convert::string(dest_dir, "dest_dir")?;
                let name = concat!(stringify!($cls), ".copy_in");
                <$face>::call_for(py, name, slf.as_any(), with_inst!(slf.get().slot, |i| i.copy_in(s, &d).await?))
            }

            /// Copies container file or directory `src` into host directory `dest_dir`; returns
            /// the paths written. Entries that would escape `dest_dir` are refused.
            fn copy_out(
                slf: &Bound<'_, Self>,
                py: Python<'_>,
                src: &Bound<'_, PyAny>,
                dest_dir: &Bound<'_, PyAny>,
            ) -> PyResult<<$face as Face>::Out<Vec<String>>> {
                let s = convert::string(src, "src")?;
                let d = convert::path(dest_dir, "dest_dir")?;
                let name = concat!(stringify!($cls), ".copy_out");
                <$face>::call_for(py, name, slf.as_any(), with_inst!(slf.get().slot, |i| paths_out(i.copy_out(&s, d).await?)))
            }

            /// The keep-alive process's output so far.
            fn logs(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<<$face as Face>::Out<Vec<Chunk>>> {
                let name = concat!(stringify!($cls), ".logs");
                <$face>::call_for(py, name, slf.as_any(), with_inst!(slf.get().slot, |i| {
                    i.logs().await?.into_iter().map(Chunk::from).collect::<Vec<_>>()
                }))
            }

            /// The keep-alive process's output as it comes; `follow=True` waits for more.
            #[pyo3(signature = (*, follow=None))]
            fn logs_stream(
                &self,
                py: Python<'_>,
                follow: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<$logs> {
                let f = convert::opt_bool(follow, "follow")?;
                let inst = self.slot.get().map_err(|e| to_py(py, e))?;
                Ok($logs::from(Logs::shared(inst.logs_stream(f))))
            }

            /// Stops the container (SIGTERM, then SIGKILL after `grace` seconds); start()
            /// resumes it.
            #[pyo3(signature = (grace=None))]
            fn stop(
                slf: &Bound<'_, Self>,
                py: Python<'_>,
                grace: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<<$face as Face>::Out<()>> {
                let g = self::grace(grace)?;
                let name = concat!(stringify!($cls), ".stop");
                <$face>::call_for(py, name, slf.as_any(), with_inst!(slf.get().slot, |i| i.stop(g).await?))
            }

            /// Sends `signal` (default SIGKILL) to the container's main process.
            #[pyo3(signature = (signal=None))]
            fn kill(
                slf: &Bound<'_, Self>,
                py: Python<'_>,
                signal: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<<$face as Face>::Out<()>> {
                let s = convert::opt_string(signal, "signal")?.unwrap_or_else(|| "SIGKILL".into());
                let name = concat!(stringify!($cls), ".kill");
                <$face>::call_for(py, name, slf.as_any(), with_inst!(slf.get().slot, |i| i.kill(&s).await?))
            }

            /// Starts a stopped container again.
            fn start(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<<$face as Face>::Out<()>> {
                let name = concat!(stringify!($cls), ".start");
                <$face>::call_for(py, name, slf.as_any(), with_inst!(slf.get().slot, |i| i.start().await?))
            }

            /// Restarts the container (stop with `grace` seconds, then start).
            #[pyo3(signature = (grace=None))]
            fn restart(
                slf: &Bound<'_, Self>,
                py: Python<'_>,
                grace: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<<$face as Face>::Out<()>> {
                let g = self::grace(grace)?;
                let name = concat!(stringify!($cls), ".restart");
                <$face>::call_for(py, name, slf.as_any(), with_inst!(slf.get().slot, |i| i.restart(g).await?))
            }

            /// Freezes every process of the container.
            fn pause(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<<$face as Face>::Out<()>> {
                let name = concat!(stringify!($cls), ".pause");
                <$face>::call_for(py, name, slf.as_any(), with_inst!(slf.get().slot, |i| i.pause().await?))
            }

            /// Thaws a paused container.
            fn resume(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<<$face as Face>::Out<()>> {
                let name = concat!(stringify!($cls), ".resume");
                <$face>::call_for(py, name, slf.as_any(), with_inst!(slf.get().slot, |i| i.resume().await?))
            }

            /// The container's state: "running", "paused", "exited", ...
            fn status(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<<$face as Face>::Out<String>> {
                let name = concat!(stringify!($cls), ".status");
                <$face>::call_for(py, name, slf.as_any(), with_inst!(slf.get().slot, |i| i.status().await?.as_str().to_owned()))
            }

            /// Everything headjack knows about this instance.
            fn inspect(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<<$face as Face>::Out<InstanceInfo>> {
                let name = concat!(stringify!($cls), ".inspect");
                <$face>::call_for(py, name, slf.as_any(), with_inst!(slf.get().slot, |i| InstanceInfo::from(i.inspect().await?)))
            }

            /// Saves the filesystem as image `reference` (usable as a base); returns it fully
            /// qualified.
            fn commit(
                slf: &Bound<'_, Self>,
                py: Python<'_>,
                reference: &Bound<'_, PyAny>,
            ) -> PyResult<<$face as Face>::Out<String>> {
                let r = convert::string(reference, "reference")?;
                let name = concat!(stringify!($cls), ".commit");
                <$face>::call_for(py, name, slf.as_any(), with_inst!(slf.get().slot, |i| i.commit(&r).await?.to_string()))
            }

            /// The host address (host, port) where container TCP port `container_port` is
            /// published (the `publish` option).
            fn port(
                slf: &Bound<'_, Self>,
                py: Python<'_>,
                container_port: &Bound<'_, PyAny>,
            ) -> PyResult<<$face as Face>::Out<(String, u16)>> {
                let p = convert::count(container_port, "container_port")?;
                let p = u16::try_from(p).map_err(|_| {
                    pyo3::exceptions::PyValueError::new_err(format!(
                        "container_port {p}: a port is at most 65535"
                    ))
                })?;
                let name = concat!(stringify!($cls), ".port");
                <$face>::call_for(py, name, slf.as_any(), with_inst!(slf.get().slot, |i| {
                    let a = i.port(p).await?;
                    (a.ip().to_string(), a.port())
                }))
            }

            /// Resource use now: a dict with cpu_time_ns, memory_bytes, memory_peak_bytes,
            /// memory_limit_bytes, pids, net_rx_bytes, net_tx_bytes, block_read_bytes,
            /// block_write_bytes (None where the engine does not tell).
            fn stats(
                slf: &Bound<'_, Self>,
                py: Python<'_>,
            ) -> PyResult<<$face as Face>::Out<StatsDict>> {
                let name = concat!(stringify!($cls), ".stats");
                <$face>::call_for(py, name, slf.as_any(), with_inst!(slf.get().slot, |i| stats_dict(i.stats().await?)))
            }

            /// Samples stats() every `interval` seconds (the first at once) as an iterator
            /// (async iterator for asyncio) of the same dicts; it ends when the instance stops
            /// or is removed.
            #[pyo3(signature = (interval=None), text_signature = "($self, interval=1.0)")]
            fn stats_stream(
                &self,
                py: Python<'_>,
                interval: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<$stats> {
                let every = match convert::opt_seconds(interval, "interval")? {
                    None => Duration::from_secs(1),
                    Some(d) if d.is_zero() => {
                        return Err(pyo3::exceptions::PyValueError::new_err(
                            "interval must be a positive number of seconds",
                        ));
                    }
                    Some(d) => d,
                };
                let inst = self.slot.get().map_err(|e| to_py(py, e))?;
                Ok($stats::from(Sampler::shared(inst, every)))
            }

            /// A copy of this instance: its filesystem is committed to a snapshot image (paused
            /// for the commit) and a new instance is spawned from it with the same spec (limits,
            /// mounts, volumes, environment; a fresh name). Files are as they were at the fork
            /// and diverge afterwards; processes are not carried over. The new instance is owned
            /// like a spawned one (removed on close). The snapshot image is removed with it,
            /// unless `keep_snapshot=True` (then remove it with Client.remove_image).
            #[pyo3(signature = (*, keep_snapshot=None))]
            fn fork(
                slf: &Bound<'_, Self>,
                py: Python<'_>,
                keep_snapshot: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<<$face as Face>::Out<$cls>> {
                let keep = convert::opt_bool(keep_snapshot, "keep_snapshot")?;
                let name = concat!(stringify!($cls), ".fork");
                <$face>::call_for(py, name, slf.as_any(), with_inst!(slf.get().slot, |i| {
                    $cls::from(Slot::new(i.fork_with(keep).await?))
                }))
            }

            /// The snapshot image a fork runs, while it is to be removed with the fork; None for
            /// other instances, forks with keep_snapshot=True and closed handles.
            #[getter]
            fn fork_snapshot(&self) -> Option<String> {
                self.slot.get().ok().and_then(|i| i.fork_snapshot())
            }

            /// Saves the instance's processes with their memory as checkpoint `name`, leaving
            /// it running; Client.restore() brings them back. Needs an engine that can (Docker
            /// in experimental mode with CRIU, or Podman with CRIU): elsewhere UnsupportedError
            /// says why.
            fn checkpoint(
                slf: &Bound<'_, Self>,
                py: Python<'_>,
                name: &Bound<'_, PyAny>,
            ) -> PyResult<<$face as Face>::Out<()>> {
                let n = convert::string(name, "name")?;
                let call = concat!(stringify!($cls), ".checkpoint");
                <$face>::call_for(py, call, slf.as_any(), with_inst!(slf.get().slot, |i| i.checkpoint(&n).await?))
            }

            /// Removes the container now, even if keep() was called. Idempotent. In a forked
            /// child it raises ForkedError (the container is the parent's).
            fn remove(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<<$face as Face>::Out<()>> {
                let name = concat!(stringify!($cls), ".remove");
                <$face>::call_for(py, name, slf.as_any(), with_inst!(slf.get().slot, |i| i.remove().await?))
            }

            /// Replaces the egress policy of an instance spawned with one (``egress=``):
            /// ``{"allow": [patterns]}`` or ``{"deny": [patterns]}``. Takes effect for its next
            /// connection, request and DNS lookup.
            fn set_egress(
                slf: &Bound<'_, Self>,
                py: Python<'_>,
                egress: &Bound<'_, PyAny>,
            ) -> PyResult<<$face as Face>::Out<()>> {
                let e = convert::egress(egress, "egress")?;
                let name = concat!(stringify!($cls), ".set_egress");
                <$face>::call_for(py, name, slf.as_any(), with_inst!(slf.get().slot, |i| i.set_egress(e).await?))
            }

            /// What the instance's egress proxy decided, oldest first (the last 1000 decisions).
            fn egress_log(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<<$face as Face>::Out<Vec<crate::types::EgressDecision>>> {
                let name = concat!(stringify!($cls), ".egress_log");
                <$face>::call_for(py, name, slf.as_any(), with_inst!(slf.get().slot, |i| {
                    i.egress_log().await?.into_iter().map(crate::types::EgressDecision::from).collect::<Vec<_>>()
                }))
            }

            /// Keeps the container when this handle is closed or collected (find it again with
            /// attach(); sweep still removes it once this process is gone).
            fn keep(&self, py: Python<'_>) -> PyResult<()> {
                self.slot.get().map(|i| i.keep()).map_err(|e| to_py(py, e))
            }

            /// Removes the container (unless kept) and releases the handle. Idempotent. In a
            /// forked child it only releases the handle: the container is the parent's.
            fn close(&self, py: Python<'_>) -> PyResult<<$face as Face>::Out<()>> {
                let taken = self.slot.take();
                closing::<$face, _>(py, concat!(stringify!($cls), ".close"), close(taken), ())
            }

            /// The labels the pool claim that handed out this instance gave it
            /// (`Pool.take(labels=...)`); kept by this handle only (engines cannot relabel a
            /// running container).
            fn claim_labels(&self, py: Python<'_>) -> PyResult<std::collections::BTreeMap<String, String>> {
                self.slot.get().map(|i| i.claim_labels()).map_err(|e| to_py(py, e))
            }

            /// Starts a command in the background (argv list, no shell, no standard input): it
            /// outlives this call, this handle and this Python process; the in-container agent
            /// keeps its exit status and the most recent part of its output until forget().
            /// UnsupportedError for an instance without the agent (engine_exec=True).
            #[pyo3(signature = (argv, *, timeout=None, env=None, workdir=None, user=None, tty=None))]
            #[allow(clippy::too_many_arguments)]
            fn start_process(
                slf: &Bound<'_, Self>,
                py: Python<'_>,
                argv: &Bound<'_, PyAny>,
                timeout: Option<&Bound<'_, PyAny>>,
                env: Option<&Bound<'_, PyAny>>,
                workdir: Option<&Bound<'_, PyAny>>,
                user: Option<&Bound<'_, PyAny>>,
                tty: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<<$face as Face>::Out<$proc>> {
                let exec = exec_args(argv, timeout, env, workdir, user, None, None, tty, None)?;
                let name = concat!(stringify!($cls), ".start_process");
                <$face>::call_for(py, name, slf.as_any(), with_inst!(slf.get().slot, |i| {
                    $proc::from(procs::shared(i.start_process(exec).await?))
                }))
            }

            /// The instance's background processes (running or ended, not yet forgotten),
            /// whoever started them.
            fn processes(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<<$face as Face>::Out<Vec<ProcessInfo>>> {
                let name = concat!(stringify!($cls), ".processes");
                <$face>::call_for(py, name, slf.as_any(), with_inst!(slf.get().slot, |i| {
                    i.processes().await?.into_iter().map(ProcessInfo::from).collect::<Vec<_>>()
                }))
            }

            /// A handle to background process `id` (from processes() or Process.id), e.g. in
            /// another Python process after a restart. Returns at once; an unknown ID fails on
            /// first use (NotFoundError).
            fn process(&self, py: Python<'_>, id: &Bound<'_, PyAny>) -> PyResult<$proc> {
                let id = convert::count(id, "id")?;
                let inst = self.slot.get().map_err(|e| to_py(py, e))?;
                let p = inst.process(id).map_err(|e| to_py(py, e.into()))?;
                Ok($proc::from(procs::shared(p)))
            }

            fn __repr__(&self) -> String {
                self.slot.repr(stringify!($cls))
            }

            $($own)*
        }
    };
}

instance_class!(
    /// A running environment (sync API). Use it as a context manager: leaving the block removes
    /// the container, also when the block raised (the exception is never swallowed).
    Instance, Blocking, ExecStream, LogStream, Process, StatsStream, {
    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*exc))]
    fn __exit__(&self, py: Python<'_>, exc: &Bound<'_, PyTuple>) -> PyResult<Exited> {
        leave::<Blocking>(py, "Instance.__exit__", &self.slot, exc)
    }
});

instance_class!(
    /// A running environment (asyncio API): every operation returns a coroutine. Use it with
    /// `async with`: leaving the block removes the container, also when the block raised.
    AsyncInstance, Asyncio, AsyncExecStream, AsyncLogStream, AsyncProcess, AsyncStatsStream, {
    fn __aenter__(slf: PyRef<'_, Self>, py: Python<'_>) -> PyResult<crate::aio::Coroutine> {
        let me: Py<Self> = slf.into();
        Asyncio::ready(py, "AsyncInstance.__aenter__", me)
    }

    #[pyo3(signature = (*exc))]
    fn __aexit__(
        &self,
        py: Python<'_>,
        exc: &Bound<'_, PyTuple>,
    ) -> PyResult<crate::aio::Coroutine> {
        leave::<Asyncio>(py, "AsyncInstance.__aexit__", &self.slot, exc)
    }
});
