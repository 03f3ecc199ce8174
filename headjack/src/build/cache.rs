//! The build cache's bookkeeping: where headjack keeps its per-user state, the build locks
//! (single flight across tasks and processes), the record of each key's last use, and listing
//! and pruning the images headjack built.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex as StdMutex, OnceLock};
use std::time::UNIX_EPOCH;

use tokio::sync::Mutex;

use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::labels;
use crate::progress::{Progress, ProgressFn};

/// A headjack-built image, as [`crate::client::Client::images`] lists it.
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

pub(crate) fn key_mutex(key: &str) -> Arc<Mutex<()>> {
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
pub(crate) async fn lock_file(
    key: &str,
    tag: &str,
    progress: Option<&ProgressFn>,
) -> Result<std::fs::File> {
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
pub(crate) fn record_use(key: &str, source: &Path) {
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
pub(crate) fn recorded(key16: &str) -> Option<(String, String)> {
    let text = std::fs::read_to_string(use_record(key16)).ok()?;
    let (key, source) = text.split_once('\n')?;
    Some((key.to_string(), source.to_string()))
}

fn last_use(key16: &str) -> Option<i64> {
    let m = std::fs::metadata(use_record(key16)).ok()?.modified().ok()?;
    Some(m.duration_since(UNIX_EPOCH).ok()?.as_secs() as i64)
}

/// The namespace of headjack's build tags.
pub(crate) const TAG_PREFIX: &str = "localhost/headjack/";

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
