//! `Client` (sync) and `AsyncClient` (asyncio): an engine connection and the operations that
//! do not belong to one instance.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::args;
use crate::errors::Outcome;
use crate::instance::{AsyncInstance, Instance, Slot};
use crate::pool::{AsyncPool, Pool};
use crate::runtime::{awaitable, block, is_forked_child};
use crate::types::{BuiltImage, EngineInfo, InstanceInfo, ResolvedImage};

async fn connect(host: Option<String>) -> Outcome<headjack::Client> {
    Ok(match host {
        Some(h) => headjack::Client::connect_to(&h).await?,
        None => headjack::Client::shared().await?.clone(),
    })
}

/// A connection to a container engine (sync API). `Client()` connects to the first engine
/// that answers (DOCKER_HOST, the Docker sockets, then Podman's); `Client(host)` to that one.
#[pyclass(module = "headjack", frozen)]
pub(crate) struct Client {
    inner: Option<headjack::Client>,
}

impl Drop for Client {
    fn drop(&mut self) {
        if is_forked_child()
            && let Some(c) = self.inner.take()
        {
            std::mem::forget(c);
        }
    }
}

impl Client {
    fn core(&self) -> headjack::Client {
        self.inner
            .clone()
            .expect("a Client always holds a connection")
    }

    /// Connects to the default engine, for the module-level `spawn`.
    pub(crate) fn shared(py: Python<'_>) -> PyResult<Client> {
        Ok(Client {
            inner: Some(block(py, connect(None))?),
        })
    }

    /// Spawns with this client (also used by the module-level `spawn`).
    pub(crate) fn do_spawn(
        &self,
        py: Python<'_>,
        base: Option<&Bound<'_, PyAny>>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Instance> {
        let spec = args::spec("spawn", base, kwargs)?;
        let c = self.core();
        let inst = block(py, async move { Ok(c.spawn(spec).await?) })?;
        Ok(Instance::new(Slot::new(inst)))
    }
}

#[pymethods]
impl Client {
    #[new]
    #[pyo3(signature = (host=None))]
    fn new(py: Python<'_>, host: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let host = args::opt_string(host, "host")?;
        Ok(Client {
            inner: Some(block(py, connect(host))?),
        })
    }

    /// Resolves the base (pull or build as needed), starts a container and waits until it is
    /// ready. Keyword arguments describe the instance (see the stubs / README).
    #[pyo3(signature = (base=None, **kwargs))]
    fn spawn(
        &self,
        py: Python<'_>,
        base: Option<&Bound<'_, PyAny>>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Instance> {
        self.do_spawn(py, base, kwargs)
    }

    /// Spawns `size` instances of the spec ahead of time; `Pool.take()` hands them out at once
    /// and a replacement is spawned in the background. Keyword arguments as for spawn().
    #[pyo3(signature = (base=None, *, size=2, **kwargs))]
    fn pool(
        &self,
        py: Python<'_>,
        base: Option<&Bound<'_, PyAny>>,
        size: usize,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Pool> {
        let spec = args::spec("pool", base, kwargs)?;
        let c = self.core();
        let pool = block(
            py,
            async move { Ok(headjack::Pool::new(&c, spec, size).await?) },
        )?;
        Ok(Pool::new(pool))
    }

    /// Resolves a base to a local image without starting anything (pulls or builds as needed).
    #[pyo3(signature = (base=None, **kwargs))]
    fn resolve(
        &self,
        py: Python<'_>,
        base: Option<&Bound<'_, PyAny>>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<ResolvedImage> {
        let spec = args::spec("resolve", base, kwargs)?;
        let c = self.core();
        block(py, async move {
            Ok(ResolvedImage::from(c.resolve(&spec).await?))
        })
    }

    /// Every headjack instance on this engine (any owner).
    fn list(&self, py: Python<'_>) -> PyResult<Vec<InstanceInfo>> {
        let c = self.core();
        block(py, async move {
            Ok(c.list()
                .await?
                .into_iter()
                .map(InstanceInfo::from)
                .collect())
        })
    }

    /// A handle to an existing instance by headjack ID, container name or container ID. It is
    /// kept when closed (this handle did not create it); call remove() to remove it.
    fn attach(&self, py: Python<'_>, id_or_name: &Bound<'_, PyAny>) -> PyResult<Instance> {
        let id = args::string(id_or_name, "id_or_name")?;
        let c = self.core();
        let inst = block(py, async move { Ok(c.attach(&id).await?) })?;
        Ok(Instance::new(Slot::new(inst)))
    }

    /// Removes instances whose owner process on this host is gone, or whose expiry passed;
    /// returns their IDs.
    fn sweep(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let c = self.core();
        block(py, async move { Ok(c.sweep().await?) })
    }

    /// Every image headjack built on this engine, most recently used first.
    fn images(&self, py: Python<'_>) -> PyResult<Vec<BuiltImage>> {
        let c = self.core();
        block(py, async move {
            Ok(c.images()
                .await?
                .into_iter()
                .map(BuiltImage::from)
                .collect())
        })
    }

    /// Removes all but the `keep_last` most recently used headjack-built images; returns the
    /// references removed.
    fn prune_images(&self, py: Python<'_>, keep_last: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
        let n = usize::try_from(args::count(keep_last, "keep_last")?).unwrap_or(usize::MAX);
        let c = self.core();
        block(py, async move { Ok(c.prune_images(n).await?) })
    }

    /// Removes a local image (a snapshot from commit(), a built base, ...) by reference or ID. An
    /// image that does not exist counts as removed; one in use by a container raises
    /// ConflictError unless `force`.
    #[pyo3(signature = (reference, *, force=None))]
    fn remove_image(
        &self,
        py: Python<'_>,
        reference: &Bound<'_, PyAny>,
        force: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let reference = args::string(reference, "reference")?;
        let force = args::opt_bool(force, "force")?;
        let c = self.core();
        block(
            py,
            async move { Ok(c.remove_image(&reference, force).await?) },
        )
    }

    /// Which engine this is, its version and the negotiated API version.
    fn info(&self) -> EngineInfo {
        EngineInfo::from(self.core().info())
    }

    /// Does nothing (the connection needs no cleanup); present so `with Client() as c:` works.
    fn close(&self) {}

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, PyTuple>) -> bool {
        false
    }

    fn __repr__(&self) -> String {
        format!("Client(host={:?})", self.core().info().host)
    }
}

/// A connection to a container engine (asyncio API): every operation returns an awaitable.
/// Connects on first use (or in `async with`).
#[pyclass(module = "headjack", frozen)]
pub(crate) struct AsyncClient {
    host: Option<String>,
    cell: Arc<tokio::sync::OnceCell<headjack::Client>>,
}

impl AsyncClient {
    fn client(&self) -> impl Future<Output = Outcome<headjack::Client>> + Send + 'static {
        let (cell, host) = (self.cell.clone(), self.host.clone());
        async move { Ok(cell.get_or_try_init(|| connect(host)).await?.clone()) }
    }
}

impl Drop for AsyncClient {
    fn drop(&mut self) {
        if is_forked_child() {
            let cell = std::mem::replace(&mut self.cell, Arc::new(tokio::sync::OnceCell::new()));
            std::mem::forget(cell);
        }
    }
}

#[pymethods]
impl AsyncClient {
    #[new]
    #[pyo3(signature = (host=None))]
    fn new(host: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Ok(AsyncClient {
            host: args::opt_string(host, "host")?,
            cell: Arc::new(tokio::sync::OnceCell::new()),
        })
    }

    /// Connects now (otherwise the first operation does); resolves to this client.
    fn connect<'py>(slf: PyRef<'py, Self>, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let fut = slf.client();
        let me: Py<Self> = slf.into();
        awaitable(py, async move {
            fut.await?;
            Ok(me)
        })
    }

    /// Resolves the base, starts a container and waits until it is ready; resolves to an
    /// AsyncInstance. Cancelling the awaiting task removes a container already created.
    #[pyo3(signature = (base=None, **kwargs))]
    fn spawn<'py>(
        &self,
        py: Python<'py>,
        base: Option<&Bound<'py, PyAny>>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let spec = args::spec("spawn", base, kwargs)?;
        let client = self.client();
        awaitable(py, async move {
            let inst = client.await?.spawn(spec).await?;
            Ok(AsyncInstance::new(Slot::new(inst)))
        })
    }

    /// Resolves to an AsyncPool of `size` instances spawned ahead of time; see Client.pool.
    #[pyo3(signature = (base=None, *, size=2, **kwargs))]
    fn pool<'py>(
        &self,
        py: Python<'py>,
        base: Option<&Bound<'py, PyAny>>,
        size: usize,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let spec = args::spec("pool", base, kwargs)?;
        let client = self.client();
        awaitable(py, async move {
            let pool = headjack::Pool::new(&client.await?, spec, size).await?;
            Ok(AsyncPool::new(pool))
        })
    }

    /// Resolves a base to a local image without starting anything.
    #[pyo3(signature = (base=None, **kwargs))]
    fn resolve<'py>(
        &self,
        py: Python<'py>,
        base: Option<&Bound<'py, PyAny>>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let spec = args::spec("resolve", base, kwargs)?;
        let client = self.client();
        awaitable(py, async move {
            Ok(ResolvedImage::from(client.await?.resolve(&spec).await?))
        })
    }

    /// Every headjack instance on this engine (any owner).
    fn list<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client();
        awaitable(py, async move {
            Ok(client
                .await?
                .list()
                .await?
                .into_iter()
                .map(InstanceInfo::from)
                .collect::<Vec<_>>())
        })
    }

    /// A handle to an existing instance (kept when closed; remove() removes it).
    fn attach<'py>(
        &self,
        py: Python<'py>,
        id_or_name: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let id = args::string(id_or_name, "id_or_name")?;
        let client = self.client();
        awaitable(py, async move {
            Ok(AsyncInstance::new(Slot::new(
                client.await?.attach(&id).await?,
            )))
        })
    }

    /// Removes orphaned or expired instances; resolves to their IDs.
    fn sweep<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client();
        awaitable(py, async move { Ok(client.await?.sweep().await?) })
    }

    /// Every image headjack built on this engine, most recently used first.
    fn images<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client();
        awaitable(py, async move {
            Ok(client
                .await?
                .images()
                .await?
                .into_iter()
                .map(BuiltImage::from)
                .collect::<Vec<_>>())
        })
    }

    /// Removes all but the `keep_last` most recently used headjack-built images.
    fn prune_images<'py>(
        &self,
        py: Python<'py>,
        keep_last: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let n = usize::try_from(args::count(keep_last, "keep_last")?).unwrap_or(usize::MAX);
        let client = self.client();
        awaitable(py, async move { Ok(client.await?.prune_images(n).await?) })
    }

    /// Removes a local image by reference or ID (see Client.remove_image).
    #[pyo3(signature = (reference, *, force=None))]
    fn remove_image<'py>(
        &self,
        py: Python<'py>,
        reference: &Bound<'py, PyAny>,
        force: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let reference = args::string(reference, "reference")?;
        let force = args::opt_bool(force, "force")?;
        let client = self.client();
        awaitable(py, async move {
            Ok(client.await?.remove_image(&reference, force).await?)
        })
    }

    /// Which engine this is (connects first if needed).
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let client = self.client();
        awaitable(
            py,
            async move { Ok(EngineInfo::from(client.await?.info())) },
        )
    }

    /// Does nothing (the connection needs no cleanup); resolves to None.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, async move { Ok(()) })
    }

    fn __aenter__<'py>(slf: PyRef<'py, Self>, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Self::connect(slf, py)
    }

    #[pyo3(signature = (*_exc))]
    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        _exc: &Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, async move { Ok(false) })
    }

    fn __repr__(&self) -> String {
        match self.cell.get() {
            Some(c) => format!("AsyncClient(host={:?})", c.info().host),
            None => "AsyncClient(not connected)".into(),
        }
    }
}
