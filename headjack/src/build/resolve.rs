//! Turning a Dockerfile into a local image, at most once per content: compute the cache key,
//! look for the tagged image, and build only when it is missing — once, even when many tasks
//! or processes ask at the same time.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex as StdMutex, OnceLock};
use std::time::UNIX_EPOCH;

use tokio::sync::Mutex;

use super::context::Context;
use super::dockerfile::external_images;
use super::key::{KeyInputs, cache_key, image_tag};
use crate::base::Dockerfile;
use crate::client::ResolvedImage;
use crate::engine::{BuildParams, Engine, ImageDetails};
use crate::error::{Error, ErrorKind, Result};
use crate::labels;
use crate::progress::{Progress, ProgressFn};
use crate::pull;
use crate::reference::ImageRef;
use crate::spec::PullPolicy;

/// The default base image's Dockerfile, embedded at compile time (DESIGN §3.4).
pub(crate) const DEFAULT_BASE_DOCKERFILE: &str = include_str!("../../../images/base/Dockerfile");

/// A headjack-built image, as [`crate::Client::images`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// The tag, `localhost/headjack/<slug>:<key16>`.
    pub reference: String,
    /// The engine's image ID.
    pub id: String,
    /// The cache key (in full when this machine built or used it, else the tag's 16 digits).
    pub key: String,
    /// The Dockerfile it was built from (empty when this machine has no record of it).
    pub source: String,
    /// When it was built (unix seconds).
    pub created: i64,
    /// When a resolve last used it from this machine (unix seconds), if recorded.
    pub last_used: Option<i64>,
    /// Size in bytes, as the engine reports it.
    pub size: i64,
}

/// headjack's per-user cache directory (locks, last-use records, the default base's context).
pub(crate) fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("HEADJACK_CACHE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("headjack");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".cache/headjack"),
        None => std::env::temp_dir().join("headjack-cache"),
    }
}

/// Resolves the embedded default base: written once into the cache directory and built like
/// any other Dockerfile, so later resolves find it by its content key.
pub(crate) async fn resolve_default(
    engine: &Engine,
    pull: PullPolicy,
    platform: Option<&str>,
    progress: Option<&ProgressFn>,
) -> Result<(ResolvedImage, ImageDetails)> {
    let dir = cache_dir().join("default-base");
    let path = dir.join("Dockerfile");
    let current = tokio::fs::read_to_string(&path).await.unwrap_or_default();
    if current != DEFAULT_BASE_DOCKERFILE {
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        // Write then rename, so a concurrent resolve never sees half a Dockerfile.
        let tmp = dir.join(format!(".Dockerfile.{}", std::process::id()));
        tokio::fs::write(&tmp, DEFAULT_BASE_DOCKERFILE)
            .await
            .map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    }
    let mut df = Dockerfile::new(&path);
    if let Some(p) = platform {
        df = df.platform(p);
    }
    resolve(engine, &df, pull, progress).await
}

/// Builds `df` unless an image with its content key exists; returns the tagged image and what
/// the engine knows of it.
pub(crate) async fn resolve(
    engine: &Engine,
    df: &Dockerfile,
    pull: PullPolicy,
    progress: Option<&ProgressFn>,
) -> Result<(ResolvedImage, ImageDetails)> {
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
    let from_refs = external_images(&text, df.build_args())
        .map_err(|e| e.context(format!("reading {}", path.display())))?;
    // FROM images are resolved (pulled when missing) before the key: their IDs are part of it.
    let policy = if pull == PullPolicy::Never {
        PullPolicy::Never
    } else {
        PullPolicy::Missing
    };
    let mut from_images = Vec::new();
    for r in from_refs {
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
        let id = pull::ensure_image(engine, &image, policy, df.platform_name(), progress)
            .await?
            .id;
        from_images.push((r, id));
    }
    let key = cache_key(&KeyInputs {
        dockerfile: context.dockerfile_bytes(),
        build_args: df.build_args(),
        target: df.target_stage(),
        platform: df.platform_name(),
        from_images: &from_images,
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
    let tar = tokio::task::spawn_blocking(move || {
        let mut buf = Vec::new();
        context.write_tar(&mut buf).map(|_| (buf, context))
    })
    .await
    .map_err(|e| Error::internal(format!("context packing task failed: {e}")))??;
    let (tar, context) = tar;
    // No build labels: the classic builder turns each into one more step, a container commit
    // whose cost grows with the image (seconds for a 100 MB context on fuse-overlayfs). The key
    // is in the tag; key and source are recorded in the cache directory.
    let build_labels = HashMap::new();
    let build_args: HashMap<String, String> = df
        .build_args()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let dockerfile_in_tar = context.dockerfile_name_in_tar().to_string();
    engine
        .build(
            BuildParams {
                tag: &tag,
                dockerfile: &dockerfile_in_tar,
                labels: build_labels,
                build_args,
                target: df.target_stage(),
                platform: df.platform_name(),
                no_cache: df.is_no_cache(),
                progress,
            },
            tar,
        )
        .await
        .map_err(|e| {
            if e.kind() == ErrorKind::BuildFailed {
                e
            } else {
                e.context(format!("building {}", path.display()))
            }
        })?;
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
    Ok((
        ResolvedImage {
            reference: tag,
            id: img.id.clone(),
            built: true,
        },
        img,
    ))
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
fn cache_hit(
    key: &str,
    source: &Path,
    tag: String,
    img: ImageDetails,
) -> (ResolvedImage, ImageDetails) {
    record_use(key, source);
    (
        ResolvedImage {
            reference: tag,
            id: img.id.clone(),
            built: false,
        },
        img,
    )
}

fn key_mutex(key: &str) -> Arc<Mutex<()>> {
    static LOCKS: OnceLock<StdMutex<HashMap<String, Arc<Mutex<()>>>>> = OnceLock::new();
    let mut map = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    map.entry(key.to_string()).or_default().clone()
}

/// An exclusive lock on `<cache>/locks/<key>.lock`, released when dropped (or when the
/// process dies: the kernel drops flock locks with the file descriptor). Waiting for another
/// process's build is reported as progress, so a long wait is not silent.
async fn lock_file(key: &str, tag: &str, progress: Option<&ProgressFn>) -> Result<std::fs::File> {
    let dir = cache_dir().join("locks");
    let path = dir.join(format!("{}.lock", &key[..key.len().min(32)]));
    let open = {
        let (dir, path) = (dir.clone(), path.clone());
        move || -> Result<std::fs::File> {
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| Error::io(format!("opening lock {}", path.display()), e))
        }
    };
    let f = tokio::task::spawn_blocking(open)
        .await
        .map_err(|e| Error::internal(format!("lock task failed: {e}")))??;
    match f.try_lock() {
        Ok(()) => return Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => ProgressFn::emit(
            progress,
            Progress::Build {
                tag: tag.to_string(),
                line: "waiting for another process building this image".into(),
            },
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(Error::io(format!("locking {}", path.display()), e));
        }
    }
    tokio::task::spawn_blocking(move || {
        f.lock()
            .map_err(|e| Error::io(format!("locking {}", path.display()), e))?;
        Ok(f)
    })
    .await
    .map_err(|e| Error::internal(format!("lock task failed: {e}")))?
}

/// The record of a build, named like the tag's suffix (the key's first 16 hex digits).
fn use_record(key: &str) -> PathBuf {
    cache_dir().join("used").join(&key[..key.len().min(16)])
}

/// Notes that `key` was used now (the file's mtime), its full key and what it was built from
/// (the file's content), for `images()` and `prune_images()`.
fn record_use(key: &str, source: &Path) {
    let path = use_record(key);
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
        std::fs::write(&path, format!("{key}\n{}", source.display()))
    };
    if let Err(e) = write() {
        tracing::debug!(error = %e, "could not record image use");
    }
}

/// (full key, source) recorded for a tag's key suffix.
fn recorded(key16: &str) -> Option<(String, String)> {
    let text = std::fs::read_to_string(use_record(key16)).ok()?;
    let (key, source) = text.split_once('\n')?;
    Some((key.to_string(), source.to_string()))
}

fn last_use(key16: &str) -> Option<i64> {
    let m = std::fs::metadata(use_record(key16)).ok()?.modified().ok()?;
    Some(m.duration_since(UNIX_EPOCH).ok()?.as_secs() as i64)
}

/// The namespace of headjack's build tags.
const TAG_PREFIX: &str = "localhost/headjack/";

/// Every image headjack built on this engine (tagged `localhost/headjack/…`), most recently
/// used first.
pub(crate) async fn images(engine: &Engine) -> Result<Vec<BuiltImage>> {
    // One entry per headjack tag: two Dockerfiles that build to identical layers share one
    // image ID (the engine's layer cache) but are two cache entries with their own keys.
    let mut out: Vec<BuiltImage> = engine
        .all_images()
        .await?
        .into_iter()
        .flat_map(|i| {
            let tags: Vec<String> = i
                .tags
                .iter()
                .filter(|t| t.starts_with(TAG_PREFIX))
                .cloned()
                .collect();
            // Build labels (set by earlier versions) speak for the image, so only when it
            // carries one headjack tag.
            let own_labels = tags.len() == 1;
            tags.into_iter().map(move |reference| {
                let key16 = reference.rsplit(':').next().unwrap_or_default().to_string();
                let (key, source) =
                    recorded(&key16).unwrap_or_else(|| (key16.clone(), String::new()));
                let label = |name: &str| own_labels.then(|| i.labels.get(name).cloned()).flatten();
                BuiltImage {
                    last_used: last_use(&key16),
                    source: label(labels::BUILD_SOURCE).unwrap_or(source),
                    key: label(labels::BUILD_KEY).unwrap_or(key),
                    reference,
                    id: i.id.clone(),
                    created: i.created,
                    size: i.size,
                }
            })
        })
        .collect();
    out.sort_by_key(|i| std::cmp::Reverse(i.last_used.unwrap_or(i.created).max(i.created)));
    Ok(out)
}

/// Removes all but the `keep_last` most recently used headjack-built images. Images in use by
/// a container are skipped. Returns the references removed.
pub(crate) async fn prune(engine: &Engine, keep_last: usize) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let mut seen_keys = BTreeMap::new();
    for img in images(engine).await? {
        // Several tags can share one key (rebuilt with no_cache): count keys, not tags.
        let n = seen_keys.len();
        let count = *seen_keys.entry(img.key.clone()).or_insert(n);
        if count < keep_last {
            continue;
        }
        // By tag: an image built from several Dockerfiles keeps its other tags (entries).
        match engine.remove_image(&img.reference, false).await {
            Ok(()) => {
                let _ = std::fs::remove_file(use_record(&img.key));
                removed.push(img.reference);
            }
            Err(e) if e.kind() == ErrorKind::Conflict => {
                tracing::info!(image = %img.reference, "kept: in use by a container");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}
