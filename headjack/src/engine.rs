//! The container engine connection: the only module that talks bollard.
//!
//! Everything else in the crate speaks in headjack's own types, so a bollard upgrade (0.22
//! changes several signatures) touches this file alone. Every call runs inside a `tracing` span
//! and maps engine errors to [`Error`] with a message naming what was asked.

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::exec::StartExecResults;
use bollard::models::{
    ContainerConfig, ContainerCreateBody, ExecConfig, HostConfig, Mount, MountType,
    ResourcesUlimits,
};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CommitContainerOptionsBuilder, CreateContainerOptionsBuilder,
    CreateImageOptionsBuilder, DownloadFromContainerOptionsBuilder, KillContainerOptionsBuilder,
    ListImagesOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveImageOptionsBuilder, RestartContainerOptionsBuilder, StopContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use tokio::io::AsyncWrite;
use tracing::Instrument;

use crate::error::{BuildFailure, Error, ErrorKind, Result};
use crate::progress::{Progress, ProgressFn};

/// Which engine answered.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// Docker Engine (moby).
    Docker,
    /// Podman's Docker-compatible API.
    Podman,
}

/// What [`crate::Client::info`] reports about the connected engine.
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

/// Requests may legitimately take long (uploads of large build contexts, waits); deadlines that
/// matter to the user are applied by the caller with `tokio::time::timeout`.
const REQUEST_TIMEOUT_SECS: u64 = 3600;
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// A connected, version-negotiated engine. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Engine {
    docker: Docker,
    info: Arc<EngineInfo>,
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
    /// Connects to `host` if given, else to the first engine that answers (DESIGN §7).
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
                Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
            } else if host.starts_with("tcp://") || host.starts_with("http://") {
                Docker::connect_with_http(host, REQUEST_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
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
                docker: negotiated,
                info: Arc::new(info),
            })
        }
        .instrument(span)
        .await
    }

    pub(crate) fn info(&self) -> &EngineInfo {
        &self.info
    }
}

/// Maps a bollard error to headjack's, saying what was being done.
pub(crate) fn map_err(what: &str, e: BollardError) -> Error {
    let (kind, detail) = match &e {
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } => {
            let kind = kind_of_status(*status_code, message);
            (
                kind,
                format!("engine answered {status_code}: {}", message.trim()),
            )
        }
        BollardError::RequestTimeoutError => (
            ErrorKind::Timeout,
            "the engine did not answer in time".to_string(),
        ),
        BollardError::SocketNotFoundError(p) => (
            ErrorKind::EngineUnavailable,
            format!("engine socket {p} is gone"),
        ),
        BollardError::HyperResponseError { .. } | BollardError::IOError { .. } => (
            ErrorKind::EngineUnavailable,
            format!("lost the connection to the engine: {e}"),
        ),
        BollardError::DockerStreamError { error } => (ErrorKind::Internal, error.clone()),
        other => (ErrorKind::Internal, other.to_string()),
    };
    Error::new(kind, format!("{what}: {detail}")).with_source(e)
}

/// The kind for an engine answer. Podman often answers 500 where Docker gives 404/409, so
/// the message is consulted too.
fn kind_of_status(status: u16, message: &str) -> ErrorKind {
    let m = message.to_ascii_lowercase();
    match status {
        404 => ErrorKind::NotFound,
        409 => ErrorKind::Conflict,
        400 => ErrorKind::InvalidArgument,
        _ if m.contains("already in use") => ErrorKind::Conflict,
        _ if m.contains("not found") || m.contains("no such") => ErrorKind::NotFound,
        _ => ErrorKind::Internal,
    }
}

fn is_404(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// What headjack needs to know about a local image.
#[derive(Debug, Clone, Default)]
pub(crate) struct ImageDetails {
    pub id: String,
    pub labels: HashMap<String, String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub user: Option<String>,
}

/// A local image listed by label.
#[derive(Debug, Clone)]
pub(crate) struct ImageListing {
    pub id: String,
    pub tags: Vec<String>,
    pub labels: HashMap<String, String>,
    pub created: i64,
    pub size: i64,
}

/// A mount for [`ContainerPlan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PlanMount {
    Bind {
        source: String,
        target: String,
        read_only: bool,
    },
    Volume {
        name: String,
        target: String,
        read_only: bool,
    },
    Tmpfs {
        target: String,
        size: Option<i64>,
    },
}

/// Everything needed to create a container, in headjack's terms.
#[derive(Debug, Clone, Default)]
pub(crate) struct ContainerPlan {
    pub name: Option<String>,
    pub image: String,
    pub entrypoint: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub labels: HashMap<String, String>,
    pub mounts: Vec<PlanMount>,
    pub nano_cpus: Option<i64>,
    pub memory: Option<i64>,
    pub pids: Option<i64>,
    pub network: Option<String>,
    pub runtime: Option<String>,
    pub cap_drop_all: bool,
    pub read_only_root: bool,
    pub hostname: Option<String>,
}

/// State of a container as headjack reports it.
#[derive(Debug, Clone)]
pub(crate) struct ContainerDetails {
    pub id: String,
    pub name: String,
    pub image: String,
    pub status: String,
    pub exit_code: Option<i64>,
    pub labels: HashMap<String, String>,
    pub user: Option<String>,
}

/// One container found by a label query.
#[derive(Debug, Clone)]
pub(crate) struct ContainerListing {
    pub id: String,
    pub name: String,
    pub image: String,
    pub status: String,
    pub labels: HashMap<String, String>,
}

/// Parameters of one exec.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExecParams {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub stdin: bool,
    pub tty: bool,
}

/// Output of a running exec, demultiplexed.
pub(crate) enum ExecOutputChunk {
    Stdout(Bytes),
    Stderr(Bytes),
}

pub(crate) type OutputStream = Pin<Box<dyn Stream<Item = Result<ExecOutputChunk>> + Send>>;
pub(crate) type InputSink = Pin<Box<dyn AsyncWrite + Send>>;

/// Result of inspecting an exec.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExecState {
    pub running: bool,
    pub exit_code: Option<i64>,
}

fn chunk_of(out: LogOutput) -> Option<ExecOutputChunk> {
    match out {
        LogOutput::StdOut { message } | LogOutput::Console { message } => {
            Some(ExecOutputChunk::Stdout(message))
        }
        LogOutput::StdErr { message } => Some(ExecOutputChunk::Stderr(message)),
        LogOutput::StdIn { .. } => None,
    }
}

impl Engine {
    // ----- images -------------------------------------------------------------------------

    /// Inspects a local image; `None` when it does not exist.
    pub(crate) async fn image(&self, reference: &str) -> Result<Option<ImageDetails>> {
        let span = tracing::debug_span!("engine.inspect_image", reference);
        async {
            match self.docker.inspect_image(reference).await {
                Ok(img) => {
                    let config = img.config.unwrap_or_default();
                    Ok(Some(ImageDetails {
                        id: img.id.unwrap_or_default(),
                        labels: config.labels.unwrap_or_default(),
                        entrypoint: config.entrypoint,
                        cmd: config.cmd,
                        user: config.user.filter(|u| !u.is_empty()),
                    }))
                }
                Err(e) if is_404(&e) => Ok(None),
                Err(e) => Err(map_err(&format!("inspecting image {reference}"), e)),
            }
        }
        .instrument(span)
        .await
    }

    /// Pulls `image` (`name`, `tag_or_digest`), reporting progress.
    pub(crate) async fn pull(
        &self,
        shown: &str,
        name: &str,
        tag_or_digest: &str,
        platform: Option<&str>,
        credentials: Option<Credentials>,
        progress: Option<&ProgressFn>,
    ) -> Result<()> {
        let span = tracing::info_span!("engine.pull", image = %shown);
        async {
            let mut opts = CreateImageOptionsBuilder::default()
                .from_image(name)
                .tag(tag_or_digest);
            if let Some(p) = platform {
                opts = opts.platform(p);
            }
            let creds = credentials.map(|c| DockerCredentials {
                username: c.username,
                password: c.password,
                identitytoken: c.identity_token,
                serveraddress: Some(c.server),
                ..Default::default()
            });
            let mut stream = self.docker.create_image(Some(opts.build()), None, creds);
            while let Some(item) = stream.next().await {
                let info = item.map_err(|e| pull_error(shown, e))?;
                let detail = info.progress_detail.unwrap_or_default();
                ProgressFn::emit(
                    progress,
                    Progress::Pull {
                        image: shown.to_string(),
                        layer: info.id,
                        status: info.status.unwrap_or_default(),
                        current: detail.current.map(|v| v.max(0) as u64),
                        total: detail.total.map(|v| v.max(0) as u64),
                    },
                );
            }
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// Builds `context_tar` with the classic builder, streaming output lines to `progress`.
    /// Success is confirmed afterwards by inspecting `tag` (Podman and old engines may end a
    /// failed build with a clean EOF).
    pub(crate) async fn build(&self, params: BuildParams<'_>, context_tar: Vec<u8>) -> Result<()> {
        let span = tracing::info_span!("engine.build", tag = params.tag);
        async {
            let mut opts = BuildImageOptionsBuilder::default()
                .dockerfile(params.dockerfile)
                .t(params.tag)
                .rm(true)
                .forcerm(true)
                .labels(&params.labels)
                .buildargs(&params.build_args)
                .nocache(params.no_cache);
            if let Some(t) = params.target {
                opts = opts.target(t);
            }
            if let Some(p) = params.platform {
                opts = opts.platform(p);
            }
            let mut stream = self.docker.build_image(
                opts.build(),
                None,
                Some(bollard::body_full(Bytes::from(context_tar))),
            );
            let mut tail = LogTail::default();
            let mut failure: Option<String> = None;
            while let Some(item) = stream.next().await {
                match item {
                    Ok(info) => {
                        if let Some(text) = info.stream.or(info.status) {
                            for line in text.lines() {
                                tail.push(line);
                                ProgressFn::emit(
                                    params.progress,
                                    Progress::Build {
                                        tag: params.tag.to_string(),
                                        line: line.to_string(),
                                    },
                                );
                            }
                        }
                        if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                            failure = Some(detail);
                        }
                    }
                    Err(BollardError::DockerStreamError { error }) => {
                        failure = Some(error);
                        break;
                    }
                    Err(BollardError::JsonDataError { .. }) => {
                        // bollard 0.21 can trip over a split \r\n at the end of the stream;
                        // the inspect below decides.
                        break;
                    }
                    Err(e) => return Err(map_err(&format!("building {}", params.tag), e)),
                }
            }
            if failure.is_none() && self.image(params.tag).await?.is_some() {
                return Ok(());
            }
            let why =
                failure.unwrap_or_else(|| "the build ended without producing the image".into());
            Err(build_error(params.tag, &why, tail))
        }
        .instrument(span)
        .await
    }

    /// Lists every local image (callers filter: label and reference filters differ between
    /// engines, e.g. Podman matches any tag of an image).
    pub(crate) async fn all_images(&self) -> Result<Vec<ImageListing>> {
        let span = tracing::debug_span!("engine.list_images");
        async {
            // Podman fails the whole listing (500 "image not known") when an image is removed
            // while it lists; that is transient, so ask again.
            let mut attempt = 0;
            let list = loop {
                match self
                    .docker
                    .list_images(Some(ListImagesOptionsBuilder::default().build()))
                    .await
                    .map_err(|e| map_err("listing images", e))
                {
                    Err(e) if attempt < 5 && e.message().contains("image not known") => {
                        attempt += 1;
                        tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
                    }
                    other => break other?,
                }
            };
            Ok(list
                .into_iter()
                .map(|i| ImageListing {
                    id: i.id,
                    tags: i.repo_tags,
                    labels: i.labels,
                    created: i.created,
                    size: i.size,
                })
                .collect())
        }
        .instrument(span)
        .await
    }

    /// Tags image `source` (ID or reference) as `target` (`repo:tag`).
    pub(crate) async fn tag_image(&self, source: &str, target: &str) -> Result<()> {
        let span = tracing::debug_span!("engine.tag_image", source, target);
        let (repo, tag) = target.rsplit_once(':').unwrap_or((target, "latest"));
        let opts = bollard::query_parameters::TagImageOptionsBuilder::default()
            .repo(repo)
            .tag(tag)
            .build();
        self.docker
            .tag_image(source, Some(opts))
            .instrument(span)
            .await
            .map_err(|e| map_err(&format!("tagging {source} as {target}"), e))
    }

    /// Removes an image by ID or tag.
    pub(crate) async fn remove_image(&self, reference: &str, force: bool) -> Result<()> {
        let span = tracing::debug_span!("engine.remove_image", reference);
        async {
            match self
                .docker
                .remove_image(
                    reference,
                    Some(RemoveImageOptionsBuilder::default().force(force).build()),
                    None,
                )
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if is_404(&e) => Ok(()),
                Err(e) => Err(map_err(&format!("removing image {reference}"), e)),
            }
        }
        .instrument(span)
        .await
    }

    /// Commits a container to `repo:tag`, keeping the original image's entrypoint and command so
    /// the snapshot behaves like a normal base. Returns the new image ID.
    pub(crate) async fn commit(
        &self,
        container: &str,
        repo: &str,
        tag: &str,
        entrypoint: Option<Vec<String>>,
        cmd: Option<Vec<String>>,
        labels: HashMap<String, String>,
    ) -> Result<String> {
        let span = tracing::info_span!("engine.commit", container, repo, tag);
        async {
            let opts = CommitContainerOptionsBuilder::default()
                .container(container)
                .repo(repo)
                .tag(tag)
                .pause(true)
                .build();
            let config = ContainerConfig {
                // An empty entrypoint list resets the keep-alive command we launched with.
                entrypoint: Some(entrypoint.unwrap_or_default()),
                cmd,
                labels: Some(labels),
                ..Default::default()
            };
            let res = self
                .docker
                .commit_container(opts, config)
                .await
                .map_err(|e| {
                    map_err(
                        &format!("committing container {container} to {repo}:{tag}"),
                        e,
                    )
                })?;
            Ok(res.id)
        }
        .instrument(span)
        .await
    }

    // ----- containers ---------------------------------------------------------------------

    /// Creates (does not start) a container from `plan`; returns its ID.
    pub(crate) async fn create_container(&self, plan: &ContainerPlan) -> Result<String> {
        let span = tracing::info_span!("engine.create_container", image = %plan.image);
        async {
            let mounts = plan
                .mounts
                .iter()
                .map(|m| match m {
                    PlanMount::Bind {
                        source,
                        target,
                        read_only,
                    } => Mount {
                        typ: Some(MountType::BIND),
                        source: Some(source.clone()),
                        target: Some(target.clone()),
                        read_only: Some(*read_only),
                        ..Default::default()
                    },
                    PlanMount::Volume {
                        name,
                        target,
                        read_only,
                    } => Mount {
                        typ: Some(MountType::VOLUME),
                        source: Some(name.clone()),
                        target: Some(target.clone()),
                        read_only: Some(*read_only),
                        ..Default::default()
                    },
                    PlanMount::Tmpfs { target, size } => Mount {
                        typ: Some(MountType::TMPFS),
                        target: Some(target.clone()),
                        tmpfs_options: size.map(|s| bollard::models::MountTmpfsOptions {
                            size_bytes: Some(s),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                })
                .collect::<Vec<_>>();
            let host_config = HostConfig {
                init: Some(true),
                privileged: Some(false),
                security_opt: Some(vec!["no-new-privileges".to_string()]),
                mounts: Some(mounts),
                nano_cpus: plan.nano_cpus,
                memory: plan.memory,
                // Without a swap limit equal to memory, the container could swap past its limit.
                memory_swap: plan.memory,
                pids_limit: plan.pids,
                network_mode: plan.network.clone(),
                runtime: plan.runtime.clone(),
                cap_drop: plan.cap_drop_all.then(|| vec!["ALL".to_string()]),
                readonly_rootfs: Some(plan.read_only_root),
                ulimits: None::<Vec<ResourcesUlimits>>,
                ..Default::default()
            };
            let body = ContainerCreateBody {
                image: Some(plan.image.clone()),
                entrypoint: Some(plan.entrypoint.clone()),
                cmd: Some(vec![]),
                env: Some(plan.env.clone()),
                user: plan.user.clone(),
                working_dir: plan.workdir.clone(),
                labels: Some(plan.labels.clone()),
                hostname: plan.hostname.clone(),
                network_disabled: None,
                host_config: Some(host_config),
                ..Default::default()
            };
            let mut opts = CreateContainerOptionsBuilder::default();
            if let Some(name) = &plan.name {
                opts = opts.name(name);
            }
            let res = self
                .docker
                .create_container(Some(opts.build()), body)
                .await
                .map_err(|e| {
                    let err = map_err(&format!("creating a container from {}", plan.image), e);
                    if err.kind() == ErrorKind::NotFound
                        && err.message().to_ascii_lowercase().contains("image")
                    {
                        Error::new(ErrorKind::ImageNotFound, err.message().to_string())
                    } else {
                        err
                    }
                })?;
            for w in res.warnings {
                tracing::warn!(warning = %w, "engine warning on create");
            }
            Ok(res.id)
        }
        .instrument(span)
        .await
    }

    pub(crate) async fn start(&self, id: &str) -> Result<()> {
        let span = tracing::debug_span!("engine.start", id);
        self.docker
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
            .instrument(span)
            .await
            .map_err(|e| map_err(&format!("starting container {id}"), e))
    }

    pub(crate) async fn stop(&self, id: &str, grace: Duration) -> Result<()> {
        let span = tracing::debug_span!("engine.stop", id);
        let opts = StopContainerOptionsBuilder::default()
            .t(grace.as_secs() as i32)
            .build();
        match self
            .docker
            .stop_container(id, Some(opts))
            .instrument(span)
            .await
        {
            Ok(()) => Ok(()),
            // 304: already stopped.
            Err(BollardError::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(map_err(&format!("stopping container {id}"), e)),
        }
    }

    pub(crate) async fn kill(&self, id: &str, signal: &str) -> Result<()> {
        let span = tracing::debug_span!("engine.kill", id, signal);
        let opts = KillContainerOptionsBuilder::default()
            .signal(signal)
            .build();
        self.docker
            .kill_container(id, Some(opts))
            .instrument(span)
            .await
            .map_err(|e| map_err(&format!("sending {signal} to container {id}"), e))
    }

    pub(crate) async fn restart(&self, id: &str, grace: Duration) -> Result<()> {
        let span = tracing::debug_span!("engine.restart", id);
        let opts = RestartContainerOptionsBuilder::default()
            .t(grace.as_secs() as i32)
            .build();
        self.docker
            .restart_container(id, Some(opts))
            .instrument(span)
            .await
            .map_err(|e| map_err(&format!("restarting container {id}"), e))
    }

    pub(crate) async fn pause(&self, id: &str) -> Result<()> {
        let span = tracing::debug_span!("engine.pause", id);
        self.docker
            .pause_container(id)
            .instrument(span)
            .await
            .map_err(|e| map_err(&format!("pausing container {id}"), e))
    }

    pub(crate) async fn unpause(&self, id: &str) -> Result<()> {
        let span = tracing::debug_span!("engine.unpause", id);
        self.docker
            .unpause_container(id)
            .instrument(span)
            .await
            .map_err(|e| map_err(&format!("resuming container {id}"), e))
    }

    /// Force-removes a container and its anonymous volumes. A container that is already gone
    /// counts as removed.
    pub(crate) async fn remove(&self, id: &str) -> Result<()> {
        let span = tracing::debug_span!("engine.remove", id);
        let opts = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self
            .docker
            .remove_container(id, Some(opts))
            .instrument(span)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_404(&e) => Ok(()),
            // Removal already in progress (another handle, or the engine's auto-remove).
            Err(BollardError::DockerResponseServerError {
                status_code: 409,
                message,
            }) if message.contains("already in progress") => Ok(()),
            Err(e) => Err(map_err(&format!("removing container {id}"), e)),
        }
    }

    /// Inspects a container (untyped JSON, for the same reason as the listing below).
    pub(crate) async fn inspect(&self, id: &str) -> Result<ContainerDetails> {
        let span = tracing::debug_span!("engine.inspect", id);
        async {
            let c = self
                .get_json(&format!("/containers/{}/json", percent_encode(id)))
                .await
                .map_err(|e| e.context(format!("inspecting container {id}")))?;
            let text = |v: Option<&serde_json::Value>| {
                v.and_then(|v| v.as_str()).unwrap_or_default().to_string()
            };
            let config = c.get("Config");
            let state = c.get("State");
            Ok(ContainerDetails {
                id: text(c.get("Id")),
                name: text(c.get("Name")).trim_start_matches('/').to_string(),
                image: text(config.and_then(|c| c.get("Image"))),
                status: text(state.and_then(|s| s.get("Status"))),
                exit_code: state
                    .and_then(|s| s.get("ExitCode"))
                    .and_then(|v| v.as_i64()),
                labels: string_map(config.and_then(|c| c.get("Labels"))),
                user: Some(text(config.and_then(|c| c.get("User")))).filter(|u| !u.is_empty()),
            })
        }
        .instrument(span)
        .await
    }

    /// Lists containers (running or not) carrying every label in `labels` (`key=value`).
    ///
    /// Read as plain JSON rather than through bollard's typed summary: Podman reports states
    /// (`stopped`) that the typed enum rejects, which would make one odd container break
    /// listing all of them.
    pub(crate) async fn containers_with_labels(
        &self,
        labels: &[String],
    ) -> Result<Vec<ContainerListing>> {
        let span = tracing::debug_span!("engine.list_containers");
        async {
            let filters = serde_json::json!({ "label": labels }).to_string();
            let query = format!(
                "/containers/json?all=1&filters={}",
                percent_encode(&filters)
            );
            let value = self
                .get_json(&query)
                .await
                .map_err(|e| e.context("listing containers"))?;
            let items = value.as_array().cloned().unwrap_or_default();
            Ok(items
                .into_iter()
                .map(|c| {
                    let text = |k: &str| {
                        c.get(k)
                            .and_then(|v| v.as_str())
                            .unwrap_or_default()
                            .to_string()
                    };
                    let labels = string_map(c.get("Labels"));
                    let name = c
                        .get("Names")
                        .and_then(|n| n.as_array())
                        .and_then(|n| n.first())
                        .and_then(|n| n.as_str())
                        .unwrap_or_default()
                        .trim_start_matches('/')
                        .to_string();
                    ContainerListing {
                        id: text("Id"),
                        name,
                        image: text("Image"),
                        status: text("State"),
                        labels,
                    }
                })
                .collect())
        }
        .instrument(span)
        .await
    }

    /// A GET whose JSON answer is returned untyped (HTTP/1.0, so the body is not chunked).
    async fn get_json(&self, path_and_query: &str) -> Result<serde_json::Value> {
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
        let mut raw = Vec::new();
        if let Some(path) = host.strip_prefix("unix://") {
            let mut s = tokio::net::UnixStream::connect(path).await.map_err(io)?;
            s.write_all(request.as_bytes()).await.map_err(io)?;
            s.read_to_end(&mut raw).await.map_err(io)?;
        } else {
            let addr = host
                .trim_start_matches("tcp://")
                .trim_start_matches("http://")
                .trim_end_matches('/');
            let mut s = tokio::net::TcpStream::connect(addr).await.map_err(io)?;
            s.write_all(request.as_bytes()).await.map_err(io)?;
            s.read_to_end(&mut raw).await.map_err(io)?;
        }
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
        serde_json::from_slice(body)
            .map_err(|e| Error::internal(format!("the engine sent JSON headjack cannot read: {e}")))
    }

    /// Container logs (the keep-alive process's output), optionally followed.
    pub(crate) fn logs(&self, id: &str, follow: bool) -> OutputStream {
        let opts = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(follow)
            .tail("all")
            .build();
        let what = format!("reading logs of container {id}");
        let s = self
            .docker
            .logs(id, Some(opts))
            .map_err(move |e| map_err(&what, e))
            .try_filter_map(|o| async move { Ok(chunk_of(o)) });
        Box::pin(s)
    }

    // ----- exec ---------------------------------------------------------------------------

    /// Creates and starts an exec; returns its ID, its output and (if requested) its stdin.
    pub(crate) async fn exec(
        &self,
        container: &str,
        params: ExecParams,
    ) -> Result<(String, OutputStream, Option<InputSink>)> {
        let span = tracing::debug_span!("engine.exec", container, cmd = ?params.cmd);
        async {
            let config = ExecConfig {
                cmd: Some(params.cmd),
                env: Some(params.env),
                working_dir: params.workdir,
                user: params.user,
                attach_stdin: Some(params.stdin),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(params.tty),
                ..Default::default()
            };
            let created = self
                .docker
                .create_exec(container, config)
                .await
                .map_err(|e| exec_error(container, e))?;
            let started = self
                .docker
                .start_exec(&created.id, None::<bollard::exec::StartExecOptions>)
                .await
                .map_err(|e| exec_error(container, e))?;
            match started {
                StartExecResults::Attached { output, input } => {
                    let what = format!("reading exec output in container {container}");
                    let output = output
                        .map_err(move |e| map_err(&what, e))
                        .try_filter_map(|o| async move { Ok(chunk_of(o)) });
                    Ok((
                        created.id,
                        Box::pin(output) as OutputStream,
                        params.stdin.then_some(input),
                    ))
                }
                StartExecResults::Detached => {
                    Err(Error::internal("exec started detached unexpectedly"))
                }
            }
        }
        .instrument(span)
        .await
    }

    pub(crate) async fn exec_state(&self, exec_id: &str) -> Result<ExecState> {
        let span = tracing::debug_span!("engine.inspect_exec", exec_id);
        let r = self
            .docker
            .inspect_exec(exec_id)
            .instrument(span)
            .await
            .map_err(|e| map_err("inspecting an exec", e))?;
        Ok(ExecState {
            running: r.running.unwrap_or(false),
            exit_code: r.exit_code,
        })
    }

    pub(crate) async fn resize_exec(&self, exec_id: &str, rows: u16, cols: u16) -> Result<()> {
        let opts = bollard::query_parameters::ResizeExecOptionsBuilder::default()
            .h(rows as i32)
            .w(cols as i32)
            .build();
        self.docker
            .resize_exec(exec_id, opts)
            .await
            .map_err(|e| map_err("resizing an exec terminal", e))
    }

    // ----- files --------------------------------------------------------------------------

    /// Extracts `tar` into directory `path` of the container.
    /// With `chown`, the engine gives the files to the container's configured user.
    pub(crate) async fn upload(
        &self,
        id: &str,
        path: &str,
        tar: Vec<u8>,
        chown: bool,
    ) -> Result<()> {
        let span = tracing::debug_span!("engine.upload", id, path, bytes = tar.len());
        let mut opts = UploadToContainerOptionsBuilder::default().path(path);
        if chown {
            opts = opts.copy_uidgid("1");
        }
        let opts = opts.build();
        self.docker
            .upload_to_container(id, Some(opts), bollard::body_full(Bytes::from(tar)))
            .instrument(span)
            .await
            .map_err(|e| map_err(&format!("copying into {path} in container {id}"), e))
    }

    /// Downloads `path` from the container as a tar stream.
    pub(crate) fn download(
        &self,
        id: &str,
        path: &str,
    ) -> Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>> {
        let opts = DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        let what = format!("copying {path} out of container {id}");
        Box::pin(
            self.docker
                .download_from_container(id, Some(opts))
                .map_err(move |e| map_err(&what, e)),
        )
    }
}

/// A JSON object of strings as a map (missing or null → empty).
fn string_map(v: Option<&serde_json::Value>) -> HashMap<String, String> {
    v.and_then(|l| l.as_object())
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass through).
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
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
}

/// Registry credentials for one pull.
#[derive(Clone, Default)]
pub(crate) struct Credentials {
    pub server: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub identity_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets, not even in debug logs.
        f.debug_struct("Credentials")
            .field("server", &self.server)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

fn pull_error(image: &str, e: BollardError) -> Error {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    let (kind, advice) = if lower.contains("unauthorized")
        || lower.contains("authentication required")
        || lower.contains("denied")
    {
        (
            ErrorKind::PullFailed,
            "check the credentials for this registry in ~/.docker/config.json (docker login)",
        )
    } else if lower.contains("not found")
        || lower.contains("manifest unknown")
        || lower.contains("does not exist")
    {
        (ErrorKind::ImageNotFound, "check the image name and tag")
    } else {
        (
            ErrorKind::PullFailed,
            "check that the registry is reachable from the engine",
        )
    };
    let detail = match &e {
        BollardError::DockerStreamError { error } => error.clone(),
        BollardError::DockerResponseServerError { message, .. } => message.clone(),
        _ => text,
    };
    Error::new(
        kind,
        format!("pulling {image} failed: {}; {advice}", detail.trim()),
    )
    .with_source(e)
}

fn exec_error(container: &str, e: BollardError) -> Error {
    let err = map_err(&format!("running a command in container {container}"), e);
    // Podman says 500 "container state improper" where Docker says 409 "is not running".
    let not_running =
        err.message().contains("state improper") || err.message().contains("is not running");
    match err.kind() {
        _ if not_running => Error::new(
            ErrorKind::Conflict,
            format!(
                "{}; the container is not running (start or resume it first)",
                err.message()
            ),
        ),
        ErrorKind::Conflict => Error::new(
            ErrorKind::Conflict,
            format!(
                "{}; the container is not running (start or resume it first)",
                err.message()
            ),
        ),
        ErrorKind::Internal | ErrorKind::InvalidArgument => {
            Error::new(ErrorKind::ExecFailed, err.message().to_string())
        }
        _ => err,
    }
}

/// The last lines of build output, kept for error reports.
#[derive(Default)]
struct LogTail {
    lines: std::collections::VecDeque<String>,
    last_step: Option<String>,
}

const LOG_TAIL_LINES: usize = 30;

impl LogTail {
    fn push(&mut self, line: &str) {
        let line = line.trim_end();
        if line.is_empty() {
            return;
        }
        // Docker: "Step 3/5 : RUN make"; Podman/buildah: "STEP 3/5: RUN make".
        let upper = line.get(..5).map(|s| s.to_ascii_uppercase());
        if upper.as_deref() == Some("STEP ")
            && let Some((_, step)) = line.split_once(':')
        {
            self.last_step = Some(step.trim().to_string());
        }
        if self.lines.len() == LOG_TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line.to_string());
    }
}

fn build_error(tag: &str, why: &str, tail: LogTail) -> Error {
    let step = tail.last_step.clone();
    let at = step
        .as_deref()
        .map(|s| format!(" at step `{s}`"))
        .unwrap_or_default();
    let last: Vec<String> = tail.lines.into_iter().collect();
    let shown = last
        .iter()
        .rev()
        .take(5)
        .rev()
        .cloned()
        .collect::<Vec<_>>()
        .join("\n  ");
    Error::new(
        ErrorKind::BuildFailed,
        format!(
            "building {tag} failed{at}: {}\n  {shown}\nFix the Dockerfile step and spawn again; unchanged steps come from the layer cache",
            why.trim()
        ),
    )
    .with_build_failure(BuildFailure { step, log_tail: last })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tail_finds_docker_and_podman_steps() {
        let mut t = LogTail::default();
        t.push("Step 2/3 : RUN false");
        assert_eq!(t.last_step.as_deref(), Some("RUN false"));
        t.push("STEP 3/3: RUN exit 3");
        assert_eq!(t.last_step.as_deref(), Some("RUN exit 3"));
        for i in 0..100 {
            t.push(&format!("line {i}"));
        }
        assert_eq!(t.lines.len(), LOG_TAIL_LINES);
        assert_eq!(t.lines.back().map(String::as_str), Some("line 99"));
    }

    #[test]
    fn build_error_names_step_and_tail() {
        let mut t = LogTail::default();
        t.push("Step 2/2 : RUN echo boom && false");
        t.push("boom");
        let e = build_error(
            "localhost/headjack/x:1",
            "The command returned a non-zero code: 1",
            t,
        );
        assert_eq!(e.kind(), ErrorKind::BuildFailed);
        assert_eq!(e.build_step(), Some("RUN echo boom && false"));
        assert!(e.message().contains("boom"));
        assert!(e.build_log().iter().any(|l| l == "boom"));
    }

    #[test]
    fn server_errors_map_to_kinds() {
        let e = map_err(
            "x",
            BollardError::DockerResponseServerError {
                status_code: 404,
                message: "no such".into(),
            },
        );
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = map_err(
            "x",
            BollardError::DockerResponseServerError {
                status_code: 409,
                message: "in use".into(),
            },
        );
        assert_eq!(e.kind(), ErrorKind::Conflict);
    }
}
