//! Warm pools: instances spawned ahead of time from one spec, handed out at once.
//!
//! Creating and starting a container costs the engine 150–250 ms (most of it network and
//! runtime setup) however it is asked; a pool pays that before the caller needs the instance,
//! and refills in the background after each `take`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::instance::Instance;
use crate::spec::Spec;

/// A pool of ready instances of one [`Spec`].
///
/// ```no_run
/// # async fn f() -> headjack::Result<()> {
/// let client = headjack::Client::connect().await?;
/// let pool = headjack::Pool::new(&client, headjack::Spec::new().base("debian:bookworm-slim"), 4).await?;
/// let env = pool.take().await?; // ready now; a replacement is being spawned
/// # Ok(()) }
/// ```
///
/// Dropping the pool removes the instances still in it; instances already taken belong to the
/// caller like any spawned instance.
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    spec: Spec,
    size: usize,
    ready: Mutex<VecDeque<Instance>>,
    /// Spawns in flight, so refills never overshoot `size`.
    pending: Mutex<usize>,
}

impl Pool {
    /// The largest pool: each ready instance is a running container, and an engine on one
    /// machine runs a few hundred at most.
    pub const MAX_SIZE: usize = 1024;

    /// Spawns `size` instances of `spec` (concurrently) and keeps them ready. The base is
    /// resolved once, up front: a bad spec fails here, not on `take`.
    pub async fn new(client: &Client, spec: Spec, size: usize) -> Result<Pool> {
        if size == 0 || size > Pool::MAX_SIZE {
            return Err(Error::invalid_argument(format!(
                "a pool of {size} instances: the size must be between 1 and {}",
                Pool::MAX_SIZE
            )));
        }
        let inner = Arc::new(Inner {
            client: client.clone(),
            spec,
            size,
            ready: Mutex::new(VecDeque::new()),
            pending: Mutex::new(0),
        });
        let spawned = futures_util::future::join_all(
            (0..size).map(|_| inner.client.spawn(inner.spec.clone())),
        )
        .await;
        let mut ready = VecDeque::new();
        for s in spawned {
            ready.push_back(s?);
        }
        *inner.ready.lock().unwrap_or_else(|p| p.into_inner()) = ready;
        Ok(Pool { inner })
    }

    /// A ready instance: from the pool if one is there (instant), else freshly spawned. Either
    /// way a replacement is spawned in the background.
    pub async fn take(&self) -> Result<Instance> {
        let ready = self
            .inner
            .ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front();
        Inner::refill(&self.inner);
        match ready {
            Some(instance) => Ok(instance),
            None => self.inner.client.spawn(self.inner.spec.clone()).await,
        }
    }

    /// How many instances are ready right now.
    pub fn ready(&self) -> usize {
        self.inner
            .ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The ready instances go at once, concurrently, not one after the other.
        let ready: Vec<Instance> = self
            .ready
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        crate::instance::remove_all_on_drop(ready);
    }
}

impl Inner {
    /// Starts background spawns until ready + pending reaches the pool size.
    fn refill(this: &Arc<Inner>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let missing = {
            let ready = this.ready.lock().unwrap_or_else(|p| p.into_inner()).len();
            let mut pending = this.pending.lock().unwrap_or_else(|p| p.into_inner());
            let missing = this.size.saturating_sub(ready + *pending);
            *pending += missing;
            missing
        };
        for _ in 0..missing {
            // A weak handle: a pool dropped meanwhile is not kept alive by its refills, and the
            // instance spawned for it is dropped (removed) instead.
            let weak = Arc::downgrade(this);
            let (client, spec) = (this.client.clone(), this.spec.clone());
            rt.spawn(async move {
                let spawned = client.spawn(spec).await;
                let Some(pool) = weak.upgrade() else { return };
                *pool.pending.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
                match spawned {
                    Ok(instance) => pool
                        .ready
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push_back(instance),
                    Err(e) => tracing::warn!(error = %e, "refilling the pool failed"),
                }
            });
        }
    }
}
