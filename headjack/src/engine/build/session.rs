//! A BuildKit session: the channel through which the engine asks the client for the build
//! context and build secrets while a build runs.
//!
//! The client opens `POST /session` with `Upgrade: h2c`; after the engine's `101`, the roles
//! turn around: the engine is the gRPC client and headjack serves, over HTTP/2 on that
//! connection, the services it announced in `X-Docker-Expose-Session-Grpc-Method` headers:
//! the health check, `moby.filesync.v1.FileSync/DiffCopy` ([`super::filesync`]) and
//! `moby.buildkit.secrets.v1.Secrets/GetSecret`. A build names the session in its `session`
//! parameter. The session ends when the [`Session`] is dropped.
//!
//! Secret values live in memory only; they cross the engine's socket when the engine asks for
//! one, and nowhere else.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::TokioIo;

use super::filesync::{self, SyncDirs};
use super::proto;
use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};

const HEALTH_CHECK: &str = "/grpc.health.v1.Health/Check";
const GET_SECRET: &str = "/moby.buildkit.secrets.v1.Secrets/GetSecret";
const DIFF_COPY: &str = "/moby.filesync.v1.FileSync/DiffCopy";

/// What a session serves.
#[derive(Default)]
pub(crate) struct Services {
    /// Build secrets, id → value.
    pub(crate) secrets: HashMap<String, Vec<u8>>,
    /// Directories for BuildKit to read (the context and the Dockerfile), if it reads them
    /// from the session.
    pub(crate) dirs: Option<Arc<SyncDirs>>,
}

/// The largest gRPC request headjack reads (secret requests and health checks are tiny).
const MAX_REQUEST: usize = 64 * 1024;

const SESSION_REFUSED: &str = "the engine refused a build session";

/// Whether `e` is [`start`]'s error for an engine without sessions.
pub(crate) fn refused(e: &Error) -> bool {
    e.kind() == ErrorKind::Unsupported && e.message().starts_with(SESSION_REFUSED)
}

/// A running session; dropping it closes the connection and ends the session on the engine.
pub(crate) struct Session {
    id: String,
    task: tokio::task::JoinHandle<()>,
}

impl Session {
    /// The ID a build passes as its `session` parameter.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Opens a session serving `services`.
///
/// # Errors
///
/// `EngineUnavailable` when the engine cannot be reached, `Unsupported` when it does not offer
/// sessions, `Timeout` when it does not answer within the engine's bound.
pub(crate) async fn start(engine: &Engine, services: Arc<Services>) -> Result<Session> {
    let id = new_id();
    let io = engine.dial().await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| lost("opening a build session", e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "build session connection ended");
        }
    });
    let mut req = Request::post(format!("/v{}/session", engine.info.api_version))
        .header("Host", "docker")
        .header("Connection", "Upgrade")
        .header("Upgrade", "h2c")
        .header("X-Docker-Expose-Session-Uuid", &id)
        .header("X-Docker-Expose-Session-Name", "headjack")
        .header(
            "X-Docker-Expose-Session-Sharedkey",
            services
                .dirs
                .as_ref()
                .map_or("headjack", |d| d.shared_key.as_str()),
        );
    let mut methods = vec![HEALTH_CHECK, GET_SECRET];
    if services.dirs.is_some() {
        methods.push(DIFF_COPY);
    }
    for method in methods {
        req = req.header("X-Docker-Expose-Session-Grpc-Method", method);
    }
    let req = req
        .body(Full::new(Bytes::new()))
        .map_err(|e| Error::internal(format!("building the session request: {e}")))?;
    let response = tokio::time::timeout(engine.timeout(), sender.send_request(req))
        .await
        .map_err(|_| {
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "the engine did not open a build session within {:?}",
                    engine.timeout()
                ),
            )
        })?
        .map_err(|e| lost("opening a build session", e))?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "{SESSION_REFUSED} (HTTP {}): BuildKit cannot read the build context or secrets \
                 from headjack",
                response.status()
            ),
        ));
    }
    let upgraded = hyper::upgrade::on(response)
        .await
        .map_err(|e| lost("opening a build session", e))?;
    let task = tokio::spawn(serve(TokioIo::new(upgraded), services));
    tracing::debug!(session = %id, "build session open");
    Ok(Session { id, task })
}

/// Serves gRPC calls on the upgraded connection until it closes.
async fn serve(io: TokioIo<hyper::upgrade::Upgraded>, services: Arc<Services>) {
    // BuildKit asks for each file of a context in its own small message; allow them a budget
    // well above h2's default, which is sized for ordinary HTTP traffic.
    let mut conn = match h2::server::Builder::new()
        .data_frame_budget(4 << 20)
        .handshake(io)
        .await
    {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, "build session handshake failed");
            return;
        }
    };
    while let Some(next) = conn.accept().await {
        let (request, respond) = match next {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "build session ended");
                return;
            }
        };
        let services = services.clone();
        tokio::spawn(async move {
            if request.uri().path() == DIFF_COPY
                && let Some(dirs) = &services.dirs
            {
                if let Err(e) = filesync::diff_copy(request, respond, dirs).await {
                    tracing::debug!(error = %e, "build context transfer failed");
                }
                return;
            }
            if let Err(e) = answer(request, respond, &services.secrets).await {
                tracing::debug!(error = %e, "build session call failed");
            }
        });
    }
}

/// A gRPC status code headjack answers with.
#[derive(Clone, Copy)]
enum Code {
    Ok = 0,
    InvalidArgument = 3,
    NotFound = 5,
    Unimplemented = 12,
}

/// Answers one unary gRPC call.
async fn answer(
    request: Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    secrets: &HashMap<String, Vec<u8>>,
) -> std::result::Result<(), h2::Error> {
    let path = request.uri().path().to_string();
    let mut body = request.into_body();
    let mut raw = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        if raw.len() + chunk.len() > MAX_REQUEST {
            return trailers_only(respond, Code::InvalidArgument, "request too large");
        }
        raw.extend_from_slice(&chunk);
    }
    let Some(message) = unframe(&raw) else {
        return trailers_only(respond, Code::InvalidArgument, "malformed gRPC message");
    };
    let reply = match path.as_str() {
        HEALTH_CHECK => proto::health_serving(),
        GET_SECRET => match proto::get_secret_request_id(message) {
            Ok(id) => match secrets.get(&id) {
                Some(value) => {
                    tracing::debug!(secret = %id, "build secret handed to the engine");
                    proto::get_secret_response(value)
                }
                None => {
                    return trailers_only(
                        respond,
                        Code::NotFound,
                        &format!("secret {id} not found"),
                    );
                }
            },
            Err(e) => return trailers_only(respond, Code::InvalidArgument, &e.to_string()),
        },
        _ => return trailers_only(respond, Code::Unimplemented, "not served by headjack"),
    };
    let head = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/grpc")
        .body(())
        .expect("static response head");
    let mut stream = respond.send_response(head, false)?;
    let mut framed = BytesMut::with_capacity(reply.len() + 5);
    framed.put_u8(0);
    framed.put_u32(reply.len() as u32);
    framed.extend_from_slice(&reply);
    stream.send_data(framed.freeze(), false)?;
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(Code::Ok as u16));
    stream.send_trailers(trailers)
}

/// A response with no body: the status in the headers.
fn trailers_only(
    mut respond: h2::server::SendResponse<Bytes>,
    code: Code,
    message: &str,
) -> std::result::Result<(), h2::Error> {
    let mut head = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/grpc")
        .header("grpc-status", code as u16);
    if let Ok(v) = HeaderValue::from_str(message) {
        head = head.header("grpc-message", v);
    }
    respond.send_response(head.body(()).expect("valid response head"), true)?;
    Ok(())
}

/// The message of a single gRPC frame: flag byte 0 (uncompressed), 4-byte length, message.
fn unframe(raw: &[u8]) -> Option<&[u8]> {
    let (&flag, rest) = raw.split_first()?;
    if flag != 0 || rest.len() < 4 {
        return None;
    }
    let len = u32::from_be_bytes(rest[..4].try_into().ok()?) as usize;
    rest.get(4..4 + len)
}

/// A random session ID (BuildKit uses 25 lowercase alphanumerics).
fn new_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..25)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn lost(what: &str, e: hyper::Error) -> Error {
    Error::new(
        ErrorKind::EngineUnavailable,
        format!("{what}: lost the connection to the engine: {e}; check that it is running"),
    )
    .with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_read_exactly() {
        assert_eq!(unframe(&[0, 0, 0, 0, 2, 7, 8]), Some(&[7u8, 8][..]));
        assert_eq!(unframe(&[0, 0, 0, 0, 0]), Some(&[][..]));
        assert_eq!(unframe(&[1, 0, 0, 0, 0]), None, "compressed");
        assert_eq!(unframe(&[0, 0, 0, 0, 3, 1]), None, "short");
        assert_eq!(unframe(&[0, 0]), None);
        assert_eq!(unframe(&[]), None);
    }

    #[test]
    fn ids_look_like_buildkit_ids() {
        let a = new_id();
        assert_eq!(a.len(), 25);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        assert_ne!(a, new_id());
    }
}
