//! `headjack_pool`: instances spawned ahead of time from one spec, handed out at once.

use headjack_core::Pool;

use crate::blocking::block_on;
use crate::boundary::ffi_panic_boundary;
use crate::client::{client_ref, headjack_client};
use crate::error::{fallible, headjack_error};
use crate::handle::{Castable, OwnershipBox, box_out, free_box, out_ref, try_ref};
use crate::instance::{headjack_instance, instance_out};
use crate::spec::{headjack_spec, spec_ref};
use crate::status::headjack_status;

/// A pool of ready instances of one spec. Created by `headjack_pool_new`; hand instances out
/// with `headjack_pool_take`; freed by `headjack_pool_free`, which removes the instances still in
/// it (instances already taken belong to the caller).
///
/// After each take a replacement is spawned in the background, on headjack's own threads:
/// those refills never call the spec's progress callback (callbacks run only on the thread that
/// called headjack), and a failed refill is logged through `tracing` (the next take then
/// spawns on the caller's thread and reports its error).
///
/// Thread-safe: any number of threads may take at once. Not to be freed while another thread
/// uses it.
pub struct headjack_pool {
    _private: [u8; 0],
}

impl Castable for headjack_pool {
    type Ownership = OwnershipBox;
    type RustType = Pool;
    const ENGINE_STATE: bool = true;
}

/// Resolves the spec's base (pulling or building it when needed, with progress to the spec's
/// progress callback on this thread) and spawns `size` instances of it, concurrently; returns
/// once all are ready.
///
/// On success `*out` is a new pool the caller frees with `headjack_pool_free`. On failure `*out`
/// is untouched and nothing is left behind. `size` must be at least 1. The spec is copied: later
/// changes to it do not affect the pool.
///
/// Thread-safe. Blocks until the pool is full.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_pool_new(
    client: *const headjack_client,
    spec: *const headjack_spec,
    size: usize,
    out: *mut *mut headjack_pool,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let client = client_ref(client)?.client();
        let spec = spec_ref(spec)?;
        let out = out_ref(out, "out")?;
        let pool = spec
            .snapshot()
            .run(|s| async move { Pool::new(&client, s, size).await })?;
        *out = box_out::<headjack_pool>(pool);
        Ok(())
    })
}

/// A ready instance: from the pool when one is there (no engine round trip), else spawned now on
/// this thread. Either way a replacement is spawned in the background.
///
/// On success `*out` is a new instance the caller frees with `headjack_instance_free`, which
/// removes its container, as for `headjack_client_spawn`.
///
/// Thread-safe. Blocks only when the pool is empty.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_pool_take(
    pool: *const headjack_pool,
    out: *mut *mut headjack_instance,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let pool = try_ref(pool, "pool")?;
        let out = out_ref(out, "out")?;
        let instance = block_on(pool.take())??;
        *out = instance_out(instance);
        Ok(())
    })
}

/// How many instances are ready right now. 0 when `pool` is NULL.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_pool_ready(pool: *const headjack_pool) -> usize {
    ffi_panic_boundary! { try_ref(pool, "pool").map_or(0, |p| p.ready()) }
}

/// Frees a pool and removes the instances still in it (blocking until removed); instances spawned
/// by refills still in flight are removed when they come up. Instances already taken are not
/// touched. NULL is ignored.
///
/// In a `fork()`ed child of the process that created the pool, the containers are left alone
/// (they belong to the parent) and only the pool's memory is abandoned.
///
/// May be called from a callback. Not to be called twice, nor while another thread uses the
/// object.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_pool_free(pool: *mut headjack_pool) {
    ffi_panic_boundary! { free_box(pool) }
}
