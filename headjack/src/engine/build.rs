//! Image builds through the engine API, with BuildKit or the classic builder.
//!
//! One request path serves both: `POST /build`, the answer read as a stream of JSON messages.
//! With `version=2` Docker builds with its embedded BuildKit and reports progress as BuildKit
//! status messages (protobuf in base64, decoded by [`proto`] and turned into lines by
//! [`status`]); BuildKit then reads the build context and the Dockerfile over a [`session`]
//! (`remote=client-session`, [`filesync`]), as `docker build` sends a directory. Without
//! `version=2` the classic builder (Docker) or buildah (Podman's compatible API) gets a context
//! tar and prints plain lines.
//!
//! Build secrets take the way each engine offers: the BuildKit session serves them while the
//! build runs (Docker), or they are files appended to the context tar and named in the
//! `secrets` parameter, which Podman moves out of the context before the build starts. The
//! classic builder has none and refuses `RUN --mount`, so a secret can never reach it.
//!
//! This is also where headjack knows what each engine's Dockerfile frontend understands
//! ([`BuilderProfile`]), so the build module can translate or refuse before a build starts.

mod filesync;
mod logtail;
mod proto;
mod session;
mod status;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tracing::Instrument;

use super::raw::percent_encode;
use super::{Engine, EngineKind, TRANSFER_TIMEOUT};
use crate::error::{Error, ErrorKind, Result};
use crate::progress::{Progress, ProgressFn};

pub(crate) use filesync::{Content, SyncDirs, SyncEntry, SyncKind};
use logtail::{LogTail, build_error, clean_line};
use session::Services;
use status::BuildStatus;

/// Which builder runs a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BuilderKind {
    /// Docker's embedded BuildKit (`version=2`).
    BuildKit,
    /// The classic builder: Docker's legacy builder, or buildah behind Podman's compatible API.
    Classic,
}

/// A build secret on its way to the engine. Its `Debug` never shows the value.
pub(crate) struct BuildSecret {
    pub(crate) id: String,
    pub(crate) value: Vec<u8>,
}

impl std::fmt::Debug for BuildSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BuildSecret({}, {} bytes)", self.id, self.value.len())
    }
}

/// What [`Engine::build`] sends the builder.
pub(crate) enum BuildInput {
    /// A context tar holding the Dockerfile (classic builder, buildah; BuildKit reads it too).
    Tar(Bytes),
    /// Directories served over a BuildKit session (`context` and `dockerfile`), as the docker
    /// CLI sends them; BuildKit only.
    Session(Arc<SyncDirs>),
}

/// Parameters of [`Engine::build`].
pub(crate) struct BuildParams<'a> {
    pub tag: &'a str,
    pub dockerfile: &'a str,
    pub labels: HashMap<String, String>,
    pub build_args: HashMap<String, String>,
    pub target: Option<&'a str>,
    pub platform: Option<&'a str>,
    pub no_cache: bool,
    pub progress: Option<&'a ProgressFn>,
    pub builder: BuilderKind,
    pub secrets: &'a [BuildSecret],
}

/// What an engine's builder accepts in a Dockerfile, as far as headjack checks it before a
/// build. Verified against Docker 20.10 (BuildKit v0.8, built-in frontend without heredocs or
/// `COPY --link`) and Podman 4.3 (buildah 1.28); the version bounds for newer engines follow
/// their release notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BuilderProfile {
    /// Who builds, for messages: `Docker 20.10.24 (BuildKit)`.
    pub name: String,
    pub kind: BuilderKind,
    /// `RUN --mount=type=secret` with secrets from the client.
    pub secrets: bool,
    /// `RUN --mount` (cache, bind, tmpfs, secret).
    pub run_mounts: bool,
    /// `COPY --chmod` / `ADD --chmod`.
    pub copy_chmod: bool,
    /// `COPY --link` / `ADD --link`.
    pub copy_link: bool,
    /// `ADD --checksum`.
    pub add_checksum: bool,
    /// Heredocs (`RUN <<EOF`, `COPY <<EOF`; Dockerfile 1.4).
    pub heredocs: bool,
    /// Honours `# syntax=` by running that frontend image.
    pub syntax_directive: bool,
}

impl Engine {
    /// The builder a build gets unless the caller chooses: BuildKit on Docker engines that
    /// embed it (API 1.39+, Linux, not found unavailable earlier), else the classic builder.
    pub(crate) fn default_builder(&self) -> BuilderKind {
        let info = &self.info;
        let api_ok = version_at_least(&info.api_version, 1, 39);
        if info.kind == EngineKind::Docker
            && api_ok
            && info.os != "windows"
            && !self.buildkit_unavailable.load(Ordering::Relaxed)
        {
            BuilderKind::BuildKit
        } else {
            BuilderKind::Classic
        }
    }

    /// What `builder` on this engine accepts. Asking for BuildKit on an engine without it
    /// describes the classic builder, which is what [`Engine::build`] then uses.
    pub(crate) fn builder_profile(&self, builder: BuilderKind) -> BuilderProfile {
        let info = &self.info;
        let (major, _) = major_minor(&info.version);
        match (info.kind, builder) {
            (EngineKind::Docker, BuilderKind::BuildKit)
                if self.default_builder() == BuilderKind::BuildKit =>
            {
                BuilderProfile {
                    name: format!("Docker {} (BuildKit)", info.version),
                    kind: BuilderKind::BuildKit,
                    secrets: true,
                    run_mounts: true,
                    copy_chmod: true,
                    // The built-in frontend: dockerfile 1.4 from Docker 23, 1.6 from Docker 25.
                    copy_link: major >= 23,
                    add_checksum: major >= 25,
                    heredocs: major >= 23,
                    syntax_directive: true,
                }
            }
            (EngineKind::Podman, _) => BuilderProfile {
                name: format!("Podman {} (buildah)", info.version),
                kind: BuilderKind::Classic,
                secrets: true,
                run_mounts: true,
                copy_chmod: true,
                copy_link: major >= 5,
                add_checksum: major >= 5,
                heredocs: major >= 5,
                syntax_directive: false,
            },
            _ => BuilderProfile {
                name: format!("Docker {} (classic builder)", info.version),
                kind: BuilderKind::Classic,
                secrets: false,
                run_mounts: false,
                copy_chmod: false,
                copy_link: false,
                add_checksum: false,
                heredocs: false,
                syntax_directive: false,
            },
        }
    }

    /// Builds `input`, streaming progress lines to `params.progress`. Success is confirmed by
    /// inspecting the tag afterwards (Podman and old engines may end a failed build with a
    /// clean end of stream).
    ///
    /// Secret values are redacted from every progress line and error this reports.
    ///
    /// # Errors
    ///
    /// `BuildFailed` naming the failing step and the tail of its output; `Unsupported` for
    /// secrets on a builder without them, and when the engine refuses a BuildKit build (then
    /// [`Engine::default_builder`] says `Classic` from now on: build again with a tar);
    /// `EngineUnavailable`/`Timeout` when the engine is lost.
    ///
    /// Cancel safety: dropping the future closes the connection (and the session), which
    /// cancels the build.
    pub(crate) async fn build(&self, params: &BuildParams<'_>, input: &BuildInput) -> Result<()> {
        let builder = match input {
            BuildInput::Session(_) => BuilderKind::BuildKit,
            BuildInput::Tar(_) => params.builder,
        };
        let span = tracing::info_span!("engine.build", tag = params.tag, ?builder);
        async {
            match self.build_with(params, builder, input).await {
                Err(e)
                    if builder == BuilderKind::BuildKit
                        && (buildkit_refused(&e) || session::refused(&e)) =>
                {
                    tracing::info!(error = %e, "the engine refused a BuildKit build");
                    self.buildkit_unavailable.store(true, Ordering::Relaxed);
                    Err(Error::new(
                        ErrorKind::Unsupported,
                        format!(
                            "{} refused a BuildKit build ({}); later builds use its classic \
                             builder",
                            self.info.version,
                            e.message()
                        ),
                    ))
                }
                other => other,
            }
        }
        .instrument(span)
        .await
    }

    async fn build_with(
        &self,
        params: &BuildParams<'_>,
        builder: BuilderKind,
        input: &BuildInput,
    ) -> Result<()> {
        let redact = Redactor::new(params.secrets);
        let mut query = vec![
            ("t", params.tag.to_string()),
            ("dockerfile", params.dockerfile.to_string()),
            ("buildargs", json_map(&params.build_args)),
            ("labels", json_map(&params.labels)),
            ("rm", "1".into()),
            ("forcerm", "1".into()),
        ];
        if let Some(t) = params.target {
            query.push(("target", t.to_string()));
        }
        if let Some(p) = params.platform {
            query.push(("platform", p.to_string()));
        }
        if params.no_cache {
            query.push(("nocache", "1".into()));
        }
        let mut session_guard = None;
        let mut body = Bytes::new();
        if builder == BuilderKind::BuildKit {
            query.push(("version", "2".into()));
            let dirs = match input {
                BuildInput::Session(dirs) => Some(dirs.clone()),
                BuildInput::Tar(tar) => {
                    body = tar.clone();
                    None
                }
            };
            if dirs.is_some() {
                // BuildKit reads the context and the Dockerfile from the session.
                query.push(("remote", "client-session".into()));
            }
            if dirs.is_some() || !params.secrets.is_empty() {
                let services = Services {
                    secrets: params
                        .secrets
                        .iter()
                        .map(|s| (s.id.clone(), s.value.clone()))
                        .collect(),
                    dirs,
                };
                let session = session::start(self, Arc::new(services)).await?;
                query.push(("session", session.id().to_string()));
                session_guard = Some(session);
            }
        } else {
            let BuildInput::Tar(tar) = input else {
                return Err(Error::internal(
                    "a classic build was given session directories instead of a context tar",
                ));
            };
            body = tar.clone();
            if !params.secrets.is_empty() {
                if self.info.kind != EngineKind::Podman {
                    return Err(no_secrets(&self.builder_profile(BuilderKind::Classic)));
                }
                let (tar, specs) = append_secret_files(&body, params.secrets)?;
                body = tar;
                query.push(("secrets", serde_json::to_string(&specs).unwrap_or_default()));
            }
        }
        let query: Vec<String> = query
            .into_iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(&v)))
            .collect();
        let uri = format!("/v{}/build?{}", self.info.api_version, query.join("&"));

        let io = self.dial().await?;
        let send = async {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
                .await
                .map_err(|e| lost(params.tag, e))?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "build connection ended");
                }
            });
            let req = Request::post(uri)
                .header("Host", "docker")
                .header("Content-Type", "application/x-tar")
                .body(Full::new(body))
                .map_err(|e| Error::internal(format!("building the build request: {e}")))?;
            sender
                .send_request(req)
                .await
                .map_err(|e| lost(params.tag, e))
        };
        let response = tokio::time::timeout(TRANSFER_TIMEOUT, send)
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "the engine did not start building {} within {:?}",
                        params.tag, TRANSFER_TIMEOUT
                    ),
                )
            })??;
        let status = response.status();
        let mut body = response.into_body();
        if !status.is_success() {
            let bytes = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            return Err(refused(params.tag, status, &bytes, &redact));
        }

        let mut tail = LogTail::default();
        let mut steps = BuildStatus::default();
        let mut failure: Option<String> = None;
        let mut pending: Vec<u8> = Vec::new();
        let emit = |line: &str| {
            if !line.is_empty() {
                ProgressFn::emit(
                    params.progress,
                    Progress::Build {
                        tag: params.tag.to_string(),
                        line: redact.apply(line),
                    },
                );
            }
        };
        loop {
            let frame = match body.frame().await {
                None => break,
                Some(Ok(f)) => f,
                Some(Err(e)) => return Err(lost(params.tag, e)),
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            pending.extend_from_slice(&data);
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                handle_message(&line, &mut steps, &mut tail, &mut failure, &emit);
            }
        }
        if !pending.is_empty() {
            handle_message(&pending, &mut steps, &mut tail, &mut failure, &emit);
        }
        drop(session_guard);

        if failure.is_none() && self.image(params.tag).await?.is_some() {
            return Ok(());
        }
        let why = failure.unwrap_or_else(|| "the build ended without producing the image".into());
        let (step, lines) = match steps.failure() {
            Some((step, _, lines)) => (Some(step), lines),
            None => tail.into_parts(),
        };
        Err(build_error(
            params.tag,
            &redact.apply(&why),
            step.map(|s| redact.apply(&s)),
            lines.iter().map(|l| redact.apply(l)).collect(),
        ))
    }
}

/// Handles one line of the build answer: a JSON message (or, from odd engines, plain text).
fn handle_message(
    raw: &[u8],
    steps: &mut BuildStatus,
    tail: &mut LogTail,
    failure: &mut Option<String>,
    emit: &impl Fn(&str),
) {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim();
    if text.is_empty() {
        return;
    }
    let Ok(msg) = serde_json::from_str::<serde_json::Value>(text) else {
        tail.push(text);
        emit(&clean_line(text));
        return;
    };
    if msg.get("id").and_then(|v| v.as_str()) == Some("moby.buildkit.trace") {
        if let Some(b64) = msg.get("aux").and_then(|v| v.as_str()) {
            use base64::Engine as _;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| e.to_string())
                .and_then(|raw| proto::StatusResponse::decode(&raw).map_err(|e| e.to_string()));
            match decoded {
                Ok(status) => {
                    for line in steps.apply(&status) {
                        tail.push(&line);
                        emit(&line);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "unreadable BuildKit status message"),
            }
        }
        return;
    }
    for key in ["stream", "status"] {
        if let Some(s) = msg.get(key).and_then(|v| v.as_str()) {
            for line in s.lines() {
                tail.push(line);
                emit(&clean_line(line));
            }
        }
    }
    let detail = msg
        .get("errorDetail")
        .and_then(|d| d.get("message"))
        .or_else(|| msg.get("error"))
        .and_then(|v| v.as_str());
    if let Some(e) = detail {
        *failure = Some(e.to_string());
    }
}

/// Replaces secret values (and each line of a multi-line value) with `****` in text headjack
/// reports. Values shorter than four bytes are left alone: replacing them would garble every
/// line while hiding nothing worth hiding.
struct Redactor(Vec<String>);

impl Redactor {
    const MIN: usize = 4;

    fn new(secrets: &[BuildSecret]) -> Redactor {
        let mut needles: Vec<String> = Vec::new();
        for s in secrets {
            let text = String::from_utf8_lossy(&s.value).into_owned();
            for part in std::iter::once(text.as_str()).chain(text.lines()) {
                let part = part.trim_end_matches('\r');
                if part.trim().len() >= Self::MIN && !needles.iter().any(|n| n == part) {
                    needles.push(part.to_string());
                }
            }
        }
        // Longest first, so a whole value is replaced before its lines.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        Redactor(needles)
    }

    fn apply(&self, text: &str) -> String {
        let mut out = text.to_string();
        for n in &self.0 {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), "****");
            }
        }
        out
    }
}

/// The error for secrets on a builder that cannot take them.
pub(crate) fn no_secrets(profile: &BuilderProfile) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!(
            "{} cannot pass build secrets (RUN --mount=type=secret needs BuildKit); nothing was \
             built. Build on Docker with BuildKit or on Podman",
            profile.name
        ),
    )
}

/// Whether the engine refused a `version=2` build because it has no BuildKit.
fn buildkit_refused(e: &Error) -> bool {
    let m = e.message().to_ascii_lowercase();
    e.kind() == ErrorKind::InvalidArgument
        && m.contains("buildkit")
        && (m.contains("not supported") || m.contains("not enabled"))
}

/// The error for a build request the engine answered with an HTTP error.
fn refused(tag: &str, status: StatusCode, body: &[u8], redact: &Redactor) -> Error {
    let msg = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let msg = redact.apply(&clean_line(&msg));
    Error::new(
        super::errors::kind_of_status(status.as_u16(), &msg),
        format!("building {tag}: engine answered {status}: {msg}"),
    )
}

fn lost(tag: &str, e: hyper::Error) -> Error {
    Error::new(
        ErrorKind::EngineUnavailable,
        format!("building {tag}: lost the connection to the engine: {e}; check that it is running"),
    )
    .with_source(e)
}

fn json_map(m: &HashMap<String, String>) -> String {
    serde_json::to_string(m).unwrap_or_else(|_| "{}".into())
}

/// Appends each secret as a file to the context tar, under a random name, for Podman's
/// `secrets` parameter (`id=…,src=<name>`): Podman moves those files out of the context before
/// the build starts. Returns the new tar and the parameter's entries.
fn append_secret_files(tar: &[u8], secrets: &[BuildSecret]) -> Result<(Bytes, Vec<String>)> {
    use rand::Rng;
    // A tar ends with two zero blocks; new entries go where they start.
    let end = tar.len().saturating_sub(1024);
    if tar.len() < 1024 || tar[end..].iter().any(|&b| b != 0) {
        return Err(Error::internal(
            "the build context tar does not end with the end-of-archive blocks",
        ));
    }
    let mut out = Vec::with_capacity(tar.len() + secrets.len() * 1024);
    out.extend_from_slice(&tar[..end]);
    let mut builder = tar::Builder::new(out);
    let mut specs = Vec::new();
    let mut rng = rand::rng();
    for s in secrets {
        let name = format!(".headjack-secret-{:032x}", rng.random::<u128>());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o600);
        header.set_size(s.value.len() as u64);
        header.set_mtime(0);
        builder
            .append_data(&mut header, &name, s.value.as_slice())
            .map_err(|e| Error::io("adding a build secret to the context", e))?;
        specs.push(format!("id={},src={name}", s.id));
    }
    let out = builder
        .into_inner()
        .map_err(|e| Error::io("adding a build secret to the context", e))?;
    Ok((Bytes::from(out), specs))
}

/// `major.minor` of a version string such as `20.10.24+dfsg1` or `1.41`.
fn major_minor(v: &str) -> (u32, u32) {
    let mut parts = v.split(['.', '+', '-', '~']);
    let major = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor)
}

fn version_at_least(v: &str, major: u32, minor: u32) -> bool {
    major_minor(v) >= (major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(id: &str, value: &str) -> BuildSecret {
        BuildSecret {
            id: id.into(),
            value: value.as_bytes().to_vec(),
        }
    }

    #[test]
    fn versions_compare_by_major_and_minor() {
        assert_eq!(major_minor("20.10.24+dfsg1"), (20, 10));
        assert_eq!(major_minor("4.3.1"), (4, 3));
        assert_eq!(major_minor("1.41"), (1, 41));
        assert_eq!(major_minor("garbage"), (0, 0));
        assert!(version_at_least("1.41", 1, 39));
        assert!(!version_at_least("1.38", 1, 39));
        assert!(version_at_least("2.0", 1, 39));
    }

    #[test]
    fn engines_without_buildkit_are_recognised() {
        let daemon = Error::new(
            ErrorKind::InvalidArgument,
            "building x: engine answered 400 Bad Request: buildkit not supported by daemon",
        );
        assert!(buildkit_refused(&daemon));
        let disabled = Error::new(
            ErrorKind::InvalidArgument,
            "building x: engine answered 400: BuildKit is not enabled on daemon",
        );
        assert!(buildkit_refused(&disabled));
        let other = Error::new(ErrorKind::InvalidArgument, "building x: bad platform");
        assert!(!buildkit_refused(&other));
        let no_session = Error::new(
            ErrorKind::Unsupported,
            format!(
                "{} (HTTP 404 Not Found): …",
                "the engine refused a build session"
            ),
        );
        assert!(session::refused(&no_session));
        assert!(!session::refused(&other));
    }

    #[test]
    fn secrets_are_redacted_whole_and_by_line() {
        let r = Redactor::new(&[
            secret("a", "hunter2-token"),
            secret("b", "-----BEGIN KEY-----\r\nabcdef\r\n-----END KEY-----"),
            secret("c", "ab"),
        ]);
        assert_eq!(r.apply("token=hunter2-token!"), "token=****!");
        assert_eq!(r.apply("line abcdef here"), "line **** here");
        assert_eq!(r.apply("-----END KEY-----"), "****");
        assert_eq!(
            r.apply("ab is too short to hide"),
            "ab is too short to hide"
        );
        assert!(format!("{:?}", secret("x", "hunter2-token")).contains("13 bytes"));
        assert!(!format!("{:?}", secret("x", "hunter2-token")).contains("hunter2"));
    }

    #[test]
    fn messages_feed_lines_and_failures() {
        let mut steps = BuildStatus::default();
        let mut tail = LogTail::default();
        let mut failure = None;
        let lines = std::cell::RefCell::new(Vec::new());
        let emit = |l: &str| lines.borrow_mut().push(l.to_string());
        for raw in [
            &br#"{"stream":"Step 1/2 : FROM x\n"}"#[..],
            br#"{"stream":"\u001b[91mboom\u001b[0m\n"}"#,
            br#"{"errorDetail":{"message":"The command '/bin/sh -c false' returned a non-zero code: 1"},"error":"x"}"#,
            b"not json at all",
            b"  ",
        ] {
            handle_message(raw, &mut steps, &mut tail, &mut failure, &emit);
        }
        assert_eq!(
            *lines.borrow(),
            ["Step 1/2 : FROM x", "boom", "not json at all"]
        );
        assert!(failure.unwrap().contains("non-zero code: 1"));
        let (step, tail) = tail.into_parts();
        assert_eq!(step.as_deref(), Some("FROM x"));
        assert_eq!(tail, ["Step 1/2 : FROM x", "boom", "not json at all"]);
    }

    #[test]
    fn buildkit_trace_messages_become_step_lines() {
        use proto::{StatusResponse, Vertex};
        let status = StatusResponse {
            vertexes: vec![Vertex {
                digest: "d".into(),
                name: "[1/1] RUN true".into(),
                cached: true,
                ..Vertex::default()
            }],
            logs: vec![],
        };
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(proto::encode::status(&status));
        let raw = format!(r#"{{"id":"moby.buildkit.trace","aux":"{b64}"}}"#);
        let mut steps = BuildStatus::default();
        let mut tail = LogTail::default();
        let mut failure = None;
        let lines = std::cell::RefCell::new(Vec::new());
        let emit = |l: &str| lines.borrow_mut().push(l.to_string());
        handle_message(raw.as_bytes(), &mut steps, &mut tail, &mut failure, &emit);
        // A broken message is skipped.
        handle_message(
            br#"{"id":"moby.buildkit.trace","aux":"!!!"}"#,
            &mut steps,
            &mut tail,
            &mut failure,
            &emit,
        );
        assert_eq!(*lines.borrow(), ["#1 [1/1] RUN true", "#1 CACHED"]);
        assert!(failure.is_none());
    }

    #[test]
    fn secret_files_extend_the_tar() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        builder
            .append_data(&mut h, "Dockerfile", &b"x"[..])
            .unwrap();
        let tar = builder.into_inner().unwrap();
        let (out, specs) = append_secret_files(&tar, &[secret("tok", "s3cr3t-value")]).unwrap();
        let mut archive = tar::Archive::new(&out[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names.len(), 2);
        assert_eq!(names[0], "Dockerfile");
        assert!(names[1].starts_with(".headjack-secret-"));
        assert_eq!(specs, [format!("id=tok,src={}", names[1])]);
        assert!(append_secret_files(b"short", &[]).is_err());
    }
}
