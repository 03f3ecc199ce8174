//! Status codes and error objects.

use std::ffi::{CString, c_char};
use std::ptr;

use headjack_core::ErrorKind;

use crate::boundary::{cstring, guard_or};

/// The result of every fallible headjack call. `HEADJACK_OK` (0) is success; every other value
/// is a failure, and the call's `headjack_error **err` out-parameter (when not NULL) then holds
/// an error with the same code and a message.
///
/// The numbers are stable: codes 1 to 12 mirror the core's `ErrorKind`, codes from 100 on are
/// specific to the C ABI. New codes are only ever added; treat an unknown code as a failure.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum headjack_status {
    /// Success.
    HEADJACK_OK = 0,
    /// No container engine answered (no socket, refused, or not a Docker-compatible API).
    HEADJACK_ENGINE_UNAVAILABLE = 1,
    /// A base string could not be understood (bad image reference, missing Dockerfile, ...).
    HEADJACK_INVALID_BASE = 2,
    /// An image is not present locally and could not or may not be pulled.
    HEADJACK_IMAGE_NOT_FOUND = 3,
    /// A registry pull failed (network, authentication, unknown manifest).
    HEADJACK_PULL_FAILED = 4,
    /// A Dockerfile build failed; see `headjack_error_build_step` and `headjack_error_build_log`.
    HEADJACK_BUILD_FAILED = 5,
    /// A container, instance, exec or path does not exist, or the instance was removed.
    HEADJACK_NOT_FOUND = 6,
    /// The request conflicts with the current state (name in use, container not running, a
    /// headjack call made from inside a headjack callback, ...).
    HEADJACK_CONFLICT = 7,
    /// A deadline passed (readiness check, engine call).
    HEADJACK_TIMEOUT = 8,
    /// A command could not be run inside the container.
    HEADJACK_EXEC_FAILED = 9,
    /// A local I/O error (reading a build context, writing a copied file, ...).
    HEADJACK_IO = 10,
    /// An unusable argument: a NULL pointer, invalid UTF-8, an empty argv, a bad value.
    HEADJACK_INVALID_ARGUMENT = 11,
    /// A bug, or an engine answer headjack does not understand.
    HEADJACK_INTERNAL = 12,
    /// headjack panicked; the call had no effect that can be relied on. Please report it.
    HEADJACK_PANIC = 100,
    /// This process is a `fork()` of the process that first used headjack; headjack cannot be
    /// used in it (use it in the parent only, or in the child only after `exec()`).
    HEADJACK_FORKED = 101,
}

impl headjack_status {
    /// The code for a core error kind (unknown future kinds map to `HEADJACK_INTERNAL` until
    /// this crate learns them).
    pub(crate) fn from_kind(kind: ErrorKind) -> headjack_status {
        use headjack_status::*;
        match kind {
            ErrorKind::EngineUnavailable => HEADJACK_ENGINE_UNAVAILABLE,
            ErrorKind::InvalidBase => HEADJACK_INVALID_BASE,
            ErrorKind::ImageNotFound => HEADJACK_IMAGE_NOT_FOUND,
            ErrorKind::PullFailed => HEADJACK_PULL_FAILED,
            ErrorKind::BuildFailed => HEADJACK_BUILD_FAILED,
            ErrorKind::NotFound => HEADJACK_NOT_FOUND,
            ErrorKind::Conflict => HEADJACK_CONFLICT,
            ErrorKind::Timeout => HEADJACK_TIMEOUT,
            ErrorKind::ExecFailed => HEADJACK_EXEC_FAILED,
            ErrorKind::Io => HEADJACK_IO,
            ErrorKind::InvalidArgument => HEADJACK_INVALID_ARGUMENT,
            ErrorKind::Internal => HEADJACK_INTERNAL,
            _ => HEADJACK_INTERNAL,
        }
    }

    fn name(self) -> &'static std::ffi::CStr {
        use headjack_status::*;
        match self {
            HEADJACK_OK => c"ok",
            HEADJACK_ENGINE_UNAVAILABLE => c"engine_unavailable",
            HEADJACK_INVALID_BASE => c"invalid_base",
            HEADJACK_IMAGE_NOT_FOUND => c"image_not_found",
            HEADJACK_PULL_FAILED => c"pull_failed",
            HEADJACK_BUILD_FAILED => c"build_failed",
            HEADJACK_NOT_FOUND => c"not_found",
            HEADJACK_CONFLICT => c"conflict",
            HEADJACK_TIMEOUT => c"timeout",
            HEADJACK_EXEC_FAILED => c"exec_failed",
            HEADJACK_IO => c"io",
            HEADJACK_INVALID_ARGUMENT => c"invalid_argument",
            HEADJACK_INTERNAL => c"internal",
            HEADJACK_PANIC => c"panic",
            HEADJACK_FORKED => c"forked",
        }
    }

    const ALL: [headjack_status; 15] = {
        use headjack_status::*;
        [
            HEADJACK_OK,
            HEADJACK_ENGINE_UNAVAILABLE,
            HEADJACK_INVALID_BASE,
            HEADJACK_IMAGE_NOT_FOUND,
            HEADJACK_PULL_FAILED,
            HEADJACK_BUILD_FAILED,
            HEADJACK_NOT_FOUND,
            HEADJACK_CONFLICT,
            HEADJACK_TIMEOUT,
            HEADJACK_EXEC_FAILED,
            HEADJACK_IO,
            HEADJACK_INVALID_ARGUMENT,
            HEADJACK_INTERNAL,
            HEADJACK_PANIC,
            HEADJACK_FORKED,
        ]
    };
}

/// A failure inside the crate, before it becomes a `headjack_error`.
#[derive(Debug)]
pub(crate) struct Failure {
    pub status: headjack_status,
    pub message: String,
    pub build_step: Option<String>,
    pub build_log: Vec<String>,
}

impl Failure {
    pub(crate) fn new(status: headjack_status, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
            build_step: None,
            build_log: Vec::new(),
        }
    }
}

impl From<headjack_core::Error> for Failure {
    fn from(e: headjack_core::Error) -> Failure {
        Failure {
            status: headjack_status::from_kind(e.kind()),
            message: e.message().to_string(),
            build_step: e.build_step().map(str::to_string),
            build_log: e.build_log().to_vec(),
        }
    }
}

/// An error: a code and a message saying what was asked, what happened and what to do.
///
/// Created by a failing call in its `headjack_error **err` out-parameter; owned by the caller,
/// who frees it with `headjack_error_free`. Immutable, so it may be read from any thread.
pub struct headjack_error {
    status: headjack_status,
    message: CString,
    build_step: Option<CString>,
    build_log: Option<CString>,
}

impl headjack_error {
    #[cfg(test)]
    pub(crate) fn message(&self) -> &str {
        self.message.to_str().unwrap_or_default()
    }
}

impl From<Failure> for headjack_error {
    fn from(f: Failure) -> headjack_error {
        headjack_error {
            status: f.status,
            message: cstring(&f.message),
            build_step: f.build_step.as_deref().map(cstring),
            build_log: (!f.build_log.is_empty()).then(|| cstring(&f.build_log.join("\n"))),
        }
    }
}

/// The code of `err`. `HEADJACK_INVALID_ARGUMENT` when `err` is NULL.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_error_code(err: *const headjack_error) -> headjack_status {
    guard_or(headjack_status::HEADJACK_INVALID_ARGUMENT, || {
        // SAFETY: NULL or a live error.
        unsafe { err.as_ref() }.map_or(headjack_status::HEADJACK_INVALID_ARGUMENT, |e| e.status)
    })
}

/// The message of `err`: NUL-terminated UTF-8, owned by `err` and valid until
/// `headjack_error_free(err)`. NULL when `err` is NULL.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_error_message(err: *const headjack_error) -> *const c_char {
    guard_or(ptr::null(), || {
        // SAFETY: NULL or a live error.
        unsafe { err.as_ref() }.map_or(ptr::null(), |e| e.message.as_ptr())
    })
}

/// For a `HEADJACK_BUILD_FAILED` error: the Dockerfile step that failed (e.g. `RUN make`), owned
/// by `err`. NULL when unknown, for other errors, or when `err` is NULL.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_error_build_step(err: *const headjack_error) -> *const c_char {
    guard_or(ptr::null(), || {
        // SAFETY: NULL or a live error.
        unsafe { err.as_ref() }
            .and_then(|e| e.build_step.as_ref())
            .map_or(ptr::null(), |s| s.as_ptr())
    })
}

/// For a `HEADJACK_BUILD_FAILED` error: the last lines of build output, joined with `\n`, owned
/// by `err`. NULL when there are none, for other errors, or when `err` is NULL.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_error_build_log(err: *const headjack_error) -> *const c_char {
    guard_or(ptr::null(), || {
        // SAFETY: NULL or a live error.
        unsafe { err.as_ref() }
            .and_then(|e| e.build_log.as_ref())
            .map_or(ptr::null(), |s| s.as_ptr())
    })
}

/// Frees an error and the strings it owns. NULL is ignored.
///
/// Not to be called twice on the same error, nor while another thread reads it.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_error_free(err: *mut headjack_error) {
    guard_or((), || {
        if !err.is_null() {
            // SAFETY: created by Box::into_raw in `guard`, freed once.
            drop(unsafe { Box::from_raw(err) });
        }
    })
}

/// A short stable name for a status code, e.g. `"not_found"`; `"unknown"` for a code this
/// version does not know. The string is static: never free it.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_status_name(status: u32) -> *const c_char {
    guard_or(c"unknown".as_ptr(), || {
        headjack_status::ALL
            .iter()
            .find(|s| **s as u32 == status)
            .map_or(c"unknown".as_ptr(), |s| s.name().as_ptr())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_code_and_name() {
        let kinds = [
            ErrorKind::EngineUnavailable,
            ErrorKind::InvalidBase,
            ErrorKind::ImageNotFound,
            ErrorKind::PullFailed,
            ErrorKind::BuildFailed,
            ErrorKind::NotFound,
            ErrorKind::Conflict,
            ErrorKind::Timeout,
            ErrorKind::ExecFailed,
            ErrorKind::Io,
            ErrorKind::InvalidArgument,
            ErrorKind::Internal,
        ];
        for (i, k) in kinds.iter().enumerate() {
            let s = headjack_status::from_kind(*k);
            assert_eq!(s as u32, i as u32 + 1, "{k:?}");
            // The C names are the core's kind names.
            assert_eq!(s.name().to_str().unwrap(), k.as_str());
        }
        let names: std::collections::HashSet<_> =
            headjack_status::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(names.len(), headjack_status::ALL.len());
    }

    #[test]
    fn build_failures_keep_their_details() {
        let core = headjack_core::Error::new(ErrorKind::BuildFailed, "step failed")
            .with_build_failure(headjack_core::error::BuildFailure {
                step: Some("RUN false".into()),
                log_tail: vec!["a".into(), "b".into()],
            });
        let e = headjack_error::from(Failure::from(core));
        assert_eq!(e.status, headjack_status::HEADJACK_BUILD_FAILED);
        assert_eq!(
            e.build_step.as_ref().unwrap().to_str().unwrap(),
            "RUN false"
        );
        assert_eq!(e.build_log.as_ref().unwrap().to_str().unwrap(), "a\nb");
    }
}
