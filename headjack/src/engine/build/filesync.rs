//! The build context over a BuildKit session (`moby.filesync.v1.FileSync/DiffCopy`), as the
//! docker CLI sends a directory: BuildKit asks for a named directory (`context`, `dockerfile`),
//! the client lists every entry as a stat (in walk order: parents first, names sorted within a
//! directory), then sends the content of each file the receiver requests by its position in
//! that list, and both sides end with FIN.
//!
//! Unlike a context tar, this keeps the Dockerfile out of the context (BuildKit reads it from
//! the `dockerfile` directory) and leaves out what the ignore file excludes, the Dockerfile
//! and the ignore file included, exactly as `docker build` with BuildKit does. The receiver
//! keeps the previous transfer of a directory and asks only for files whose size or mtime
//! changed, so a rebuild moves only what changed. Mtimes are derived from each file's content
//! digest, so equal content looks equal and changed content looks changed, whatever the host's
//! mtimes say.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, Request, Response, StatusCode};
use sha2::{Digest, Sha256};

use super::proto::{self, Packet, PacketType, Stat};

/// Go's `os.FileMode` bits fsutil puts in a stat.
const GO_MODE_DIR: u32 = 1 << 31;
const GO_MODE_SYMLINK: u32 = 1 << 27;
const GO_MODE_SETUID: u32 = 1 << 23;
const GO_MODE_SETGID: u32 = 1 << 22;
const GO_MODE_STICKY: u32 = 1 << 20;

/// How much file content one DATA packet carries.
const CHUNK: usize = 256 * 1024;

/// Where a file's content comes from.
#[derive(Debug, Clone)]
pub(crate) enum Content {
    /// A file on disk, with the sha256 its content must have (checked while it is sent).
    Disk { path: PathBuf, digest: [u8; 32] },
    /// Bytes headjack made (a translated Dockerfile, a heredoc's document).
    Memory(Arc<[u8]>),
}

/// What an entry is.
#[derive(Debug, Clone)]
pub(crate) enum SyncKind {
    Dir,
    File { size: u64, content: Content },
    Symlink { target: String },
}

/// One entry of a directory served to BuildKit.
#[derive(Debug, Clone)]
pub(crate) struct SyncEntry {
    /// `/`-separated path relative to the directory.
    pub(crate) path: String,
    /// Permission bits (`mode & 0o7777`).
    pub(crate) mode: u32,
    pub(crate) kind: SyncKind,
}

/// Turns include patterns (Docker's `.dockerignore` syntax) into a test of a path: whether the
/// path or one of its parents matches. `None` for patterns that do not parse.
pub(crate) type PatternMatcher =
    Arc<dyn Fn(&[String]) -> Option<Box<dyn Fn(&str) -> bool + Send>> + Send + Sync>;

/// The directories one build serves, by the names BuildKit asks for.
pub(crate) struct SyncDirs {
    pub(crate) dirs: HashMap<String, Vec<SyncEntry>>,
    /// Identifies the directories across builds, so the receiver can reuse what it has.
    pub(crate) shared_key: String,
    /// How BuildKit's include patterns and follow paths select entries.
    pub(crate) matcher: PatternMatcher,
}

impl std::fmt::Debug for SyncDirs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncDirs")
            .field("dirs", &self.dirs)
            .field("shared_key", &self.shared_key)
            .finish_non_exhaustive()
    }
}

impl SyncDirs {
    /// Puts entries in the order fsutil walks a directory: by path components, each
    /// compared as bytes, so a directory's content follows it directly.
    pub(crate) fn sort(entries: &mut [SyncEntry]) {
        entries.sort_by(|a, b| a.path.split('/').cmp(b.path.split('/')));
    }
}

/// A mtime (nanoseconds) for content with this digest, near 2006-07-24 like the tar's fixed
/// date: equal digests give equal mtimes, different ones differ (but for 1 in 2^40).
fn content_mtime(digest: &[u8]) -> i64 {
    let mut n = [0u8; 8];
    n.copy_from_slice(&digest[..8]);
    const BASE_NS: i64 = 1_153_704_088 * 1_000_000_000;
    BASE_NS + (u64::from_be_bytes(n) % (1 << 40)) as i64
}

fn go_mode(entry: &SyncEntry) -> u32 {
    let mut m = entry.mode & 0o777;
    if entry.mode & 0o4000 != 0 {
        m |= GO_MODE_SETUID;
    }
    if entry.mode & 0o2000 != 0 {
        m |= GO_MODE_SETGID;
    }
    if entry.mode & 0o1000 != 0 {
        m |= GO_MODE_STICKY;
    }
    match entry.kind {
        SyncKind::Dir => m | GO_MODE_DIR,
        SyncKind::Symlink { .. } => GO_MODE_SYMLINK | 0o777,
        SyncKind::File { .. } => m,
    }
}

fn stat_of(entry: &SyncEntry) -> Stat {
    let (size, mod_time, linkname) = match &entry.kind {
        SyncKind::Dir => (0, content_mtime(&[0; 8]), String::new()),
        SyncKind::Symlink { target } => (
            target.len() as i64,
            content_mtime(&Sha256::digest(target.as_bytes())),
            target.clone(),
        ),
        SyncKind::File { size, content } => {
            let digest: [u8; 32] = match content {
                Content::Disk { digest, .. } => *digest,
                Content::Memory(bytes) => Sha256::digest(bytes).into(),
            };
            (*size as i64, content_mtime(&digest), String::new())
        }
    };
    Stat {
        path: entry.path.clone(),
        mode: go_mode(entry),
        uid: 0,
        gid: 0,
        size,
        mod_time,
        linkname,
    }
}

/// The entries BuildKit asked for. `followpaths` and `include-patterns` (patterns such as the
/// source of a `COPY`, `app` or `*.txt`) select the entries that match or lie below a match, and
/// the directories above them; without either, everything. Exclude patterns are left out:
/// headjack's own walk already applied the ignore rules, as the docker CLI applies them.
fn select<'a>(
    entries: &'a [SyncEntry],
    headers: &HeaderMap,
    matcher: &PatternMatcher,
) -> Vec<&'a SyncEntry> {
    let patterns: Vec<String> = ["followpaths", "include-patterns"]
        .iter()
        .flat_map(|k| headers.get_all(*k).iter())
        .filter_map(|v| v.to_str().ok())
        .map(|p| {
            p.trim_start_matches("./")
                .trim_start_matches('/')
                .to_string()
        })
        .filter(|p| !p.is_empty())
        .collect();
    if patterns.is_empty() {
        return entries.iter().collect();
    }
    let Some(matches) = matcher(&patterns) else {
        // Patterns headjack cannot read: send everything (a superset changes no COPY).
        return entries.iter().collect();
    };
    let selected: Vec<&SyncEntry> = entries.iter().filter(|e| matches(&e.path)).collect();
    entries
        .iter()
        .filter(|e| {
            matches(&e.path)
                || (matches!(e.kind, SyncKind::Dir)
                    && selected.iter().any(|s| {
                        s.path.starts_with(e.path.as_str())
                            && s.path.as_bytes().get(e.path.len()) == Some(&b'/')
                    }))
        })
        .collect()
}

/// Why serving a directory stopped.
#[derive(Debug)]
pub(crate) enum SyncError {
    H2(h2::Error),
    /// The receiver reported an error, or asked for something that is not there.
    Protocol(String),
}

impl From<h2::Error> for SyncError {
    fn from(e: h2::Error) -> Self {
        SyncError::H2(e)
    }
}

impl std::fmt::Display for SyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SyncError::H2(e) => write!(f, "{e}"),
            SyncError::Protocol(m) => f.write_str(m),
        }
    }
}

/// Serves one `DiffCopy` call: the stats of the asked directory, then the content of each
/// requested file, until the receiver's FIN. A file that changed since the walk is reported to
/// the receiver as an error, which fails the build (its content would not be the one the cache
/// key names).
pub(crate) async fn diff_copy(
    request: Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    dirs: &SyncDirs,
) -> Result<(), SyncError> {
    let headers = request.headers().clone();
    let name = headers
        .get("dir-name")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let Some(entries) = dirs.dirs.get(&name) else {
        let head = Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/grpc")
            .header("grpc-status", 5u16)
            .header("grpc-message", format!("no access allowed to dir {name}"))
            .body(())
            .expect("valid response head");
        respond.send_response(head, true)?;
        return Ok(());
    };
    let chosen = select(entries, &headers, &dirs.matcher);
    tracing::debug!(dir = %name, entries = chosen.len(), "serving a build context directory");
    let head = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/grpc")
        .body(())
        .expect("static response head");
    let mut out = respond.send_response(head, false)?;
    let mut body = request.into_body();

    // The receiver asks for files while the listing is still being sent: read its requests as
    // they come (h2 closes a connection whose small frames pile up unread).
    let (tx, mut requests) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        let mut pending = BytesMut::new();
        loop {
            let next = match next_message(&mut body, &mut pending).await {
                Ok(Some(raw)) => {
                    Packet::decode(&raw).map_err(|e| SyncError::Protocol(e.to_string()))
                }
                Ok(None) => Err(SyncError::Protocol(
                    "the receiver hung up before FIN".into(),
                )),
                Err(e) => Err(e),
            };
            let end = next.is_err();
            if tx.send(next).is_err() || end {
                return;
            }
        }
    });
    let _reader = AbortOnDrop(reader);

    for entry in &chosen {
        send(&mut out, &proto::stat_packet(Some(&stat_of(entry)))).await?;
    }
    send(&mut out, &proto::stat_packet(None)).await?;

    let mut sent = 0usize;
    let result = loop {
        let packet = match requests.recv().await {
            Some(p) => p?,
            None => {
                break Err(SyncError::Protocol(
                    "the receiver hung up before FIN".into(),
                ));
            }
        };
        match packet.kind {
            PacketType::Req => {
                let entry = chosen.get(packet.id as usize).ok_or_else(|| {
                    SyncError::Protocol(format!("request for unknown file {}", packet.id))
                })?;
                sent += 1;
                if let Err(why) = send_file(&mut out, packet.id, entry).await? {
                    tracing::warn!(file = %entry.path, %why, "a build context file changed while it was sent");
                    send(&mut out, &proto::packet(PacketType::Err, 0, why.as_bytes())).await?;
                    break Err(SyncError::Protocol(why));
                }
            }
            PacketType::Fin => {
                tracing::debug!(dir = %name, files = sent, "build context directory sent");
                send(&mut out, &proto::packet(PacketType::Fin, 0, b"")).await?;
                break Ok(());
            }
            PacketType::Err => {
                break Err(SyncError::Protocol(format!(
                    "the engine reported an error receiving the build context: {}",
                    String::from_utf8_lossy(&packet.data)
                )));
            }
            PacketType::Stat | PacketType::Data => {}
        }
    };
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from(0u16));
    out.send_trailers(trailers)?;
    result
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sends one file's content as DATA packets and the empty DATA packet that ends it; the inner
/// `Err` says the file is no longer what the walk hashed.
async fn send_file(
    out: &mut h2::SendStream<Bytes>,
    id: u32,
    entry: &SyncEntry,
) -> Result<Result<(), String>, SyncError> {
    let SyncKind::File { size, content } = &entry.kind else {
        return Err(SyncError::Protocol(format!(
            "content requested for {}, which is not a file",
            entry.path
        )));
    };
    match content {
        Content::Memory(bytes) => {
            for chunk in bytes.chunks(CHUNK) {
                send(out, &proto::packet(PacketType::Data, id, chunk)).await?;
            }
        }
        Content::Disk { path, digest } => {
            use tokio::io::AsyncReadExt;
            let (path, want) = (path.clone(), *digest);
            let mut file = match tokio::fs::File::open(&path).await {
                Ok(f) => f.take(*size),
                Err(e) => return Ok(Err(format!("cannot read {}: {e}", path.display()))),
            };
            let mut hasher = Sha256::new();
            let mut count = 0u64;
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = match file.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Ok(Err(format!("cannot read {}: {e}", path.display()))),
                };
                hasher.update(&buf[..n]);
                count += n as u64;
                send(out, &proto::packet(PacketType::Data, id, &buf[..n])).await?;
            }
            let got: [u8; 32] = hasher.finalize().into();
            if count != *size || got != want {
                return Ok(Err(format!(
                    "{} changed while the build context was being sent; retry",
                    path.display()
                )));
            }
        }
    }
    send(out, &proto::packet(PacketType::Data, id, b"")).await?;
    Ok(Ok(()))
}

/// Sends one gRPC message, waiting for flow-control capacity so a large context is never
/// buffered whole.
async fn send(out: &mut h2::SendStream<Bytes>, message: &[u8]) -> Result<(), h2::Error> {
    let mut framed = BytesMut::with_capacity(message.len() + 5);
    framed.put_u8(0);
    framed.put_u32(message.len() as u32);
    framed.extend_from_slice(message);
    let mut data = framed.freeze();
    while !data.is_empty() {
        out.reserve_capacity(data.len());
        let granted = match std::future::poll_fn(|cx| out.poll_capacity(cx)).await {
            Some(n) => n?,
            None => return Err(h2::Error::from(h2::Reason::CANCEL)),
        };
        if granted == 0 {
            continue;
        }
        let part = data.split_to(granted.min(data.len()));
        out.send_data(part, false)?;
    }
    Ok(())
}

/// The next gRPC message from the receiver, or `None` at the end of its stream.
async fn next_message(
    body: &mut h2::RecvStream,
    pending: &mut BytesMut,
) -> Result<Option<Vec<u8>>, SyncError> {
    loop {
        if pending.len() >= 5 {
            if pending[0] != 0 {
                return Err(SyncError::Protocol("compressed gRPC message".into()));
            }
            let len = u32::from_be_bytes([pending[1], pending[2], pending[3], pending[4]]) as usize;
            if len > 16 << 20 {
                return Err(SyncError::Protocol("gRPC message too large".into()));
            }
            if pending.len() >= 5 + len {
                let msg = pending.split_to(5 + len);
                return Ok(Some(msg[5..].to_vec()));
            }
        }
        match body.data().await {
            Some(chunk) => {
                let chunk = chunk?;
                let _ = body.flow_control().release_capacity(chunk.len());
                pending.extend_from_slice(&chunk);
            }
            None => return Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: SyncKind) -> SyncEntry {
        SyncEntry {
            path: path.into(),
            mode: 0o755,
            kind,
        }
    }

    #[test]
    fn entries_are_in_fsutil_walk_order() {
        let mut v: Vec<SyncEntry> = ["a.txt", "a/b", "a", "a/b/c", "a-b", "B", "a/a"]
            .iter()
            .map(|p| entry(p, SyncKind::Dir))
            .collect();
        SyncDirs::sort(&mut v);
        let order: Vec<&str> = v.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(order, ["B", "a", "a/a", "a/b", "a/b/c", "a-b", "a.txt"]);
    }

    #[test]
    fn modes_are_go_file_modes() {
        let mut e = entry("d", SyncKind::Dir);
        assert_eq!(go_mode(&e), GO_MODE_DIR | 0o755);
        e.mode = 0o4750;
        e.kind = SyncKind::File {
            size: 0,
            content: Content::Memory(Arc::from(&b""[..])),
        };
        assert_eq!(go_mode(&e), GO_MODE_SETUID | 0o750);
        e.mode = 0o3777;
        assert_eq!(go_mode(&e), GO_MODE_SETGID | GO_MODE_STICKY | 0o777);
        e.kind = SyncKind::Symlink { target: "x".into() };
        assert_eq!(go_mode(&e), GO_MODE_SYMLINK | 0o777);
    }

    #[test]
    fn mtimes_follow_content() {
        let file = |data: &[u8]| {
            stat_of(&entry(
                "f",
                SyncKind::File {
                    size: data.len() as u64,
                    content: Content::Memory(Arc::from(data)),
                },
            ))
        };
        assert_eq!(file(b"one").mod_time, file(b"one").mod_time);
        assert_ne!(file(b"one").mod_time, file(b"two").mod_time);
        let t = file(b"one").mod_time;
        assert!((1_153_704_088_000_000_000..1_153_704_088_000_000_000 + (1 << 40)).contains(&t));
    }

    #[test]
    fn follow_paths_select_matches_their_content_and_their_parents() {
        let v: Vec<SyncEntry> = [
            ".dockerignore",
            "a",
            "a/b",
            "a/b/c",
            "a/d",
            "app",
            "app/x",
            "z",
        ]
        .iter()
        .map(|p| entry(p, SyncKind::Dir))
        .collect();
        // A stand-in for the ignore-file matcher: exact names and their subtrees.
        let matcher: PatternMatcher = Arc::new(|patterns: &[String]| {
            let patterns = patterns.to_vec();
            Some(Box::new(move |path: &str| {
                patterns.iter().any(|p| {
                    path == p || (path.starts_with(p.as_str()) && path.as_bytes()[p.len()] == b'/')
                })
            }) as Box<dyn Fn(&str) -> bool + Send>)
        });
        let mut h = HeaderMap::new();
        assert_eq!(select(&v, &h, &matcher).len(), 8);
        h.append("followpaths", "a/b".parse().unwrap());
        h.append("include-patterns", "./.dockerignore".parse().unwrap());
        let got: Vec<&str> = select(&v, &h, &matcher)
            .iter()
            .map(|e| e.path.as_str())
            .collect();
        assert_eq!(got, [".dockerignore", "a", "a/b", "a/b/c"]);
        // Unreadable patterns: everything.
        let none: PatternMatcher = Arc::new(|_: &[String]| None);
        assert_eq!(select(&v, &h, &none).len(), 8);
    }
}
