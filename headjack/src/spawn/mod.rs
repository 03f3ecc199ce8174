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

pub use resolve::ResolvedImage;
pub(crate) use resolve::resolve;

/// Resolves `spec`'s base, creates and starts a container for it, and waits until it is ready.
pub(crate) async fn spawn(engine: &Engine, spec: Spec) -> Result<Instance> {
    spec.validate()?;
    let base = spec.resolved_base()?;
    let span = tracing::info_span!("headjack.spawn", base = %base);
    async {
        let image = resolve(engine, &base, &spec).await?;
        let id = labels::random_id();
        let owner = plan::owner_label(&spec);
        let plan = plan::plan(
            &spec,
            &base,
            &image,
            &id,
            &owner,
            std::time::SystemTime::now(),
        )?;
        launch::launch(engine, plan, image, id, &spec).await
    }
    .instrument(span)
    .await
}
