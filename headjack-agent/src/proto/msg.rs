//! The messages and their payload encoding (fields in order; integers little endian; byte
//! strings and lists prefixed by a u32 count; options by a 0/1 tag). Decoders ignore trailing
//! bytes, so a later version may append fields to a message.

use std::fmt;

use super::frame::write_header;
use super::wire::{Dec, Enc, WireError, WireResult};
use super::{MAX_DATA_CHUNK, MAX_PAYLOAD};

/// Message kinds (the frame's kind byte).
pub mod kind {
    /// Client → agent: first message of a session.
    pub const HELLO: u8 = 1;
    /// Client → agent: run a command on this stream (a foreground exec).
    pub const EXEC: u8 = 2;
    /// Client → agent: start a background process.
    pub const START: u8 = 3;
    /// Client → agent: end of an exec's standard input.
    pub const STDIN_CLOSE: u8 = 5;
    /// Client → agent: set an exec's terminal size.
    pub const RESIZE: u8 = 6;
    /// Client → agent: signal an exec's process tree.
    pub const SIGNAL: u8 = 7;
    /// Client → agent: abandon a stream (an exec is killed, a write discarded).
    pub const CANCEL: u8 = 8;
    /// Client → agent: list processes.
    pub const LIST_PROCESSES: u8 = 10;
    /// Client → agent: follow a process's output, replaying what it kept.
    pub const ATTACH: u8 = 11;
    /// Client → agent: wait for a process to end.
    pub const WAIT: u8 = 12;
    /// Client → agent: signal a process's tree.
    pub const KILL: u8 = 13;
    /// Client → agent: drop an ended process's record.
    pub const FORGET: u8 = 14;
    /// Client → agent: read a file.
    pub const READ_FILE: u8 = 15;
    /// Client → agent: write a file (data follows).
    pub const WRITE_FILE: u8 = 16;
    /// Client → agent: metadata of a path.
    pub const STAT: u8 = 17;
    /// Client → agent: a directory's entries.
    pub const LIST_DIR: u8 = 18;
    /// Client → agent: create a directory.
    pub const MKDIR: u8 = 19;
    /// Client → agent: remove a path.
    pub const REMOVE: u8 = 20;
    /// Both ways: bytes of a stream.
    pub const DATA: u8 = 64;
    /// Both ways: the end of a stream's data.
    pub const END: u8 = 65;
    /// Both ways: permission to send more data on a stream.
    pub const CREDIT: u8 = 66;
    /// Agent → client: answer to [`HELLO`].
    pub const HELLO_REPLY: u8 = 128;
    /// Agent → client: a process started.
    pub const STARTED: u8 = 129;
    /// Agent → client: a process ended.
    pub const EXITED: u8 = 130;
    /// Agent → client: a request succeeded.
    pub const OK: u8 = 131;
    /// Agent → client: a request (or a frame) failed.
    pub const ERROR: u8 = 132;
    /// Agent → client: the process list.
    pub const PROCESSES: u8 = 133;
    /// Agent → client: a file read starts.
    pub const FILE_INFO: u8 = 134;
    /// Agent → client: a path's metadata.
    pub const STAT_REPLY: u8 = 135;
    /// Agent → client: some directory entries (more may follow, then END).
    pub const DIR_LIST: u8 = 136;
    /// Agent → client: an attached follower fell behind; this much output was lost to it.
    pub const GAP: u8 = 137;
    /// Agent → client: an attach with replay has delivered all the output the process had
    /// written when it was asked; what follows is new.
    pub const REPLAYED: u8 = 138;
}

/// Bits of [`HelloReply::capabilities`].
pub mod capability {
    /// The agent can run commands as other users (it has CAP_SETUID and CAP_SETGID).
    pub const SWITCH_USER: u64 = 1;
    /// The agent listens on its abstract socket: `headjack-agent relay` opens more sessions.
    pub const SOCKET: u64 = 2;
    /// The agent can read the memory cgroup's OOM-kill counter (OOM kills are reported).
    pub const OOM: u64 = 4;
    /// The agent is PID 1 of its PID namespace.
    pub const PID1: u64 = 8;
    /// An attach with replay marks the replay's end with [`super::Message::Replayed`].
    pub const REPLAY_MARK: u64 = 16;
}

/// What bytes in a [`Message::Data`] frame are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataKind {
    /// Input (standard input, a file being written) or a file being read.
    Bytes,
    /// A command's standard output (all output of a terminal).
    Stdout,
    /// A command's standard error.
    Stderr,
}

impl DataKind {
    fn to_u8(self) -> u8 {
        match self {
            DataKind::Bytes => 0,
            DataKind::Stdout => 1,
            DataKind::Stderr => 2,
        }
    }
    fn from_u8(v: u8) -> WireResult<DataKind> {
        match v {
            0 => Ok(DataKind::Bytes),
            1 => Ok(DataKind::Stdout),
            2 => Ok(DataKind::Stderr),
            _ => Err(WireError {
                field: "data kind",
                why: "unknown value",
            }),
        }
    }
}

/// Error codes of [`ErrorReply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// A frame or payload that does not decode.
    Malformed,
    /// No protocol version in common.
    UnsupportedVersion,
    /// A message for a stream that is not open.
    UnknownStream,
    /// A request on a stream id already in use.
    StreamInUse,
    /// No process with that id.
    NoSuchProcess,
    /// No such file or directory.
    NotFound,
    /// Permission denied.
    PermissionDenied,
    /// The path exists already.
    AlreadyExists,
    /// Not a regular file (a device, a FIFO, a directory…).
    NotRegularFile,
    /// Larger than the limit given.
    TooLarge,
    /// A path component is not a directory.
    NotADirectory,
    /// The path is a directory.
    IsADirectory,
    /// The directory is not empty.
    NotEmpty,
    /// A request that makes no sense (an empty command, a bad size…).
    InvalidArgument,
    /// The process is still running.
    Busy,
    /// Another I/O error.
    Io,
    /// The agent cannot do that here.
    Unsupported,
    /// A code this build does not know.
    Other(u16),
}

impl ErrorCode {
    /// The wire value.
    pub fn to_u16(self) -> u16 {
        match self {
            ErrorCode::Malformed => 1,
            ErrorCode::UnsupportedVersion => 2,
            ErrorCode::UnknownStream => 3,
            ErrorCode::StreamInUse => 4,
            ErrorCode::NoSuchProcess => 5,
            ErrorCode::NotFound => 6,
            ErrorCode::PermissionDenied => 7,
            ErrorCode::AlreadyExists => 8,
            ErrorCode::NotRegularFile => 9,
            ErrorCode::TooLarge => 10,
            ErrorCode::NotADirectory => 11,
            ErrorCode::IsADirectory => 12,
            ErrorCode::NotEmpty => 13,
            ErrorCode::InvalidArgument => 14,
            ErrorCode::Busy => 15,
            ErrorCode::Io => 16,
            ErrorCode::Unsupported => 17,
            ErrorCode::Other(v) => v,
        }
    }
    /// From the wire value (unknown values are kept as [`ErrorCode::Other`]).
    pub fn from_u16(v: u16) -> ErrorCode {
        match v {
            1 => ErrorCode::Malformed,
            2 => ErrorCode::UnsupportedVersion,
            3 => ErrorCode::UnknownStream,
            4 => ErrorCode::StreamInUse,
            5 => ErrorCode::NoSuchProcess,
            6 => ErrorCode::NotFound,
            7 => ErrorCode::PermissionDenied,
            8 => ErrorCode::AlreadyExists,
            9 => ErrorCode::NotRegularFile,
            10 => ErrorCode::TooLarge,
            11 => ErrorCode::NotADirectory,
            12 => ErrorCode::IsADirectory,
            13 => ErrorCode::NotEmpty,
            14 => ErrorCode::InvalidArgument,
            15 => ErrorCode::Busy,
            16 => ErrorCode::Io,
            17 => ErrorCode::Unsupported,
            v => ErrorCode::Other(v),
        }
    }
}

/// Why a command could not be started (it never ran).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StartFailureKind {
    /// The program does not exist (not on `$PATH`, or no such file): exit code 127.
    NotFound,
    /// The program exists but cannot be run (not executable, a directory, bad format): 126.
    NotExecutable,
    /// The working directory does not exist or cannot be entered: 126.
    NoWorkdir,
    /// The user is not in the container's `/etc/passwd`: 126.
    UnknownUser,
    /// The group is not in the container's `/etc/group`: 126.
    UnknownGroup,
    /// The command must run as another user but the agent lacks CAP_SETUID/CAP_SETGID
    /// (all capabilities dropped, or a non-root agent): 126. The host can fall back to the
    /// engine's exec for this call.
    UserSwitchDenied,
    /// Anything else (out of processes, a bad terminal…): 126.
    Other,
}

impl StartFailureKind {
    fn to_u8(self) -> u8 {
        match self {
            StartFailureKind::NotFound => 1,
            StartFailureKind::NotExecutable => 2,
            StartFailureKind::NoWorkdir => 3,
            StartFailureKind::UnknownUser => 4,
            StartFailureKind::UnknownGroup => 5,
            StartFailureKind::UserSwitchDenied => 6,
            StartFailureKind::Other => 7,
        }
    }
    fn from_u8(v: u8) -> StartFailureKind {
        match v {
            1 => StartFailureKind::NotFound,
            2 => StartFailureKind::NotExecutable,
            3 => StartFailureKind::NoWorkdir,
            4 => StartFailureKind::UnknownUser,
            5 => StartFailureKind::UnknownGroup,
            6 => StartFailureKind::UserSwitchDenied,
            _ => StartFailureKind::Other,
        }
    }
    /// The exit code reported for it (as shells and `docker exec` do).
    pub fn exit_code(self) -> i32 {
        match self {
            StartFailureKind::NotFound => 127,
            _ => 126,
        }
    }
}

/// A command that never ran, and a message saying what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartFailure {
    /// The reason.
    pub kind: StartFailureKind,
    /// What was wrong, for a person (names the program, the directory or the user).
    pub message: String,
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitStatus {
    /// The exit code; 128 + the signal number when a signal killed it; 126/127 when it could
    /// not start.
    pub code: i32,
    /// The signal that killed it.
    pub signal: Option<i32>,
    /// It dumped core.
    pub core_dumped: bool,
    /// It ran past its timeout; the agent killed it and everything it started.
    pub timed_out: bool,
    /// It was killed by the kernel's OOM killer (SIGKILL while the memory cgroup's OOM-kill
    /// counter rose).
    pub oom_killed: bool,
    /// It never ran: why.
    pub start_failure: Option<StartFailure>,
}

impl ExitStatus {
    /// Exit code 0, no signal, no timeout.
    pub fn success(&self) -> bool {
        self.code == 0 && self.signal.is_none() && !self.timed_out && self.start_failure.is_none()
    }
}

/// The first message of a session, from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Oldest protocol version the client speaks.
    pub min_version: u16,
    /// Newest protocol version the client speaks.
    pub max_version: u16,
    /// Who is asking (for the agent's diagnostics).
    pub client: String,
}

/// The agent's answer to [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloReply {
    /// The protocol version chosen for this session.
    pub version: u16,
    /// The agent's own version (its crate version).
    pub agent_version: String,
    /// The CPU architecture the agent was built for (`x86_64`, `aarch64`).
    pub arch: String,
    /// The agent's PID in its namespace (1 when it is the container's init).
    pub pid: u32,
    /// The agent's user ID.
    pub uid: u32,
    /// The agent's group ID.
    pub gid: u32,
    /// [`capability`] bits.
    pub capabilities: u64,
    /// The initial credit per stream.
    pub window: u32,
    /// The largest payload the agent accepts.
    pub max_payload: u32,
}

/// A command to run: a foreground exec or a background process.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecSpec {
    /// The argument vector; `argv[0]` is looked up on `$PATH` unless it holds a `/`.
    pub argv: Vec<Vec<u8>>,
    /// Variables set on top of the container's environment.
    pub env: Vec<(Vec<u8>, Vec<u8>)>,
    /// The working directory (default: the container's).
    pub workdir: Option<Vec<u8>>,
    /// `name`, `uid`, `uid:gid`, `name:group`… (default: the agent's default user).
    pub user: Option<String>,
    /// Run on a terminal (output arrives as stdout only).
    pub tty: bool,
    /// The terminal's initial size (rows, columns).
    pub tty_size: Option<(u16, u16)>,
    /// Keep standard input open for [`Message::Data`] (else it reads as empty).
    pub stdin: bool,
    /// Kill the process tree after this many milliseconds.
    pub timeout_ms: Option<u64>,
    /// After the command exits, how long to wait for descendants still holding its output open
    /// before ending the exec (default 200 ms; output already written is never lost).
    pub grace_ms: Option<u32>,
    /// Background processes: how much recent output to keep (default: the agent's setting).
    pub ring_bytes: Option<u32>,
}

/// A file to write; its bytes follow as [`Message::Data`], then [`Message::End`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteFileSpec {
    /// The path (absolute, or relative to the agent's directory).
    pub path: Vec<u8>,
    /// Permission bits.
    pub mode: u32,
    /// The owner.
    pub uid: u32,
    /// The group.
    pub gid: u32,
    /// Create missing parent directories (mode 0755, same owner).
    pub parents: bool,
}

/// A directory to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MkdirSpec {
    /// The path.
    pub path: Vec<u8>,
    /// Permission bits.
    pub mode: u32,
    /// Owner and group of the directories created (default: the agent's).
    pub owner: Option<(u32, u32)>,
    /// Create missing parents too, and succeed if it exists already as a directory.
    pub parents: bool,
}

/// What kind of file a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A named pipe.
    Fifo,
    /// A unix socket.
    Socket,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// Something else.
    Other,
}

impl FileKind {
    fn to_u8(self) -> u8 {
        match self {
            FileKind::File => 1,
            FileKind::Dir => 2,
            FileKind::Symlink => 3,
            FileKind::Fifo => 4,
            FileKind::Socket => 5,
            FileKind::CharDevice => 6,
            FileKind::BlockDevice => 7,
            FileKind::Other => 0,
        }
    }
    fn from_u8(v: u8) -> FileKind {
        match v {
            1 => FileKind::File,
            2 => FileKind::Dir,
            3 => FileKind::Symlink,
            4 => FileKind::Fifo,
            5 => FileKind::Socket,
            6 => FileKind::CharDevice,
            7 => FileKind::BlockDevice,
            _ => FileKind::Other,
        }
    }
}

/// A path's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// The kind of file.
    pub kind: FileKind,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits (including setuid/setgid/sticky).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, seconds since the epoch.
    pub mtime_sec: i64,
    /// Modification time, nanoseconds.
    pub mtime_nsec: u32,
    /// Where a symbolic link points.
    pub link_target: Option<Vec<u8>>,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's name (bytes: Linux names need not be UTF-8).
    pub name: Vec<u8>,
    /// Its metadata (not following symbolic links).
    pub stat: Stat,
}

/// One process the agent runs or remembers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// The agent's id for it.
    pub id: u64,
    /// Its PID in the container (0 if it never started).
    pub pid: u32,
    /// Its argument vector (long ones are cut).
    pub argv: Vec<Vec<u8>>,
    /// Started with [`Message::Start`] (kept after it ends, attachable); else a session's exec.
    pub background: bool,
    /// Runs on a terminal.
    pub tty: bool,
    /// The agent's init command (the container ends with it).
    pub init: bool,
    /// How it ended, once it has.
    pub status: Option<ExitStatus>,
    /// When it started, milliseconds since the epoch.
    pub started_ms: u64,
    /// Output bytes it produced in total.
    pub output_bytes: u64,
    /// How much recent output is kept for attaching.
    pub ring_bytes: u32,
}

/// An error about a request or a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReply {
    /// The class of error.
    pub code: ErrorCode,
    /// What was asked, what happened, what to do.
    pub message: String,
}

/// Every message of the protocol. Which ones go which way, and what answers what: see
/// `PROTOCOL.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Message {
    Hello(Hello),
    Exec(ExecSpec),
    Start(ExecSpec),
    StdinClose,
    Resize {
        rows: u16,
        cols: u16,
    },
    Signal(i32),
    Cancel,
    ListProcesses,
    Attach {
        process: u64,
        replay: bool,
    },
    Wait {
        process: u64,
    },
    Kill {
        process: u64,
        signal: i32,
    },
    Forget {
        process: u64,
    },
    ReadFile {
        path: Vec<u8>,
        max_bytes: Option<u64>,
    },
    WriteFile(WriteFileSpec),
    Stat {
        path: Vec<u8>,
        follow: bool,
    },
    ListDir {
        path: Vec<u8>,
    },
    Mkdir(MkdirSpec),
    Remove {
        path: Vec<u8>,
        recursive: bool,
    },
    Data {
        kind: DataKind,
        data: Vec<u8>,
    },
    End,
    Credit(u32),
    HelloReply(HelloReply),
    Started {
        process: u64,
        pid: u32,
    },
    Exited(ExitStatus),
    Ok,
    Error(ErrorReply),
    Processes(Vec<ProcessInfo>),
    FileInfo {
        size: u64,
        mode: u32,
    },
    StatReply(Stat),
    DirList(Vec<DirEntry>),
    Gap {
        lost: u64,
    },
    Replayed,
}

/// A payload that does not decode as its kind says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageError {
    /// A kind this build does not know.
    UnknownKind(u8),
    /// The payload does not decode.
    Bad {
        /// The message kind.
        kind: u8,
        /// Which field, and why.
        detail: String,
    },
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::UnknownKind(k) => write!(
                f,
                "unknown message kind {k} (a newer peer? this build speaks protocol version {})",
                super::PROTOCOL_VERSION
            ),
            MessageError::Bad { kind, detail } => {
                write!(f, "malformed payload of a kind-{kind} message: {detail}")
            }
        }
    }
}

impl std::error::Error for MessageError {}

/// A message too large for one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError {
    /// The payload size it would have.
    pub len: usize,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a message of {} bytes is larger than a frame can carry ({} bytes): shorten the \
             command line, environment or path",
            self.len, MAX_PAYLOAD
        )
    }
}

impl std::error::Error for EncodeError {}

/// Appends a data frame without building a [`Message`] (the hot path).
///
/// # Panics
/// Never; data above [`MAX_DATA_CHUNK`] is a caller bug caught by a debug assertion.
pub fn encode_data(out: &mut Vec<u8>, stream: u32, kind: DataKind, data: &[u8]) {
    debug_assert!(data.len() <= MAX_DATA_CHUNK);
    write_header(out, super::msg::kind::DATA, stream, data.len() + 1);
    out.push(kind.to_u8());
    out.extend_from_slice(data);
}

impl Message {
    /// The message's kind byte.
    pub fn kind(&self) -> u8 {
        use Message::*;
        match self {
            Hello(_) => kind::HELLO,
            Exec(_) => kind::EXEC,
            Start(_) => kind::START,
            StdinClose => kind::STDIN_CLOSE,
            Resize { .. } => kind::RESIZE,
            Signal(_) => kind::SIGNAL,
            Cancel => kind::CANCEL,
            ListProcesses => kind::LIST_PROCESSES,
            Attach { .. } => kind::ATTACH,
            Wait { .. } => kind::WAIT,
            Kill { .. } => kind::KILL,
            Forget { .. } => kind::FORGET,
            ReadFile { .. } => kind::READ_FILE,
            WriteFile(_) => kind::WRITE_FILE,
            Stat { .. } => kind::STAT,
            ListDir { .. } => kind::LIST_DIR,
            Mkdir(_) => kind::MKDIR,
            Remove { .. } => kind::REMOVE,
            Data { .. } => kind::DATA,
            End => kind::END,
            Credit(_) => kind::CREDIT,
            HelloReply(_) => kind::HELLO_REPLY,
            Started { .. } => kind::STARTED,
            Exited(_) => kind::EXITED,
            Ok => kind::OK,
            Error(_) => kind::ERROR,
            Processes(_) => kind::PROCESSES,
            FileInfo { .. } => kind::FILE_INFO,
            StatReply(_) => kind::STAT_REPLY,
            DirList(_) => kind::DIR_LIST,
            Gap { .. } => kind::GAP,
            Replayed => kind::REPLAYED,
        }
    }

    /// Appends this message as one frame on `stream`.
    ///
    /// # Errors
    /// [`EncodeError`] when the payload would exceed [`MAX_PAYLOAD`]; `out` is left as it was.
    pub fn encode(&self, stream: u32, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let at = out.len();
        write_header(out, self.kind(), stream, 0);
        self.encode_payload(&mut Enc(out));
        let len = out.len() - at - super::HEADER_LEN;
        if len > MAX_PAYLOAD {
            out.truncate(at);
            return Err(EncodeError { len });
        }
        out[at + 8..at + 12].copy_from_slice(&(len as u32).to_le_bytes());
        Ok(())
    }

    /// This message as one frame on `stream`.
    ///
    /// # Errors
    /// As [`Message::encode`].
    pub fn to_frame(&self, stream: u32) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode(stream, &mut out)?;
        Ok(out)
    }

    fn encode_payload(&self, e: &mut Enc<'_>) {
        use Message::*;
        match self {
            Hello(h) => {
                e.u16(h.min_version);
                e.u16(h.max_version);
                e.str(&h.client);
            }
            Exec(s) | Start(s) => enc_exec(e, s),
            StdinClose | Cancel | ListProcesses | End | Ok | Replayed => {}
            Resize { rows, cols } => {
                e.u16(*rows);
                e.u16(*cols);
            }
            Signal(s) => e.i32(*s),
            Attach { process, replay } => {
                e.u64(*process);
                e.bool(*replay);
            }
            Wait { process } | Forget { process } => e.u64(*process),
            Kill { process, signal } => {
                e.u64(*process);
                e.i32(*signal);
            }
            ReadFile { path, max_bytes } => {
                e.bytes(path);
                e.opt(max_bytes, |e, v| e.u64(*v));
            }
            WriteFile(w) => {
                e.bytes(&w.path);
                e.u32(w.mode);
                e.u32(w.uid);
                e.u32(w.gid);
                e.bool(w.parents);
            }
            Stat { path, follow } => {
                e.bytes(path);
                e.bool(*follow);
            }
            ListDir { path } => e.bytes(path),
            Mkdir(m) => {
                e.bytes(&m.path);
                e.u32(m.mode);
                e.opt(&m.owner, |e, (u, g)| {
                    e.u32(*u);
                    e.u32(*g);
                });
                e.bool(m.parents);
            }
            Remove { path, recursive } => {
                e.bytes(path);
                e.bool(*recursive);
            }
            Data { kind, data } => {
                e.u8(kind.to_u8());
                e.0.extend_from_slice(data);
            }
            Credit(n) => e.u32(*n),
            HelloReply(h) => {
                e.u16(h.version);
                e.str(&h.agent_version);
                e.str(&h.arch);
                e.u32(h.pid);
                e.u32(h.uid);
                e.u32(h.gid);
                e.u64(h.capabilities);
                e.u32(h.window);
                e.u32(h.max_payload);
            }
            Started { process, pid } => {
                e.u64(*process);
                e.u32(*pid);
            }
            Exited(s) => enc_status(e, s),
            Error(r) => {
                e.u16(r.code.to_u16());
                e.str(&r.message);
            }
            Processes(list) => e.list(list, enc_process),
            FileInfo { size, mode } => {
                e.u64(*size);
                e.u32(*mode);
            }
            StatReply(s) => enc_stat(e, s),
            DirList(list) => e.list(list, |e, d| {
                e.bytes(&d.name);
                enc_stat(e, &d.stat);
            }),
            Gap { lost } => e.u64(*lost),
        }
    }

    /// Decodes the payload of a frame of kind `kind`.
    ///
    /// # Errors
    /// [`MessageError`] for an unknown kind or a payload that does not decode; never panics.
    pub fn decode(kind: u8, payload: &[u8]) -> Result<Message, MessageError> {
        let mut d = Dec::new(payload);
        Message::decode_payload(kind, &mut d).map_err(|w| match w {
            Decoded::Unknown => MessageError::UnknownKind(kind),
            Decoded::Wire(w) => MessageError::Bad {
                kind,
                detail: w.to_string(),
            },
        })
    }

    fn decode_payload(k: u8, d: &mut Dec<'_>) -> Result<Message, Decoded> {
        use Message::*;
        Result::Ok(match k {
            kind::HELLO => Hello(self::Hello {
                min_version: d.u16("min_version")?,
                max_version: d.u16("max_version")?,
                client: d.str("client")?,
            }),
            kind::EXEC => Exec(dec_exec(d)?),
            kind::START => Start(dec_exec(d)?),
            kind::STDIN_CLOSE => StdinClose,
            kind::RESIZE => Resize {
                rows: d.u16("rows")?,
                cols: d.u16("cols")?,
            },
            kind::SIGNAL => Signal(d.i32("signal")?),
            kind::CANCEL => Cancel,
            kind::LIST_PROCESSES => ListProcesses,
            kind::ATTACH => Attach {
                process: d.u64("process")?,
                replay: d.bool("replay")?,
            },
            kind::WAIT => Wait {
                process: d.u64("process")?,
            },
            kind::KILL => Kill {
                process: d.u64("process")?,
                signal: d.i32("signal")?,
            },
            kind::FORGET => Forget {
                process: d.u64("process")?,
            },
            kind::READ_FILE => ReadFile {
                path: d.bytes("path")?,
                max_bytes: d.opt("max_bytes", |d| d.u64("max_bytes"))?,
            },
            kind::WRITE_FILE => WriteFile(WriteFileSpec {
                path: d.bytes("path")?,
                mode: d.u32("mode")?,
                uid: d.u32("uid")?,
                gid: d.u32("gid")?,
                parents: d.bool("parents")?,
            }),
            kind::STAT => Stat {
                path: d.bytes("path")?,
                follow: d.bool("follow")?,
            },
            kind::LIST_DIR => ListDir {
                path: d.bytes("path")?,
            },
            kind::MKDIR => Mkdir(MkdirSpec {
                path: d.bytes("path")?,
                mode: d.u32("mode")?,
                owner: d.opt("owner", |d| Result::Ok((d.u32("uid")?, d.u32("gid")?)))?,
                parents: d.bool("parents")?,
            }),
            kind::REMOVE => Remove {
                path: d.bytes("path")?,
                recursive: d.bool("recursive")?,
            },
            kind::DATA => Data {
                kind: DataKind::from_u8(d.u8("data kind")?)?,
                data: d.rest(),
            },
            kind::END => End,
            kind::CREDIT => Credit(d.u32("credit")?),
            kind::HELLO_REPLY => HelloReply(self::HelloReply {
                version: d.u16("version")?,
                agent_version: d.str("agent_version")?,
                arch: d.str("arch")?,
                pid: d.u32("pid")?,
                uid: d.u32("uid")?,
                gid: d.u32("gid")?,
                capabilities: d.u64("capabilities")?,
                window: d.u32("window")?,
                max_payload: d.u32("max_payload")?,
            }),
            kind::STARTED => Started {
                process: d.u64("process")?,
                pid: d.u32("pid")?,
            },
            kind::EXITED => Exited(dec_status(d)?),
            kind::OK => Message::Ok,
            kind::REPLAYED => Message::Replayed,
            kind::ERROR => Error(ErrorReply {
                code: ErrorCode::from_u16(d.u16("code")?),
                message: d.str("message")?,
            }),
            kind::PROCESSES => Processes(d.list("processes", 40, dec_process)?),
            kind::FILE_INFO => FileInfo {
                size: d.u64("size")?,
                mode: d.u32("mode")?,
            },
            kind::STAT_REPLY => StatReply(dec_stat(d)?),
            kind::DIR_LIST => DirList(d.list("entries", 38, |d| {
                Result::Ok(DirEntry {
                    name: d.bytes("name")?,
                    stat: dec_stat(d)?,
                })
            })?),
            kind::GAP => Gap {
                lost: d.u64("lost")?,
            },
            _ => return Err(Decoded::Unknown),
        })
    }
}

enum Decoded {
    Unknown,
    Wire(WireError),
}

impl From<WireError> for Decoded {
    fn from(w: WireError) -> Decoded {
        Decoded::Wire(w)
    }
}

fn enc_exec(e: &mut Enc<'_>, s: &ExecSpec) {
    e.list(&s.argv, |e, a| e.bytes(a));
    e.list(&s.env, |e, (k, v)| {
        e.bytes(k);
        e.bytes(v);
    });
    e.opt(&s.workdir, |e, w| e.bytes(w));
    e.opt(&s.user, |e, u| e.str(u));
    e.bool(s.tty);
    e.opt(&s.tty_size, |e, (r, c)| {
        e.u16(*r);
        e.u16(*c);
    });
    e.bool(s.stdin);
    e.opt(&s.timeout_ms, |e, t| e.u64(*t));
    e.opt(&s.grace_ms, |e, t| e.u32(*t));
    e.opt(&s.ring_bytes, |e, t| e.u32(*t));
}

fn dec_exec(d: &mut Dec<'_>) -> WireResult<ExecSpec> {
    Ok(ExecSpec {
        argv: d.list("argv", 4, |d| d.bytes("argv"))?,
        env: d.list("env", 8, |d| {
            Ok((d.bytes("env name")?, d.bytes("env value")?))
        })?,
        workdir: d.opt("workdir", |d| d.bytes("workdir"))?,
        user: d.opt("user", |d| d.str("user"))?,
        tty: d.bool("tty")?,
        tty_size: d.opt("tty_size", |d| Ok((d.u16("rows")?, d.u16("cols")?)))?,
        stdin: d.bool("stdin")?,
        timeout_ms: d.opt("timeout_ms", |d| d.u64("timeout_ms"))?,
        grace_ms: d.opt("grace_ms", |d| d.u32("grace_ms"))?,
        ring_bytes: d.opt("ring_bytes", |d| d.u32("ring_bytes"))?,
    })
}

fn enc_status(e: &mut Enc<'_>, s: &ExitStatus) {
    e.i32(s.code);
    e.opt(&s.signal, |e, v| e.i32(*v));
    e.bool(s.core_dumped);
    e.bool(s.timed_out);
    e.bool(s.oom_killed);
    e.opt(&s.start_failure, |e, f| {
        e.u8(f.kind.to_u8());
        e.str(&f.message);
    });
}

fn dec_status(d: &mut Dec<'_>) -> WireResult<ExitStatus> {
    Ok(ExitStatus {
        code: d.i32("code")?,
        signal: d.opt("signal", |d| d.i32("signal"))?,
        core_dumped: d.bool("core_dumped")?,
        timed_out: d.bool("timed_out")?,
        oom_killed: d.bool("oom_killed")?,
        start_failure: d.opt("start_failure", |d| {
            Ok(StartFailure {
                kind: StartFailureKind::from_u8(d.u8("start failure kind")?),
                message: d.str("start failure message")?,
            })
        })?,
    })
}

fn enc_stat(e: &mut Enc<'_>, s: &Stat) {
    e.u8(s.kind.to_u8());
    e.u64(s.size);
    e.u32(s.mode);
    e.u32(s.uid);
    e.u32(s.gid);
    e.i64(s.mtime_sec);
    e.u32(s.mtime_nsec);
    e.opt(&s.link_target, |e, t| e.bytes(t));
}

fn dec_stat(d: &mut Dec<'_>) -> WireResult<Stat> {
    Ok(Stat {
        kind: FileKind::from_u8(d.u8("kind")?),
        size: d.u64("size")?,
        mode: d.u32("mode")?,
        uid: d.u32("uid")?,
        gid: d.u32("gid")?,
        mtime_sec: d.i64("mtime_sec")?,
        mtime_nsec: d.u32("mtime_nsec")?,
        link_target: d.opt("link_target", |d| d.bytes("link_target"))?,
    })
}

fn enc_process(e: &mut Enc<'_>, p: &ProcessInfo) {
    e.u64(p.id);
    e.u32(p.pid);
    e.list(&p.argv, |e, a| e.bytes(a));
    e.bool(p.background);
    e.bool(p.tty);
    e.bool(p.init);
    e.opt(&p.status, enc_status);
    e.u64(p.started_ms);
    e.u64(p.output_bytes);
    e.u32(p.ring_bytes);
}

fn dec_process(d: &mut Dec<'_>) -> WireResult<ProcessInfo> {
    Ok(ProcessInfo {
        id: d.u64("id")?,
        pid: d.u32("pid")?,
        argv: d.list("argv", 4, |d| d.bytes("argv"))?,
        background: d.bool("background")?,
        tty: d.bool("tty")?,
        init: d.bool("init")?,
        status: d.opt("status", dec_status)?,
        started_ms: d.u64("started_ms")?,
        output_bytes: d.u64("output_bytes")?,
        ring_bytes: d.u32("ring_bytes")?,
    })
}
