//! Spawning an instance, as one pipeline read top to bottom:
//!
//! 1. [`resolve`]: the base → a local image (`HEADJACK_BASE` and the default base, a registry
//!    image pulled per policy, or a Dockerfile built once per content);
//! 2. [`plan`]: the spec → a container plan (pure: labels, mounts, limits, security), table-tested
//!    without an engine;
//! 3. [`launch`]: create and start the container, wait until it is ready.

pub(crate) mod devcontainer;
mod fork;
mod launch;
mod plan;
mod resolve;

use tracing::Instrument;

use crate::base::Base;
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

/// Resolves `spec`'s base to a local image as a spawn would (a dev container definition: its
/// image or Dockerfile and its local-feature layer, with its warnings), without a container.
pub(crate) async fn resolve_spec(engine: &Engine, spec: &Spec) -> Result<ResolvedImage> {
    let base = spec.resolved_base()?;
    let base = resolve::default_to_concrete(&base, spec)?;
    let (_, mut image, plan) = resolve_base(engine, spec.clone(), &base).await?;
    if let Some(plan) = plan {
        image.warnings = plan.warnings;
    }
    Ok(image)
}

/// The base made concrete: a dev container definition folded into the spec (its image or
/// Dockerfile resolved, its local-feature layer built on top); any other base resolved as it is.
async fn resolve_base(
    engine: &Engine,
    spec: Spec,
    base: &Base,
) -> Result<(
    Spec,
    ResolvedImage,
    Option<crate::devcontainer::DevContainerPlan>,
)> {
    match base {
        Base::DevContainer(d) => {
            let p = devcontainer::prepare(&spec, d)?;
            let image = resolve(engine, &p.base, &p.spec).await?;
            let image = devcontainer::features(engine, &p.plan, &p.spec, image).await?;
            Ok((p.spec, image, Some(p.plan)))
        }
        _ => {
            let image = resolve(engine, base, &spec).await?;
            Ok((spec, image, None))
        }
    }
}

/// Resolves `spec`'s base, creates and starts a container for it, and waits until it is ready.
pub(crate) async fn spawn(engine: &Engine, spec: Spec) -> Result<Instance> {
    spec.validate()?;
    let base = spec.resolved_base()?;
    let span = tracing::info_span!("headjack.spawn", base = %base);
    async {
        // A dev container definition: its settings folded into the spec, its image or
        // Dockerfile as the base to resolve (the label keeps naming the definition).
        // The default base may name one too (HEADJACK_BASE).
        let base = resolve::default_to_concrete(&base, &spec)?;
        let (spec, image, devc) = resolve_base(engine, spec, &base).await?;
        crate::volume::ensure_for(engine, &spec).await?;
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
        // The container plan: the spec's, then what the definition and the egress policy add.
        let planned_for = |id: &str, agent: Option<&str>| {
            let mut planned = plan::plan(&spec, &base, &image, id, &owner, now, agent)?;
            if let Some(p) = &devc {
                devcontainer::apply_to_container(p, &mut planned);
            }
            if let Some(e) = &egress {
                e.apply(&mut planned);
            }
            Ok::<_, crate::error::Error>(planned)
        };
        let launched = async {
            let planned = planned_for(&id, agent.as_deref())?;
            let workdir = planned.workdir.clone();
            let launched =
                launch::launch(engine, planned, image.clone(), id.clone(), &spec, egress.as_ref())
                    .await;
            let instance = match launched {
                Ok(instance) => instance,
                Err(LaunchError::Other(e)) => return Err(e),
                // The agent could not come up in this image (e.g. it cannot run there): the
                // engine's exec serves the instance instead, with the same behaviour.
                Err(LaunchError::Agent(e)) => {
                    tracing::warn!(error = %e, "the in-container agent did not start; using the engine's exec");
                    let id = labels::random_id();
                    let planned = planned_for(&id, None)?;
                    launch::launch(engine, planned, image.clone(), id, &spec, egress.as_ref())
                        .await
                        .map_err(|e| match e {
                            LaunchError::Agent(e) | LaunchError::Other(e) => e,
                        })?
                }
            };
            Ok((instance, workdir))
        }
        .await;
        let (instance, workdir) = match launched {
            Ok(launched) => launched,
            Err(e) => {
                if let Some(egress) = &egress {
                    egress.teardown(engine).await;
                }
                return Err(e);
            }
        };
        if let Some(p) = devc
            && let Err(e) =
                devcontainer::after_launch(&instance, p, spec.progress.as_ref(), workdir).await
        {
            if let Err(r) = instance.remove().await {
                tracing::warn!(error = %r, "removing the instance after a failed hook");
            }
            return Err(e);
        }
        // A fork spawns this spec again on a snapshot: for a dev container, the spec with the
        // definition's settings folded in (its creation hooks are not run again; fork runs
        // postStartCommand, from the state after_launch recorded).
        Ok(instance.remember_spec(spec))
    }
    .instrument(span)
    .await
}
