//! The channel: handshake, the reader and writer tasks, stream registration, credit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, mpsc};
use tokio::task::AbortHandle;

use super::error::{Error, ErrorKind, Result};
use crate::proto::{
    self, CREDIT_THRESHOLD, DataKind, Decoder, Hello, HelloReply, MAX_DATA_CHUNK, Message,
    PROTOCOL_VERSION,
};

/// How long [`Channel::open`] waits for the agent's answer to the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// What the reader hands a stream.
pub(crate) enum Event {
    Msg(Message),
    Closed(Error),
}

struct Slot {
    events: mpsc::UnboundedSender<Event>,
    /// Bytes we may still send on this stream.
    credit: u32,
    notify: Arc<Notify>,
}

struct State {
    next_stream: u32,
    streams: HashMap<u32, Slot>,
    closed: Option<Error>,
}

impl State {
    fn close(&mut self, e: Error) {
        if self.closed.is_some() {
            return;
        }
        tracing::debug!(error = %e, "agent channel closed");
        for (_, slot) in self.streams.drain() {
            let _ = slot.events.send(Event::Closed(e.clone()));
            slot.notify.notify_waiters();
        }
        self.closed = Some(e);
    }
}

pub(crate) struct Shared {
    tx: mpsc::UnboundedSender<Vec<u8>>,
    state: Arc<Mutex<State>>,
    hello: HelloReply,
    tasks: Vec<AbortHandle>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The writer ends by itself once `tx` is gone; the reader may wait on a transport that
        // never ends (an attach stream): stop it.
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A session with one agent. Cheap to clone; all clones share the session. The session ends
/// when the last clone and the last handle drawn from it are dropped.
#[derive(Clone)]
pub struct Channel {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("agent", &self.shared.hello.agent_version)
            .field("pid", &self.shared.hello.pid)
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// A stream registered on the channel: its id and its incoming events.
pub(crate) struct StreamRx {
    pub id: u32,
    pub rx: mpsc::UnboundedReceiver<Event>,
}

impl Channel {
    /// Opens a session over `reader`/`writer` (the agent's stdout and stdin), performs the
    /// handshake and returns once the agent answered. Two tasks are spawned on the current
    /// tokio runtime to move bytes.
    ///
    /// # Errors
    /// [`ErrorKind::ChannelClosed`] if the transport ends or fails, or the agent does not
    /// answer within [`HANDSHAKE_TIMEOUT`]; [`ErrorKind::Agent`] if it refuses (no protocol
    /// version in common).
    ///
    /// # Cancel safety
    /// Dropping the future drops the transport and the session with it.
    pub async fn open<R, W>(reader: R, writer: W) -> Result<Channel>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let state = Arc::new(Mutex::new(State {
            next_stream: 1,
            streams: HashMap::new(),
            closed: None,
        }));
        let (tx, rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let (hello_tx, mut hello_rx) = mpsc::unbounded_channel();
        state.lock().expect("not poisoned").streams.insert(
            proto::CONNECTION,
            Slot {
                events: hello_tx,
                credit: 0,
                notify: Arc::new(Notify::new()),
            },
        );
        let writer_task = tokio::spawn(write_loop(writer, rx, state.clone()));
        let reader_task = tokio::spawn(read_loop(reader, state.clone()));
        // Until the handshake succeeds, dropping or failing stops both tasks.
        let mut guard = TaskGuard(vec![writer_task.abort_handle(), reader_task.abort_handle()]);
        let hello = Message::Hello(Hello {
            min_version: proto::OLDEST_PROTOCOL_VERSION,
            max_version: PROTOCOL_VERSION,
            client: format!("headjack-agent client {}", env!("CARGO_PKG_VERSION")),
        });
        let _ = tx.send(hello.to_frame(proto::CONNECTION).expect("small"));
        let reply = tokio::time::timeout(HANDSHAKE_TIMEOUT, hello_rx.recv())
            .await
            .map_err(|_| {
                Error::closed(format!(
                    "no answer to the handshake within {}s: is the agent running on the other \
                     end, reading its stdin?",
                    HANDSHAKE_TIMEOUT.as_secs()
                ))
            })?;
        let hello = match reply {
            Some(Event::Msg(Message::HelloReply(h))) => h,
            Some(Event::Msg(Message::Error(e))) => return Err(Error::agent("handshake", e)),
            Some(Event::Msg(m)) => return Err(Error::unexpected("handshake", &m)),
            Some(Event::Closed(e)) => return Err(e),
            None => return Err(Error::closed("the reader stopped")),
        };
        // Later connection-level messages are errors about frames: log them.
        let logger = tokio::spawn(async move {
            while let Some(ev) = hello_rx.recv().await {
                match ev {
                    Event::Msg(Message::Error(e)) => {
                        tracing::warn!(code = ?e.code, "agent reported: {}", e.message)
                    }
                    Event::Msg(m) => tracing::debug!(kind = m.kind(), "unexpected message"),
                    Event::Closed(_) => break,
                }
            }
        });
        // From now on the writer ends by itself once every sender is dropped (after writing
        // what is queued, such as the cancels of dropped handles); the reader and the logger
        // are stopped when the session is dropped.
        guard.0.clear();
        let tasks = vec![reader_task.abort_handle(), logger.abort_handle()];
        tracing::debug!(
            agent = %hello.agent_version, pid = hello.pid, uid = hello.uid,
            capabilities = hello.capabilities, "agent channel open"
        );
        Ok(Channel {
            shared: Arc::new(Shared {
                tx,
                state,
                hello,
                tasks,
            }),
        })
    }

    /// What the agent said about itself in the handshake.
    pub fn agent(&self) -> &HelloReply {
        &self.shared.hello
    }

    /// Whether the channel is gone (every call would fail).
    pub fn is_closed(&self) -> bool {
        self.shared
            .state
            .lock()
            .expect("not poisoned")
            .closed
            .is_some()
    }

    /// Why the channel closed, once it has.
    pub fn closed_reason(&self) -> Option<Error> {
        self.shared
            .state
            .lock()
            .expect("not poisoned")
            .closed
            .clone()
    }

    /// Registers a new stream and sends `msg` on it.
    pub(crate) fn open_stream(&self, msg: &Message) -> Result<StreamRx> {
        let frame_check = msg
            .to_frame(0)
            .map_err(|e| Error::new(ErrorKind::InvalidArgument, e.to_string()))?;
        let (etx, erx) = mpsc::unbounded_channel();
        let id = {
            let mut st = self.shared.state.lock().expect("not poisoned");
            if let Some(e) = &st.closed {
                return Err(e.clone());
            }
            let mut id = st.next_stream;
            while id == proto::CONNECTION || st.streams.contains_key(&id) {
                id = id.wrapping_add(1);
            }
            st.next_stream = id.wrapping_add(1);
            st.streams.insert(
                id,
                Slot {
                    events: etx,
                    credit: self.shared.hello.window,
                    notify: Arc::new(Notify::new()),
                },
            );
            id
        };
        let mut frame = frame_check;
        frame[4..8].copy_from_slice(&id.to_le_bytes());
        self.send_frame(frame)?;
        Ok(StreamRx { id, rx: erx })
    }

    pub(crate) fn close_stream(&self, id: u32) {
        self.shared
            .state
            .lock()
            .expect("not poisoned")
            .streams
            .remove(&id);
    }

    pub(crate) fn send_frame(&self, frame: Vec<u8>) -> Result<()> {
        self.shared.tx.send(frame).map_err(|_| {
            self.closed_reason()
                .unwrap_or_else(|| Error::closed("the writer stopped"))
        })
    }

    pub(crate) fn send(&self, stream: u32, msg: &Message) -> Result<()> {
        let frame = msg
            .to_frame(stream)
            .map_err(|e| Error::new(ErrorKind::InvalidArgument, e.to_string()))?;
        self.send_frame(frame)
    }

    /// Sends `data` on a stream as the agent's credit allows (waiting for more as needed).
    pub(crate) async fn send_data(&self, stream: u32, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let n = self
                .take_credit(stream, data.len().min(MAX_DATA_CHUNK))
                .await?;
            let mut frame = Vec::with_capacity(proto::HEADER_LEN + 1 + n);
            proto::encode_data(&mut frame, stream, DataKind::Bytes, &data[..n]);
            self.send_frame(frame)?;
            data = &data[n..];
        }
        Ok(())
    }

    /// Waits until the stream has credit; takes up to `want` of it.
    async fn take_credit(&self, stream: u32, want: usize) -> Result<usize> {
        loop {
            let notify = {
                let mut st = self.shared.state.lock().expect("not poisoned");
                if let Some(e) = &st.closed {
                    return Err(e.clone());
                }
                let Some(slot) = st.streams.get_mut(&stream) else {
                    return Err(Error::new(
                        ErrorKind::Ended,
                        "the stream ended (the command exited, or the agent refused the request)",
                    ));
                };
                if slot.credit > 0 {
                    let n = (slot.credit as usize).min(want);
                    slot.credit -= n as u32;
                    return Ok(n);
                }
                slot.notify.clone()
            };
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Credit may have arrived between the check and `enable`: look again first.
            {
                let st = self.shared.state.lock().expect("not poisoned");
                let ready =
                    st.closed.is_some() || st.streams.get(&stream).is_none_or(|s| s.credit > 0);
                if ready {
                    continue;
                }
            }
            notified.await;
        }
    }

    /// Sends one request on a new stream and returns the first answer, closing the stream.
    pub(crate) async fn call(&self, what: &str, msg: &Message) -> Result<Message> {
        let mut s = self.open_stream(msg)?;
        let first = s.rx.recv().await;
        self.close_stream(s.id);
        match first {
            Some(Event::Msg(Message::Error(e))) => Err(Error::agent(what, e)),
            Some(Event::Msg(m)) => Ok(m),
            Some(Event::Closed(e)) => Err(e),
            None => Err(self
                .closed_reason()
                .unwrap_or_else(|| Error::closed("the reader stopped"))),
        }
    }
}

/// Grants the agent credit as data is consumed, in batches.
pub(crate) struct CreditMeter {
    consumed: u32,
}

impl CreditMeter {
    pub fn new() -> CreditMeter {
        CreditMeter { consumed: 0 }
    }

    pub fn consumed(&mut self, ch: &Channel, stream: u32, n: usize) {
        self.consumed = self.consumed.saturating_add(n as u32);
        if self.consumed >= CREDIT_THRESHOLD {
            let grant = std::mem::take(&mut self.consumed);
            let _ = ch.send(stream, &Message::Credit(grant));
        }
    }
}

struct TaskGuard(Vec<AbortHandle>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut w: W,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    state: Arc<Mutex<State>>,
) {
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.clear();
        batch.extend_from_slice(&first);
        // Whatever else is queued goes out in the same write.
        while batch.len() < 256 << 10 {
            match rx.try_recv() {
                Ok(f) => batch.extend_from_slice(&f),
                Err(_) => break,
            }
        }
        let r = async {
            w.write_all(&batch).await?;
            w.flush().await
        }
        .await;
        if let Err(e) = r {
            state
                .lock()
                .expect("not poisoned")
                .close(Error::closed(format!("writing to the agent failed: {e}")));
            return;
        }
    }
    // Every sender is gone: the session is over.
    let _ = w.shutdown().await;
}

async fn read_loop<R: AsyncRead + Unpin>(mut r: R, state: Arc<Mutex<State>>) {
    let mut dec = Decoder::default();
    let mut buf = vec![0u8; 64 << 10];
    let why = loop {
        let n = match r.read(&mut buf).await {
            Ok(0) => break "end of stream from the agent".to_string(),
            Ok(n) => n,
            Err(e) => break format!("reading from the agent failed: {e}"),
        };
        dec.feed(&buf[..n]);
        while let Some(frame) = dec.next_frame() {
            let frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!("undecodable bytes from the agent: {e}");
                    continue;
                }
            };
            let msg = Message::decode(frame.kind, &frame.payload);
            let mut st = state.lock().expect("not poisoned");
            let Some(slot) = st.streams.get_mut(&frame.stream) else {
                // A stream we already closed (a late answer, credit, data after a cancel).
                continue;
            };
            match msg {
                Ok(Message::Credit(n)) => {
                    slot.credit = slot.credit.saturating_add(n);
                    slot.notify.notify_waiters();
                }
                Ok(m) => {
                    let _ = slot.events.send(Event::Msg(m));
                }
                Err(e) => {
                    let _ = slot.events.send(Event::Closed(Error::new(
                        ErrorKind::Protocol,
                        format!("the agent sent a message this client cannot decode: {e}"),
                    )));
                }
            }
        }
    };
    state
        .lock()
        .expect("not poisoned")
        .close(Error::closed(why));
}
