//! Checkpoint and restore with memory state, where the engine can (Docker in experimental mode,
//! Podman with a working CRIU); elsewhere a clear `Unsupported`.

use super::Instance;
use crate::error::{Error, ErrorKind, Result};

/// Why a checkpoint cannot be taken or restored on this engine, with what was tried.
fn checkpoint_unsupported(engine: &crate::engine::Engine, what: &str, why: &str) -> Error {
    let how = match engine.info().kind {
        crate::engine::EngineKind::Docker => {
            "Docker takes checkpoints only in experimental mode (dockerd --experimental) with \
             CRIU installed, of runc containers"
        }
        crate::engine::EngineKind::Podman => {
            "Podman takes checkpoints with CRIU: install criu (a Debian package) and check that \
             `criu check` passes on this kernel"
        }
    };
    Error::new(
        ErrorKind::Unsupported,
        format!("{what}: this engine cannot checkpoint a container's memory ({why}). {how}"),
    )
}

fn check_checkpoint_name(name: &str) -> Result<()> {
    if crate::spec::sandbox_check_volume_name(name).is_err() {
        return Err(Error::invalid_argument(format!(
            "invalid checkpoint name {name:?}: use at least 2 letters, digits, '_', '.' or '-', \
             starting with a letter or digit"
        )));
    }
    Ok(())
}

impl Instance {
    /// Saves the instance's processes with their memory as checkpoint `name`, leaving it
    /// running; [`crate::client::Client::restore`] brings them back as they were. Needs an engine that
    /// can: Docker in experimental mode with CRIU (runc containers; gVisor's runsc is refused,
    /// it cannot leave the sandbox running), or Podman with CRIU.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] when the engine cannot, saying why and what it needs;
    /// [`ErrorKind::InvalidArgument`] for a bad name; [`ErrorKind::NotFound`] when the instance
    /// was removed.
    pub async fn checkpoint(&self, name: &str) -> Result<()> {
        self.check_live()?;
        check_checkpoint_name(name)?;
        let what = format!("cannot checkpoint instance {} as {name:?}", self.id);
        if self.engine.info().kind == crate::engine::EngineKind::Docker
            && self
                .engine
                .inspect(&self.container_id)
                .await?
                .runtime
                .as_deref()
                == Some("runsc")
        {
            // Found on runsc 20221219 with an experimental dockerd 20.10: asked to leave the
            // sandbox running, runsc panics and the sandbox dies; and this Docker cannot
            // restore a checkpoint anyway (moby/moby#42900). Refuse before harming it.
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{what}: gVisor (runsc) under Docker cannot checkpoint a running sandbox and \
                     leave it running (runsc stops the sandbox), and Docker before 26 cannot \
                     restore such a checkpoint (moby/moby#42900). Use Podman with CRIU, or \
                     `commit`/`fork` to keep the instance's files"
                ),
            ));
        }
        match self.engine.checkpoint(&self.container_id, name).await? {
            Ok(()) => Ok(()),
            Err(why) => Err(checkpoint_unsupported(&self.engine, &what, &why)),
        }
    }
}

impl crate::client::Client {
    /// Restores stopped instance `id_or_name` from its checkpoint `name`
    /// ([`Instance::checkpoint`]): its processes continue from where they were. Returns a handle (kept on drop, as from
    /// [`crate::client::Client::attach`]).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] when the engine cannot restore checkpoints, saying why;
    /// [`ErrorKind::Conflict`] while the instance runs; [`ErrorKind::NotFound`] for an unknown
    /// instance; [`ErrorKind::InvalidArgument`] for a bad
    /// name.
    pub async fn restore(&self, id_or_name: &str, name: &str) -> Result<Instance> {
        check_checkpoint_name(name)?;
        let instance = self.attach(id_or_name).await?;
        let status = instance.status().await?;
        if matches!(status, super::Status::Running | super::Status::Paused) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "cannot restore instance {id_or_name} from checkpoint {name:?}: it is {}; \
                     stop it first (its processes are replaced by the checkpoint's)",
                    status.as_str()
                ),
            ));
        }
        match self
            .engine()
            .restore_checkpoint(instance.container_id(), name)
            .await?
        {
            Ok(()) => Ok(instance),
            Err(why) => Err(checkpoint_unsupported(
                self.engine(),
                &format!("cannot restore instance {id_or_name} from checkpoint {name:?}"),
                &why,
            )),
        }
    }
}
