//! One client session: its transport, decoder, pending output and open streams.

use std::collections::HashMap;
use std::io;
use std::os::fd::{OwnedFd, RawFd};

use headjack_agent::proto::{
    DataKind, Decoder, ErrorCode, ErrorReply, MAX_DATA_CHUNK, Message, encode_data,
};

use super::files;
use super::sys;

/// What a stream id of a session refers to.
pub enum Stream {
    /// A foreground exec (process id).
    Exec(u64),
    /// A background process being started: the answer comes once the shim reports.
    Starting(u64),
    /// Following a background process's output.
    Attach(u64),
    /// Waiting for a process to end.
    Wait(u64),
    /// A file being read, and the credit left.
    Read(Box<files::Reader>, u32),
    /// A file being written (`None` after a failure: data is acknowledged and dropped until the
    /// client ends or cancels), and the data consumed since the last credit grant.
    Write(Option<Box<files::Writer>>, u32),
}

pub struct Session {
    pub rfd: RawFd,
    pub wfd: RawFd,
    /// The socket, kept open while the session lives (the stdio session owns none).
    _sock: Option<OwnedFd>,
    pub stdio: bool,
    pub dec: Decoder,
    out: Vec<u8>,
    out_pos: usize,
    /// Waiting for the transport to become writable.
    pub out_armed: bool,
    /// The transport cannot be polled (a regular file): write blocking.
    pub out_blocking: bool,
    /// Not reading requests until the client reads the answers.
    pub in_paused: bool,
    /// `rfd` (and `wfd`, when it is another descriptor) is in the epoll set.
    pub r_registered: bool,
    pub w_registered: bool,
    pub hello: bool,
    /// The protocol version agreed in the hello.
    pub version: u16,
    pub streams: HashMap<u32, Stream>,
    /// Failed or ended: to be closed at the end of this turn.
    pub dead: bool,
    pub label: String,
}

impl Session {
    pub fn new(rfd: RawFd, wfd: RawFd, sock: Option<OwnedFd>, label: String) -> Session {
        Session {
            rfd,
            wfd,
            stdio: sock.is_none(),
            _sock: sock,
            dec: Decoder::default(),
            out: Vec::new(),
            out_pos: 0,
            out_armed: false,
            out_blocking: false,
            in_paused: false,
            r_registered: false,
            w_registered: false,
            hello: false,
            version: 0,
            streams: HashMap::new(),
            dead: false,
            label,
        }
    }

    pub fn send(&mut self, stream: u32, msg: &Message) {
        if let Err(e) = msg.encode(stream, &mut self.out) {
            // Only lists can grow this large, and they are sent in pieces: a bug, but not one
            // to crash the agent over.
            self.send_error(stream, ErrorCode::TooLarge, &e.to_string());
        }
    }

    pub fn send_data(&mut self, stream: u32, kind: DataKind, data: &[u8]) {
        for chunk in data.chunks(MAX_DATA_CHUNK) {
            encode_data(&mut self.out, stream, kind, chunk);
        }
    }

    pub fn send_error(&mut self, stream: u32, code: ErrorCode, message: &str) {
        self.send_reply(
            stream,
            ErrorReply {
                code,
                message: message.to_string(),
            },
        );
    }

    pub fn send_reply(&mut self, stream: u32, e: ErrorReply) {
        let mut message = e.message;
        if message.len() > 16 << 10 {
            message.truncate(16 << 10);
        }
        let _ = Message::Error(ErrorReply {
            code: e.code,
            message,
        })
        .encode(stream, &mut self.out);
    }

    /// Bytes waiting to be written to the transport.
    pub fn pending(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Writes what it can; `Ok(true)` when nothing is left.
    pub fn flush(&mut self) -> io::Result<bool> {
        while self.out_pos < self.out.len() {
            let r = if self.out_blocking {
                sys::write_all(self.wfd, &self.out[self.out_pos..]).map(|_| self.pending())
            } else {
                sys::write(self.wfd, &self.out[self.out_pos..])
            };
            match r {
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
            // Give back a large buffer after a burst.
            if self.out.capacity() > 1 << 20 {
                self.out = Vec::new();
            }
            return Ok(true);
        }
        if self.out_pos > 1 << 20 {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
        Ok(false)
    }
}
