//! headjack's egress proxy: per-instance host allow/deny lists, enforced fail-closed.
//!
//! Instances with an egress policy sit on an engine network created `--internal` (no route out).
//! The proxy runs in its own small container attached to those networks and to one with outside
//! access. It identifies an instance by the source address of its connections and applies that
//! instance's [`policy::Policy`] to
//! - plain HTTP requests (absolute-form, filtered by host; the Host header must agree),
//! - `CONNECT host:port` tunnels (HTTPS and any other TCP; a TLS ClientHello's SNI must name the
//!   CONNECT host),
//! - DNS queries (A/AAAA answered only for names the policy allows).
//!
//! Policies change live through JSON lines on an abstract unix socket ([`control`]).
//!
//! Without the default `proxy` feature this library is only the pure parts — [`policy`],
//! [`control`], [`dns`], [`tls`] — with no I/O and no async runtime, for the core to validate user
//! input and speak the control protocol.

#![warn(missing_docs)]

pub mod control;
pub mod dns;
#[cfg(feature = "proxy")]
pub mod http;
pub mod policy;
#[cfg(feature = "proxy")]
pub mod server;
pub mod time;
pub mod tls;

pub use policy::{Host, Mode, Pattern, PatternError, Policy, Verdict};
