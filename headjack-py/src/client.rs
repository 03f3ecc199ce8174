//! `Client` (sync) and `AsyncClient` (asyncio): an engine connection and the operations that
//! do not belong to one instance, written once (`client_methods!`).

use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use tokio::sync::OnceCell;

use crate::convert;
use crate::errors::Outcome;
use crate::face::{Asyncio, Blocking, Face};
use crate::fork::ParentOnly;
use crate::instance::{AsyncInstance, Instance, Slot};
use crate::options::{Request, request};
use crate::pool::{AsyncPool, Held, Pool};
use crate::types::{BuiltImage, EngineInfo, InstanceInfo, ResolvedImage, VolumeInfo};

/// Where to connect, and the connection once made (on first use).
pub(crate) struct Conn {
    host: Option<String>,
    timeout: Option<Duration>,
    client: OnceCell<headjack::Client>,
}

type SharedConn = Arc<ParentOnly<Conn>>;

impl Conn {
    fn shared(host: Option<String>, timeout: Option<Duration>) -> SharedConn {
        Arc::new(ParentOnly::new(Conn {
            host,
            timeout,
            client: OnceCell::new(),
        }))
    }

    /// The core client, connecting first if needed.
    async fn client(&self) -> Outcome<headjack::Client> {
        let connect = || async {
            let client = match &self.host {
                Some(h) => headjack::Client::connect_to(h).await?,
                None => headjack::Client::shared().await?.clone(),
            };
            Ok::<_, headjack::Error>(match self.timeout {
                Some(t) => client.with_timeout(t),
                None => client,
            })
        };
        Ok(self.client.get_or_try_init(connect).await?.clone())
    }

    fn repr(&self, kind: &str) -> String {
        match self.client.get() {
            Some(c) => format!("{kind}(host={:?})", c.info().host),
            None => format!("{kind}(not connected)"),
        }
    }
}

/// The arguments of both constructors.
fn conn_args(
    host: Option<&Bound<'_, PyAny>>,
    timeout: Option<&Bound<'_, PyAny>>,
) -> PyResult<SharedConn> {
    let host = convert::opt_string(host, "host")?;
    let timeout = convert::opt_seconds(timeout, "timeout")?;
    if timeout.is_some_and(|t| t.is_zero()) {
        return Err(PyValueError::new_err(
            "timeout must be a positive number of seconds (the bound on each engine call)",
        ));
    }
    Ok(Conn::shared(host, timeout))
}

/// Spawns on the default engine (sync); see `Client.spawn`.
#[pyfunction]
#[pyo3(signature = (base=None, **kwargs))]
pub(crate) fn spawn(
    py: Python<'_>,
    base: Option<&Bound<'_, PyAny>>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<Instance> {
    // Arguments are checked before connecting: bad input fails fast, even without an engine.
    let Request { spec, progress } = request("spawn", base, kwargs)?;
    Blocking::call(
        py,
        "spawn",
        async move {
            let client = headjack::Client::shared().await?;
            Ok(Instance::from(Slot::new(client.spawn(spec).await?)))
        },
        progress,
    )
}

/// A handle to an existing instance on the default engine (sync); see `Client.attach`.
#[pyfunction]
pub(crate) fn attach(py: Python<'_>, id_or_name: &Bound<'_, PyAny>) -> PyResult<Instance> {
    let id = convert::string(id_or_name, "id_or_name")?;
    Blocking::call(
        py,
        "attach",
        async move {
            let client = headjack::Client::shared().await?;
            Ok(Instance::from(Slot::new(client.attach(&id).await?)))
        },
        None,
    )
}

/// Every method of both client classes, for face `$face`, making `$instance`s and `$pool`s.
macro_rules! client_methods {
    ($cls:ident, $face:ty, $instance:ident, $pool:ident, { $($own:tt)* }) => {
        #[pymethods]
        impl $cls {
            /// Resolves the base (pull or build as needed), starts a container and waits until
            /// it is ready. Keyword arguments describe the instance (see SpawnOptions).
            #[pyo3(signature = (base=None, **kwargs))]
            fn spawn(
                &self,
                py: Python<'_>,
                base: Option<&Bound<'_, PyAny>>,
                kwargs: Option<&Bound<'_, PyDict>>,
            ) -> PyResult<<$face as Face>::Out<$instance>> {
                let Request { spec, progress } = request("spawn", base, kwargs)?;
                let conn = self.conn.clone();
                <$face>::call(py, concat!(stringify!($cls), ".spawn"), async move {
                    let inst = conn.client().await?.spawn(spec).await?;
                    Ok($instance::from(Slot::new(inst)))
                }, progress)
            }

            /// Spawns `size` instances of the spec ahead of time (1 to 1024); `take()` hands
            /// them out at once and a replacement is spawned in the background. Keyword
            /// arguments as for spawn().
            #[pyo3(
                signature = (base=None, *, size=None, **kwargs),
                text_signature = "($self, base=None, *, size=2, **kwargs)"
            )]
            fn pool(
                &self,
                py: Python<'_>,
                base: Option<&Bound<'_, PyAny>>,
                size: Option<&Bound<'_, PyAny>>,
                kwargs: Option<&Bound<'_, PyDict>>,
            ) -> PyResult<<$face as Face>::Out<$pool>> {
                let size = match size.filter(|s| !s.is_none()) {
                    Some(s) => convert::size(s, "size")?,
                    None => 2,
                };
                let Request { spec, progress } = request("pool", base, kwargs)?;
                let conn = self.conn.clone();
                <$face>::call(py, concat!(stringify!($cls), ".pool"), async move {
                    let client = conn.client().await?;
                    Ok($pool::from(Held::new(headjack::Pool::new(&client, spec, size).await?)))
                }, progress)
            }

            /// Resolves a base to a local image without starting anything (pulls or builds as
            /// needed).
            #[pyo3(signature = (base=None, **kwargs))]
            fn resolve(
                &self,
                py: Python<'_>,
                base: Option<&Bound<'_, PyAny>>,
                kwargs: Option<&Bound<'_, PyDict>>,
            ) -> PyResult<<$face as Face>::Out<ResolvedImage>> {
                let Request { spec, progress } = request("resolve", base, kwargs)?;
                let conn = self.conn.clone();
                <$face>::call(py, concat!(stringify!($cls), ".resolve"), async move {
                    Ok(ResolvedImage::from(conn.client().await?.resolve(&spec).await?))
                }, progress)
            }

            /// Every headjack instance on this engine (any owner).
            fn list(&self, py: Python<'_>) -> PyResult<<$face as Face>::Out<Vec<InstanceInfo>>> {
                let conn = self.conn.clone();
                <$face>::call(py, concat!(stringify!($cls), ".list"), async move {
                    let all = conn.client().await?.list().await?;
                    Ok(all.into_iter().map(InstanceInfo::from).collect::<Vec<_>>())
                }, None)
            }

            /// A handle to an existing instance by headjack ID, container name or container
            /// ID. It is kept when closed (this handle did not create it); call remove() to
            /// remove it.
            fn attach(
                &self,
                py: Python<'_>,
                id_or_name: &Bound<'_, PyAny>,
            ) -> PyResult<<$face as Face>::Out<$instance>> {
                let id = convert::string(id_or_name, "id_or_name")?;
                let conn = self.conn.clone();
                <$face>::call(py, concat!(stringify!($cls), ".attach"), async move {
                    Ok($instance::from(Slot::new(conn.client().await?.attach(&id).await?)))
                }, None)
            }

            /// Removes instances whose owner process is gone, or whose expiry passed; returns
            /// their IDs.
            fn sweep(&self, py: Python<'_>) -> PyResult<<$face as Face>::Out<Vec<String>>> {
                let conn = self.conn.clone();
                <$face>::call(py, concat!(stringify!($cls), ".sweep"), async move {
                    Ok(conn.client().await?.sweep().await?)
                }, None)
            }

            /// Every image headjack built on this engine, most recently used first.
            fn images(&self, py: Python<'_>) -> PyResult<<$face as Face>::Out<Vec<BuiltImage>>> {
                let conn = self.conn.clone();
                <$face>::call(py, concat!(stringify!($cls), ".images"), async move {
                    let all = conn.client().await?.images().await?;
                    Ok(all.into_iter().map(BuiltImage::from).collect::<Vec<_>>())
                }, None)
            }

            /// Removes all but the `keep_last` most recently used headjack-built images;
            /// returns the references removed.
            fn prune_images(
                &self,
                py: Python<'_>,
                keep_last: &Bound<'_, PyAny>,
            ) -> PyResult<<$face as Face>::Out<Vec<String>>> {
                let n = convert::size(keep_last, "keep_last")?;
                let conn = self.conn.clone();
                <$face>::call(py, concat!(stringify!($cls), ".prune_images"), async move {
                    Ok(conn.client().await?.prune_images(n).await?)
                }, None)
            }

            /// Removes a local image (a snapshot from commit(), a built base, ...) by reference
            /// or ID. An image that does not exist counts as removed; one in use by a container
            /// raises ConflictError unless `force`.
            #[pyo3(signature = (reference, *, force=None))]
            fn remove_image(
                &self,
                py: Python<'_>,
                reference: &Bound<'_, PyAny>,
                force: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<<$face as Face>::Out<()>> {
                let reference = convert::string(reference, "reference")?;
                let force = convert::opt_bool(force, "force")?;
                let conn = self.conn.clone();
                <$face>::call(py, concat!(stringify!($cls), ".remove_image"), async move {
                    Ok(conn.client().await?.remove_image(&reference, force).await?)
                }, None)
            }

            /// The named volumes headjack created on this engine (by a spawn's `volumes=` or
            /// create_volume()), by name.
            fn volumes(&self, py: Python<'_>) -> PyResult<<$face as Face>::Out<Vec<VolumeInfo>>> {
                let conn = self.conn.clone();
                <$face>::call(py, concat!(stringify!($cls), ".volumes"), async move {
                    let all = conn.client().await?.volumes().await?;
                    Ok(all.into_iter().map(VolumeInfo::from).collect::<Vec<_>>())
                }, None)
            }

            /// Creates named volume `name` (labelled as headjack's) unless it exists, and
            /// returns it; with `expires_after` (seconds), sweep() removes it once that time has
            /// passed and no container uses it. An existing volume is returned as it is.
            #[pyo3(signature = (name, *, expires_after=None))]
            fn create_volume(
                &self,
                py: Python<'_>,
                name: &Bound<'_, PyAny>,
                expires_after: Option<&Bound<'_, PyAny>>,
            ) -> PyResult<<$face as Face>::Out<VolumeInfo>> {
                let name = convert::string(name, "name")?;
                let life = convert::opt_seconds(expires_after, "expires_after")?;
                let conn = self.conn.clone();
                <$face>::call(py, concat!(stringify!($cls), ".create_volume"), async move {
                    Ok(VolumeInfo::from(conn.client().await?.create_volume(&name, life).await?))
                }, None)
            }

            /// Removes named volume `name` and its data. One that does not exist counts as
            /// removed; one headjack did not create is refused (InvalidArgumentError), and one an
            /// instance mounts raises ConflictError.
            fn remove_volume(
                &self,
                py: Python<'_>,
                name: &Bound<'_, PyAny>,
            ) -> PyResult<<$face as Face>::Out<()>> {
                let name = convert::string(name, "name")?;
                let conn = self.conn.clone();
                <$face>::call(py, concat!(stringify!($cls), ".remove_volume"), async move {
                    Ok(conn.client().await?.remove_volume(&name).await?)
                }, None)
            }

            /// Restores stopped instance `id_or_name` from its checkpoint `name`
            /// (Instance.checkpoint): its processes continue from where they were. The handle
            /// is kept when closed, as from attach(). UnsupportedError where the engine cannot;
            /// ConflictError while the instance runs.
            fn restore(
                &self,
                py: Python<'_>,
                id_or_name: &Bound<'_, PyAny>,
                name: &Bound<'_, PyAny>,
            ) -> PyResult<<$face as Face>::Out<$instance>> {
                let id = convert::string(id_or_name, "id_or_name")?;
                let name = convert::string(name, "name")?;
                let conn = self.conn.clone();
                <$face>::call(py, concat!(stringify!($cls), ".restore"), async move {
                    Ok($instance::from(Slot::new(conn.client().await?.restore(&id, &name).await?)))
                }, None)
            }

            /// Which engine this is, its version and the negotiated API version.
            fn info(&self, py: Python<'_>) -> PyResult<<$face as Face>::Out<EngineInfo>> {
                let conn = self.conn.clone();
                <$face>::call(py, concat!(stringify!($cls), ".info"), async move {
                    Ok(EngineInfo::from(conn.client().await?.info()))
                }, None)
            }

            /// Does nothing (the connection needs no cleanup); present so that the client can
            /// be closed like the rest.
            fn close(&self, py: Python<'_>) -> PyResult<<$face as Face>::Out<()>> {
                <$face>::ready(py, concat!(stringify!($cls), ".close"), ())
            }

            fn __repr__(&self) -> String {
                self.conn.repr(stringify!($cls))
            }

            $($own)*
        }
    };
}

/// A connection to a container engine (sync API). `Client()` connects to the first engine
/// that answers (DOCKER_HOST, the Docker sockets, then Podman's); `Client(host)` to that one.
/// `timeout` bounds each engine call, in seconds (default 60): an engine that does not answer
/// gives HeadjackTimeoutError instead of a hang.
#[pyclass(module = "headjack", frozen)]
pub(crate) struct Client {
    conn: SharedConn,
}

client_methods!(Client, Blocking, Instance, Pool, {
    #[new]
    #[pyo3(signature = (host=None, *, timeout=None))]
    fn new(
        py: Python<'_>,
        host: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let conn = conn_args(host, timeout)?;
        let connecting = conn.clone();
        Blocking::call(
            py,
            "Client",
            async move { connecting.client().await.map(|_| ()) },
            None,
        )?;
        Ok(Client { conn })
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, _exc: &Bound<'_, PyTuple>) -> bool {
        false
    }
});

/// A connection to a container engine (asyncio API): every operation returns a coroutine.
/// Connects on first use (or in `async with`, or `await client.connect()`). `timeout` bounds
/// each engine call, in seconds (default 60).
#[pyclass(module = "headjack", frozen)]
pub(crate) struct AsyncClient {
    conn: SharedConn,
}

client_methods!(AsyncClient, Asyncio, AsyncInstance, AsyncPool, {
    #[new]
    #[pyo3(signature = (host=None, *, timeout=None))]
    fn new(host: Option<&Bound<'_, PyAny>>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Ok(AsyncClient {
            conn: conn_args(host, timeout)?,
        })
    }

    /// Connects now (otherwise the first operation does); resolves to this client.
    fn connect(slf: PyRef<'_, Self>, py: Python<'_>) -> PyResult<crate::aio::Coroutine> {
        let conn = slf.conn.clone();
        let me: Py<Self> = slf.into();
        Asyncio::call(
            py,
            "AsyncClient.connect",
            async move {
                conn.client().await?;
                Ok(me)
            },
            None,
        )
    }

    fn __aenter__(slf: PyRef<'_, Self>, py: Python<'_>) -> PyResult<crate::aio::Coroutine> {
        Self::connect(slf, py)
    }

    #[pyo3(signature = (*_exc))]
    fn __aexit__(
        &self,
        py: Python<'_>,
        _exc: &Bound<'_, PyTuple>,
    ) -> PyResult<crate::aio::Coroutine> {
        Asyncio::ready(py, "AsyncClient.__aexit__", false)
    }
});
