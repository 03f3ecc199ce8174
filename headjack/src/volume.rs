//! Named volumes that outlive instances: [`crate::Spec::volume`] mounts one (created when
//! missing), [`Client::volumes`] lists them, [`Client::remove_volume`] removes one.
//!
//! headjack marks the volumes it creates with label `io.headjack.volume`; a volume is never
//! removed behind its user's back, except by [`Client::sweep`] when it was created with an expiry
//! ([`Client::create_volume`]) that has passed and no container uses it.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::engine::{Engine, VolumeDetails};
use crate::error::{Error, ErrorKind, Result};
use crate::labels;
use crate::spec::Spec;
use crate::spec::sandbox_check_volume_name as check_volume_name;

/// A named volume headjack created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    /// The engine's volume name.
    pub name: String,
    /// The volume driver (`local`).
    pub driver: String,
    /// Where the engine keeps it on its host.
    pub mountpoint: String,
    /// When the engine created it (RFC 3339, as the engine reports it).
    pub created_at: String,
    /// Unix seconds after which [`Client::sweep`] may remove it; `None`: never.
    pub expires: Option<u64>,
    /// All its labels.
    pub labels: HashMap<String, String>,
}

impl From<VolumeDetails> for VolumeInfo {
    fn from(v: VolumeDetails) -> VolumeInfo {
        VolumeInfo {
            expires: v.labels.get(labels::EXPIRES).and_then(|e| e.parse().ok()),
            name: v.name,
            driver: v.driver,
            mountpoint: v.mountpoint,
            created_at: v.created_at,
            labels: v.labels,
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// Creates volume `name` when missing, labelled as headjack's (plus `extra` labels); an
/// existing volume (headjack's or not) is used as it is.
async fn ensure(
    engine: &Engine,
    name: &str,
    extra: HashMap<String, String>,
) -> Result<VolumeDetails> {
    if let Some(v) = engine.volume(name).await? {
        return Ok(v);
    }
    let mut l = extra;
    l.insert(labels::VOLUME.to_string(), "true".to_string());
    engine.create_volume(name, l).await?;
    engine.volume(name).await?.ok_or_else(|| {
        Error::internal(format!(
            "volume {name} was created but the engine does not find it"
        ))
    })
}

/// Creates the named volumes `spec` mounts that do not exist yet (spawn calls it).
pub(crate) async fn ensure_for(engine: &Engine, spec: &Spec) -> Result<()> {
    let mut extra = HashMap::new();
    // Test volumes carry the test label so that leak checks find them.
    if let Some(t) = spec.labels.get(labels::TEST) {
        extra.insert(labels::TEST.to_string(), t.clone());
    }
    for name in spec.volume_names() {
        ensure(engine, name, extra.clone()).await?;
    }
    Ok(())
}

/// Removes the expired headjack volumes that no container uses; returns their names.
pub(crate) async fn sweep(engine: &Engine) -> Result<Vec<String>> {
    let now = now_secs();
    let mut removed = Vec::new();
    for v in engine.volumes_with_label(labels::VOLUME).await? {
        let info = VolumeInfo::from(v);
        if info.expires.is_none_or(|e| e > now) {
            continue;
        }
        match engine.remove_volume(&info.name).await {
            Ok(()) => {
                tracing::info!(volume = %info.name, "sweeping expired volume");
                removed.push(info.name);
            }
            Err(e) if e.kind() == ErrorKind::Conflict => {
                tracing::debug!(volume = %info.name, "expired volume still in use; kept");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

/// Every named volume headjack created on this engine (see `Client::volumes`).
pub(crate) async fn list(engine: &Engine) -> Result<Vec<VolumeInfo>> {
    let mut found: Vec<VolumeInfo> = engine
        .volumes_with_label(labels::VOLUME)
        .await?
        .into_iter()
        .map(VolumeInfo::from)
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Creates named volume `name` unless it exists (see `Client::create_volume`).
pub(crate) async fn create(
    engine: &Engine,
    name: &str,
    expires_after: Option<Duration>,
) -> Result<VolumeInfo> {
    check_volume_name(name)?;
    let mut extra = HashMap::new();
    if let Some(life) = expires_after {
        if life > Spec::MAX_LIFETIME {
            return Err(Error::invalid_argument(format!(
                "volume lifetime {life:?}: a lifetime must be at most 100 years"
            )));
        }
        extra.insert(
            labels::EXPIRES.to_string(),
            (now_secs() + life.as_secs()).to_string(),
        );
    }
    Ok(ensure(engine, name, extra).await?.into())
}

/// Removes named volume `name` if headjack created it (see `Client::remove_volume`).
pub(crate) async fn remove(engine: &Engine, name: &str) -> Result<()> {
    check_volume_name(name)?;
    let Some(v) = engine.volume(name).await? else {
        return Ok(());
    };
    if !v.labels.contains_key(labels::VOLUME) {
        return Err(Error::invalid_argument(format!(
            "volume {name} was not created by headjack (it has no {} label); refusing to \
             remove it — use the engine's own tools if you mean it",
            labels::VOLUME
        )));
    }
    engine.remove_volume(name).await
}
