//! `Instance` (sync) and `AsyncInstance` (asyncio): two faces of one handle to a running
//! environment. Closing removes the container unless `keep()` was called; so does leaving a
//! `with` / `async with` block, and so does garbage collection (the core's `Drop`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use headjack::{Exec, Instance as Core};

use crate::args;
use crate::errors::{Failure, Outcome};
use crate::runtime::{awaitable, block, is_forked_child};
use crate::stream::{AsyncExecStream, AsyncLogStream, ExecCore, ExecStream, LogCore, LogStream};
use crate::types::{Chunk, ExecResult, InstanceInfo};

/// The handle shared by the sync and async classes.
pub(crate) struct Slot {
    inst: Mutex<Option<Arc<Core>>>,
    id: String,
    container_id: String,
    name: String,
    image: String,
}

impl Slot {
    pub(crate) fn new(inst: Core) -> Arc<Slot> {
        Arc::new(Slot {
            id: inst.id().to_owned(),
            container_id: inst.container_id().to_owned(),
            name: inst.name().to_owned(),
            image: inst.image().to_owned(),
            inst: Mutex::new(Some(Arc::new(inst))),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<Core>>> {
        self.inst.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self) -> Result<Arc<Core>, Failure> {
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

    fn take(&self) -> Option<Arc<Core>> {
        self.lock().take()
    }

    fn is_closed(&self) -> bool {
        self.lock().is_none()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if is_forked_child() {
            // The container belongs to the parent process: never remove it from here.
            if let Some(i) = self
                .inst
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .take()
            {
                std::mem::forget(i);
            }
        }
    }
}

async fn close(taken: Option<Arc<Core>>) -> Outcome<()> {
    if let Some(inst) = taken
        && !inst.is_kept()
    {
        inst.remove().await?;
    }
    Ok(())
}

/// The parsed arguments of `exec` / `exec_stream`.
struct ExecArgs {
    exec: Exec,
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
) -> PyResult<ExecArgs> {
    let mut exec = Exec::new(args::argv(argv, "argv")?);
    if let Some(t) = args::opt_seconds(timeout, "timeout")? {
        exec = exec.timeout(t);
    }
    if let Some(e) = env.filter(|e| !e.is_none()) {
        for (k, v) in args::str_map(e, "env")? {
            exec = exec.env(k, v);
        }
    }
    if let Some(w) = args::opt_string(workdir, "workdir")? {
        exec = exec.workdir(w);
    }
    if let Some(u) = args::opt_string(user, "user")? {
        exec = exec.user(u);
    }
    if let Some(s) = stdin.filter(|s| !s.is_none()) {
        exec = exec.stdin(args::data(s, "stdin")?);
    }
    if let Some(m) = max_output.filter(|m| !m.is_none()) {
        let n = args::count(m, "max_output")?;
        exec = exec.max_output(usize::try_from(n).unwrap_or(usize::MAX));
    }
    exec = exec.tty(args::opt_bool(tty, "tty")?);
    {
        if args::opt_bool(interactive, "interactive")? {
            if stdin.is_some_and(|s| !s.is_none()) {
                return Err(pyo3::exceptions::PyValueError::new_err(
                    "give either stdin=... (fed, then closed) or interactive=True (write it yourself), not both",
                ));
            }
            exec = exec.interactive(true);
        }
    }
    Ok(ExecArgs { exec })
}

async fn run_exec(slot: Arc<Slot>, exec: Exec, check: bool) -> Outcome<ExecResult> {
    let inst = slot.get()?;
    let out = inst.exec(exec).await?;
    if check && let Err(e) = out.clone().check() {
        return Err(Failure::Checked(e, Box::new(ExecResult::new(out))));
    }
    Ok(ExecResult::new(out))
}

async fn start_stream(slot: Arc<Slot>, exec: Exec) -> Outcome<Arc<ExecCore>> {
    let inst = slot.get()?;
    Ok(ExecCore::new(inst.exec_stream(exec).await?))
}

/// File contents going back to Python as `bytes`.
pub(crate) struct BytesOut(Vec<u8>);

impl<'py> IntoPyObject<'py> for BytesOut {
    type Target = PyBytes;
    type Output = Bound<'py, PyBytes>;
    type Error = std::convert::Infallible;
    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        Ok(PyBytes::new(py, &self.0))
    }
}

/// Shorthand: run `$body` with the instance of `$slot` bound to `$i`.
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
    Ok(args::opt_seconds(v, "grace")?.unwrap_or(Duration::from_secs(10)))
}

fn mode(v: Option<&Bound<'_, PyAny>>) -> PyResult<u32> {
    match v.filter(|m| !m.is_none()) {
        None => Ok(0o644),
        Some(m) => {
            let n = args::count(m, "mode")?;
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

fn repr(kind: &str, slot: &Slot) -> String {
    let state = if slot.is_closed() { ", closed" } else { "" };
    format!(
        "{kind}(id={:?}, name={:?}, image={:?}{state})",
        slot.id, slot.name, slot.image
    )
}

/// A running environment (sync API). Use it as a context manager: leaving the block removes
/// the container, also when the block raised (the exception is never swallowed).
#[pyclass(module = "headjack", frozen)]
pub(crate) struct Instance {
    slot: Arc<Slot>,
}

impl Instance {
    pub(crate) fn new(slot: Arc<Slot>) -> Self {
        Instance { slot }
    }
}

#[pymethods]
impl Instance {
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

    /// Runs a command (argv list, no shell) and collects its output. A non-zero exit or a
    /// timeout is reported in the result; with check=True they raise ExecError /
    /// HeadjackTimeoutError (carrying `.result`). A timed-out command is killed in the container.
    #[pyo3(signature = (argv, *, timeout=None, env=None, workdir=None, user=None, stdin=None, check=None, max_output=None, tty=None))]
    #[allow(clippy::too_many_arguments)]
    fn exec(
        &self,
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
    ) -> PyResult<ExecResult> {
        let a = exec_args(
            argv, timeout, env, workdir, user, stdin, max_output, tty, None,
        )?;
        let check = args::opt_bool(check, "check")?;
        block(py, run_exec(self.slot.clone(), a.exec, check))
    }

    /// Starts a command and returns its output as an iterator of Chunk (as it arrives).
    #[pyo3(signature = (argv, *, timeout=None, env=None, workdir=None, user=None, stdin=None, tty=None, interactive=None))]
    #[allow(clippy::too_many_arguments)]
    fn exec_stream(
        &self,
        py: Python<'_>,
        argv: &Bound<'_, PyAny>,
        timeout: Option<&Bound<'_, PyAny>>,
        env: Option<&Bound<'_, PyAny>>,
        workdir: Option<&Bound<'_, PyAny>>,
        user: Option<&Bound<'_, PyAny>>,
        stdin: Option<&Bound<'_, PyAny>>,
        tty: Option<&Bound<'_, PyAny>>,
        interactive: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<ExecStream> {
        let a = exec_args(
            argv,
            timeout,
            env,
            workdir,
            user,
            stdin,
            None,
            tty,
            interactive,
        )?;
        Ok(ExecStream::new(block(
            py,
            start_stream(self.slot.clone(), a.exec),
        )?))
    }

    /// Writes `data` (bytes or str) to absolute `path`, creating missing parent directories.
    #[pyo3(signature = (path, data, *, mode=None))]
    fn write_file(
        &self,
        py: Python<'_>,
        path: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
        mode: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let (p, d, m) = (
            args::string(path, "path")?,
            args::data(data, "data")?,
            self::mode(mode)?,
        );
        block(
            py,
            with_inst!(self.slot, |i| i.write_file_with_mode(&p, d, m).await?),
        )
    }

    /// Reads the regular file at absolute `path`.
    fn read_file(&self, py: Python<'_>, path: &Bound<'_, PyAny>) -> PyResult<BytesOut> {
        let p = args::string(path, "path")?;
        block(
            py,
            with_inst!(self.slot, |i| BytesOut(i.read_file(&p).await?)),
        )
    }

    /// Copies host file or directory `src` into existing container directory `dest_dir`.
    fn copy_in(
        &self,
        py: Python<'_>,
        src: &Bound<'_, PyAny>,
        dest_dir: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let (s, d) = (args::path(src, "src")?, args::string(dest_dir, "dest_dir")?);
        block(py, with_inst!(self.slot, |i| i.copy_in(s, &d).await?))
    }

    /// Copies container file or directory `src` into host directory `dest_dir`; returns the
    /// paths written. Entries that would escape `dest_dir` are refused.
    fn copy_out(
        &self,
        py: Python<'_>,
        src: &Bound<'_, PyAny>,
        dest_dir: &Bound<'_, PyAny>,
    ) -> PyResult<Vec<String>> {
        let (s, d) = (args::string(src, "src")?, args::path(dest_dir, "dest_dir")?);
        block(
            py,
            with_inst!(self.slot, |i| paths_out(i.copy_out(&s, d).await?)),
        )
    }

    /// The keep-alive process's output so far.
    fn logs(&self, py: Python<'_>) -> PyResult<Vec<Chunk>> {
        block(
            py,
            with_inst!(self.slot, |i| i
                .logs()
                .await?
                .into_iter()
                .map(Chunk::from)
                .collect::<Vec<_>>()),
        )
    }

    /// The keep-alive process's output as an iterator; `follow=True` waits for more.
    #[pyo3(signature = (*, follow=None))]
    fn logs_stream(
        &self,
        py: Python<'_>,
        follow: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<LogStream> {
        let f = args::opt_bool(follow, "follow")?;
        let inst = self.slot.get().map_err(|e| crate::errors::to_py(py, e))?;
        Ok(LogStream::new(LogCore::new(inst.logs_stream(f))))
    }

    /// Stops the container (SIGTERM, then SIGKILL after `grace` seconds); start() resumes it.
    #[pyo3(signature = (grace=None))]
    fn stop(&self, py: Python<'_>, grace: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let g = self::grace(grace)?;
        block(py, with_inst!(self.slot, |i| i.stop(g).await?))
    }

    /// Sends `signal` (default SIGKILL) to the container's main process.
    #[pyo3(signature = (signal=None))]
    fn kill(&self, py: Python<'_>, signal: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let s = args::opt_string(signal, "signal")?.unwrap_or_else(|| "SIGKILL".into());
        block(py, with_inst!(self.slot, |i| i.kill(&s).await?))
    }

    /// Starts a stopped container again.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        block(py, with_inst!(self.slot, |i| i.start().await?))
    }

    /// Restarts the container (stop with `grace` seconds, then start).
    #[pyo3(signature = (grace=None))]
    fn restart(&self, py: Python<'_>, grace: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let g = self::grace(grace)?;
        block(py, with_inst!(self.slot, |i| i.restart(g).await?))
    }

    /// Freezes every process of the container.
    fn pause(&self, py: Python<'_>) -> PyResult<()> {
        block(py, with_inst!(self.slot, |i| i.pause().await?))
    }

    /// Thaws a paused container.
    fn resume(&self, py: Python<'_>) -> PyResult<()> {
        block(py, with_inst!(self.slot, |i| i.resume().await?))
    }

    /// The container's state: "running", "paused", "exited", ...
    fn status(&self, py: Python<'_>) -> PyResult<String> {
        block(
            py,
            with_inst!(self.slot, |i| i.status().await?.as_str().to_owned()),
        )
    }

    /// Everything headjack knows about this instance.
    fn inspect(&self, py: Python<'_>) -> PyResult<InstanceInfo> {
        block(
            py,
            with_inst!(self.slot, |i| InstanceInfo::from(i.inspect().await?)),
        )
    }

    /// Saves the filesystem as image `reference` (usable as a base); returns it fully qualified.
    fn commit(&self, py: Python<'_>, reference: &Bound<'_, PyAny>) -> PyResult<String> {
        let r = args::string(reference, "reference")?;
        block(
            py,
            with_inst!(self.slot, |i| i.commit(&r).await?.to_string()),
        )
    }

    /// Removes the container now, even if keep() was called. Idempotent.
    fn remove(&self, py: Python<'_>) -> PyResult<()> {
        block(py, with_inst!(self.slot, |i| i.remove().await?))
    }

    /// Keeps the container when this handle is closed or collected (find it again with
    /// Client.attach; sweep still removes it once this process is gone).
    fn keep(&self, py: Python<'_>) -> PyResult<()> {
        self.slot
            .get()
            .map(|i| i.keep())
            .map_err(|e| crate::errors::to_py(py, e))
    }

    /// Removes the container (unless kept) and releases the handle. Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let taken = self.slot.take();
        block(py, close(taken))
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*exc))]
    fn __exit__(&self, py: Python<'_>, exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        let raised = exc.get_item(0).is_ok_and(|t| !t.is_none());
        match self.close(py) {
            // Never hide the block's own exception behind a cleanup failure.
            Err(e) if raised => {
                e.write_unraisable(py, None);
                Ok(false)
            }
            Err(e) => Err(e),
            Ok(()) => Ok(false),
        }
    }

    fn __repr__(&self) -> String {
        repr("Instance", &self.slot)
    }
}

/// A running environment (asyncio API): every operation returns an awaitable. Use it with
/// `async with`: leaving the block removes the container, also when the block raised.
#[pyclass(module = "headjack", frozen)]
pub(crate) struct AsyncInstance {
    slot: Arc<Slot>,
}

impl AsyncInstance {
    pub(crate) fn new(slot: Arc<Slot>) -> Self {
        AsyncInstance { slot }
    }
}

#[pymethods]
impl AsyncInstance {
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

    /// Runs a command and collects its output (see Instance.exec). Cancelling the awaiting
    /// task kills the command inside the container.
    #[pyo3(signature = (argv, *, timeout=None, env=None, workdir=None, user=None, stdin=None, check=None, max_output=None, tty=None))]
    #[allow(clippy::too_many_arguments)]
    fn exec<'py>(
        &self,
        py: Python<'py>,
        argv: &Bound<'py, PyAny>,
        timeout: Option<&Bound<'py, PyAny>>,
        env: Option<&Bound<'py, PyAny>>,
        workdir: Option<&Bound<'py, PyAny>>,
        user: Option<&Bound<'py, PyAny>>,
        stdin: Option<&Bound<'py, PyAny>>,
        check: Option<&Bound<'py, PyAny>>,
        max_output: Option<&Bound<'py, PyAny>>,
        tty: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let a = exec_args(
            argv, timeout, env, workdir, user, stdin, max_output, tty, None,
        )?;
        let check = args::opt_bool(check, "check")?;
        awaitable(py, run_exec(self.slot.clone(), a.exec, check))
    }

    /// Starts a command; resolves to an AsyncExecStream (an async iterator of Chunk).
    #[pyo3(signature = (argv, *, timeout=None, env=None, workdir=None, user=None, stdin=None, tty=None, interactive=None))]
    #[allow(clippy::too_many_arguments)]
    fn exec_stream<'py>(
        &self,
        py: Python<'py>,
        argv: &Bound<'py, PyAny>,
        timeout: Option<&Bound<'py, PyAny>>,
        env: Option<&Bound<'py, PyAny>>,
        workdir: Option<&Bound<'py, PyAny>>,
        user: Option<&Bound<'py, PyAny>>,
        stdin: Option<&Bound<'py, PyAny>>,
        tty: Option<&Bound<'py, PyAny>>,
        interactive: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let a = exec_args(
            argv,
            timeout,
            env,
            workdir,
            user,
            stdin,
            None,
            tty,
            interactive,
        )?;
        let slot = self.slot.clone();
        awaitable(py, async move {
            Ok(AsyncExecStream::new(start_stream(slot, a.exec).await?))
        })
    }

    /// Writes `data` (bytes or str) to absolute `path`, creating missing parent directories.
    #[pyo3(signature = (path, data, *, mode=None))]
    fn write_file<'py>(
        &self,
        py: Python<'py>,
        path: &Bound<'py, PyAny>,
        data: &Bound<'py, PyAny>,
        mode: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (p, d, m) = (
            args::string(path, "path")?,
            args::data(data, "data")?,
            self::mode(mode)?,
        );
        awaitable(
            py,
            with_inst!(self.slot, |i| i.write_file_with_mode(&p, d, m).await?),
        )
    }

    /// Reads the regular file at absolute `path`; resolves to bytes.
    fn read_file<'py>(
        &self,
        py: Python<'py>,
        path: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let p = args::string(path, "path")?;
        awaitable(
            py,
            with_inst!(self.slot, |i| BytesOut(i.read_file(&p).await?)),
        )
    }

    /// Copies host file or directory `src` into existing container directory `dest_dir`.
    fn copy_in<'py>(
        &self,
        py: Python<'py>,
        src: &Bound<'py, PyAny>,
        dest_dir: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (s, d) = (args::path(src, "src")?, args::string(dest_dir, "dest_dir")?);
        awaitable(py, with_inst!(self.slot, |i| i.copy_in(s, &d).await?))
    }

    /// Copies container `src` into host directory `dest_dir`; resolves to the paths written.
    fn copy_out<'py>(
        &self,
        py: Python<'py>,
        src: &Bound<'py, PyAny>,
        dest_dir: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (s, d) = (args::string(src, "src")?, args::path(dest_dir, "dest_dir")?);
        awaitable(
            py,
            with_inst!(self.slot, |i| paths_out(i.copy_out(&s, d).await?)),
        )
    }

    /// The keep-alive process's output so far.
    fn logs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(
            py,
            with_inst!(self.slot, |i| i
                .logs()
                .await?
                .into_iter()
                .map(Chunk::from)
                .collect::<Vec<_>>()),
        )
    }

    /// The keep-alive process's output as an async iterator; `follow=True` waits for more.
    #[pyo3(signature = (*, follow=None))]
    fn logs_stream(
        &self,
        py: Python<'_>,
        follow: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<AsyncLogStream> {
        let f = args::opt_bool(follow, "follow")?;
        let inst = self.slot.get().map_err(|e| crate::errors::to_py(py, e))?;
        Ok(AsyncLogStream::new(LogCore::new(inst.logs_stream(f))))
    }

    /// Stops the container (SIGTERM, then SIGKILL after `grace` seconds).
    #[pyo3(signature = (grace=None))]
    fn stop<'py>(
        &self,
        py: Python<'py>,
        grace: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let g = self::grace(grace)?;
        awaitable(py, with_inst!(self.slot, |i| i.stop(g).await?))
    }

    /// Sends `signal` (default SIGKILL) to the container's main process.
    #[pyo3(signature = (signal=None))]
    fn kill<'py>(
        &self,
        py: Python<'py>,
        signal: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let s = args::opt_string(signal, "signal")?.unwrap_or_else(|| "SIGKILL".into());
        awaitable(py, with_inst!(self.slot, |i| i.kill(&s).await?))
    }

    /// Starts a stopped container again.
    fn start<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, with_inst!(self.slot, |i| i.start().await?))
    }

    /// Restarts the container.
    #[pyo3(signature = (grace=None))]
    fn restart<'py>(
        &self,
        py: Python<'py>,
        grace: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let g = self::grace(grace)?;
        awaitable(py, with_inst!(self.slot, |i| i.restart(g).await?))
    }

    /// Freezes every process of the container.
    fn pause<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, with_inst!(self.slot, |i| i.pause().await?))
    }

    /// Thaws a paused container.
    fn resume<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, with_inst!(self.slot, |i| i.resume().await?))
    }

    /// The container's state: "running", "paused", "exited", ...
    fn status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(
            py,
            with_inst!(self.slot, |i| i.status().await?.as_str().to_owned()),
        )
    }

    /// Everything headjack knows about this instance.
    fn inspect<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(
            py,
            with_inst!(self.slot, |i| InstanceInfo::from(i.inspect().await?)),
        )
    }

    /// Saves the filesystem as image `reference`; resolves to it fully qualified.
    fn commit<'py>(
        &self,
        py: Python<'py>,
        reference: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let r = args::string(reference, "reference")?;
        awaitable(
            py,
            with_inst!(self.slot, |i| i.commit(&r).await?.to_string()),
        )
    }

    /// Removes the container now, even if keep() was called. Idempotent.
    fn remove<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, with_inst!(self.slot, |i| i.remove().await?))
    }

    /// Keeps the container when this handle is closed or collected.
    fn keep(&self, py: Python<'_>) -> PyResult<()> {
        self.slot
            .get()
            .map(|i| i.keep())
            .map_err(|e| crate::errors::to_py(py, e))
    }

    /// Removes the container (unless kept) and releases the handle. Idempotent.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let taken = self.slot.take();
        awaitable(py, close(taken))
    }

    fn __aenter__<'py>(slf: PyRef<'py, Self>, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let me: Py<Self> = slf.into();
        awaitable(py, async move { Ok(me) })
    }

    #[pyo3(signature = (*exc))]
    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        exc: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let raised = exc.get_item(0).is_ok_and(|t| !t.is_none());
        let taken = self.slot.take();
        awaitable(py, async move {
            match close(taken).await {
                Err(f) if raised => {
                    Python::attach(|py| crate::errors::to_py(py, f).write_unraisable(py, None));
                    Ok(false)
                }
                Err(f) => Err(f),
                Ok(()) => Ok(false),
            }
        })
    }

    fn __repr__(&self) -> String {
        repr("AsyncInstance", &self.slot)
    }
}
