//! Step 3 of spawning: create and start the planned container, and wait until it is ready. From
//! the moment the container exists, an error drops the [`Instance`], which removes it.

use std::time::Duration;

use super::resolve::ResolvedImage;
use crate::agent::{self, Session};
use crate::engine::{ContainerPlan, Engine};
use crate::error::{Error, ErrorKind, Result};
use crate::exec::Exec;
use crate::instance::{Instance, Origin, Status};
use crate::spec::Spec;

/// Why a launch failed: the in-container agent did not come up (the caller may launch again
/// without it), or anything else.
pub(crate) enum LaunchError {
    Agent(Error),
    Other(Error),
}

impl From<Error> for LaunchError {
    fn from(e: Error) -> LaunchError {
        LaunchError::Other(e)
    }
}

/// Creates and starts the container of `plan` (instance `id`) and waits until it is ready.
/// With the agent, its channel is the container's stdio: attached before the start, so nothing
/// it says is missed, and opened (the handshake) right after.
pub(crate) async fn launch(
    engine: &Engine,
    plan: ContainerPlan,
    image: ResolvedImage,
    id: String,
    spec: &Spec,
    egress: Option<&crate::egress::Prepared>,
) -> std::result::Result<Instance, LaunchError> {
    let container_id = match engine.create_container(&plan).await {
        Ok(id) => id,
        Err(e) => {
            return Err(crate::instance::limits_unsupported(engine, e, spec)
                .await
                .into());
        }
    };
    let details = image.details;
    let default_user = spec.user.clone().or(details.user);
    let session = plan
        .agent
        .then(|| Session::new(engine.clone(), container_id.clone(), None, spec.memory));
    let instance = Instance::new(
        engine.clone(),
        container_id.clone(),
        id,
        plan.name.unwrap_or_default(),
        image.reference,
        default_user,
        Origin {
            entrypoint: details.entrypoint,
            cmd: details.cmd,
            labels: details.labels,
        },
        false,
        session,
    );
    // From here on, dropping `instance` on an error removes the container.
    let stdio = match plan.agent {
        true => Some(engine.attach_stdio(&container_id).await?),
        false => None,
    };
    engine
        .start(&container_id)
        .await
        .map_err(|e| crate::instance::port_conflict(e, &spec.ports))?;
    if let Some((output, input)) = stdio {
        let channel = agent::open(output, input, &container_id)
            .await
            .map_err(LaunchError::Agent)?;
        instance.install_agent_channel(channel).await;
        // The engine checked the user when it started the container; with the agent as PID 1
        // (running as root) nobody did: check it now, once.
        instance.owner_ids().await?;
    }
    // Registered with its proxy before anything runs in it that might need the network; from
    // here on, removing the instance also removes its egress network.
    if let Some(egress) = egress {
        let source = egress
            .register(engine, &container_id, instance.id())
            .await?;
        instance.set_egress_attachment(egress.attachment(source));
    }
    wait_ready(&instance, spec).await?;
    Ok(instance)
}

/// Waits until the container runs and the readiness command (if any) succeeds.
async fn wait_ready(instance: &Instance, spec: &Spec) -> Result<()> {
    // Nothing removes the container between start and here, yet an engine tidying up a
    // keep-alive that has just exited can briefly answer "no such container": ask again.
    let mut attempt = 0;
    let status = loop {
        match instance.status().await {
            Err(e) if e.kind() == ErrorKind::NotFound && attempt < 20 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => break other?,
        }
    };
    if status != Status::Running {
        let logs = instance.logs().await.unwrap_or_default();
        let text: String = logs
            .iter()
            .map(|c| String::from_utf8_lossy(&c.data).into_owned())
            .collect();
        return Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "the container of instance {} is {} right after start (its keep-alive command ended): {}",
                instance.id(),
                status.as_str(),
                text.trim()
            ),
        ));
    }
    let Some(check) = &spec.readiness else {
        return Ok(());
    };
    // A timeout too long to represent waits as long as it can.
    let far = tokio::time::Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
    let deadline = tokio::time::Instant::now()
        .checked_add(check.timeout)
        .map_or(far, |d| d.min(far));
    let mut last;
    loop {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let attempt =
            Exec::new(check.command.clone()).timeout(remaining.max(Duration::from_millis(100)));
        match instance.exec(attempt).await {
            Ok(out) if out.success() => return Ok(()),
            Ok(out) => last = format!("exit code {}: {}", out.exit_code, out.stderr_text().trim()),
            Err(e) => {
                // The check could not even run: if the container stopped (its keep-alive ended,
                // the engine restarted), waiting out the deadline cannot help.
                match instance.status().await {
                    Ok(Status::Running) => {}
                    Ok(status) => {
                        return Err(Error::new(
                            ErrorKind::Conflict,
                            format!(
                                "instance {} stopped while waiting to become ready (it is {}): {e}",
                                instance.id(),
                                status.as_str()
                            ),
                        ));
                    }
                    Err(gone) if gone.kind() == ErrorKind::NotFound => return Err(gone),
                    Err(_) => {}
                }
                last = e.to_string();
            }
        }
        if tokio::time::Instant::now()
            .checked_add(check.interval)
            .is_none_or(|next| next >= deadline)
        {
            return Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "instance {} did not become ready within {:?}: readiness check {:?} last failed with {last}",
                    instance.id(),
                    check.timeout,
                    check.command
                ),
            ));
        }
        tokio::time::sleep(check.interval).await;
    }
}
