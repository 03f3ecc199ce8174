//! Spawning an instance, as one pipeline read top to bottom:
//!
//! 1. [`resolve`]: the base → a local image (`HEADJACK_BASE` and the default base, a registry
//!    image pulled per policy, or a Dockerfile built once per content);
//! 2. [`plan`]: the spec → a container plan (pure: labels, mounts, limits, security), table-tested
//!    without an engine;
//! 3. [`launch`]: create and start the container, wait until it is ready.

mod launch;
mod plan;
mod resolve;

use tracing::Instrument;

use crate::engine::Engine;
use crate::error::Result;
use crate::instance::Instance;
use crate::labels;
use crate::spec::Spec;

use launch::LaunchError;
pub use resolve::ResolvedImage;
pub(crate) use resolve::resolve;

/// The volume carrying the in-container agent, when this instance runs it: not when the spec
/// asks for the engine's exec, the library carries no agent, or the engine runs another CPU
/// architecture. A failure to deliver it is not a failed spawn: the engine's exec serves.
async fn agent_volume(engine: &Engine, spec: &Spec, image: &ResolvedImage) -> Option<String> {
    if spec.engine_exec || crate::agent::delivery::binary().is_none() {
        return None;
    }
    let arch = &engine.info().arch;
    if !arch.is_empty() && arch != crate::agent::delivery::engine_arch() {
        tracing::debug!(%arch, "the engine runs another architecture: no agent");
        return None;
    }
    match crate::agent::delivery::ensure_volume(engine, &image.reference).await {
        Ok(volume) => Some(volume),
        Err(e) => {
            tracing::warn!(error = %e, "cannot deliver the in-container agent; using the engine's exec");
            None
        }
    }
}

/// Resolves `spec`'s base, creates and starts a container for it, and waits until it is ready.
pub(crate) async fn spawn(engine: &Engine, spec: Spec) -> Result<Instance> {
    spec.validate()?;
    let base = spec.resolved_base()?;
    let span = tracing::info_span!("headjack.spawn", base = %base);
    async {
        let image = resolve(engine, &base, &spec).await?;
        let owner = plan::owner_label(&spec);
        let agent = agent_volume(engine, &spec, &image).await;
        let now = std::time::SystemTime::now();
        let id = labels::random_id();
        // With an egress policy: the instance's own network, the proxy on it (fail-closed: any
        // failure here or in registering the instance is a failed spawn).
        let egress = match &spec.egress {
            Some(e) => Some(crate::egress::prepare(engine, e, &id).await?),
            None => None,
        };
        let launched = async {
            let mut planned =
                plan::plan(&spec, &base, &image, &id, &owner, now, agent.as_deref())?;
            if let Some(e) = &egress {
                e.apply(&mut planned);
            }
            match launch::launch(engine, planned, image.clone(), id.clone(), &spec, egress.as_ref())
                .await
            {
                Ok(instance) => Ok(instance),
                Err(LaunchError::Other(e)) => Err(e),
                // The agent could not come up in this image (e.g. it cannot run there): the
                // engine's exec serves the instance instead, with the same behaviour.
                Err(LaunchError::Agent(e)) => {
                    tracing::warn!(error = %e, "the in-container agent did not start; using the engine's exec");
                    let id = labels::random_id();
                    let mut planned = plan::plan(&spec, &base, &image, &id, &owner, now, None)?;
                    if let Some(e) = &egress {
                        e.apply(&mut planned);
                    }
                    launch::launch(engine, planned, image, id, &spec, egress.as_ref())
                        .await
                        .map_err(|e| match e {
                            LaunchError::Agent(e) | LaunchError::Other(e) => e,
                        })
                }
            }
        }
        .await;
        if launched.is_err()
            && let Some(e) = &egress
        {
            e.teardown(engine).await;
        }
        launched
    }
    .instrument(span)
    .await
}
