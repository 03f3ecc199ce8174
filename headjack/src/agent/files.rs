//! Files through the agent: streamed both ways (a large file never sits in memory on either
//! side), plus stat, list, mkdir and remove — no tar round trip.

use std::path::Path;

use headjack_agent::client::WriteFileRequest;
use headjack_agent::proto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Session, from_agent};
use crate::error::{Error, Result};

/// What kind of file a path is.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// Anything else (a device, a FIFO, a socket).
    Other,
}

/// What [`crate::Instance::stat`] reports about a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStat {
    /// What it is.
    pub kind: FileKind,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits (with setuid, setgid, sticky).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Where a symbolic link points.
    pub link_target: Option<String>,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's name (non-UTF-8 bytes replaced).
    pub name: String,
    /// Its metadata (of the link itself, for a symbolic link).
    pub stat: FileStat,
}

impl From<proto::Stat> for FileStat {
    fn from(s: proto::Stat) -> FileStat {
        FileStat {
            kind: match s.kind {
                proto::FileKind::File => FileKind::File,
                proto::FileKind::Dir => FileKind::Dir,
                proto::FileKind::Symlink => FileKind::Symlink,
                _ => FileKind::Other,
            },
            size: s.size,
            mode: s.mode,
            uid: s.uid,
            gid: s.gid,
            mtime: s.mtime_sec,
            link_target: s
                .link_target
                .map(|t| String::from_utf8_lossy(&t).into_owned()),
        }
    }
}

impl Session {
    /// Reads the regular file at `path` if it holds at most `max_bytes`.
    pub(crate) async fn read_file(&self, path: &str, max_bytes: u64) -> Result<Vec<u8>> {
        let reader = self
            .bounded(&format!("reading {path}"), async {
                self.channel()
                    .await?
                    .read_file(path, Some(max_bytes))
                    .await
                    .map_err(|e| limit_error(e, path, max_bytes))
            })
            .await?;
        reader
            .read_to_end()
            .await
            .map_err(|e| limit_error(e, path, max_bytes))
    }

    /// Writes `data` to `path` with `mode`, owned by `uid:gid`, creating missing parents.
    pub(crate) async fn write_file(
        &self,
        path: &str,
        data: &[u8],
        mode: u32,
        owner: (u32, u32),
    ) -> Result<()> {
        let mut w = self.writer(path, mode, owner).await?;
        w.write(data).await.map_err(from_agent)?;
        w.finish().await.map_err(from_agent)
    }

    /// A new file at `path` (written under a temporary name, renamed into place by `finish`).
    async fn writer(
        &self,
        path: &str,
        mode: u32,
        owner: (u32, u32),
    ) -> Result<headjack_agent::client::FileWriter> {
        let req = WriteFileRequest::new(path)
            .mode(mode)
            .owner(owner.0, owner.1);
        self.bounded(&format!("writing {path}"), async {
            self.channel()
                .await?
                .write_file(req)
                .await
                .map_err(from_agent)
        })
        .await
    }

    /// Streams host file `from` into `path`.
    pub(crate) async fn copy_file_in(
        &self,
        from: &Path,
        path: &str,
        owner: (u32, u32),
    ) -> Result<()> {
        let what = |e| Error::io(format!("reading {}", from.display()), e);
        let mut file = tokio::fs::File::open(from).await.map_err(what)?;
        let mode = file.metadata().await.map_err(what)?.permissions();
        let mode = std::os::unix::fs::PermissionsExt::mode(&mode) & 0o7777;
        let mut w = self.writer(path, mode, owner).await?;
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = file.read(&mut buf).await.map_err(what)?;
            if n == 0 {
                break;
            }
            w.write(&buf[..n]).await.map_err(from_agent)?;
        }
        w.finish().await.map_err(from_agent)
    }

    /// Streams the regular file at `path` into host file `to` (created or replaced).
    pub(crate) async fn copy_file_out(&self, path: &str, to: &Path) -> Result<u64> {
        let mut reader = self
            .bounded(&format!("reading {path}"), async {
                self.channel()
                    .await?
                    .read_file(path, None)
                    .await
                    .map_err(from_agent)
            })
            .await?;
        let what = |e| Error::io(format!("writing {}", to.display()), e);
        let mut file = tokio::fs::File::create(to).await.map_err(what)?;
        let mut written = 0u64;
        while let Some(chunk) = reader.next().await {
            let chunk = chunk.map_err(from_agent)?;
            file.write_all(&chunk).await.map_err(what)?;
            written += chunk.len() as u64;
        }
        file.flush().await.map_err(what)?;
        Ok(written)
    }

    pub(crate) async fn stat(&self, path: &str) -> Result<FileStat> {
        let s = self
            .bounded(&format!("stat of {path}"), async {
                self.channel()
                    .await?
                    .stat(path, false)
                    .await
                    .map_err(from_agent)
            })
            .await?;
        Ok(s.into())
    }

    pub(crate) async fn list(&self, path: &str) -> Result<Vec<DirEntry>> {
        let entries = self
            .bounded(&format!("listing {path}"), async {
                self.channel().await?.list(path).await.map_err(from_agent)
            })
            .await?;
        Ok(entries
            .into_iter()
            .map(|e| DirEntry {
                name: String::from_utf8_lossy(&e.name).into_owned(),
                stat: e.stat.into(),
            })
            .collect())
    }

    pub(crate) async fn mkdir(&self, path: &str, owner: (u32, u32)) -> Result<()> {
        self.bounded(&format!("creating {path}"), async {
            self.channel()
                .await?
                .mkdir(path, 0o755, Some(owner), true)
                .await
                .map_err(from_agent)
        })
        .await
    }

    pub(crate) async fn remove(&self, path: &str, recursive: bool) -> Result<()> {
        self.bounded(&format!("removing {path}"), async {
            self.channel()
                .await?
                .remove(path, recursive)
                .await
                .map_err(from_agent)
        })
        .await
    }
}

/// The read-limit refusal in the words the engine path uses.
fn limit_error(e: headjack_agent::client::Error, path: &str, limit: u64) -> Error {
    if e.code() == Some(proto::ErrorCode::TooLarge) {
        Error::invalid_argument(format!(
            "{path} is larger than the read limit of {} ({limit} bytes); copy it out to disk with \
             copy_out, or raise the limit",
            crate::spec::human_bytes(limit)
        ))
    } else {
        from_agent(e)
    }
}
