//! headjack's in-container agent: the wire protocol ([`proto`], pure std) and, with the
//! `client` feature, the host side of a channel to a running agent ([`client`], tokio).
//!
//! The agent itself is this package's binary, `headjack-agent`: PID 1 of an instance, serving
//! one session on its stdin/stdout (the container's attach stream) and more on an abstract unix
//! socket reached with `headjack-agent relay`. See `PROTOCOL.md` for the wire format.
#![warn(missing_docs)]

pub mod proto;

#[cfg(feature = "client")]
pub mod client;
