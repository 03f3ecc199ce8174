//! How the agent binary reaches a container: embedded in the library at build time (build.rs),
//! then carried into each engine once, in a named volume `headjack-agent-<hash>` that every
//! instance mounts read-only at [`MOUNT`]. A volume works on Docker, Podman, gVisor and remote
//! engines alike, with the hardened preset and any image `USER`.
//!
//! Filling is done once per engine and version: the volume is filled through a container that
//! is created (never started) with it mounted, then a second, empty volume
//! `headjack-agent-<hash>-ok` is created to say the first one is complete; a process that sees
//! the marker uses the volume without looking inside, one that does not (re)fills it under a
//! lock. A process remembers, per engine, that the volume is ready.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};

use sha2::{Digest, Sha256};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::labels;

/// The agent binary for this library's architecture, built by `build.rs` (empty when the
/// library was built without one: `HEADJACK_NO_AGENT=1`, or not for Linux).
static BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/headjack-agent"));

/// Where instances see the agent's volume.
pub(crate) const MOUNT: &str = "/.headjack";
/// The agent's path inside an instance.
pub(crate) const PATH: &str = "/.headjack/headjack-agent";

/// The embedded agent, if any.
pub(crate) fn binary() -> Option<&'static [u8]> {
    (!BINARY.is_empty()).then_some(BINARY)
}

/// The agent's version: the first 16 hex digits of its sha256.
pub(crate) fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| hex::encode(Sha256::digest(BINARY))[..16].to_string())
}

/// The architecture the agent was built for, as the engines name it (`amd64`, `arm64`).
pub(crate) fn engine_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The volume carrying this agent.
pub(crate) fn volume() -> String {
    format!("headjack-agent-{}", version())
}

/// Makes sure `engine` has the agent's volume, filling it (through a container of `image`, which
/// is local) when it does not. Cheap after the first success per engine in this process.
pub(crate) async fn ensure_volume(engine: &Engine, image: &str) -> Result<String> {
    static READY: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let ready = READY.get_or_init(Default::default);
    let name = volume();
    let key = format!("{}|{name}", engine.info().host);
    if ready
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains(&key)
    {
        return Ok(name);
    }
    let Some(binary) = binary() else {
        return Err(Error::internal("this build of headjack carries no agent"));
    };
    let marker = format!("{name}-ok");
    let complete = |found: &[String]| found.contains(&marker);
    if !complete(&engine.existing_volumes(&[&name, &marker]).await?) {
        // One filler per machine at a time; whoever waited finds the marker.
        let _lock = crate::build::lock_file(&format!("agent-{}", version()), &name, None).await?;
        if !complete(&engine.existing_volumes(&[&name, &marker]).await?) {
            tracing::info!(volume = %name, "putting the in-container agent into a volume of this engine");
            let labels = HashMap::from([(labels::AGENT.to_string(), version().to_string())]);
            engine.create_volume(&name, labels.clone()).await?;
            engine
                .fill_volume(&name, image, MOUNT, tar_of(binary)?)
                .await?;
            engine.create_volume(&marker, labels).await?;
        }
    }
    ready.lock().unwrap_or_else(|p| p.into_inner()).insert(key);
    Ok(name)
}

/// A tar holding the agent at `headjack-agent`, executable by everyone.
fn tar_of(binary: &[u8]) -> Result<bytes::Bytes> {
    let mut b = tar::Builder::new(Vec::with_capacity(binary.len() + 1024));
    let mut h = tar::Header::new_gnu();
    h.set_size(binary.len() as u64);
    h.set_mode(0o755);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "headjack-agent", binary)
        .map_err(|e| Error::io("packing the agent", e))?;
    Ok(b.into_inner()
        .map_err(|e| Error::io("packing the agent", e))?
        .into())
}
