//! Status codes (`headjack_status`) and `Failure`, what a call that went wrong carries until it
//! becomes a `headjack_error`. A leaf: it knows the core's error kinds and nothing else here.

use std::ffi::CStr;

use headjack_core::ErrorKind;

/// The result of every fallible headjack call. `HEADJACK_OK` (0) is success; every other value
/// is a failure, and the call's `headjack_error **err` out-parameter (when not NULL) then holds
/// an error with the same code and a message.
///
/// The numbers are stable: codes 1 to 13 mirror the core's error kinds (the core's `Forked` kind
/// keeps the C code it had first, `HEADJACK_FORKED`); codes from 100 on are specific to the C
/// ABI. New codes are only ever added; treat an unknown code as a failure.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum headjack_status {
    /// Success.
    HEADJACK_OK = 0,
    /// No container engine answered (no socket, refused, not a Docker-compatible API, or the
    /// connection was lost).
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
    /// The request conflicts with the current state (name in use, container not running, the
    /// standard input of a command is not open, a headjack call made from inside a headjack
    /// callback, ...).
    HEADJACK_CONFLICT = 7,
    /// A deadline passed (readiness check, engine call; see `headjack_client_set_timeout_ms`).
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
    /// The engine (or this platform) cannot do what was asked; the message says why.
    HEADJACK_UNSUPPORTED = 13,
}

impl headjack_status {
    /// The code for a core error kind (a kind this crate does not know yet maps to
    /// `HEADJACK_INTERNAL`, with the core's message).
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
            ErrorKind::Forked => HEADJACK_FORKED,
            ErrorKind::Unsupported => HEADJACK_UNSUPPORTED,
            _ => HEADJACK_INTERNAL,
        }
    }

    /// A short stable name; the core's kind name for the codes that mirror a kind.
    pub(crate) fn name(self) -> &'static CStr {
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
            HEADJACK_UNSUPPORTED => c"unsupported",
        }
    }

    pub(crate) const ALL: [headjack_status; 16] = {
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
            HEADJACK_UNSUPPORTED,
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

    /// `HEADJACK_INVALID_ARGUMENT` with `message`.
    pub(crate) fn invalid(message: impl Into<String>) -> Failure {
        Failure::new(headjack_status::HEADJACK_INVALID_ARGUMENT, message)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_code_and_the_core_name() {
        let kinds = ErrorKind::ALL;
        let mut codes = std::collections::HashSet::new();
        for k in kinds {
            let s = headjack_status::from_kind(k);
            assert!(codes.insert(s as u32), "{k:?} shares a code");
            // The C names are the core's kind names.
            assert_eq!(s.name().to_str().unwrap(), k.as_str());
        }
        assert_eq!(
            headjack_status::from_kind(ErrorKind::Forked),
            headjack_status::HEADJACK_FORKED
        );
        assert_eq!(headjack_status::HEADJACK_UNSUPPORTED as u32, 13);
        let names: std::collections::HashSet<_> =
            headjack_status::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(names.len(), headjack_status::ALL.len());
    }
}
