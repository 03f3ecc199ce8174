//! Background processes: started, listed, followed, signalled, waited for, forgotten — from
//! any session, also after the session that started them is gone.

#[cfg(doc)]
use super::error::ErrorKind;
use super::error::{Error, Result};
use super::exec::{Chunk, ExecRequest};
use super::transport::{Channel, CreditMeter, Event, StreamRx};
use crate::proto::{ExitStatus, Message, ProcessInfo};

/// What following a background process yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachEvent {
    /// Output.
    Output(Chunk),
    /// This many bytes of output were lost to this follower (the ring dropped them before it
    /// read them).
    Gap(u64),
    /// Everything the process had written when the attach (with replay) was asked for has been
    /// delivered; what follows is new output. Sent once, only by agents with
    /// [`crate::proto::capability::REPLAY_MARK`].
    Replayed,
    /// The process ended; nothing follows.
    Exited(ExitStatus),
}

/// Follows a background process's output: first what the agent kept, then live.
///
/// Dropping it stops following (the process is not affected).
pub struct AttachHandle {
    ch: Channel,
    rx: StreamRx,
    meter: CreditMeter,
    done: bool,
}

impl std::fmt::Debug for AttachHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachHandle")
            .field("stream", &self.rx.id)
            .field("done", &self.done)
            .finish()
    }
}

impl AttachHandle {
    /// The next event; `None` after [`AttachEvent::Exited`] (or when the process was forgotten).
    ///
    /// # Errors
    /// [`ErrorKind::Agent`] (no such process…), [`ErrorKind::ChannelClosed`].
    ///
    /// # Cancel safety
    /// Cancel-safe.
    pub async fn next(&mut self) -> Option<Result<AttachEvent>> {
        loop {
            if self.done {
                return None;
            }
            let ev = self.rx.rx.recv().await.unwrap_or_else(|| {
                Event::Closed(
                    self.ch
                        .closed_reason()
                        .unwrap_or_else(|| Error::closed("the reader stopped")),
                )
            });
            match ev {
                Event::Msg(Message::Data { kind, data }) => {
                    self.meter.consumed(&self.ch, self.rx.id, data.len());
                    return Some(Ok(AttachEvent::Output(Chunk::from_data(kind, data))));
                }
                Event::Msg(Message::Gap { lost }) => return Some(Ok(AttachEvent::Gap(lost))),
                Event::Msg(Message::Exited(st)) => return Some(Ok(AttachEvent::Exited(st))),
                Event::Msg(Message::Replayed) => return Some(Ok(AttachEvent::Replayed)),
                Event::Msg(Message::End) => {
                    self.done = true;
                    self.ch.close_stream(self.rx.id);
                }
                Event::Msg(Message::Error(e)) => {
                    self.done = true;
                    self.ch.close_stream(self.rx.id);
                    return Some(Err(Error::agent("attaching to the process", e)));
                }
                Event::Msg(m) => return Some(Err(Error::unexpected("attaching", &m))),
                Event::Closed(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl Drop for AttachHandle {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.ch.send(self.rx.id, &Message::Cancel);
        }
        self.ch.close_stream(self.rx.id);
    }
}

impl Channel {
    /// Starts a background process: it outlives this session (and the host process), keeps
    /// its exit status and the last [`ExecRequest::ring_bytes`] of output until forgotten, and
    /// any session can [`Channel::attach`], [`Channel::kill`], [`Channel::wait`] it.
    /// Returns its id once it is running. Its stdin reads as empty.
    ///
    /// # Errors
    /// [`ErrorKind::StartFailed`] if it could not start (with the reason);
    /// [`ErrorKind::Agent`], [`ErrorKind::ChannelClosed`].
    pub async fn start_process(&self, req: ExecRequest) -> Result<u64> {
        match self
            .call("starting a process", &Message::Start(req.spec()))
            .await?
        {
            Message::Started { process, .. } => Ok(process),
            Message::Exited(ExitStatus {
                start_failure: Some(f),
                ..
            }) => Err(Error::start_failed(f)),
            m => Err(Error::unexpected("starting a process", &m)),
        }
    }

    /// Every process the agent runs or remembers (this and other sessions' execs, background
    /// processes, the init).
    ///
    /// # Errors
    /// [`ErrorKind::ChannelClosed`].
    pub async fn processes(&self) -> Result<Vec<ProcessInfo>> {
        let mut s = self.open_stream(&Message::ListProcesses)?;
        let mut out = Vec::new();
        let r = loop {
            match s.rx.recv().await {
                Some(Event::Msg(Message::Processes(list))) => out.extend(list),
                Some(Event::Msg(Message::End)) => break Ok(out),
                Some(Event::Msg(Message::Error(e))) => {
                    break Err(Error::agent("listing processes", e));
                }
                Some(Event::Msg(m)) => break Err(Error::unexpected("listing processes", &m)),
                Some(Event::Closed(e)) => break Err(e),
                None => break Err(Error::closed("the reader stopped")),
            }
        };
        self.close_stream(s.id);
        r
    }

    /// Follows background process `id`: with `replay`, first the output it kept, then live
    /// output until it ends.
    ///
    /// # Errors
    /// [`ErrorKind::ChannelClosed`]; an unknown process is reported by the handle's first
    /// [`AttachHandle::next`].
    pub async fn attach(&self, id: u64, replay: bool) -> Result<AttachHandle> {
        let rx = self.open_stream(&Message::Attach {
            process: id,
            replay,
        })?;
        Ok(AttachHandle {
            ch: self.clone(),
            rx,
            meter: CreditMeter::new(),
            done: false,
        })
    }

    /// Sends `signal` to process `id` and every process it started (SIGKILL: repeatedly, until
    /// none is left). A process that already ended is left alone.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for a number that is not a signal; [`ErrorKind::Agent`]
    /// for an unknown process; [`ErrorKind::ChannelClosed`].
    pub async fn kill(&self, id: u64, signal: i32) -> Result<()> {
        super::exec::check_signal(signal)?;
        let what = format!("signalling process {id}");
        match self
            .call(
                &what,
                &Message::Kill {
                    process: id,
                    signal,
                },
            )
            .await?
        {
            Message::Ok => Ok(()),
            m => Err(Error::unexpected(&what, &m)),
        }
    }

    /// Waits for process `id` to end.
    ///
    /// # Errors
    /// [`ErrorKind::Agent`] for an unknown process; [`ErrorKind::ChannelClosed`].
    ///
    /// # Cancel safety
    /// Cancel-safe (the process is not affected).
    pub async fn wait(&self, id: u64) -> Result<ExitStatus> {
        let what = format!("waiting for process {id}");
        match self.call(&what, &Message::Wait { process: id }).await? {
            Message::Exited(st) => Ok(st),
            m => Err(Error::unexpected(&what, &m)),
        }
    }

    /// Drops the record of ended process `id`.
    ///
    /// # Errors
    /// [`ErrorKind::Agent`] with code `Busy` while it runs, `NoSuchProcess` for an unknown id.
    pub async fn forget(&self, id: u64) -> Result<()> {
        let what = format!("forgetting process {id}");
        match self.call(&what, &Message::Forget { process: id }).await? {
            Message::Ok => Ok(()),
            m => Err(Error::unexpected(&what, &m)),
        }
    }
}
