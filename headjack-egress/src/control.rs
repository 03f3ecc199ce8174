//! The control protocol: JSON lines on the proxy's abstract unix socket.
//!
//! One request object per line, answered by one response object per line, in order. The host
//! library reaches the socket by running `headjack-egress ctl` inside the proxy's container through
//! the engine's exec (stdin/stdout are copied to the socket), so it works for remote engines and
//! for any number of host processes. The full description is in the crate's README.
//!
//! ```
//! use headjack_egress::control::{PolicySpec, Request, Response};
//! let set = Request::Set {
//!     source: "172.19.0.3".parse().unwrap(),
//!     instance: "hj-1234".into(),
//!     policy: PolicySpec::Allow(vec!["pypi.org".into(), "*.pythonhosted.org".into()]),
//! };
//! assert_eq!(
//!     set.to_line(),
//!     r#"{"op":"set","source":"172.19.0.3","instance":"hj-1234","policy":{"allow":["pypi.org","*.pythonhosted.org"]}}"#
//! );
//! let reply = Response::parse_line(r#"{"ok":false,"error":"invalid egress pattern \"a..b\": it has an empty label"}"#).unwrap();
//! assert!(!reply.ok);
//! ```

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::policy::{Mode, PatternError, Policy};

/// The abstract socket name the proxy listens on (`@headjack-egress-ctl` in `ss -x` output).
pub const CTL_SOCKET: &str = "headjack-egress-ctl";
/// The TCP port of the HTTP/CONNECT proxy.
pub const HTTP_PORT: u16 = 3128;
/// The port of the DNS server (UDP and TCP).
pub const DNS_PORT: u16 = 53;
/// The longest request line the proxy accepts on the control socket.
pub const MAX_LINE: usize = 1 << 20;

/// A policy as written by users and sent over the wire: `{"allow": [...]}` or `{"deny": [...]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PolicySpec {
    /// Only these patterns are reachable.
    Allow(Vec<String>),
    /// Everything but these patterns is reachable.
    Deny(Vec<String>),
}

impl PolicySpec {
    /// Validates the patterns.
    ///
    /// # Errors
    /// The first invalid pattern, with what is wrong with it.
    pub fn to_policy(&self) -> Result<Policy, PatternError> {
        match self {
            PolicySpec::Allow(p) => Policy::allow(p),
            PolicySpec::Deny(p) => Policy::deny(p),
        }
    }

    /// The canonical spec of a validated policy.
    pub fn from_policy(policy: &Policy) -> Self {
        let patterns = policy.patterns().iter().map(ToString::to_string).collect();
        match policy.mode() {
            Mode::Allow => PolicySpec::Allow(patterns),
            Mode::Deny => PolicySpec::Deny(patterns),
        }
    }
}

/// A request on the control socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Set or replace the policy of the instance connecting from `source`. Takes effect for the next
    /// connection, request and DNS query; open tunnels that the new policy denies are closed. A
    /// different `instance` for a known source starts a fresh decision log.
    Set {
        /// The instance's address on its internal network.
        source: IpAddr,
        /// The instance id, for logs.
        #[serde(default)]
        instance: String,
        /// The policy.
        policy: PolicySpec,
    },
    /// Forget a source: its later connections are denied, its open tunnels closed, its log dropped.
    Remove {
        /// The instance's address.
        source: IpAddr,
    },
    /// Read the decision log of a source: the entries with `seq > since`, oldest first, at most
    /// `limit` of them.
    Log {
        /// The instance's address.
        source: IpAddr,
        /// Only entries after this sequence number (0: all retained).
        #[serde(default)]
        since: u64,
        /// At most this many entries (default: all retained).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
    },
    /// List the sources with their policies.
    List,
    /// Liveness and counters.
    Health,
    /// Can the proxy reach `source` on its network? (A TCP connection attempt to port 9: a refusal
    /// or an accept proves both directions work.) The core asks this at spawn, so that a network
    /// that carries no traffic is a clear error, not an instance whose every request hangs.
    Probe {
        /// The instance's address.
        source: IpAddr,
    },
}

impl Request {
    /// The request as one JSON line (without the newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// How a destination was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// A plain HTTP request through the proxy (absolute-form request target).
    Http,
    /// A `CONNECT host:port` tunnel (HTTPS, or any TCP protocol).
    Connect,
    /// A DNS query to the proxy's DNS server.
    Dns,
}

/// One decision of the proxy about one source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Increases by one per entry of this source, from 1.
    pub seq: u64,
    /// When (RFC 3339, UTC, milliseconds).
    pub time: String,
    /// HTTP request, CONNECT tunnel or DNS query.
    pub via: Via,
    /// The host as the instance asked for it (a name or an address).
    pub host: String,
    /// The port (absent for DNS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Whether it was let through.
    pub allowed: bool,
    /// Why, in a few words.
    pub reason: String,
    /// How many identical decisions in a row this entry stands for (repeats within two seconds
    /// are folded, so a retry loop does not flush the log).
    pub count: u64,
}

/// A source as listed by [`Request::List`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// The instance's address.
    pub source: IpAddr,
    /// The instance id given with the policy.
    pub instance: String,
    /// Its current policy, canonical.
    pub policy: PolicySpec,
    /// Open proxy connections from it.
    pub connections: u64,
    /// Sequence number of its latest log entry.
    pub last_seq: u64,
}

/// The answer to [`Request::Health`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// The proxy's version.
    pub version: String,
    /// Seconds since the proxy started.
    pub uptime_secs: u64,
    /// Known sources.
    pub sources: usize,
    /// Open proxy connections, all sources.
    pub connections: u64,
    /// Where the HTTP/CONNECT proxy listens.
    pub http: String,
    /// Where the DNS server listens, if it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<String>,
}

/// A response on the control socket: `{"ok":true, ...}` or `{"ok":false,"error":"..."}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request was carried out.
    pub ok: bool,
    /// What went wrong, when `ok` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// [`Request::Log`]: the entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<LogEntry>>,
    /// [`Request::Log`]: the `since` to pass next time to get only newer entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<u64>,
    /// [`Request::List`]: the sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<SourceInfo>>,
    /// [`Request::Probe`]: how the address answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<String>,
    /// [`Request::Health`]: liveness and counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

impl Response {
    /// A bare success.
    pub fn ok() -> Self {
        Response {
            ok: true,
            ..Default::default()
        }
    }

    /// A failure with a message.
    pub fn error(msg: impl Into<String>) -> Self {
        Response {
            ok: false,
            error: Some(msg.into()),
            ..Default::default()
        }
    }

    /// The response as one JSON line (without the newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|_| r#"{"ok":false,"error":"response not serialisable"}"#.into())
    }

    /// Parses one response line.
    ///
    /// # Errors
    /// The line is not a response object.
    pub fn parse_line(line: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(line)
    }
}

/// Parses one request line; the error says what was wrong in terms of the protocol.
///
/// # Errors
/// Invalid JSON, an unknown `op`, a missing or malformed field.
pub fn parse_request(line: &str) -> Result<Request, String> {
    serde_json::from_str(line).map_err(|e| {
        format!("invalid control request ({e}); expected one JSON object per line with \"op\" one of set, remove, log, list, health, probe")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn requests_round_trip_and_read_as_documented() {
        let table = [
            (
                r#"{"op":"set","source":"10.0.0.2","instance":"i1","policy":{"deny":["a.b"]}}"#,
                Request::Set {
                    source: "10.0.0.2".parse().unwrap(),
                    instance: "i1".into(),
                    policy: PolicySpec::Deny(vec!["a.b".into()]),
                },
            ),
            (
                r#"{"op":"remove","source":"fd00::2"}"#,
                Request::Remove {
                    source: "fd00::2".parse().unwrap(),
                },
            ),
            (
                r#"{"op":"log","source":"10.0.0.2","since":4}"#,
                Request::Log {
                    source: "10.0.0.2".parse().unwrap(),
                    since: 4,
                    limit: None,
                },
            ),
            (r#"{"op":"list"}"#, Request::List),
            (
                r#"{"op":"probe","source":"10.0.0.2"}"#,
                Request::Probe {
                    source: "10.0.0.2".parse().unwrap(),
                },
            ),
            (r#"{"op":"health"}"#, Request::Health),
        ];
        for (line, req) in table {
            assert_eq!(parse_request(line).unwrap(), req, "{line}");
            assert_eq!(parse_request(&req.to_line()).unwrap(), req);
        }
    }

    #[test]
    fn bad_requests_say_what_is_expected() {
        for (line, want) in [
            ("", "EOF"),
            ("{", "EOF"),
            (r#"{"op":"launch"}"#, "unknown variant"),
            (
                r#"{"op":"set","source":"nope","policy":{"allow":[]}}"#,
                "invalid IP address",
            ),
            (
                r#"{"op":"set","source":"10.0.0.1"}"#,
                "missing field `policy`",
            ),
            (
                r#"{"op":"set","source":"10.0.0.1","policy":{"permit":[]}}"#,
                "unknown variant",
            ),
            (
                r#"{"op":"log","sorce":"10.0.0.1"}"#,
                "unknown field `sorce`",
            ),
        ] {
            let err = parse_request(line).unwrap_err();
            assert!(err.contains(want), "{line}: {err}");
            assert!(
                err.contains("one of set, remove, log, list, health, probe"),
                "{err}"
            );
        }
    }

    #[test]
    fn policy_specs_validate() {
        let spec = PolicySpec::Allow(vec!["PyPI.org".into(), "*.x.org:443".into()]);
        let policy = spec.to_policy().unwrap();
        assert_eq!(
            PolicySpec::from_policy(&policy),
            PolicySpec::Allow(vec!["pypi.org".into(), "*.x.org:443".into()])
        );
        assert!(
            PolicySpec::Deny(vec!["a..b".into()])
                .to_policy()
                .unwrap_err()
                .to_string()
                .contains("empty label")
        );
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_lines_never_panics(s in "\\PC{0,200}") {
            let _ = parse_request(&s);
            let _ = Response::parse_line(&s);
        }
    }
}
