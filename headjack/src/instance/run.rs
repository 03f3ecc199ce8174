//! Running commands in an instance — through the in-container agent where it runs, else through
//! the engine's exec, with the same observable behaviour — background processes, and the init
//! process's output.

use std::time::Duration;

use futures_util::{Stream, StreamExt, TryStreamExt};

use super::Instance;
use crate::agent::process::{Process, ProcessInfo};
use crate::agent::{exec_through, needs_engine};
use crate::error::{Error, ErrorKind, Result};
use crate::exec::{self, Chunk, Exec, ExecOutput, ExecStream};

impl Instance {
    /// Runs a command and collects its output (bounded, see [`Exec::max_output`]).
    ///
    /// A non-zero exit is not an error: look at [`ExecOutput::exit_code`], or call
    /// [`ExecOutput::check`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] for an unusable command (empty, NUL bytes);
    /// [`ErrorKind::Conflict`] when the container is not running; engine errors.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future kills the command (and everything it started) in the container.
    pub async fn exec(&self, exec: impl Into<Exec>) -> Result<ExecOutput> {
        let exec = exec.into();
        let max = exec.max_output;
        let stream = self.exec_stream(exec).await?;
        exec::collect(stream, max).await
    }

    /// Runs a command and streams its output as it comes.
    ///
    /// With the in-container agent (the default), the command starts in about a millisecond and
    /// a timeout or cancel kills it and every process it started, confirmed by the agent. Without
    /// it ([`crate::Spec::engine_exec`], another CPU architecture), the engine's exec runs it.
    ///
    /// # Errors
    ///
    /// As [`Instance::exec`].
    ///
    /// # Cancel safety
    ///
    /// Dropping the future, or the returned stream before its end, kills the command.
    pub async fn exec_stream(&self, exec: impl Into<Exec>) -> Result<ExecStream> {
        self.check_live()?;
        let mut exec = self.exec_defaults().apply(exec.into());
        if let Some(session) = &self.agent
            && !needs_engine(session, &exec).await?
        {
            return exec_through(session, exec, self.oom_seen.clone()).await;
        }
        // The engine runs an exec as the container's user: with the agent as PID 1 that is root,
        // so say whom the command runs as by default.
        if exec.user.is_none() && self.agent.is_some() {
            exec.user = self.user.clone();
        }
        exec::start(
            &self.engine,
            &self.container_id,
            self.oom_seen.clone(),
            exec,
        )
        .await
    }

    /// Starts a command in the background: it outlives this call and this process, and the agent
    /// keeps its exit status and the last part of its output (replayed by
    /// [`Process::attach`]) until [`Process::forget`]. Needs the in-container agent.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] without the agent; [`ErrorKind::ExecFailed`] when the command
    /// cannot start (its message says why); [`ErrorKind::InvalidArgument`] for standard input
    /// (a background process has none).
    pub async fn start_process(&self, exec: impl Into<Exec>) -> Result<Process> {
        self.check_live()?;
        let session = self.agent_session("background processes")?;
        let id = session
            .start_process(&self.exec_defaults().apply(exec.into()))
            .await?;
        Ok(Process::new(id, session.clone()))
    }

    /// The background processes of this instance (running or ended, not yet forgotten), whoever
    /// started them.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] without the agent.
    pub async fn processes(&self) -> Result<Vec<ProcessInfo>> {
        self.check_live()?;
        self.agent_session("background processes")?
            .processes()
            .await
    }

    /// A handle to background process `id` (from [`Instance::processes`] or
    /// [`Process::id`]), e.g. in another process after a restart.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] without the agent.
    pub fn process(&self, id: u64) -> Result<Process> {
        self.check_live()?;
        Ok(Process::new(
            id,
            self.agent_session("background processes")?.clone(),
        ))
    }

    /// The output of the instance's init (keep-alive) command so far. With the agent it keeps
    /// that output while the instance runs; without an init command there is none.
    ///
    /// # Errors
    ///
    /// Engine or agent errors.
    pub async fn logs(&self) -> Result<Vec<Chunk>> {
        self.check_live()?;

        self.logs_stream(false).try_collect().await
    }

    /// The output of the instance's init command, following new output until the instance
    /// stops when `follow` is set.
    pub fn logs_stream(&self, follow: bool) -> impl Stream<Item = Result<Chunk>> + Send + 'static {
        if self.agent.is_none() {
            return self
                .engine
                .logs(&self.container_id, follow)
                .map_ok(Chunk::from)
                .boxed();
        }
        let session = self.agent.clone();
        futures_util::stream::once(async move {
            match session {
                Some(s) => match init_output(&s, follow).await {
                    // A stopped instance has no agent to ask, and the agent's kept output went
                    // with it (the engine keeps no logs of agent instances): nothing to show,
                    // and following ends at once, as `docker logs -f` does on a stopped one.
                    Err(e) if e.kind() == ErrorKind::Conflict => {
                        Ok(futures_util::stream::empty().boxed())
                    }
                    other => other,
                },
                None => Err(Error::internal("no agent session")),
            }
        })
        .map(|r| match r {
            Ok(stream) => stream.boxed(),
            Err(e) => futures_util::stream::once(async move { Err(e) }).boxed(),
        })
        .flatten()
        .boxed()
    }

    pub(super) fn agent_session(
        &self,
        what: &str,
    ) -> Result<&std::sync::Arc<crate::agent::Session>> {
        self.agent.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{what} need the in-container agent, and instance {} runs without it (spawned \
                     with engine_exec, or on an engine of another CPU architecture)",
                    self.id
                ),
            )
        })
    }
}

/// The init command's output through the agent: replayed, then (with `follow`) live until the
/// instance stops. Without an init command: nothing (and, following, the end of the instance).
async fn init_output(
    session: &crate::agent::Session,
    follow: bool,
) -> Result<futures_util::stream::BoxStream<'static, Result<Chunk>>> {
    let channel = session.channel().await?;
    let init = channel
        .processes()
        .await
        .map_err(crate::agent::from_agent)?
        .into_iter()
        .find(|p| p.init);
    let Some(init) = init else {
        if !follow {
            return Ok(futures_util::stream::empty().boxed());
        }
        // Nothing to show; the stream ends with the instance (its agent's channel closes).
        return Ok(futures_util::stream::unfold(channel, |ch| async move {
            while !ch.is_closed() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            None::<(Result<Chunk>, _)>
        })
        .boxed());
    };
    let handle = channel
        .attach(init.id, true)
        .await
        .map_err(crate::agent::from_agent)?;
    // Without `follow`: what is kept now — up to the agent's end-of-replay mark, or, from an
    // agent too old to mark it, until the replay (which arrives at once) goes quiet.
    let marked = channel.agent().capabilities & headjack_agent::proto::capability::REPLAY_MARK != 0;
    let quiet = (!follow && !marked).then_some(Duration::from_millis(100));
    Ok(
        futures_util::stream::unfold(handle, move |mut h| async move {
            loop {
                let next = match quiet {
                    Some(q) => match tokio::time::timeout(q, h.next()).await {
                        Ok(n) => n,
                        Err(_) => return None,
                    },
                    None => h.next().await,
                };
                match next {
                    Some(Ok(headjack_agent::client::AttachEvent::Output(c))) => {
                        return Some((Ok(crate::agent::process::output_chunk(c)), h));
                    }
                    Some(Ok(headjack_agent::client::AttachEvent::Replayed)) if !follow => {
                        return None;
                    }
                    Some(Ok(headjack_agent::client::AttachEvent::Replayed)) => continue,
                    Some(Ok(headjack_agent::client::AttachEvent::Gap(_))) => continue,
                    // The init ended, or the instance stopped: the output is complete.
                    Some(Ok(headjack_agent::client::AttachEvent::Exited(_)))
                    | Some(Err(_))
                    | None => {
                        return None;
                    }
                }
            }
        })
        .boxed(),
    )
}
