//! The host side of a channel to a running agent.
//!
//! [`Channel::open`] takes any byte transport — the container's attach stream (stdout only:
//! the agent writes diagnostics to stderr), or the engine exec of `headjack-agent relay` — does
//! the handshake and drives the transport on two spawned tasks. Every call then opens its own
//! stream on it: any number of execs, file transfers and process calls run concurrently, each
//! flow-controlled on its own, so a slow reader of one never stalls another.
//!
//! If the agent exits, the container stops or the transport breaks, every pending call and
//! stream fails with one [`ErrorKind::ChannelClosed`] error; nothing hangs.
//!
//! ```no_run
//! # async fn demo(r: tokio::io::DuplexStream, w: tokio::io::DuplexStream) -> Result<(), headjack_agent::client::Error> {
//! use headjack_agent::client::{Channel, ExecRequest};
//! let ch = Channel::open(r, w).await?;
//! let out = ch.exec(ExecRequest::new(["echo", "hi"])).await?.output().await?;
//! assert_eq!(out.stdout, b"hi\n");
//! # Ok(()) }
//! ```

mod error;
mod exec;
mod files;
mod process;
mod transport;

pub use error::{Error, ErrorKind, Result};
pub use exec::{Chunk, ExecControl, ExecHandle, ExecOutput, ExecRequest, StreamKind};
pub use files::{FileReader, FileWriter, WriteFileRequest};
pub use process::{AttachEvent, AttachHandle};
pub use transport::{Channel, HANDSHAKE_TIMEOUT};

pub use crate::proto::{
    DirEntry, ExitStatus, FileKind, HelloReply, ProcessInfo, StartFailure, StartFailureKind, Stat,
};
