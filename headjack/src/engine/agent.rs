//! What the in-container agent needs from the engine: the container's stdio as a byte channel
//! (attached before start), and a named volume that carries the agent binary into every
//! container without a host path the engine must see (remote engines included).

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType, VolumeCreateRequest};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use bytes::Bytes;
use futures_util::TryStreamExt;
use tracing::Instrument;

use super::Engine;
use super::errors::map_err;
use super::exec::{InputSink, OutputStream, chunk_of};
use crate::error::Result;

impl Engine {
    /// Attaches to a container's stdin, stdout and stderr (hijacked); call it before starting
    /// the container so nothing it writes is missed. Output arrives demultiplexed.
    pub(crate) async fn attach_stdio(&self, id: &str) -> Result<(OutputStream, InputSink)> {
        let span = tracing::debug_span!("engine.attach", id);
        let opts = AttachContainerOptionsBuilder::default()
            .stream(true)
            .stdin(true)
            .stdout(true)
            .stderr(true)
            .build();
        let attached = self
            .docker
            .attach_container(id, Some(opts))
            .instrument(span)
            .await
            .map_err(|e| map_err(&format!("attaching to container {id}"), e))?;
        let what = format!("reading the stdio of container {id}");
        let output = attached
            .output
            .map_err(move |e| map_err(&what, e))
            .try_filter_map(|o| async move { Ok(chunk_of(o)) });
        Ok((Box::pin(output), attached.input))
    }

    /// The names among `names` of the volumes that exist.
    pub(crate) async fn existing_volumes(&self, names: &[&str]) -> Result<Vec<String>> {
        let span = tracing::debug_span!("engine.list_volumes");
        let filters: HashMap<&str, Vec<&str>> = HashMap::from([("name", names.to_vec())]);
        let opts = ListVolumesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let found = self
            .docker
            .list_volumes(Some(opts))
            .instrument(span)
            .await
            .map_err(|e| map_err("listing volumes", e))?;
        // The engine's name filter matches substrings: keep exact names only.
        Ok(found
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .filter(|n| names.contains(&n.as_str()))
            .collect())
    }

    /// Creates named volume `name` (an existing one is left as it is).
    pub(crate) async fn create_volume(
        &self,
        name: &str,
        labels: HashMap<String, String>,
    ) -> Result<()> {
        let span = tracing::debug_span!("engine.create_volume", name);
        self.docker
            .create_volume(VolumeCreateRequest {
                name: Some(name.to_string()),
                labels: Some(labels),
                ..Default::default()
            })
            .instrument(span)
            .await
            .map(|_| ())
            .map_err(|e| map_err(&format!("creating volume {name}"), e))
    }

    /// Extracts `tar` into volume `volume` through a container of `image` that is created (never
    /// started) with the volume mounted at `at`, then removed.
    pub(crate) async fn fill_volume(
        &self,
        volume: &str,
        image: &str,
        at: &str,
        tar: Bytes,
    ) -> Result<()> {
        let span = tracing::debug_span!("engine.fill_volume", volume, image);
        async {
            let body = ContainerCreateBody {
                image: Some(image.to_string()),
                entrypoint: Some(vec![format!("{at}/unused")]),
                cmd: Some(vec![]),
                labels: Some(HashMap::from([(
                    crate::labels::AGENT.to_string(),
                    "filler".to_string(),
                )])),
                network_disabled: Some(true),
                host_config: Some(HostConfig {
                    mounts: Some(vec![Mount {
                        typ: Some(MountType::VOLUME),
                        source: Some(volume.to_string()),
                        target: Some(at.to_string()),
                        read_only: Some(false),
                        ..Default::default()
                    }]),
                    network_mode: Some("none".into()),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let created = self
                .docker
                .create_container(Some(CreateContainerOptionsBuilder::default().build()), body)
                .await
                .map_err(|e| {
                    map_err(&format!("creating a container to fill volume {volume}"), e)
                })?;
            let opts = UploadToContainerOptionsBuilder::default().path(at).build();
            let uploaded = self
                .transfer
                .upload_to_container(&created.id, Some(opts), bollard::body_full(tar))
                .await
                .map_err(|e| map_err(&format!("copying into volume {volume}"), e));
            let removed = self
                .docker
                .remove_container(
                    &created.id,
                    Some(RemoveContainerOptionsBuilder::default().force(true).build()),
                )
                .await
                .map_err(|e| map_err(&format!("removing the container that filled {volume}"), e));
            uploaded.and(removed)
        }
        .instrument(span)
        .await
    }
}
