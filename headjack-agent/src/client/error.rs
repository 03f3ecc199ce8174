//! The client's error type.

use std::fmt;

use crate::proto::{ErrorCode, ErrorReply, StartFailure, StartFailureKind};

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The channel is gone (the agent exited, the container stopped, the transport broke).
    /// Every call on it fails this way from then on.
    ChannelClosed,
    /// The agent answered with something this client cannot understand.
    Protocol,
    /// The agent refused or failed the request (see [`Error::code`]).
    Agent,
    /// A background process could not start (see [`Error::start_failure`]).
    StartFailed,
    /// The request is invalid before it reaches the agent (too large, a NUL byte…).
    InvalidArgument,
    /// The command ended, so its stdin or terminal is gone.
    Ended,
}

/// A failed call: a kind to match on and a message that says what was asked, what happened
/// and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    code: Option<ErrorCode>,
    start_failure: Option<StartFailure>,
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            code: None,
            start_failure: None,
        }
    }

    pub(crate) fn closed(why: impl fmt::Display) -> Error {
        Error::new(
            ErrorKind::ChannelClosed,
            format!(
                "the channel to the agent closed ({why}): the agent exited, the container \
                 stopped, or the transport broke; open a new channel once the container runs"
            ),
        )
    }

    pub(crate) fn agent(what: &str, e: ErrorReply) -> Error {
        Error {
            kind: ErrorKind::Agent,
            message: format!("{what}: {}", e.message),
            code: Some(e.code),
            start_failure: None,
        }
    }

    pub(crate) fn start_failed(f: StartFailure) -> Error {
        Error {
            kind: ErrorKind::StartFailed,
            message: f.message.clone(),
            code: None,
            start_failure: Some(f),
        }
    }

    pub(crate) fn unexpected(what: &str, got: &crate::proto::Message) -> Error {
        Error::new(
            ErrorKind::Protocol,
            format!(
                "{what}: the agent answered with a kind-{} message this client does not expect \
                 (mismatched agent and client builds?)",
                got.kind()
            ),
        )
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The agent's error code, for [`ErrorKind::Agent`].
    pub fn code(&self) -> Option<ErrorCode> {
        self.code
    }

    /// Why a background process could not start, for [`ErrorKind::StartFailed`].
    pub fn start_failure(&self) -> Option<&StartFailure> {
        self.start_failure.as_ref()
    }

    /// For a start failure: whether switching user was denied (the caller may fall back to the
    /// engine's exec).
    pub fn is_user_switch_denied(&self) -> bool {
        self.start_failure
            .as_ref()
            .is_some_and(|f| f.kind == StartFailureKind::UserSwitchDenied)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
