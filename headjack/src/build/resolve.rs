//! Turning a Dockerfile into a local image, at most once per content: compute the cache key,
//! look for the tagged image, and build only when it is missing — once, even when many tasks
//! or processes ask at the same time.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::cache::{TAG_PREFIX, key_mutex, lock_file, record_use, recorded};
use super::context::Context;
use super::dockerfile::{Analysis, analyse};
use super::frontend::{self, Inputs, is_official_frontend, syntax_directive};
use super::key::{KeyInputs, cache_key, image_tag};
use crate::base::{Builder, Dockerfile};
use crate::engine::{BuildInput, BuildParams, BuildSecret, BuilderKind, Engine, ImageDetails};
use crate::error::{Error, ErrorKind, Result};
use crate::progress::ProgressFn;
use crate::pull;
use crate::reference::ImageRef;
use crate::spec::PullPolicy;

/// A Dockerfile resolved to a local image.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    /// The tag, `localhost/headjack/<slug>:<key16>`.
    pub tag: String,
    /// What the engine knows of the image.
    pub details: ImageDetails,
    /// Whether a build ran (false on a cache hit).
    pub built: bool,
}

/// Builds `df` unless an image with its content key exists; returns the tagged image and what
/// the engine knows of it.
pub(crate) async fn resolve(
    engine: &Engine,
    df: &Dockerfile,
    pull: PullPolicy,
    progress: Option<&ProgressFn>,
) -> Result<Built> {
    let path = df.path().to_path_buf();
    if let Err(e) = tokio::fs::metadata(&path).await {
        return Err(Error::new(
            ErrorKind::InvalidBase,
            format!(
                "cannot read Dockerfile {}: {e}; check the path",
                path.display()
            ),
        )
        .with_source(e));
    }
    // The walk reads the Dockerfile once: the key, the FROM list and the tar all use those bytes.
    let (ctx_dir, df_path) = (df.context_dir().to_path_buf(), path.clone());
    let context = tokio::task::spawn_blocking(move || Context::walk(&ctx_dir, &df_path))
        .await
        .map_err(|e| Error::internal(format!("context walk task failed: {e}")))??;
    let text = String::from_utf8_lossy(context.dockerfile_bytes()).into_owned();
    let analysis = analyse(&text, df.build_args())
        .map_err(|e| e.context(format!("reading {}", path.display())))?;
    for id in df.secrets().keys() {
        check_secret_id(id)?;
    }
    // FROM images are resolved (pulled when missing) before the key: their IDs are part of it.
    let policy = if pull == PullPolicy::Never {
        PullPolicy::Never
    } else {
        PullPolicy::Missing
    };
    let mut from_images = Vec::new();
    let mut shells = HashMap::new();
    for r in analysis.images.iter().cloned() {
        let image = ImageRef::parse(&r).map_err(|e| {
            Error::new(
                ErrorKind::InvalidBase,
                format!(
                    "{} names an unusable base image: {}",
                    path.display(),
                    e.message()
                ),
            )
        })?;
        let details =
            pull::ensure_image(engine, &image, policy, df.platform_name(), progress).await?;
        if let Some(shell) = details.shell {
            shells.insert(r.clone(), shell);
        }
        from_images.push((r, details.id));
    }
    let secret_ids: Vec<&str> = df.secrets().keys().map(String::as_str).collect();
    let key = cache_key(&KeyInputs {
        dockerfile: context.dockerfile_bytes(),
        build_args: df.build_args(),
        target: df.target_stage(),
        platform: df.platform_name(),
        from_images: &from_images,
        secret_ids: &secret_ids,
        context: &context,
    });
    let tag = image_tag(&path, &key);
    tracing::debug!(%tag, files = context.file_count(), "build cache key computed");

    if !df.is_no_cache()
        && let Some(img) = engine.image(&tag).await?
    {
        return Ok(cache_hit(&key, &path, tag, img));
    }
    // The same content built from another directory (another slug) is the same image: tag it.
    if !df.is_no_cache()
        && let Some(img) = adopt_sibling(engine, &key, &tag).await.unwrap_or_else(|e| {
            // Only a shortcut: without it the build below still gives the right image.
            tracing::debug!(error = %e, "looking for the same content under another tag failed");
            None
        })
    {
        return Ok(cache_hit(&key, &path, tag, img));
    }

    // Single flight: one build per key in this process (tasks) and across processes (a lock
    // file); whoever waited re-checks and finds the image.
    let local = key_mutex(&key);
    let _local = local.lock().await;
    let _file = lock_file(&key, &tag, progress).await?;
    if !df.is_no_cache()
        && let Some(img) = engine.image(&tag).await?
    {
        return Ok(cache_hit(&key, &path, tag, img));
    }

    let job = BuildJob {
        df,
        path: &path,
        tag: &tag,
        text: &text,
        analysis: &analysis,
        shells: &shells,
        context: Arc::new(context),
        progress,
    };
    let builder = match df.builder_choice() {
        Builder::Classic => BuilderKind::Classic,
        _ => engine.default_builder(),
    };
    match job.run(engine, builder).await {
        // The engine turned out to have no BuildKit: the classic builder, once.
        Err(e)
            if builder == BuilderKind::BuildKit
                && e.kind() == ErrorKind::Unsupported
                && engine.default_builder() == BuilderKind::Classic =>
        {
            tracing::info!(error = %e, "building with the classic builder instead");
            job.run(engine, BuilderKind::Classic).await?;
        }
        other => other?,
    }
    let img = engine.image(&tag).await?.ok_or_else(|| {
        Error::new(
            ErrorKind::BuildFailed,
            format!(
                "the build of {} reported success but {tag} is missing",
                path.display()
            ),
        )
    })?;
    record_use(&key, &path);
    Ok(Built {
        tag,
        details: img,
        built: true,
    })
}

/// One build of a Dockerfile whose key was computed and whose image is missing.
struct BuildJob<'a> {
    df: &'a Dockerfile,
    path: &'a Path,
    tag: &'a str,
    text: &'a str,
    analysis: &'a Analysis,
    /// `Config.Shell` of the external images.
    shells: &'a HashMap<String, Vec<String>>,
    context: Arc<Context>,
    progress: Option<&'a ProgressFn>,
}

impl BuildJob<'_> {
    /// Translates the Dockerfile for `builder` (or refuses it), reads the secrets and builds:
    /// BuildKit reads the context over its session, other builders get a tar.
    async fn run(&self, engine: &Engine, builder: BuilderKind) -> Result<()> {
        let (df, path, text) = (self.df, self.path, self.text);
        let profile = engine.builder_profile(builder);
        let syntax_image_present = match syntax_directive(text) {
            Some((_, image)) if profile.syntax_directive => {
                engine.image(&image).await.ok().flatten().is_some()
            }
            _ => false,
        };
        // A frontend image BuildKit has to pull: if the build fails, that is the likely reason.
        let missing_frontend = syntax_directive(text)
            .map(|(_, image)| image)
            .filter(|image| {
                profile.syntax_directive && !syntax_image_present && !is_official_frontend(image)
            });
        let generated_dir = self.context.generated_dir();
        let translation = frontend::translate(&Inputs {
            text,
            analysis: self.analysis,
            profile: &profile,
            shells: self.shells,
            generated_dir: &generated_dir,
            syntax_image_present,
        })
        .map_err(|e| e.context(path.display()))?;
        if translation.dockerfile.is_some() {
            tracing::info!(
                dockerfile = %path.display(),
                builder = %profile.name,
                documents = translation.generated.len(),
                "Dockerfile rewritten for the engine's frontend"
            );
        }
        for id in &translation.secret_mounts {
            if !df.secrets().contains_key(id) {
                tracing::warn!(
                    dockerfile = %path.display(),
                    secret = %id,
                    "the Dockerfile mounts a build secret that was not given; the step runs \
                     without it"
                );
            }
        }
        // Secret values are read only now that a build runs; only a builder that takes them
        // gets them (one that cannot refused any secret mount above).
        let mut secrets = Vec::new();
        if profile.secrets {
            for (id, source) in df.secrets() {
                let value = source.read(id)?;
                if value.len() > MAX_SECRET_BYTES {
                    return Err(Error::invalid_argument(format!(
                        "build secret {id} is {} bytes; BuildKit takes at most \
                         {MAX_SECRET_BYTES} bytes per secret (pass a larger file as build \
                         context or mount)",
                        value.len()
                    )));
                }
                secrets.push(BuildSecret {
                    id: id.clone(),
                    value,
                });
            }
        }
        let (input, dockerfile_name) = if profile.kind == BuilderKind::BuildKit {
            let dockerfile = translation
                .dockerfile
                .clone()
                .unwrap_or_else(|| self.context.dockerfile_bytes().to_vec());
            let dirs = self.context.sync_dirs(dockerfile, &translation.generated);
            (
                BuildInput::Session(Arc::new(dirs)),
                SYNC_DOCKERFILE.to_string(),
            )
        } else {
            let context = self.context.clone();
            let tar = tokio::task::spawn_blocking(move || {
                let mut buf = Vec::new();
                context
                    .write_tar_with(
                        &mut buf,
                        translation.dockerfile.as_deref(),
                        &translation.generated,
                    )
                    .map(|_| buf)
            })
            .await
            .map_err(|e| Error::internal(format!("context packing task failed: {e}")))??;
            (
                BuildInput::Tar(bytes::Bytes::from(tar)),
                self.context.dockerfile_name_in_tar().to_string(),
            )
        };
        // No build labels: the classic builder turns each into one more step, a container commit
        // whose cost grows with the image (seconds for a 100 MB context on fuse-overlayfs). The
        // key is in the tag; key and source are recorded in the cache directory.
        let params = BuildParams {
            tag: self.tag,
            dockerfile: &dockerfile_name,
            labels: HashMap::new(),
            build_args: df
                .build_args()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            target: df.target_stage(),
            platform: df.platform_name(),
            no_cache: df.is_no_cache(),
            progress: self.progress,
            builder: profile.kind,
            secrets: &secrets,
        };
        let mut built = engine.build(&params, &input).await;
        if let Err(e) = &built
            && is_lost_cache_parent(e)
        {
            // Another client removed an image whose layers this build was reusing from the
            // cache, between the cache lookup and the commit: the build itself is fine, run it
            // again.
            tracing::info!(tag = %self.tag, error = %e, "a cached parent image vanished mid-build; building again");
            built = engine.build(&params, &input).await;
        }
        built.map_err(|e| match &missing_frontend {
            Some(image) if e.kind() == ErrorKind::BuildFailed => Error::new(
                ErrorKind::ImageNotFound,
                format!(
                    "{}: its `# syntax={image}` line asks for the Dockerfile frontend image \
                     {image}, which the engine does not have and could not pull ({}); load the \
                     image into the engine, or remove the line to build with the engine's \
                     built-in frontend",
                    path.display(),
                    e.message().lines().next().unwrap_or_default()
                ),
            ),
            _ if matches!(e.kind(), ErrorKind::BuildFailed | ErrorKind::Unsupported) => e,
            _ => e.context(format!("building {}", path.display())),
        })
    }
}

/// The Dockerfile's name in the `dockerfile` directory a BuildKit session serves.
const SYNC_DOCKERFILE: &str = "Dockerfile";

/// The largest secret value BuildKit accepts (its `MaxSecretSize`).
const MAX_SECRET_BYTES: usize = 500 * 1024;

/// Refuses a secret id that BuildKit or a mount option could misread.
fn check_secret_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_argument(format!(
            "build secret id {id:?} is not usable: use 1 to 128 characters from A-Z a-z 0-9 _ . - \
             (the id in RUN --mount=type=secret,id=…)"
        )))
    }
}

/// Whether a build failed because an image it reused from the layer cache was removed under it
/// (the classic builder then reports an unknown parent).
fn is_lost_cache_parent(e: &Error) -> bool {
    // Docker: "unknown parent image ID"; Podman (buildah) while checking its cache: "getting
    // top layer info: layer not known".
    e.kind() == ErrorKind::BuildFailed
        && (e.message().contains("unknown parent image ID")
            || e.message().contains("top layer info: layer not known"))
}

/// Finds an image built for `key` under another tag (its Dockerfile in another directory) and
/// tags it `tag` too; the key covers everything the build reads, not where it lives.
async fn adopt_sibling(engine: &Engine, key: &str, tag: &str) -> Result<Option<ImageDetails>> {
    let suffix = format!(":{}", &key[..key.len().min(16)]);
    let sibling = engine.all_images().await?.into_iter().find_map(|i| {
        i.tags
            .into_iter()
            .find(|t| t.starts_with(TAG_PREFIX) && t.ends_with(&suffix))
    });
    let Some(sibling) = sibling else {
        return Ok(None);
    };
    // A full key recorded for the suffix must agree (the suffix is 64 bits of it).
    if let Some((recorded_key, _)) = recorded(&key[..key.len().min(16)])
        && recorded_key != key
    {
        return Ok(None);
    }
    tracing::debug!(%sibling, %tag, "same content built elsewhere: tagging it");
    engine.tag_image(&sibling, tag).await?;
    engine.image(tag).await
}

/// A resolve served from the cache: no build, no upload.
fn cache_hit(key: &str, source: &Path, tag: String, details: ImageDetails) -> Built {
    record_use(key, source);
    Built {
        tag,
        details,
        built: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_parent_removed_mid_build_is_recognised_on_both_engines() {
        let failed = |m: &str| Error::new(ErrorKind::BuildFailed, m);
        for m in [
            "failed at step `COPY a /a`: unknown parent image ID sha256:0123",
            "failed at step `COPY app/ /app/`: checking if cached image exists from a previous \
             build: getting top layer info: layer not known",
        ] {
            assert!(is_lost_cache_parent(&failed(m)), "{m}");
        }
        assert!(!is_lost_cache_parent(&failed("RUN false: exit code 1")));
        assert!(!is_lost_cache_parent(&Error::new(
            ErrorKind::EngineUnavailable,
            "unknown parent image ID"
        )));
    }
}
