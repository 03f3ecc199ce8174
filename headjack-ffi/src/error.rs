//! Error objects (`headjack_error`), and `fallible`, the boundary every function that returns a
//! `headjack_status` runs its body in.

use std::ffi::{CString, c_char};
use std::ptr;

use crate::args::cstring;
use crate::boundary::{catch, ffi_panic_boundary};
use crate::handle::{Castable, OwnershipBox, box_out, free_box, try_ref};
use crate::status::{Failure, headjack_status};

/// An error: a code and a message saying what was asked, what happened and what to do.
///
/// Created by a failing call in its `headjack_error **err` out-parameter; owned by the caller,
/// who frees it with `headjack_error_free`. Immutable, so it may be read from any thread.
pub struct headjack_error {
    _private: [u8; 0],
}

impl Castable for headjack_error {
    type Ownership = OwnershipBox;
    type RustType = ErrorDetails;
}

/// What a `headjack_error` holds.
pub(crate) struct ErrorDetails {
    status: headjack_status,
    message: CString,
    build_step: Option<CString>,
    build_log: Option<CString>,
}

impl From<Failure> for ErrorDetails {
    fn from(f: Failure) -> ErrorDetails {
        ErrorDetails {
            status: f.status,
            message: cstring(&f.message),
            build_step: f.build_step.as_deref().map(cstring),
            build_log: (!f.build_log.is_empty()).then(|| cstring(&f.build_log.join("\n"))),
        }
    }
}

/// Runs the body of a fallible exported function: clears `*err`, catches panics, and turns a
/// failure into its status and a new `headjack_error` in `*err` (when `err` is not NULL).
pub(crate) fn fallible(
    err: *mut *mut headjack_error,
    body: impl FnOnce() -> Result<(), Failure>,
) -> headjack_status {
    // SAFETY: the caller passes NULL or a pointer to writable storage for one pointer.
    let slot = unsafe { err.as_mut() };
    let failure = match catch(body) {
        Ok(Ok(())) => {
            if let Some(slot) = slot {
                *slot = ptr::null_mut();
            }
            return headjack_status::HEADJACK_OK;
        }
        Ok(Err(f)) => f,
        Err(panic) => Failure::new(headjack_status::HEADJACK_PANIC, panic),
    };
    let status = failure.status;
    if let Some(slot) = slot {
        *slot = box_out::<headjack_error>(ErrorDetails::from(failure));
    }
    status
}

fn details<'a>(err: *const headjack_error) -> Option<&'a ErrorDetails> {
    try_ref(err, "err").ok()
}

/// The code of `err`. `HEADJACK_INVALID_ARGUMENT` when `err` is NULL.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_error_code(err: *const headjack_error) -> headjack_status {
    ffi_panic_boundary! {
        details(err).map_or(headjack_status::HEADJACK_INVALID_ARGUMENT, |e| e.status)
    }
}

/// The message of `err`: NUL-terminated UTF-8, owned by `err` and valid until
/// `headjack_error_free(err)`. NULL when `err` is NULL.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_error_message(err: *const headjack_error) -> *const c_char {
    ffi_panic_boundary! {
        details(err).map_or(ptr::null(), |e| e.message.as_ptr())
    }
}

/// For a `HEADJACK_BUILD_FAILED` error: the Dockerfile step that failed (e.g. `RUN make`), owned
/// by `err`. NULL when unknown, for other errors, or when `err` is NULL.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_error_build_step(err: *const headjack_error) -> *const c_char {
    ffi_panic_boundary! {
        details(err)
            .and_then(|e| e.build_step.as_ref())
            .map_or(ptr::null(), |s| s.as_ptr())
    }
}

/// For a `HEADJACK_BUILD_FAILED` error: the last lines of build output, joined with `\n`, owned
/// by `err`. NULL when there are none, for other errors, or when `err` is NULL.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_error_build_log(err: *const headjack_error) -> *const c_char {
    ffi_panic_boundary! {
        details(err)
            .and_then(|e| e.build_log.as_ref())
            .map_or(ptr::null(), |s| s.as_ptr())
    }
}

/// Frees an error and the strings it owns. NULL is ignored.
///
/// Not to be called twice on the same error, nor while another thread reads it.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_error_free(err: *mut headjack_error) {
    ffi_panic_boundary! { free_box(err) }
}

/// A short stable name for a status code, e.g. `"not_found"`; `"unknown"` for a code this
/// version does not know. The string is static: never free it.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_status_name(status: u32) -> *const c_char {
    ffi_panic_boundary! {
        headjack_status::ALL
            .iter()
            .find(|s| **s as u32 == status)
            .map_or(c"unknown".as_ptr(), |s| s.name().as_ptr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use headjack_core::ErrorKind;
    use std::ffi::CStr;

    fn message(err: *const headjack_error) -> String {
        // SAFETY: a live error's message.
        unsafe { CStr::from_ptr(headjack_error_message(err)) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn panics_become_a_status_and_an_error() {
        let mut err: *mut headjack_error = ptr::null_mut();
        let status = fallible(&mut err, || panic!("deliberate"));
        assert_eq!(status, headjack_status::HEADJACK_PANIC);
        assert_eq!(headjack_error_code(err), headjack_status::HEADJACK_PANIC);
        assert!(message(err).contains("deliberate"));
        headjack_error_free(err);
        assert_eq!(
            fallible(ptr::null_mut(), || panic!("no error out")),
            headjack_status::HEADJACK_PANIC
        );
    }

    #[test]
    fn success_clears_the_error_slot() {
        let mut err: *mut headjack_error = ptr::dangling_mut();
        assert_eq!(fallible(&mut err, || Ok(())), headjack_status::HEADJACK_OK);
        assert!(err.is_null());
    }

    #[test]
    fn build_failures_keep_their_details() {
        let core = headjack_core::Error::new(ErrorKind::BuildFailed, "step failed")
            .with_build_failure(headjack_core::error::BuildFailure {
                step: Some("RUN false".into()),
                log_tail: vec!["a".into(), "b".into()],
            });
        let mut err: *mut headjack_error = ptr::null_mut();
        let status = fallible(&mut err, || Err(core.into()));
        assert_eq!(status, headjack_status::HEADJACK_BUILD_FAILED);
        // SAFETY: live error strings.
        unsafe {
            assert_eq!(CStr::from_ptr(headjack_error_build_step(err)), c"RUN false");
            assert_eq!(CStr::from_ptr(headjack_error_build_log(err)), c"a\nb");
        }
        headjack_error_free(err);
    }
}
