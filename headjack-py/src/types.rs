//! Small value classes: base and mount descriptions going in, results coming out.

use std::collections::HashMap;

use bytes::Bytes;
use headjack::base::{Builder, SecretSource};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyString};

use crate::convert as args;

/// A Dockerfile base with build options. `base="./Dockerfile"` is the short form.
#[pyclass(name = "Dockerfile", module = "headjack", frozen)]
pub(crate) struct PyDockerfile {
    pub(crate) inner: headjack::Dockerfile,
}

#[pymethods]
impl PyDockerfile {
    #[new]
    #[pyo3(signature = (path, *, context=None, build_args=None, target=None, platform=None, no_cache=None, secrets=None, builder=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        path: &Bound<'_, PyAny>,
        context: Option<&Bound<'_, PyAny>>,
        build_args: Option<&Bound<'_, PyAny>>,
        target: Option<&Bound<'_, PyAny>>,
        platform: Option<&Bound<'_, PyAny>>,
        no_cache: Option<&Bound<'_, PyAny>>,
        secrets: Option<&Bound<'_, PyAny>>,
        builder: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mut d = headjack::Dockerfile::new(args::path(path, "path")?);
        if let Some(c) = context.filter(|c| !c.is_none()) {
            d = d.context(args::path(c, "context")?);
        }
        if let Some(b) = build_args.filter(|b| !b.is_none()) {
            for (k, v) in args::str_map(b, "build_args")? {
                d = d.build_arg(k, v);
            }
        }
        if let Some(t) = args::opt_string(target, "target")? {
            d = d.target(t);
        }
        if let Some(p) = args::opt_string(platform, "platform")? {
            d = d.platform(p);
        }
        d = d.no_cache(args::opt_bool(no_cache, "no_cache")?);
        if let Some(map) = secrets.filter(|m| !m.is_none()) {
            for (id, source) in secret_map(map)? {
                d = d.secret(id, source);
            }
        }
        if let Some(b) = args::opt_string(builder, "builder")? {
            d = d.builder(match b.as_str() {
                "auto" => Builder::Auto,
                "buildkit" => Builder::BuildKit,
                "classic" => Builder::Classic,
                other => {
                    return Err(PyValueError::new_err(format!(
                        "builder must be \"auto\", \"buildkit\" or \"classic\", not {other:?}"
                    )));
                }
            });
        }
        Ok(PyDockerfile { inner: d })
    }

    /// The ids of the build secrets (their values are never shown).
    #[getter]
    fn secret_ids(&self) -> Vec<String> {
        self.inner.secrets().keys().cloned().collect()
    }

    /// The builder: "auto", "buildkit" or "classic".
    #[getter]
    fn builder(&self) -> &'static str {
        match self.inner.builder_choice() {
            Builder::BuildKit => "buildkit",
            Builder::Classic => "classic",
            _ => "auto",
        }
    }

    /// The Dockerfile's path, as given.
    #[getter]
    fn path(&self) -> String {
        self.inner.path().display().to_string()
    }

    /// The build context directory (default: the Dockerfile's directory).
    #[getter]
    fn context(&self) -> String {
        self.inner.context_dir().display().to_string()
    }

    /// Build arguments.
    #[getter]
    fn build_args(&self) -> HashMap<String, String> {
        self.inner
            .build_args()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The target stage, if any.
    #[getter]
    fn target(&self) -> Option<String> {
        self.inner.target_stage().map(str::to_owned)
    }

    /// The target platform, if any.
    #[getter]
    fn platform(&self) -> Option<String> {
        self.inner.platform_name().map(str::to_owned)
    }

    /// Whether caches are ignored.
    #[getter]
    fn no_cache(&self) -> bool {
        self.inner.is_no_cache()
    }

    fn __repr__(&self) -> String {
        format!("Dockerfile({:?})", self.inner.path().display().to_string())
    }
}

/// `secrets={"id": source}`: `bytes` (or `bytearray`, `memoryview`) is the value itself; an
/// `os.PathLike` or `"file:PATH"` names a file and `"env:NAME"` an environment variable, both
/// read when a build needs them. Any other `str` is refused without echoing it: it may be a
/// value passed by mistake, and a secret never goes into a message.
fn secret_map(v: &Bound<'_, PyAny>) -> PyResult<Vec<(String, SecretSource)>> {
    if !v.hasattr("items")? || v.is_instance_of::<PyString>() {
        return Err(PyTypeError::new_err(
            "secrets must be a dict of id to bytes, os.PathLike, \"env:NAME\" or \"file:PATH\"",
        ));
    }
    let mut out = Vec::new();
    for pair in v.call_method0("items")?.try_iter()? {
        let (k, val): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair?.extract()?;
        let id = args::string(&k, "secrets keys")?;
        let what = format!("secrets[{id:?}]");
        let source = if let Ok(s) = val.cast::<PyString>() {
            let text = s.to_cow()?;
            if let Some(name) = text.strip_prefix("env:").filter(|n| !n.is_empty()) {
                SecretSource::Env(name.to_string())
            } else if let Some(path) = text.strip_prefix("file:").filter(|p| !p.is_empty()) {
                SecretSource::File(path.into())
            } else {
                return Err(PyValueError::new_err(format!(
                    "{what}: a str must be \"env:NAME\" or \"file:PATH\"; pass the value itself \
                     as bytes (for example token.encode())"
                )));
            }
        } else if val.is_instance_of::<PyBytes>()
            || val.is_instance_of::<pyo3::types::PyByteArray>()
            || val.is_instance_of::<pyo3::types::PyMemoryView>()
        {
            SecretSource::Memory(args::data(&val, &what)?)
        } else if val.hasattr("__fspath__")? {
            SecretSource::File(args::path(&val, &what)?)
        } else {
            return Err(PyTypeError::new_err(format!(
                "{what} must be bytes, os.PathLike, \"env:NAME\" or \"file:PATH\""
            )));
        };
        out.push((id, source));
    }
    Ok(out)
}

/// An extra mount for `spawn(mounts=[...])`. Create with `Mount.bind`, `Mount.volume` or
/// `Mount.tmpfs`.
#[pyclass(name = "Mount", module = "headjack", frozen)]
pub(crate) struct PyMount {
    pub(crate) inner: headjack::Mount,
    repr: String,
}

#[pymethods]
impl PyMount {
    /// Bind-mounts host path `host` at `target` (relative host paths resolve against base_dir).
    #[staticmethod]
    #[pyo3(signature = (host, target, *, read_only=None))]
    fn bind(
        host: &Bound<'_, PyAny>,
        target: &Bound<'_, PyAny>,
        read_only: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let h = args::path(host, "host")?;
        let t = args::string(target, "target")?;
        let ro = args::opt_bool(read_only, "read_only")?;
        let repr = format!(
            "Mount.bind({:?}, {t:?}, read_only={})",
            h.display().to_string(),
            py_bool(ro)
        );
        let mut m = headjack::Mount::bind(h, t);
        if ro {
            m = m.read_only();
        }
        Ok(PyMount { inner: m, repr })
    }

    /// Mounts engine volume `name` (created if missing) at `target`.
    #[staticmethod]
    #[pyo3(signature = (name, target, *, read_only=None))]
    fn volume(
        name: &Bound<'_, PyAny>,
        target: &Bound<'_, PyAny>,
        read_only: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let n = args::string(name, "name")?;
        let t = args::string(target, "target")?;
        let ro = args::opt_bool(read_only, "read_only")?;
        let repr = format!("Mount.volume({n:?}, {t:?}, read_only={})", py_bool(ro));
        let mut m = headjack::Mount::volume(n, t);
        if ro {
            m = m.read_only();
        }
        Ok(PyMount { inner: m, repr })
    }

    /// Mounts a fresh in-memory filesystem at `target`, optionally bounded to `size` bytes.
    #[staticmethod]
    #[pyo3(signature = (target, *, size=None))]
    fn tmpfs(target: &Bound<'_, PyAny>, size: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let t = args::string(target, "target")?;
        let s = match size.filter(|s| !s.is_none()) {
            Some(s) => Some(args::count(s, "size")?),
            None => None,
        };
        let repr = format!(
            "Mount.tmpfs({t:?}, size={})",
            s.map(|s| s.to_string()).unwrap_or("None".into())
        );
        Ok(PyMount {
            inner: headjack::Mount::tmpfs(t, s),
            repr,
        })
    }

    fn __repr__(&self) -> String {
        self.repr.clone()
    }
}

fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// The rare outcomes, for a repr: only the ones that happened.
fn flags(oom_killed: bool, kill_failed: bool) -> String {
    let mut s = String::new();
    if oom_killed {
        s.push_str(", oom_killed=True");
    }
    if kill_failed {
        s.push_str(", kill_failed=True");
    }
    s
}

/// The collected result of `exec`: exit code, output (bounded) and flags.
#[pyclass(module = "headjack", frozen)]
pub(crate) struct ExecResult {
    out: headjack::ExecOutput,
    stdout: PyOnceLock<Py<PyBytes>>,
    stderr: PyOnceLock<Py<PyBytes>>,
}

impl ExecResult {
    pub(crate) fn new(out: headjack::ExecOutput) -> Self {
        ExecResult {
            out,
            stdout: PyOnceLock::new(),
            stderr: PyOnceLock::new(),
        }
    }
}

#[pymethods]
impl ExecResult {
    /// The exit code; 127 when the command does not exist; -1 if the engine never said.
    #[getter]
    fn exit_code(&self) -> i64 {
        self.out.exit_code
    }

    /// Standard output, up to the bound (`max_output`).
    #[getter]
    fn stdout(&self, py: Python<'_>) -> Py<PyBytes> {
        self.stdout
            .get_or_init(py, || PyBytes::new(py, &self.out.stdout).unbind())
            .clone_ref(py)
    }

    /// Standard error, up to the bound (`max_output`).
    #[getter]
    fn stderr(&self, py: Python<'_>) -> Py<PyBytes> {
        self.stderr
            .get_or_init(py, || PyBytes::new(py, &self.out.stderr).unbind())
            .clone_ref(py)
    }

    /// Standard output went past the bound; the rest was discarded.
    #[getter]
    fn stdout_truncated(&self) -> bool {
        self.out.stdout_truncated
    }

    /// Standard error went past the bound; the rest was discarded.
    #[getter]
    fn stderr_truncated(&self) -> bool {
        self.out.stderr_truncated
    }

    /// The command ran past its timeout and was killed inside the container (see kill_failed).
    #[getter]
    fn timed_out(&self) -> bool {
        self.out.timed_out
    }

    /// The memory limit killed the command (or a process it waited for).
    #[getter]
    fn oom_killed(&self) -> bool {
        self.out.oom_killed
    }

    /// The command timed out but headjack could not confirm it was killed: processes may still
    /// run in the container (e.g. it dropped headjack's marker with `env -i`) until it is removed.
    #[getter]
    fn kill_failed(&self) -> bool {
        self.out.kill_failed
    }

    /// Exit code 0 and no timeout.
    #[getter]
    fn success(&self) -> bool {
        self.out.success()
    }

    /// How the command ended: "killed: out of memory", "timed out", "killed by signal N" or
    /// "exited with code N".
    #[getter]
    fn exit_reason(&self) -> String {
        self.out.exit_reason()
    }

    /// Standard output decoded as UTF-8 (invalid bytes replaced).
    #[getter]
    fn stdout_text(&self) -> String {
        self.out.stdout_text()
    }

    /// Standard error decoded as UTF-8 (invalid bytes replaced).
    #[getter]
    fn stderr_text(&self) -> String {
        self.out.stderr_text()
    }

    fn __repr__(&self) -> String {
        format!(
            "ExecResult(exit_code={}, stdout={} bytes, stderr={} bytes, timed_out={}{})",
            self.out.exit_code,
            self.out.stdout.len(),
            self.out.stderr.len(),
            py_bool(self.out.timed_out),
            flags(self.out.oom_killed, self.out.kill_failed)
        )
    }
}

/// How a streamed command ended.
#[pyclass(module = "headjack", frozen)]
#[derive(Clone, Copy)]
pub(crate) struct ExitStatus {
    pub(crate) inner: headjack::exec::ExitStatus,
}

#[pymethods]
impl ExitStatus {
    /// The exit code; 127 when the command does not exist; -1 if the engine never said.
    #[getter]
    fn exit_code(&self) -> i64 {
        self.inner.code
    }

    /// The command ran past its timeout and was killed inside the container (see kill_failed).
    #[getter]
    fn timed_out(&self) -> bool {
        self.inner.timed_out
    }

    /// The memory limit killed the command (or a process it waited for).
    #[getter]
    fn oom_killed(&self) -> bool {
        self.inner.oom_killed
    }

    /// The command timed out but headjack could not confirm it was killed: processes may still
    /// run in the container until it is removed.
    #[getter]
    fn kill_failed(&self) -> bool {
        self.inner.kill_failed
    }

    /// Exit code 0 and no timeout.
    #[getter]
    fn success(&self) -> bool {
        self.inner.success()
    }

    fn __repr__(&self) -> String {
        format!(
            "ExitStatus(exit_code={}, timed_out={}{})",
            self.inner.code,
            py_bool(self.inner.timed_out),
            flags(self.inner.oom_killed, self.inner.kill_failed)
        )
    }
}

/// A piece of output as it arrived: `.stream` is "stdout" or "stderr", `.data` the bytes.
#[pyclass(module = "headjack", frozen)]
pub(crate) struct Chunk {
    stream: &'static str,
    data: Bytes,
}

impl From<headjack::exec::Chunk> for Chunk {
    fn from(c: headjack::exec::Chunk) -> Self {
        let stream = match c.stream {
            headjack::exec::StreamKind::Stdout => "stdout",
            headjack::exec::StreamKind::Stderr => "stderr",
        };
        Chunk {
            stream,
            data: c.data,
        }
    }
}

#[pymethods]
impl Chunk {
    /// "stdout" or "stderr".
    #[getter]
    fn stream(&self) -> &'static str {
        self.stream
    }

    /// The bytes.
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.data)
    }

    fn __repr__(&self) -> String {
        format!(
            "Chunk(stream={:?}, data={} bytes)",
            self.stream,
            self.data.len()
        )
    }
}

/// The next chunk of an async stream: a `Chunk`, or `StopAsyncIteration` at the end.
pub(crate) struct NextChunk(pub(crate) Option<Chunk>);

impl<'py> IntoPyObject<'py> for NextChunk {
    type Target = Chunk;
    type Output = Bound<'py, Chunk>;
    type Error = PyErr;
    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, Chunk>> {
        match self.0 {
            Some(c) => Bound::new(py, c),
            None => Err(pyo3::exceptions::PyStopAsyncIteration::new_err(())),
        }
    }
}

/// A sample of an instance's resource use, as Python sees it: a dict of counters (None where
/// the engine does not tell).
pub(crate) type StatsDict = HashMap<&'static str, Option<u64>>;

/// The dict `Instance.stats()` and the stats streams give for a core sample.
pub(crate) fn stats_dict(s: headjack::instance::Stats) -> StatsDict {
    HashMap::from([
        ("cpu_time_ns", Some(s.cpu_time.as_nanos() as u64)),
        ("memory_bytes", Some(s.memory_bytes)),
        ("memory_peak_bytes", s.memory_peak_bytes),
        ("memory_limit_bytes", s.memory_limit_bytes),
        ("pids", Some(s.pids)),
        ("net_rx_bytes", Some(s.net_rx_bytes)),
        ("net_tx_bytes", Some(s.net_tx_bytes)),
        ("block_read_bytes", Some(s.block_read_bytes)),
        ("block_write_bytes", Some(s.block_write_bytes)),
    ])
}

/// File contents going back to Python as `bytes`.
pub(crate) struct BytesOut(pub(crate) Vec<u8>);

impl<'py> IntoPyObject<'py> for BytesOut {
    type Target = PyBytes;
    type Output = Bound<'py, PyBytes>;
    type Error = std::convert::Infallible;
    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        Ok(PyBytes::new(py, &self.0))
    }
}

/// What `list` and `inspect` report about an instance.
#[pyclass(module = "headjack", frozen, get_all)]
pub(crate) struct InstanceInfo {
    /// headjack's instance ID (label io.headjack.instance).
    id: String,
    /// The engine's container ID.
    container_id: String,
    /// The container name.
    name: String,
    /// The base as it was asked for.
    base: String,
    /// The image the container runs.
    image: String,
    /// Its state: created, running, paused, restarting, exited, removing, dead (or another engine word).
    status: String,
    /// The keep-alive process's exit code when the status is "exited".
    exit_code: Option<i64>,
    /// host/pid/start-time of the process that spawned it.
    owner: String,
    /// Unix seconds after which sweep may remove it.
    expires: Option<u64>,
    /// All labels of the container.
    labels: HashMap<String, String>,
    /// The memory limit killed the container's main process (inspect only; list says False).
    oom_killed: bool,
    /// Why the container stopped: "killed: out of memory", "killed by signal N", "exited with
    /// code N" (or "dead ..."); None while it has not stopped.
    exit_reason: Option<String>,
}

impl From<headjack::instance::InstanceInfo> for InstanceInfo {
    fn from(i: headjack::instance::InstanceInfo) -> Self {
        let exit_code = match i.status {
            headjack::Status::Exited(c) => Some(c),
            _ => None,
        };
        let exit_reason = i.exit_reason();
        InstanceInfo {
            exit_reason,
            id: i.id,
            container_id: i.container_id,
            name: i.name,
            base: i.base,
            image: i.image,
            status: i.status.as_str().to_owned(),
            exit_code,
            owner: i.owner,
            expires: i.expires,
            labels: i.labels,
            oom_killed: i.oom_killed,
        }
    }
}

#[pymethods]
impl InstanceInfo {
    fn __repr__(&self) -> String {
        format!(
            "InstanceInfo(id={:?}, name={:?}, image={:?}, status={:?})",
            self.id, self.name, self.image, self.status
        )
    }
}

/// A named volume headjack created (`Client.volumes()`).
#[pyclass(module = "headjack", frozen, get_all)]
pub(crate) struct VolumeInfo {
    /// The engine's volume name.
    name: String,
    /// The volume driver ("local").
    driver: String,
    /// Where the engine keeps it on its host.
    mountpoint: String,
    /// When the engine created it (RFC 3339, as the engine reports it).
    created_at: String,
    /// Unix seconds after which sweep may remove it (when no container uses it); None: never.
    expires: Option<u64>,
    /// All its labels.
    labels: HashMap<String, String>,
}

impl From<headjack::volume::VolumeInfo> for VolumeInfo {
    fn from(v: headjack::volume::VolumeInfo) -> Self {
        VolumeInfo {
            name: v.name,
            driver: v.driver,
            mountpoint: v.mountpoint,
            created_at: v.created_at,
            expires: v.expires,
            labels: v.labels,
        }
    }
}

#[pymethods]
impl VolumeInfo {
    fn __repr__(&self) -> String {
        format!(
            "VolumeInfo(name={:?}, created_at={:?}, expires={})",
            self.name,
            self.created_at,
            self.expires.map_or("None".to_string(), |e| e.to_string())
        )
    }
}

/// The connected engine.
#[pyclass(module = "headjack", frozen, get_all)]
pub(crate) struct EngineInfo {
    /// "docker" or "podman".
    kind: String,
    /// The engine's own version.
    version: String,
    /// The negotiated API version.
    api_version: String,
    /// Where the engine was reached.
    host: String,
    /// The engine's operating system.
    os: String,
    /// The engine's architecture.
    arch: String,
}

impl From<&headjack::client::EngineInfo> for EngineInfo {
    fn from(i: &headjack::client::EngineInfo) -> Self {
        EngineInfo {
            kind: match i.kind {
                headjack::client::EngineKind::Docker => "docker".into(),
                headjack::client::EngineKind::Podman => "podman".into(),
                other => format!("{other:?}").to_lowercase(),
            },
            version: i.version.clone(),
            api_version: i.api_version.clone(),
            host: i.host.clone(),
            os: i.os.clone(),
            arch: i.arch.clone(),
        }
    }
}

#[pymethods]
impl EngineInfo {
    fn __repr__(&self) -> String {
        format!(
            "EngineInfo(kind={:?}, version={:?}, api_version={:?}, host={:?})",
            self.kind, self.version, self.api_version, self.host
        )
    }
}

/// A headjack-built image, as `images()` lists it.
#[pyclass(module = "headjack", frozen, get_all)]
pub(crate) struct BuiltImage {
    /// The tag, localhost/headjack/<slug>:<key16>.
    reference: String,
    /// The engine's image ID.
    id: String,
    /// The full cache key.
    key: String,
    /// The Dockerfile it was built from.
    source: String,
    /// When it was built (unix seconds).
    created: i64,
    /// When a resolve last used it from this machine (unix seconds), if recorded.
    last_used: Option<i64>,
    /// Size in bytes.
    size: i64,
}

impl From<headjack::client::BuiltImage> for BuiltImage {
    fn from(b: headjack::client::BuiltImage) -> Self {
        BuiltImage {
            reference: b.reference,
            id: b.id,
            key: b.key,
            source: b.source,
            created: b.created,
            last_used: b.last_used,
            size: b.size,
        }
    }
}

#[pymethods]
impl BuiltImage {
    fn __repr__(&self) -> String {
        format!(
            "BuiltImage(reference={:?}, source={:?})",
            self.reference, self.source
        )
    }
}

/// An image resolved from a base.
#[pyclass(module = "headjack", frozen, get_all)]
pub(crate) struct ResolvedImage {
    /// The fully qualified reference.
    reference: String,
    /// The engine's image ID.
    id: String,
    /// Whether a build ran (False on a cache hit and for registry images).
    built: bool,
    /// What the base asked for and a spawn would not apply (a devcontainer.json's
    /// unsupported keys); empty for other bases.
    warnings: Vec<String>,
}

impl From<headjack::client::ResolvedImage> for ResolvedImage {
    fn from(r: headjack::client::ResolvedImage) -> Self {
        ResolvedImage {
            reference: r.reference,
            id: r.id,
            built: r.built,
            warnings: r.warnings,
        }
    }
}

#[pymethods]
impl ResolvedImage {
    fn __repr__(&self) -> String {
        format!(
            "ResolvedImage(reference={:?}, built={})",
            self.reference,
            py_bool(self.built)
        )
    }
}

/// One decision of an instance's egress proxy (`Instance.egress_log()`).
#[pyclass(module = "headjack", frozen, get_all)]
pub(crate) struct EgressDecision {
    /// Increasing number of this entry.
    seq: u64,
    /// When (RFC 3339, UTC).
    time: String,
    /// How the destination was asked for: "http", "connect" (HTTPS or other TCP) or "dns".
    via: String,
    /// The host asked for (a name or an address).
    host: String,
    /// The port (None for DNS).
    port: Option<u16>,
    /// Whether it was let through.
    allowed: bool,
    /// Why (the pattern that matched, or that none did).
    reason: String,
    /// How many identical decisions within 2 s this entry stands for.
    count: u64,
}

impl From<headjack::EgressDecision> for EgressDecision {
    fn from(d: headjack::EgressDecision) -> Self {
        EgressDecision {
            seq: d.seq,
            time: d.time,
            via: d.via,
            host: d.host,
            port: d.port,
            allowed: d.allowed,
            reason: d.reason,
            count: d.count,
        }
    }
}

#[pymethods]
impl EgressDecision {
    fn __repr__(&self) -> String {
        format!(
            "EgressDecision(via={:?}, host={:?}, port={}, allowed={}, reason={:?})",
            self.via,
            self.host,
            self.port.map_or("None".to_string(), |p| p.to_string()),
            py_bool(self.allowed),
            self.reason
        )
    }
}
