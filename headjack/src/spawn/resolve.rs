//! Step 1 of spawning: a base → a local image. This is the one place that decides what the
//! default base is (`HEADJACK_BASE`, else the embedded `images/base` Dockerfile).

use crate::base::{Base, Dockerfile};
use crate::build;
use crate::engine::{Engine, ImageDetails};
use crate::error::{Error, Result};
use crate::pull;
use crate::spec::Spec;

/// The default base image's Dockerfile, embedded at compile time (docs/ARCHITECTURE.md#base-strings).
pub(crate) const DEFAULT_BASE_DOCKERFILE: &str = include_str!("../../../images/base/Dockerfile");

/// The environment variable that replaces the default base (any base string).
const BASE_ENV: &str = "HEADJACK_BASE";

/// An image resolved from a base: what a container would run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The fully qualified reference (for a Dockerfile: `localhost/headjack/<slug>:<key16>`).
    pub reference: String,
    /// The engine's image ID.
    pub id: String,
    /// Whether a build ran (false on a cache hit and for registry images).
    pub built: bool,
    /// What spawn needs to know of the image (its config), so it need not inspect again.
    pub(crate) details: ImageDetails,
}

/// Resolves `base` (already parsed from `spec`) to a local image: pulls a registry image per
/// the spec's pull policy, builds a Dockerfile unless an image with its content key exists.
pub(crate) async fn resolve(engine: &Engine, base: &Base, spec: &Spec) -> Result<ResolvedImage> {
    let progress = spec.progress.as_ref();
    let platform = spec.platform.as_deref();
    match default_to_concrete(base, spec)? {
        Base::Image(r) => {
            let details = pull::ensure_image(engine, &r, spec.pull, platform, progress).await?;
            Ok(ResolvedImage {
                reference: r.to_string(),
                id: details.id.clone(),
                built: false,
                details,
            })
        }
        Base::Dockerfile(d) => {
            // The spec's platform applies to Dockerfile bases that do not name their own.
            let d = match (platform, d.platform_name()) {
                (Some(p), None) => d.platform(p),
                _ => d,
            };
            let built = build::resolve(engine, &d, spec.pull, progress).await?;
            Ok(ResolvedImage {
                reference: built.tag,
                id: built.details.id.clone(),
                built: built.built,
                details: built.details,
            })
        }
        Base::Default => Err(Error::internal(
            "the default base was not made concrete (a bug in headjack)",
        )),
        Base::DevContainer(d) => Err(Error::internal(format!(
            "the dev container definition {} was not planned before resolve (a bug in headjack)",
            d.config_file().display()
        ))),
    }
}

/// The default base made concrete: `HEADJACK_BASE` if set (parsed like any base string, relative
/// to the spec's base directory; it may not name the default again), else the embedded Dockerfile.
pub(crate) fn default_to_concrete(base: &Base, spec: &Spec) -> Result<Base> {
    if !base.is_default() {
        return Ok(base.clone());
    }
    if let Ok(s) = std::env::var(BASE_ENV)
        && !s.trim().is_empty()
    {
        let dir = spec.resolved_base_dir()?;
        let b = Base::parse_in(&s, &dir).map_err(|e| e.context(format!("in {BASE_ENV}")))?;
        if !b.is_default() {
            return Ok(b);
        }
    }
    Ok(Base::Dockerfile(
        Dockerfile::new(default_base_dockerfile()?),
    ))
}

/// Writes the embedded default base Dockerfile into the cache directory (once per content), so
/// it is built like any other Dockerfile and later resolves find it by its content key.
fn default_base_dockerfile() -> Result<std::path::PathBuf> {
    let dir = build::cache_dir().join("default-base");
    let path = dir.join("Dockerfile");
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current != DEFAULT_BASE_DOCKERFILE {
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        // Write then rename, so a concurrent resolve never sees half a Dockerfile.
        let tmp = dir.join(format!(".Dockerfile.{}", std::process::id()));
        std::fs::write(&tmp, DEFAULT_BASE_DOCKERFILE)
            .map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
        std::fs::rename(&tmp, &path)
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    }
    Ok(path)
}
