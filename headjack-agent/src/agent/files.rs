//! File operations, as the agent's user (root in an instance): metadata, listings, directories,
//! removal, and streamed reads and writes. A write goes to a temporary file beside the target
//! and is renamed over it only once complete, so an interrupted write never leaves half a file.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use headjack_agent::proto::{
    DirEntry, ErrorCode, ErrorReply, FileKind, MkdirSpec, Stat, WriteFileSpec,
};

pub type FileResult<T> = Result<T, ErrorReply>;

fn path_of(bytes: &[u8]) -> FileResult<&Path> {
    if bytes.is_empty() {
        return Err(invalid("the path is empty"));
    }
    if bytes.contains(&0) {
        return Err(invalid("the path contains a NUL byte"));
    }
    Ok(Path::new(OsStr::from_bytes(bytes)))
}

fn invalid(msg: &str) -> ErrorReply {
    ErrorReply {
        code: ErrorCode::InvalidArgument,
        message: msg.to_string(),
    }
}

/// The reply for an I/O error while doing `what` on `path`.
pub fn io_error(what: &str, path: &Path, e: &io::Error) -> ErrorReply {
    let code = match e.raw_os_error() {
        Some(libc::ENOENT) => ErrorCode::NotFound,
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS) => ErrorCode::PermissionDenied,
        Some(libc::EEXIST) => ErrorCode::AlreadyExists,
        Some(libc::ENOTDIR) => ErrorCode::NotADirectory,
        Some(libc::EISDIR) => ErrorCode::IsADirectory,
        Some(libc::ENOTEMPTY) => ErrorCode::NotEmpty,
        _ => ErrorCode::Io,
    };
    let reason = e
        .raw_os_error()
        .map(super::sys::errno_text)
        .unwrap_or_else(|| e.to_string());
    ErrorReply {
        code,
        message: format!("{what} {} in the container: {reason}", path.display()),
    }
}

fn kind_of(ft: fs::FileType) -> FileKind {
    if ft.is_file() {
        FileKind::File
    } else if ft.is_dir() {
        FileKind::Dir
    } else if ft.is_symlink() {
        FileKind::Symlink
    } else if ft.is_fifo() {
        FileKind::Fifo
    } else if ft.is_socket() {
        FileKind::Socket
    } else if ft.is_char_device() {
        FileKind::CharDevice
    } else if ft.is_block_device() {
        FileKind::BlockDevice
    } else {
        FileKind::Other
    }
}

fn stat_of(path: &Path, md: &fs::Metadata) -> Stat {
    let kind = kind_of(md.file_type());
    Stat {
        kind,
        size: md.len(),
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        mtime_sec: md.mtime(),
        mtime_nsec: md.mtime_nsec().clamp(0, 999_999_999) as u32,
        link_target: (kind == FileKind::Symlink)
            .then(|| fs::read_link(path).ok())
            .flatten()
            .map(|t| t.as_os_str().as_bytes().to_vec()),
    }
}

fn describe(kind: FileKind) -> &'static str {
    match kind {
        FileKind::File => "a regular file",
        FileKind::Dir => "a directory",
        FileKind::Symlink => "a symbolic link",
        FileKind::Fifo => "a named pipe",
        FileKind::Socket => "a socket",
        FileKind::CharDevice => "a character device",
        FileKind::BlockDevice => "a block device",
        FileKind::Other => "not a regular file",
    }
}

pub fn stat(path: &[u8], follow: bool) -> FileResult<Stat> {
    let p = path_of(path)?;
    let md = if follow {
        fs::metadata(p)
    } else {
        fs::symlink_metadata(p)
    }
    .map_err(|e| io_error("reading the metadata of", p, &e))?;
    Ok(stat_of(p, &md))
}

pub fn list(path: &[u8]) -> FileResult<Vec<DirEntry>> {
    let p = path_of(path)?;
    let rd = fs::read_dir(p).map_err(|e| io_error("listing", p, &e))?;
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| io_error("listing", p, &e))?;
        let full = e.path();
        // An entry removed while listing is simply not listed.
        let Ok(md) = fs::symlink_metadata(&full) else {
            continue;
        };
        out.push(DirEntry {
            name: e.file_name().as_bytes().to_vec(),
            stat: stat_of(&full, &md),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn chown(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
}

/// Creates the missing directories of `dir` (mode 0755 or `mode`), owned by `owner`.
fn create_dirs(dir: &Path, mode: u32, owner: Option<(u32, u32)>) -> FileResult<()> {
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(p) = at {
        if p.as_os_str().is_empty() {
            break;
        }
        match fs::symlink_metadata(p) {
            Ok(md) if md.is_dir() => break,
            Ok(md) if md.file_type().is_symlink() && p.is_dir() => break,
            Ok(md) => {
                return Err(ErrorReply {
                    code: ErrorCode::NotADirectory,
                    message: format!(
                        "creating directory {} in the container: {} is {}, not a directory",
                        dir.display(),
                        p.display(),
                        describe(kind_of(md.file_type()))
                    ),
                });
            }
            Err(_) => missing.push(p),
        }
        at = p.parent();
    }
    for p in missing.into_iter().rev() {
        match fs::DirBuilder::new().mode(mode).create(p) {
            Ok(()) => {}
            // Created meanwhile by someone else: fine.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && p.is_dir() => continue,
            Err(e) => return Err(io_error("creating directory", p, &e)),
        }
        // The umask may have narrowed the mode.
        let _ = fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(mode));
        if let Some((u, g)) = owner {
            chown(p, u, g).map_err(|e| io_error("changing the owner of", p, &e))?;
        }
    }
    Ok(())
}

pub fn mkdir(spec: &MkdirSpec) -> FileResult<()> {
    let p = path_of(&spec.path)?;
    let mode = spec.mode & 0o7777;
    if spec.parents {
        return create_dirs(p, mode, spec.owner);
    }
    fs::DirBuilder::new()
        .mode(mode)
        .create(p)
        .map_err(|e| io_error("creating directory", p, &e))?;
    let _ = fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(mode));
    if let Some((u, g)) = spec.owner {
        chown(p, u, g).map_err(|e| io_error("changing the owner of", p, &e))?;
    }
    Ok(())
}

pub fn remove(path: &[u8], recursive: bool) -> FileResult<()> {
    let p = path_of(path)?;
    if p == Path::new("/") {
        return Err(invalid("refusing to remove / (the container's root)"));
    }
    let md = fs::symlink_metadata(p).map_err(|e| io_error("removing", p, &e))?;
    let r = if md.is_dir() {
        if recursive {
            // std's remove_dir_all does not follow symbolic links out of the tree.
            fs::remove_dir_all(p)
        } else {
            fs::remove_dir(p)
        }
    } else {
        fs::remove_file(p)
    };
    r.map_err(|e| io_error("removing", p, &e))
}

/// A file being read: its size when opened, and the limit.
pub struct Reader {
    pub file: File,
    pub size: u64,
    pub mode: u32,
    pub max: Option<u64>,
    pub sent: u64,
    path: PathBuf,
}

pub fn open_read(path: &[u8], max: Option<u64>) -> FileResult<Reader> {
    let p = path_of(path)?;
    // Non-blocking so that opening a FIFO cannot hang the agent; refused just below anyway.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(p)
        .map_err(|e| io_error("opening", p, &e))?;
    let md = file
        .metadata()
        .map_err(|e| io_error("reading the metadata of", p, &e))?;
    if !md.is_file() {
        return Err(ErrorReply {
            code: if md.is_dir() {
                ErrorCode::IsADirectory
            } else {
                ErrorCode::NotRegularFile
            },
            message: format!(
                "reading {} in the container: it is {}, not a regular file; only regular files \
                 can be read",
                p.display(),
                describe(kind_of(md.file_type()))
            ),
        });
    }
    if let Some(max) = max
        && md.len() > max
    {
        return Err(too_large(p, md.len(), max));
    }
    super::sys::set_nonblocking(file.as_raw_fd(), false).map_err(|e| io_error("opening", p, &e))?;
    Ok(Reader {
        size: md.len(),
        mode: md.mode() & 0o7777,
        file,
        max,
        sent: 0,
        path: p.to_path_buf(),
    })
}

fn too_large(p: &Path, size: u64, max: u64) -> ErrorReply {
    ErrorReply {
        code: ErrorCode::TooLarge,
        message: format!(
            "reading {} in the container: it holds {size} bytes, more than the limit of {max}; \
             raise the limit or read it as a stream",
            p.display()
        ),
    }
}

impl Reader {
    /// The next chunk (empty at end of file).
    pub fn next_chunk(&mut self, buf: &mut [u8]) -> FileResult<usize> {
        let n = loop {
            match self.file.read(buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error("reading", &self.path, &e)),
            }
        };
        self.sent += n as u64;
        if let Some(max) = self.max
            && self.sent > max
        {
            // It grew past the limit while being read.
            return Err(too_large(&self.path, self.sent, max));
        }
        Ok(n)
    }
}

/// A file being written: a temporary beside the target until [`Writer::finish`].
pub struct Writer {
    file: Option<File>,
    tmp: PathBuf,
    path: PathBuf,
    spec: WriteFileSpec,
    pub written: u64,
}

pub fn open_write(spec: WriteFileSpec, serial: u64) -> FileResult<Writer> {
    let p = path_of(&spec.path)?.to_path_buf();
    let Some(name) = p.file_name() else {
        return Err(invalid("the path names no file (it ends in / or ..)"));
    };
    let dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
    if spec.parents && !dir.as_os_str().is_empty() {
        create_dirs(&dir, 0o755, Some((spec.uid, spec.gid)))?;
    }
    match fs::metadata(&p) {
        Ok(md) if !md.is_file() => {
            return Err(ErrorReply {
                code: if md.is_dir() {
                    ErrorCode::IsADirectory
                } else {
                    ErrorCode::NotRegularFile
                },
                message: format!(
                    "writing {} in the container: it is {}; only regular files can be written",
                    p.display(),
                    describe(kind_of(md.file_type()))
                ),
            });
        }
        _ => {}
    }
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".headjack-{}-{serial}", super::sys::pid()));
    let tmp = dir.join(tmp_name);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io_error("writing", &p, &e))?;
    Ok(Writer {
        file: Some(file),
        tmp,
        path: p,
        spec,
        written: 0,
    })
}

impl Writer {
    pub fn write(&mut self, data: &[u8]) -> FileResult<()> {
        let f = self.file.as_mut().expect("open until finished");
        f.write_all(data)
            .map_err(|e| io_error("writing", &self.path, &e))?;
        self.written += data.len() as u64;
        Ok(())
    }

    /// Sets owner and mode, then puts the file in place.
    pub fn finish(mut self) -> FileResult<()> {
        let f = self.file.take().expect("open until finished");
        let p = self.path.clone();
        let r = (|| {
            std::os::unix::fs::fchown(&f, Some(self.spec.uid), Some(self.spec.gid))?;
            // After chown, which clears setuid/setgid bits.
            f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(
                self.spec.mode & 0o7777,
            ))?;
            drop(f);
            fs::rename(&self.tmp, &self.path)
        })();
        r.map_err(|e| io_error("writing", &p, &e))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Not finished (cancelled, failed, or the finish failed): leave nothing behind.
        if self.file.is_some() || self.tmp.exists() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}
