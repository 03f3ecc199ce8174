//! Untyped engine answers: a few GETs are read as plain JSON over a short-lived HTTP/1.0
//! connection, because bollard's typed models reject states Podman reports (`stopped`), which
//! would make one odd container break listing all of them.

use std::collections::HashMap;

use tokio::io::{AsyncRead, AsyncWrite};

use super::Engine;
use super::errors::kind_of_status;
use crate::error::{Error, ErrorKind, Result};

/// A byte stream to the engine's API socket.
pub(super) trait EngineIo: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> EngineIo for T {}

impl Engine {
    /// A new connection to the engine's API socket, for requests bollard cannot make.
    ///
    /// # Errors
    ///
    /// `EngineUnavailable` when the socket cannot be reached.
    pub(super) async fn dial(&self) -> Result<Box<dyn EngineIo>> {
        let host = &self.info.host;
        let io = |e: std::io::Error| {
            Error::new(
                ErrorKind::EngineUnavailable,
                format!("lost the connection to the engine at {host}: {e}"),
            )
            .with_source(e)
        };
        if let Some(path) = host.strip_prefix("unix://") {
            let s = tokio::net::UnixStream::connect(path).await.map_err(io)?;
            Ok(Box::new(s))
        } else {
            let addr = host
                .trim_start_matches("tcp://")
                .trim_start_matches("http://")
                .trim_end_matches('/');
            let s = tokio::net::TcpStream::connect(addr).await.map_err(io)?;
            Ok(Box::new(s))
        }
    }

    /// A GET whose JSON answer is returned untyped (HTTP/1.0, so the body is not chunked).
    pub(super) async fn get_json(&self, path_and_query: &str) -> Result<serde_json::Value> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let host = &self.info.host;
        let request = format!(
            "GET /v{}{path_and_query} HTTP/1.0\r\nHost: headjack\r\nUser-Agent: headjack\r\n\r\n",
            self.info.api_version
        );
        let io = |e: std::io::Error| {
            Error::new(
                ErrorKind::EngineUnavailable,
                format!("lost the connection to the engine at {host}: {e}"),
            )
            .with_source(e)
        };
        let exchange = async {
            let mut raw = Vec::new();
            let mut s = self.dial().await?;
            s.write_all(request.as_bytes()).await.map_err(io)?;
            s.read_to_end(&mut raw).await.map_err(io)?;
            Ok::<_, Error>(raw)
        };
        let raw = tokio::time::timeout(self.timeout(), exchange)
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "the engine at {host} did not answer within {:?}; it may be overloaded or \
                         frozen (raise the bound with Client::with_timeout)",
                        self.timeout()
                    ),
                )
            })??;
        let body = answer_body(&raw)?;
        serde_json::from_slice(body)
            .map_err(|e| Error::internal(format!("the engine sent JSON headjack cannot read: {e}")))
    }
}

/// A JSON object of strings as a map (missing or null → empty).
pub(super) fn string_map(v: Option<&serde_json::Value>) -> HashMap<String, String> {
    v.and_then(|l| l.as_object())
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass through).
pub(super) fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The body of a raw HTTP/1.x answer, or the engine's error for a status outside 2xx.
pub(super) fn answer_body(raw: &[u8]) -> Result<&[u8]> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| Error::internal("the engine sent a malformed HTTP answer"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if !(200..300).contains(&status) {
        let msg = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
        return Err(Error::new(
            kind_of_status(status, &msg),
            format!("engine answered {status}: {}", msg.trim()),
        ));
    }
    Ok(body)
}
