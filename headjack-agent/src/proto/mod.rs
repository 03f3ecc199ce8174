//! The agent's wire protocol: length-prefixed binary frames carrying typed messages, many
//! concurrent streams per connection, credit-based flow control per stream. Pure std; the
//! normative description is `PROTOCOL.md` at the crate root.
//!
//! - [`frame`]: the frame layout and an incremental [`Decoder`] that never panics, never
//!   allocates more than one frame's worth, and resynchronises after garbage.
//! - [`msg`]: the messages ([`Message`]) and their payload encoding.

pub mod frame;
pub mod msg;
mod wire;

pub use frame::{DecodeError, Decoder, Frame, HEADER_LEN, MAGIC};
pub use msg::*;

/// The newest protocol version this build speaks. Version 2 adds [`Message::Replayed`], sent
/// only on sessions that agreed on version 2, so a version-1 client never sees it.
pub const PROTOCOL_VERSION: u16 = 2;

/// The oldest protocol version this build still speaks.
pub const OLDEST_PROTOCOL_VERSION: u16 = 1;

/// The largest payload a frame may carry. Larger announced lengths are refused.
pub const MAX_PAYLOAD: usize = 1 << 20;

/// The largest data chunk either side puts in one [`Message::Data`] frame, so that one busy
/// stream cannot hold the connection for long and others interleave.
pub const MAX_DATA_CHUNK: usize = 64 << 10;

/// The initial credit of every stream in each direction: how many data bytes a sender may have
/// in flight before the receiver grants more with [`Message::Credit`].
pub const WINDOW: u32 = 1 << 20;

/// A receiver grants credit back once it has consumed at least this much (a quarter of the
/// window: few credit frames, and the sender never waits on a grant that is not coming).
pub const CREDIT_THRESHOLD: u32 = WINDOW / 4;

/// The stream id of connection-level messages (the handshake, errors about a frame that has no
/// usable stream). Requests use ids from 1 up, chosen by the client, unique while in use.
pub const CONNECTION: u32 = 0;
