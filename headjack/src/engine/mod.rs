//! The container engine: the only module that talks bollard, and the one place that knows the
//! Docker API's semantics (docs/ARCHITECTURE.md#engine).
//!
//! Everything else in the crate speaks in headjack's own types, so a bollard upgrade (0.22
//! changes several signatures) touches this folder alone, and a second backend (Kubernetes) can
//! later implement the same operations. One file per API area, as bollard does it:
//! [`containers`] (create, lifecycle, inspect, list, logs, archives), [`images`] (inspect, pull,
//! tag, remove, commit), [`build`] (BuildKit and classic builds, build secrets), [`exec`],
//! [`raw`] (untyped requests) and [`errors`] (every classification of engine answers and texts). Every call runs inside a `tracing` span and maps
//! engine errors to [`Error`] with a message naming what was asked.

mod agent;
mod build;
mod containers;
mod errors;
mod exec;
mod images;
mod networks;
mod raw;
mod sandbox;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use bollard::Docker;
use tracing::Instrument;

use crate::error::{Error, ErrorKind, Result};

pub(crate) use build::{
    BuildInput, BuildParams, BuildSecret, BuilderKind, BuilderProfile, Content, SyncDirs,
    SyncEntry, SyncKind,
};
pub(crate) use containers::{ContainerDetails, ContainerPlan, PlanMount};
pub(crate) use errors::{StartFailure, identity_failure, looks_like_start_failure, start_failure};
pub(crate) use exec::{ExecOutputChunk, ExecParams, InputSink, OutputStream};
pub(crate) use images::{Credentials, ImageDetails};
pub(crate) use sandbox::{ExtraLimits, VolumeDetails};

/// A JSON object of strings as a map (for the other modules of the crate).
pub(crate) fn string_map_pub(
    v: Option<&serde_json::Value>,
) -> std::collections::HashMap<String, String> {
    raw::string_map(v)
}

/// Which engine answered.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// Docker Engine (moby).
    Docker,
    /// Podman's Docker-compatible API.
    Podman,
}

/// What [`crate::client::Client::info`] reports about the connected engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInfo {
    /// Docker or Podman.
    pub kind: EngineKind,
    /// The engine's own version, e.g. `20.10.24` or `4.3.1`.
    pub version: String,
    /// The negotiated API version used for every request, e.g. `1.41`.
    pub api_version: String,
    /// Where the engine was reached, e.g. `unix:///var/run/docker.sock`.
    pub host: String,
    /// The engine's operating system (`linux`).
    pub os: String,
    /// The engine's architecture (`amd64`, `arm64`).
    pub arch: String,
}

/// How long an engine call may take until the engine has answered (the head of its answer; a
/// streamed body such as a command's output is not bounded by it). A frozen engine fails every
/// call within this bound instead of hanging its callers. See [`crate::client::Client::with_timeout`].
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The bound for calls that move data before the engine answers (build contexts, archives,
/// pulls, commits): they may legitimately take long.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(3600);
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// A connected, version-negotiated engine. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Engine {
    /// For ordinary calls, bounded by `timeout`.
    docker: Docker,
    /// For calls that move data first, bounded by [`TRANSFER_TIMEOUT`].
    transfer: Docker,
    info: Arc<EngineInfo>,
    timeout: Duration,
    /// Set when the engine refused a BuildKit build: later builds go to the classic builder.
    buildkit_unavailable: Arc<AtomicBool>,
}

/// Where to look for an engine when the caller named none, in order.
fn default_candidates() -> Vec<String> {
    // A configured host is the user's choice: falling back to another engine silently would
    // run their containers somewhere they did not ask for.
    if let Ok(h) = std::env::var("DOCKER_HOST")
        && !h.trim().is_empty()
    {
        return vec![h];
    }
    let mut c = vec!["unix:///var/run/docker.sock".to_string()];
    let home = std::env::var_os("HOME").map(PathBuf::from);
    if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        c.push(format!(
            "unix://{}",
            xdg.join(".docker/run/docker.sock").display()
        ));
    }
    if let Some(home) = &home {
        c.push(format!(
            "unix://{}",
            home.join(".docker/run/docker.sock").display()
        ));
        c.push(format!(
            "unix://{}",
            home.join(".docker/desktop/docker.sock").display()
        ));
    }
    if let Some(xdg) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        c.push(format!(
            "unix://{}",
            xdg.join("podman/podman.sock").display()
        ));
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    c.push(format!("unix:///run/user/{uid}/podman/podman.sock"));
    c.push("unix:///run/podman/podman.sock".to_string());
    c.dedup();
    c
}

impl Engine {
    /// Connects to `host` if given, else to the first engine that answers (docs/ARCHITECTURE.md#engine).
    pub(crate) async fn connect(host: Option<&str>) -> Result<Engine> {
        let candidates = match host {
            Some(h) => vec![h.to_string()],
            None => default_candidates(),
        };
        let mut tried = Vec::new();
        for candidate in &candidates {
            match Self::try_connect(candidate).await {
                Ok(engine) => return Ok(engine),
                Err(why) => {
                    tracing::debug!(host = %candidate, %why, "engine candidate failed");
                    tried.push(format!("{candidate} ({why})"));
                }
            }
        }
        Err(Error::new(
            ErrorKind::EngineUnavailable,
            format!(
                "no container engine answered; tried: {}. Start Docker or Podman \
                 (`podman system service`), or point DOCKER_HOST at a running engine",
                tried.join("; ")
            ),
        ))
    }

    async fn try_connect(host: &str) -> std::result::Result<Engine, String> {
        let span = tracing::debug_span!("engine.connect", host);
        async {
            let docker = if let Some(path) = host.strip_prefix("unix://") {
                if !std::path::Path::new(path).exists() {
                    return Err("no such socket".to_string());
                }
                Docker::connect_with_unix(
                    path,
                    DEFAULT_TIMEOUT.as_secs(),
                    bollard::API_DEFAULT_VERSION,
                )
            } else if host.starts_with("tcp://") || host.starts_with("http://") {
                Docker::connect_with_http(
                    host,
                    DEFAULT_TIMEOUT.as_secs(),
                    bollard::API_DEFAULT_VERSION,
                )
            } else {
                return Err("unsupported scheme: use unix://, tcp:// or http://".to_string());
            }
            .map_err(|e| e.to_string())?;
            let negotiated = tokio::time::timeout(PING_TIMEOUT, docker.negotiate_version())
                .await
                .map_err(|_| format!("no answer within {}s", PING_TIMEOUT.as_secs()))?
                .map_err(|e| e.to_string())?;
            let version = tokio::time::timeout(PING_TIMEOUT, negotiated.version())
                .await
                .map_err(|_| format!("no answer within {}s", PING_TIMEOUT.as_secs()))?
                .map_err(|e| e.to_string())?;
            let is_podman = version
                .components
                .iter()
                .flatten()
                .any(|c| c.name.to_ascii_lowercase().contains("podman"));
            let api = negotiated.client_version();
            let info = EngineInfo {
                kind: if is_podman {
                    EngineKind::Podman
                } else {
                    EngineKind::Docker
                },
                version: version.version.clone().unwrap_or_default(),
                api_version: format!("{}.{}", api.major_version, api.minor_version),
                host: host.to_string(),
                os: version.os.clone().unwrap_or_default(),
                arch: version.arch.clone().unwrap_or_default(),
            };
            tracing::debug!(?info, "engine connected");
            Ok(Engine {
                transfer: negotiated.clone().with_timeout(TRANSFER_TIMEOUT),
                docker: negotiated,
                info: Arc::new(info),
                timeout: DEFAULT_TIMEOUT,
                buildkit_unavailable: Arc::default(),
            })
        }
        .instrument(span)
        .await
    }

    pub(crate) fn info(&self) -> &EngineInfo {
        &self.info
    }

    /// The same engine with another bound on ordinary calls.
    pub(crate) fn with_timeout(&self, timeout: Duration) -> Engine {
        Engine {
            docker: self.docker.clone().with_timeout(timeout),
            transfer: self.transfer.clone(),
            info: self.info.clone(),
            timeout,
            buildkit_unavailable: self.buildkit_unavailable.clone(),
        }
    }

    /// The bound on ordinary calls.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }
}
