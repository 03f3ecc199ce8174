//! Running core futures for C: on the calling thread, driven by the core's one process-wide
//! runtime (`headjack::blocking`), so that callbacks run on the thread that called headjack.

use std::future::Future;

use headjack_core::blocking;

use crate::status::Failure;

/// Runs `fut` to completion on this thread. `HEADJACK_FORKED` in a forked child,
/// `HEADJACK_CONFLICT` from inside a headjack callback.
pub(crate) fn block_on<F: Future>(fut: F) -> Result<F::Output, Failure> {
    blocking::block_on(fut).map_err(Failure::from)
}

/// Runs cleanup `fut` to completion for a `_free` function, which cannot fail: on this thread,
/// or on a helper thread when this thread is already inside headjack (a `_free` called from a
/// callback). Does nothing in a forked child.
pub(crate) fn finish<F>(fut: F)
where
    F: Future + Send,
{
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| {
            s.spawn(|| {
                let _ = blocking::block_on(fut);
            });
        });
    } else {
        let _ = blocking::block_on(fut);
    }
}
