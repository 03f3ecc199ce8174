//! The one error type of headjack, with a stable [`ErrorKind`].
//!
//! The kind is the single source for the C status codes and the Python exception classes, so
//! it never changes meaning once published; new kinds are added at the end.

use std::fmt;

/// What went wrong, in a form a program can branch on.
///
/// Stable: the C ABI and the Python bindings map from it, never from messages.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// No container engine answered (no socket, refused, or not a Docker-compatible API).
    EngineUnavailable,
    /// A base string could not be understood (bad image reference, missing Dockerfile, …).
    InvalidBase,
    /// An image is not present locally and could not or may not be pulled.
    ImageNotFound,
    /// A registry pull failed (network, authentication, unknown manifest).
    PullFailed,
    /// A Dockerfile build failed; see [`Error::build_step`] and [`Error::build_log`].
    BuildFailed,
    /// A container, instance, exec or path does not exist.
    NotFound,
    /// The request conflicts with the current state (name in use, container not running, …).
    Conflict,
    /// A deadline passed (readiness check, engine call).
    Timeout,
    /// A command could not be run inside the container, or (on request) exited non-zero.
    ExecFailed,
    /// A local I/O error (reading a build context, writing a copied file, …).
    Io,
    /// The caller passed something unusable (empty argv, a path escaping its target, …).
    InvalidArgument,
    /// A bug or an engine answer headjack does not understand.
    Internal,
    /// This process is a `fork()` of one that already used headjack: use headjack in the parent,
    /// or in the child only after `exec()` (see [`crate::blocking`]).
    Forked,
    /// The engine (or this platform) cannot do what was asked; the message says why.
    Unsupported,
}

impl ErrorKind {
    /// Every kind, in declaration order (for bindings that map each one, and their tests).
    pub const ALL: [ErrorKind; 14] = [
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
        ErrorKind::Forked,
        ErrorKind::Unsupported,
    ];

    /// A short stable name, e.g. `"build_failed"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::EngineUnavailable => "engine_unavailable",
            ErrorKind::InvalidBase => "invalid_base",
            ErrorKind::ImageNotFound => "image_not_found",
            ErrorKind::PullFailed => "pull_failed",
            ErrorKind::BuildFailed => "build_failed",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Timeout => "timeout",
            ErrorKind::ExecFailed => "exec_failed",
            ErrorKind::Io => "io",
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::Internal => "internal",
            ErrorKind::Forked => "forked",
            ErrorKind::Unsupported => "unsupported",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Details of a failed Dockerfile build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildFailure {
    /// The step that failed, e.g. `RUN make` (as the engine reported it), if known.
    pub step: Option<String>,
    /// The last lines of build output before the failure.
    pub log_tail: Vec<String>,
}

/// The error of every fallible headjack call.
///
/// Its message says what was asked, what happened and what to do about it.
pub struct Error {
    kind: ErrorKind,
    message: String,
    build: Option<Box<BuildFailure>>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// `Result` with headjack's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with a complete, human-readable message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            build: None,
            source: None,
        }
    }

    /// Attaches the underlying cause (kept for `source()`, not repeated in the message).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Attaches build failure details (kind should be [`ErrorKind::BuildFailed`]).
    pub fn with_build_failure(mut self, failure: BuildFailure) -> Self {
        self.build = Some(Box::new(failure));
        self
    }

    /// The stable kind of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The full message (same as `Display`).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// For a failed build: the step that failed, if the engine said.
    pub fn build_step(&self) -> Option<&str> {
        self.build.as_ref().and_then(|b| b.step.as_deref())
    }

    /// For a failed build: the last lines of its output.
    pub fn build_log(&self) -> &[String] {
        self.build
            .as_ref()
            .map(|b| b.log_tail.as_slice())
            .unwrap_or(&[])
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, message)
    }

    pub(crate) fn io(what: impl fmt::Display, err: std::io::Error) -> Self {
        Error::new(ErrorKind::Io, format!("{what}: {err}")).with_source(err)
    }

    /// Prefixes the message with what was being attempted.
    pub(crate) fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(b) = &self.build {
            d.field("build", b);
        }
        if let Some(s) = &self.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_are_stable_and_distinct() {
        use std::collections::HashSet;
        let all = ErrorKind::ALL;
        let names: HashSet<_> = all.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), all.len());
        assert_eq!(ErrorKind::BuildFailed.to_string(), "build_failed");
    }

    #[test]
    fn build_details_and_context() {
        let e = Error::new(ErrorKind::BuildFailed, "step failed")
            .with_build_failure(BuildFailure {
                step: Some("RUN false".into()),
                log_tail: vec!["a".into(), "b".into()],
            })
            .context("building ./Dockerfile");
        assert_eq!(e.build_step(), Some("RUN false"));
        assert_eq!(e.build_log(), ["a", "b"]);
        assert_eq!(e.to_string(), "building ./Dockerfile: step failed");
        assert_eq!(e.kind(), ErrorKind::BuildFailed);
    }
}
