//! The panic boundary: no panic may unwind into C. Every exported function runs its body in
//! [`ffi_panic_boundary!`] (infallible functions, whose return type says what a panic yields) or
//! in `error::fallible` (functions returning a `headjack_status`, where a panic becomes
//! `HEADJACK_PANIC` and an error object).

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::status::headjack_status;

/// What an exported function returns when its body panicked, by return type.
pub(crate) trait PanicDefault {
    /// The value returned after a panic.
    fn panic_default() -> Self;
}

impl PanicDefault for () {
    fn panic_default() {}
}

impl PanicDefault for headjack_status {
    fn panic_default() -> Self {
        headjack_status::HEADJACK_PANIC
    }
}

impl PanicDefault for bool {
    fn panic_default() -> Self {
        false
    }
}

impl PanicDefault for usize {
    fn panic_default() -> Self {
        0
    }
}

impl PanicDefault for u64 {
    fn panic_default() -> Self {
        0
    }
}

impl<T> PanicDefault for *const T {
    fn panic_default() -> Self {
        std::ptr::null()
    }
}

impl<T> PanicDefault for *mut T {
    fn panic_default() -> Self {
        std::ptr::null_mut()
    }
}

/// Runs `body`, turning a panic into the panic's message (for the error a fallible call
/// returns).
pub(crate) fn catch<R>(body: impl FnOnce() -> R) -> Result<R, String> {
    catch_unwind(AssertUnwindSafe(body)).map_err(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        format!("headjack panicked (a bug; please report it): {what}")
    })
}

/// The body of an infallible exported function: a panic returns the
/// [`PanicDefault`] of the function's return type (NULL, 0, nothing) instead of unwinding into
/// C.
macro_rules! ffi_panic_boundary {
    ($($body:tt)*) => {
        match $crate::boundary::catch(|| { $($body)* }) {
            Ok(value) => value,
            Err(_) => $crate::boundary::PanicDefault::panic_default(),
        }
    };
}

pub(crate) use ffi_panic_boundary;

#[cfg(test)]
mod tests {
    use super::*;

    fn null_on_panic() -> *const u8 {
        ffi_panic_boundary! { panic!("deliberate") }
    }

    fn status_on_panic() -> headjack_status {
        ffi_panic_boundary! { panic!("deliberate") }
    }

    #[test]
    fn a_panic_yields_the_default_of_the_return_type() {
        assert!(null_on_panic().is_null());
        assert_eq!(status_on_panic(), headjack_status::HEADJACK_PANIC);
        let n: usize = ffi_panic_boundary! { 7 };
        assert_eq!(n, 7);
        let e = catch(|| panic!("with {}", "a message")).unwrap_err();
        assert!(e.contains("with a message") && e.contains("bug"), "{e}");
    }
}
