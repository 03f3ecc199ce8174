//! Files, streamed both ways: a read arrives in chunks as it is consumed, a write is sent as
//! the agent takes it; neither side ever holds a whole large file.

#[cfg(doc)]
use super::error::ErrorKind;
use super::error::{Error, Result};
use super::transport::{Channel, CreditMeter, Event, StreamRx};
use crate::proto::{DirEntry, Message, MkdirSpec, Stat, WriteFileSpec};

/// A file to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteFileRequest {
    /// Where.
    pub path: String,
    /// Permission bits (e.g. 0o644).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Create missing parent directories (mode 0755, same owner).
    pub parents: bool,
}

impl WriteFileRequest {
    /// A file at `path`, mode 0644, owned by root, parents created.
    pub fn new(path: impl Into<String>) -> WriteFileRequest {
        WriteFileRequest {
            path: path.into(),
            mode: 0o644,
            uid: 0,
            gid: 0,
            parents: true,
        }
    }

    /// Sets the permission bits.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Sets owner and group.
    pub fn owner(mut self, uid: u32, gid: u32) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }
}

/// A file being read: [`FileReader::next`] gives its bytes chunk by chunk.
///
/// Dropping it before the end stops the transfer.
pub struct FileReader {
    ch: Channel,
    rx: StreamRx,
    meter: CreditMeter,
    size: u64,
    mode: u32,
    done: bool,
}

impl std::fmt::Debug for FileReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileReader")
            .field("size", &self.size)
            .field("done", &self.done)
            .finish()
    }
}

impl FileReader {
    /// The file's size when it was opened.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The file's permission bits.
    pub fn mode(&self) -> u32 {
        self.mode
    }

    /// The next chunk; `None` at the end of the file.
    ///
    /// # Errors
    /// [`ErrorKind::Agent`] (a read error, or the file grew past the limit while read);
    /// [`ErrorKind::ChannelClosed`].
    ///
    /// # Cancel safety
    /// Cancel-safe.
    pub async fn next(&mut self) -> Option<Result<Vec<u8>>> {
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
        let r = match ev {
            Event::Msg(Message::Data { data, .. }) => {
                self.meter.consumed(&self.ch, self.rx.id, data.len());
                return Some(Ok(data));
            }
            Event::Msg(Message::End) => None,
            Event::Msg(Message::Error(e)) => Some(Err(Error::agent("reading a file", e))),
            Event::Msg(m) => Some(Err(Error::unexpected("reading a file", &m))),
            Event::Closed(e) => Some(Err(e)),
        };
        self.done = true;
        self.ch.close_stream(self.rx.id);
        r
    }

    /// Reads the rest into memory.
    ///
    /// # Errors
    /// As [`FileReader::next`].
    pub async fn read_to_end(mut self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.size.min(64 << 20) as usize);
        while let Some(c) = self.next().await {
            out.extend_from_slice(&c?);
        }
        Ok(out)
    }
}

impl Drop for FileReader {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.ch.send(self.rx.id, &Message::Cancel);
        }
        self.ch.close_stream(self.rx.id);
    }
}

/// A file being written. Nothing appears at the path until [`FileWriter::finish`] succeeds;
/// dropping the writer before that discards what was sent.
pub struct FileWriter {
    ch: Channel,
    rx: StreamRx,
    path: String,
    done: bool,
}

impl std::fmt::Debug for FileWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWriter")
            .field("path", &self.path)
            .field("done", &self.done)
            .finish()
    }
}

impl FileWriter {
    fn failure(&mut self) -> Option<Error> {
        match self.rx.rx.try_recv() {
            Ok(Event::Msg(Message::Error(e))) => {
                Some(Error::agent(&format!("writing {}", self.path), e))
            }
            Ok(Event::Closed(e)) => Some(e),
            Ok(Event::Msg(m)) => Some(Error::unexpected("writing a file", &m)),
            Err(_) => None,
        }
    }

    /// Sends more of the file (waiting while the agent has a window of it unwritten).
    ///
    /// # Errors
    /// The agent's error if opening or writing failed ([`ErrorKind::Agent`]);
    /// [`ErrorKind::ChannelClosed`].
    ///
    /// # Cancel safety
    /// Not cancel-safe: a cancelled write may have sent part of `data`.
    pub async fn write(&mut self, data: &[u8]) -> Result<()> {
        if let Some(e) = self.failure() {
            self.done = true;
            return Err(e);
        }
        if let Err(e) = self.ch.send_data(self.rx.id, data).await {
            // An agent error (which ends the stream) explains better than "ended".
            return Err(self.failure().unwrap_or(e));
        }
        Ok(())
    }

    /// Ends the file: the agent sets owner and mode and moves it into place.
    ///
    /// # Errors
    /// [`ErrorKind::Agent`] (no space, a directory in the way…); [`ErrorKind::ChannelClosed`].
    pub async fn finish(mut self) -> Result<()> {
        self.ch.send(self.rx.id, &Message::End)?;
        let ev = self.rx.rx.recv().await;
        self.done = true;
        match ev {
            Some(Event::Msg(Message::Ok)) => Ok(()),
            Some(Event::Msg(Message::Error(e))) => {
                Err(Error::agent(&format!("writing {}", self.path), e))
            }
            Some(Event::Msg(m)) => Err(Error::unexpected("writing a file", &m)),
            Some(Event::Closed(e)) => Err(e),
            None => Err(Error::closed("the reader stopped")),
        }
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.ch.send(self.rx.id, &Message::Cancel);
        }
        self.ch.close_stream(self.rx.id);
    }
}

impl Channel {
    /// Opens a file for reading; with `max_bytes`, a larger file is refused up front (and one
    /// that grows past it while read fails then).
    ///
    /// # Errors
    /// [`ErrorKind::Agent`] with code `NotFound`, `NotRegularFile`, `IsADirectory`, `TooLarge`,
    /// `PermissionDenied`…; [`ErrorKind::ChannelClosed`].
    pub async fn read_file(&self, path: &str, max_bytes: Option<u64>) -> Result<FileReader> {
        let mut rx = self.open_stream(&Message::ReadFile {
            path: path.as_bytes().to_vec(),
            max_bytes,
        })?;
        let what = format!("reading {path}");
        match rx.rx.recv().await {
            Some(Event::Msg(Message::FileInfo { size, mode })) => Ok(FileReader {
                ch: self.clone(),
                rx,
                meter: CreditMeter::new(),
                size,
                mode,
                done: false,
            }),
            other => {
                self.close_stream(rx.id);
                Err(match other {
                    Some(Event::Msg(Message::Error(e))) => Error::agent(&what, e),
                    Some(Event::Msg(m)) => Error::unexpected(&what, &m),
                    Some(Event::Closed(e)) => e,
                    None => Error::closed("the reader stopped"),
                })
            }
        }
    }

    /// Starts writing a file (as root, then given to `uid`:`gid`). Send the bytes with
    /// [`FileWriter::write`], then [`FileWriter::finish`].
    ///
    /// # Errors
    /// [`ErrorKind::ChannelClosed`]; the agent's refusal (a directory in the way…) comes from
    /// the first write or from finish.
    pub async fn write_file(&self, req: WriteFileRequest) -> Result<FileWriter> {
        let rx = self.open_stream(&Message::WriteFile(WriteFileSpec {
            path: req.path.as_bytes().to_vec(),
            mode: req.mode,
            uid: req.uid,
            gid: req.gid,
            parents: req.parents,
        }))?;
        Ok(FileWriter {
            ch: self.clone(),
            rx,
            path: req.path,
            done: false,
        })
    }

    /// Metadata of `path` (following a final symbolic link when `follow`).
    ///
    /// # Errors
    /// [`ErrorKind::Agent`] (`NotFound`…), [`ErrorKind::ChannelClosed`].
    pub async fn stat(&self, path: &str, follow: bool) -> Result<Stat> {
        let what = format!("reading the metadata of {path}");
        match self
            .call(
                &what,
                &Message::Stat {
                    path: path.as_bytes().to_vec(),
                    follow,
                },
            )
            .await?
        {
            Message::StatReply(s) => Ok(s),
            m => Err(Error::unexpected(&what, &m)),
        }
    }

    /// The entries of directory `path`, sorted by name (without `.` and `..`).
    ///
    /// # Errors
    /// [`ErrorKind::Agent`] (`NotFound`, `NotADirectory`…), [`ErrorKind::ChannelClosed`].
    pub async fn list(&self, path: &str) -> Result<Vec<DirEntry>> {
        let what = format!("listing {path}");
        let mut s = self.open_stream(&Message::ListDir {
            path: path.as_bytes().to_vec(),
        })?;
        let mut out = Vec::new();
        let r = loop {
            match s.rx.recv().await {
                Some(Event::Msg(Message::DirList(list))) => out.extend(list),
                Some(Event::Msg(Message::End)) => break Ok(out),
                Some(Event::Msg(Message::Error(e))) => break Err(Error::agent(&what, e)),
                Some(Event::Msg(m)) => break Err(Error::unexpected(&what, &m)),
                Some(Event::Closed(e)) => break Err(e),
                None => break Err(Error::closed("the reader stopped")),
            }
        };
        self.close_stream(s.id);
        r
    }

    /// Creates directory `path` (with `parents`: and its missing parents, succeeding if it
    /// exists), owned by `owner` (default: the agent's user).
    ///
    /// # Errors
    /// [`ErrorKind::Agent`] (`AlreadyExists`, `NotADirectory`…), [`ErrorKind::ChannelClosed`].
    pub async fn mkdir(
        &self,
        path: &str,
        mode: u32,
        owner: Option<(u32, u32)>,
        parents: bool,
    ) -> Result<()> {
        let what = format!("creating directory {path}");
        match self
            .call(
                &what,
                &Message::Mkdir(MkdirSpec {
                    path: path.as_bytes().to_vec(),
                    mode,
                    owner,
                    parents,
                }),
            )
            .await?
        {
            Message::Ok => Ok(()),
            m => Err(Error::unexpected(&what, &m)),
        }
    }

    /// Removes `path` (a directory only if empty, unless `recursive`; symbolic links are
    /// removed, not followed).
    ///
    /// # Errors
    /// [`ErrorKind::Agent`] (`NotFound`, `NotEmpty`…), [`ErrorKind::ChannelClosed`].
    pub async fn remove(&self, path: &str, recursive: bool) -> Result<()> {
        let what = format!("removing {path}");
        match self
            .call(
                &what,
                &Message::Remove {
                    path: path.as_bytes().to_vec(),
                    recursive,
                },
            )
            .await?
        {
            Message::Ok => Ok(()),
            m => Err(Error::unexpected(&what, &m)),
        }
    }
}
