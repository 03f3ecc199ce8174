//! Frame layout and the incremental decoder.
//!
//! ```text
//! offset  size  field
//! 0       2     magic "hj" (0x68 0x6a): lets a reader resynchronise after garbage
//! 2       1     message kind (see msg::kind)
//! 3       1     flags (reserved, sent as 0, ignored)
//! 4       4     stream id, little endian (0 = the connection itself)
//! 8       4     payload length, little endian, at most MAX_PAYLOAD
//! 12      len   payload
//! ```

use std::fmt;

use super::MAX_PAYLOAD;

/// The two bytes every frame starts with.
pub const MAGIC: [u8; 2] = *b"hj";

/// Bytes before the payload.
pub const HEADER_LEN: usize = 12;

/// One decoded frame: a message kind, the stream it belongs to and its undecoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The message kind (see [`super::msg::kind`]).
    pub kind: u8,
    /// The stream id.
    pub stream: u32,
    /// The payload.
    pub payload: Vec<u8>,
}

/// Appends a frame header to `out`.
///
/// # Panics
/// Never: a `len` above [`MAX_PAYLOAD`] is a bug in the caller, caught by a debug assertion.
pub fn write_header(out: &mut Vec<u8>, kind: u8, stream: u32, len: usize) {
    debug_assert!(len <= MAX_PAYLOAD, "frame payload of {len} bytes");
    out.extend_from_slice(&MAGIC);
    out.push(kind);
    out.push(0);
    out.extend_from_slice(&stream.to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
}

/// Why bytes on the wire are not a frame. The decoder recovers from each: after reporting it,
/// it skips to the next frame start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes at a frame boundary do not start with [`MAGIC`]; the decoder skips to the
    /// next magic.
    BadMagic,
    /// A header announces a payload larger than allowed; the decoder skips to the next magic.
    TooLarge {
        /// The stream id in the refused header.
        stream: u32,
        /// The announced length.
        len: u32,
        /// The maximum.
        max: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::BadMagic => write!(
                f,
                "bytes that are not a frame (no \"hj\" magic at a frame boundary): skipped to \
                 the next frame; the peer is not speaking the headjack agent protocol or lost \
                 its place in the stream"
            ),
            DecodeError::TooLarge { stream, len, max } => write!(
                f,
                "a frame on stream {stream} announces {len} payload bytes, more than the \
                 maximum of {max}: refused and skipped"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Turns a byte stream into frames. Feed it what arrives ([`Decoder::feed`]), then take frames
/// until it has none ([`Decoder::next_frame`]). It holds at most one partial frame plus what
/// was fed since, allocates a payload only once all of it has arrived, and never panics.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    start: usize,
    max_payload: usize,
    /// Skipping garbage until the next magic (already reported).
    resyncing: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(MAX_PAYLOAD)
    }
}

impl Decoder {
    /// A decoder refusing payloads above `max_payload` (at most [`MAX_PAYLOAD`]).
    pub fn new(max_payload: usize) -> Decoder {
        Decoder {
            buf: Vec::new(),
            start: 0,
            max_payload: max_payload.min(MAX_PAYLOAD),
            resyncing: false,
        }
    }

    /// Appends bytes read from the peer. Call [`Decoder::next_frame`] until it returns `None`
    /// before feeding more, so the buffer stays bounded by one frame plus one read.
    pub fn feed(&mut self, data: &[u8]) {
        if self.start > 0 && (self.start == self.buf.len() || self.start >= self.buf.len() / 2) {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes held (a partial frame, or frames not yet taken).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete frame, an error about bytes that are not one (after which decoding
    /// continues with the next frame), or `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Option<Result<Frame, DecodeError>> {
        loop {
            let avail = &self.buf[self.start..];
            if self.resyncing {
                match find_magic(avail) {
                    Some(at) => {
                        self.start += at;
                        self.resyncing = false;
                    }
                    None => {
                        // Keep a trailing 'h': it may begin the next magic.
                        let keep = usize::from(avail.last() == Some(&MAGIC[0]));
                        self.start += avail.len() - keep;
                        return None;
                    }
                }
                continue;
            }
            if avail.len() < HEADER_LEN {
                // A partial header that already cannot be one is garbage now, not later.
                if !avail.is_empty() && !MAGIC.starts_with(&avail[..avail.len().min(2)]) {
                    self.resyncing = true;
                    return Some(Err(DecodeError::BadMagic));
                }
                return None;
            }
            if avail[..2] != MAGIC {
                self.resyncing = true;
                return Some(Err(DecodeError::BadMagic));
            }
            let kind = avail[2];
            let stream = u32::from_le_bytes([avail[4], avail[5], avail[6], avail[7]]);
            let len = u32::from_le_bytes([avail[8], avail[9], avail[10], avail[11]]);
            if len as usize > self.max_payload {
                // Skip this header's magic and look for the next frame.
                self.start += MAGIC.len();
                self.resyncing = true;
                return Some(Err(DecodeError::TooLarge {
                    stream,
                    len,
                    max: self.max_payload,
                }));
            }
            let total = HEADER_LEN + len as usize;
            if avail.len() < total {
                return None;
            }
            let payload = avail[HEADER_LEN..total].to_vec();
            self.start += total;
            return Some(Ok(Frame {
                kind,
                stream,
                payload,
            }));
        }
    }
}

fn find_magic(data: &[u8]) -> Option<usize> {
    data.windows(2).position(|w| w == MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_header(&mut out, kind, stream, payload.len());
        out.extend_from_slice(payload);
        out
    }

    fn drain(d: &mut Decoder) -> Vec<Result<Frame, DecodeError>> {
        std::iter::from_fn(|| d.next_frame()).collect()
    }

    #[test]
    fn decodes_frames_split_anywhere() {
        let mut wire = frame(1, 7, b"hello");
        wire.extend(frame(2, 0, b""));
        wire.extend(frame(3, u32::MAX, &[0u8; 300]));
        for split in 0..wire.len() {
            let mut d = Decoder::default();
            d.feed(&wire[..split]);
            let mut got = drain(&mut d);
            d.feed(&wire[split..]);
            got.extend(drain(&mut d));
            let got: Vec<Frame> = got.into_iter().map(|r| r.unwrap()).collect();
            assert_eq!(got.len(), 3, "split at {split}");
            assert_eq!(got[0].payload, b"hello");
            assert_eq!(got[1].stream, 0);
            assert_eq!(got[2].payload.len(), 300);
            assert_eq!(d.buffered(), 0);
        }
    }

    #[test]
    fn garbage_is_reported_once_then_skipped() {
        let mut wire = b"garbage here".to_vec();
        wire.extend(frame(9, 1, b"x"));
        let mut d = Decoder::default();
        d.feed(&wire);
        let got = drain(&mut d);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], Err(DecodeError::BadMagic));
        assert_eq!(got[1].as_ref().unwrap().payload, b"x");
    }

    #[test]
    fn oversized_frames_are_refused_without_allocating() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&MAGIC);
        wire.extend_from_slice(&[5, 0]);
        wire.extend_from_slice(&3u32.to_le_bytes());
        wire.extend_from_slice(&u32::MAX.to_le_bytes());
        wire.extend(frame(6, 2, b"next"));
        let mut d = Decoder::new(1024);
        d.feed(&wire);
        let got = drain(&mut d);
        assert_eq!(
            got[0],
            Err(DecodeError::TooLarge {
                stream: 3,
                len: u32::MAX,
                max: 1024
            })
        );
        assert_eq!(got[1].as_ref().unwrap().payload, b"next");
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn a_magic_split_across_reads_is_found() {
        let mut d = Decoder::default();
        d.feed(b"zzzh");
        assert_eq!(d.next_frame(), Some(Err(DecodeError::BadMagic)));
        assert_eq!(d.next_frame(), None);
        let f = frame(4, 4, b"ok");
        d.feed(&f[1..]);
        assert_eq!(d.next_frame().unwrap().unwrap().payload, b"ok");
    }
}
