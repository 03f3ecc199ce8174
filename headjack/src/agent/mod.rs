//! The in-container agent (crate `headjack-agent`): every instance runs it as PID 1, and the
//! library drives it over one channel per instance instead of the engine's exec — exec in about
//! a millisecond, kills that reach every descendant with no shell in the image, streamed files,
//! background processes that outlive this process (docs/ARCHITECTURE.md#agent).
//!
//! - [`delivery`]: the embedded binary and the volume that carries it into each engine;
//! - [`Session`]: the channel to one instance's agent — over the container's attach stream for
//!   the process that spawned it, over an engine exec of `headjack-agent relay` for any other
//!   (after a restart, `Client::attach`), reopened when it breaks;
//! - `exec`: an [`crate::Exec`] run by the agent, as an [`crate::ExecStream`];
//! - `files`, `process`: files and background processes through the channel.

pub(crate) mod delivery;
mod exec;
mod files;
pub mod process;

use headjack_agent::client::Channel;
use headjack_agent::proto;
use tokio::sync::Mutex;

use crate::engine::{Engine, ExecParams, OutputStream};
use crate::error::{Error, ErrorKind, Result};

pub(crate) use exec::{exec_through, needs_engine};
pub use files::{DirEntry, FileKind, FileStat};

/// The channel to one instance's agent, opened lazily and reopened when it broke.
pub(crate) struct Session {
    engine: Engine,
    container: String,
    channel: Mutex<Option<Channel>>,
    /// The container's memory limit, for the report of a command it killed.
    pub(crate) memory_limit: Option<u64>,
}

impl Session {
    /// A session for the agent of `container`, with `first` as its channel (the attach stream
    /// opened at spawn), or none yet (it is opened through a relay on first use).
    pub(crate) fn new(
        engine: Engine,
        container: String,
        first: Option<Channel>,
        memory_limit: Option<u64>,
    ) -> Session {
        Session {
            engine,
            container,
            channel: Mutex::new(first),
            memory_limit,
        }
    }

    /// `call` bounded like an engine call ([`crate::client::Client::with_timeout`]): the agent answers a
    /// request at once, so silence means that the engine relaying the channel is frozen or gone.
    pub(crate) async fn bounded<T>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let bound = self.engine.timeout();
        match tokio::time::timeout(bound, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.explain_closed(what, e).await),
            Err(_) => Err(self.silent(what, bound)),
        }
    }

    /// `e`, or when it is the agent's channel closing because the container stopped (the agent
    /// is its PID 1), the error saying so, as the engine path says it.
    pub(crate) async fn explain_closed(&self, what: &str, e: Error) -> Error {
        if e.kind() != ErrorKind::Conflict || !e.message().contains("channel to the agent closed") {
            return e;
        }
        // The engine may take a moment to record the exit of PID 1.
        for _ in 0..10 {
            match self.engine.inspect(&self.container).await {
                Ok(d) if d.status != "running" => {
                    let exit = d
                        .exit_code
                        .map(|c| format!(", exit code {c}"))
                        .unwrap_or_default();
                    return Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "{what}: container {} is not running ({}{exit}; its init or the \
                             agent ended, or it was stopped); start or resume it first",
                            self.container.get(..12).unwrap_or(&self.container),
                            d.status
                        ),
                    );
                }
                Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
                Err(_) => return e,
            }
        }
        e
    }

    /// The error for an agent that did not answer `what` within `bound`.
    pub(crate) fn silent(&self, what: &str, bound: std::time::Duration) -> Error {
        Error::new(
            ErrorKind::Timeout,
            format!(
                "{what} in container {}: the in-container agent did not answer within {bound:?}; \
                 the engine that relays its channel may be frozen or overloaded — retry, or give \
                 Client::with_timeout a longer bound",
                self.container.get(..12).unwrap_or(&self.container)
            ),
        )
    }

    /// The bound of one request (see [`Session::bounded`]).
    pub(crate) fn bound(&self) -> std::time::Duration {
        self.engine.timeout()
    }

    /// Uses `channel` from now on.
    pub(crate) async fn install(&self, channel: Channel) {
        *self.channel.lock().await = Some(channel);
    }

    /// The open channel; a closed one is replaced through a relay.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Conflict`] when the container is not running (its agent is gone);
    /// engine errors while opening the relay.
    pub(crate) async fn channel(&self) -> Result<Channel> {
        let mut slot = self.channel.lock().await;
        if let Some(ch) = slot.as_ref()
            && !ch.is_closed()
        {
            return Ok(ch.clone());
        }
        let ch = self.relay().await?;
        *slot = Some(ch.clone());
        Ok(ch)
    }

    /// Forgets the channel: after a (re)start of the container, the agent that served it is
    /// gone, even when the end of its stream has not arrived yet (Podman delivers it late).
    pub(crate) async fn forget_channel(&self) {
        self.channel.lock().await.take();
    }

    /// Whether the agent can run commands as another user than its own.
    pub(crate) async fn can_switch_user(&self) -> Result<bool> {
        Ok(self.channel().await?.agent().capabilities & proto::capability::SWITCH_USER != 0)
    }

    /// A new session through `headjack-agent relay`, run by the engine's exec as root.
    async fn relay(&self) -> Result<Channel> {
        let params = ExecParams {
            cmd: vec![delivery::PATH.into(), "relay".into()],
            user: Some("0".into()),
            stdin: true,
            ..Default::default()
        };
        let (_, output, input) = self.engine.exec(&self.container, params).await?;
        let input = input.ok_or_else(|| Error::internal("the relay exec has no stdin"))?;
        open(output, input, &self.container).await
    }
}

/// Opens a channel over an engine byte stream (demultiplexed output, input sink): the agent's
/// stdout is the protocol, its stderr diagnostics (logged).
pub(crate) async fn open(
    output: OutputStream,
    input: crate::engine::InputSink,
    container: &str,
) -> Result<Channel> {
    use futures_util::StreamExt;
    let container_log = container.to_string();
    let bytes = output.filter_map(move |chunk| {
        let container = container_log.clone();
        async move {
            match chunk {
                Ok(crate::engine::ExecOutputChunk::Stdout(b)) => Some(Ok(b)),
                Ok(crate::engine::ExecOutputChunk::Stderr(b)) => {
                    tracing::debug!(%container, "agent: {}", String::from_utf8_lossy(&b).trim_end());
                    None
                }
                Err(e) => Some(Err(std::io::Error::other(e.to_string()))),
            }
        }
    });
    let reader = tokio_util::io::StreamReader::new(Box::pin(bytes));
    Channel::open(reader, input).await.map_err(|e| {
        from_agent(e).context(format!(
            "opening the agent channel of container {container}"
        ))
    })
}

/// An agent client error as headjack's.
pub(crate) fn from_agent(e: headjack_agent::client::Error) -> Error {
    use headjack_agent::client::ErrorKind as K;
    use headjack_agent::proto::ErrorCode as C;
    let kind = match e.kind() {
        K::ChannelClosed | K::Ended => ErrorKind::Conflict,
        K::InvalidArgument => ErrorKind::InvalidArgument,
        K::StartFailed => ErrorKind::ExecFailed,
        K::Protocol => ErrorKind::Internal,
        K::Agent => match e.code() {
            Some(C::NotFound | C::NoSuchProcess) => ErrorKind::NotFound,
            Some(
                C::InvalidArgument
                | C::NotRegularFile
                | C::TooLarge
                | C::NotADirectory
                | C::IsADirectory
                | C::PermissionDenied,
            ) => ErrorKind::InvalidArgument,
            Some(C::AlreadyExists | C::NotEmpty | C::Busy) => ErrorKind::Conflict,
            Some(C::Unsupported) => ErrorKind::Unsupported,
            Some(C::Io) => ErrorKind::Io,
            _ => ErrorKind::Internal,
        },
    };
    Error::new(kind, e.message().to_string())
}
