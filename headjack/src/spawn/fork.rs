//! Fork: a new instance spawned from a snapshot of another's files with the same spec
//! ([`Instance::plan_fork`] commits it; the snapshot goes with the fork unless kept).

use tracing::Instrument;

use crate::error::Result;
use crate::instance::{Instance, remove_snapshot};

impl Instance {
    /// A new instance from a snapshot of this one's filesystem: the container is committed to a
    /// snapshot image (paused for the commit), and an instance is spawned from it with the same
    /// spec (same limits, mounts, volumes, environment; a fresh name and engine-chosen host
    /// ports stay fresh). Files are as they were at the fork and diverge afterwards; processes
    /// are not carried over (they start again from the spec's init). The snapshot image is
    /// removed with the fork; see [`Instance::fork_with`] to keep it. The fork gets this
    /// handle's exec defaults ([`Instance::exec_defaults`]); a dev container instance's fork
    /// also runs the definition's `postStartCommand` (its container started), and is removed
    /// if that fails.
    ///
    /// # Errors
    ///
    /// [`crate::error::ErrorKind::NotFound`] when this instance was removed; engine and spawn
    /// errors; [`crate::error::ErrorKind::ExecFailed`] for a dev container's failing
    /// `postStartCommand`. (An instance attached with [`crate::client::Client::attach`] is
    /// forked with the spec read back from its container: env, user, workdir, limits, network,
    /// runtime, labels, bind and volume mounts, published ports, the hardened preset and the
    /// init.)
    pub async fn fork(&self) -> Result<Instance> {
        self.fork_with(false).await
    }

    /// [`Instance::fork`]; with `keep_snapshot`, the snapshot image
    /// (`localhost/headjack/fork:<this id>-<random>`, label `io.headjack.fork.snapshot`) stays
    /// when the fork is removed (remove it with [`crate::client::Client::remove_image`]).
    ///
    /// # Errors
    ///
    /// As [`Instance::fork`].
    pub async fn fork_with(&self, keep_snapshot: bool) -> Result<Instance> {
        let span = tracing::info_span!("headjack.fork", instance = %self.id());
        async {
            let plan = self.plan_fork(keep_snapshot).await?;
            match super::spawn(&plan.engine, plan.spec).await {
                Ok(fork) => {
                    if !keep_snapshot {
                        fork.set_snapshot(Some(plan.snapshot));
                    }
                    // Commands run in the fork as in its parent (a dev container's remoteEnv,
                    // remoteUser, workspaceFolder: its state file came with the snapshot), and
                    // a dev container's postStartCommand runs: the fork's container started.
                    fork.set_exec_defaults(self.exec_defaults())?;
                    if let Some(state) = self.devcontainer() {
                        fork.set_devcontainer(state);
                        let started = fork
                            .run_post_start(super::devcontainer::HookWhen::Spawn)
                            .await;
                        if let Err(e) = started {
                            if let Err(r) = fork.remove().await {
                                tracing::warn!(error = %r, "removing the fork after a failed hook");
                            }
                            return Err(e);
                        }
                    }
                    Ok(fork)
                }
                Err(e) => {
                    if !keep_snapshot {
                        remove_snapshot(&plan.engine, &plan.snapshot).await;
                    }
                    Err(e)
                }
            }
        }
        .instrument(span)
        .await
    }
}
