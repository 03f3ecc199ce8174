//! Images: inspect, pull, list, tag, remove, commit (builds are in [`super::build`]).

use std::collections::HashMap;
use std::time::Duration;

use bollard::auth::DockerCredentials;
use bollard::models::ContainerConfig;
use bollard::query_parameters::{
    CommitContainerOptionsBuilder, CreateImageOptionsBuilder, ListImagesOptionsBuilder,
    RemoveImageOptionsBuilder,
};
use futures_util::StreamExt;
use tracing::Instrument;

use super::Engine;
use super::errors::{is_404, map_err, pull_error};
use crate::error::Result;
use crate::progress::{Progress, ProgressFn};

/// What headjack needs to know about a local image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ImageDetails {
    pub id: String,
    pub labels: HashMap<String, String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub user: Option<String>,
    /// `Config.Shell` (what shell-form instructions of a build on this image run with).
    pub shell: Option<Vec<String>>,
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

impl Engine {
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
                        shell: config.shell.filter(|s| !s.is_empty()),
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
            let mut stream = self.transfer.create_image(Some(opts.build()), None, creds);
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
                .transfer
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
