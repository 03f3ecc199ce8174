//! The agent's event loop: one thread, epoll over the sessions' transports, the processes'
//! pipes and a signalfd. Every buffer is bounded by the protocol's credit: the agent reads a
//! foreground command's output only as fast as its session consumes it (the command blocks on a
//! full pipe, as under `docker exec`), keeps at most a ring of a background process's output,
//! and accepts at most one window of input per stream.

use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use headjack_agent::proto::{
    self, CREDIT_THRESHOLD, DataKind, ErrorCode, ErrorReply, ExecSpec, ExitStatus, HelloReply,
    MAX_DATA_CHUNK, Message, PROTOCOL_VERSION, StartFailure, StartFailureKind, WINDOW, capability,
};

use super::env::{self, Var};
use super::files;
use super::process::{self, Attacher, Input, Output, Proc};
use super::ring::Ring;
use super::session::{Session, Stream};
use super::shim::{self, Launch, Report, stage};
use super::sys::{self, Epoll, IN, OUT};
use super::users;

/// How the agent was started.
pub struct Config {
    pub default_user: Option<String>,
    pub ring_bytes: usize,
    pub expires_at: Option<u64>,
    /// The abstract socket's name; `None`: no socket.
    pub socket: Option<String>,
    pub init: Vec<String>,
    /// Serve a session on stdin/stdout.
    pub stdio: bool,
}

/// After a command exits, how long descendants holding its output open may keep the exec open.
const DEFAULT_GRACE: Duration = Duration::from_millis(200);
/// The most credit a stream may accumulate (a client granting more gains nothing).
const MAX_CREDIT: u32 = 64 << 20;
/// A session's unsent answers beyond which the agent stops reading its requests.
const MAX_PENDING_OUT: usize = 16 << 20;
/// Directory listings and process lists go out in frames of about this size.
const LIST_CHUNK: usize = 256 << 10;

const T_SIGNAL: u64 = 1 << 56;
const T_LISTEN: u64 = 2 << 56;
const T_SESSION_IN: u64 = 3 << 56;
const T_SESSION_OUT: u64 = 4 << 56;
const T_OUT: u64 = 5 << 56;
const T_STDIN: u64 = 6 << 56;
const T_REPORT: u64 = 7 << 56;
const KIND_MASK: u64 = 0xff << 56;

fn token(kind: u64, id: u64, idx: usize) -> u64 {
    kind | (id << 2) | idx as u64
}

fn untoken(t: u64) -> (u64, u64, usize) {
    (t & KIND_MASK, (t & !KIND_MASK) >> 2, (t & 3) as usize)
}

/// Registers, changes or removes `fd` in the epoll set so that it reports exactly `events`.
/// No interest means removal: a hung-up descriptor reports EPOLLHUP/EPOLLERR whatever was
/// asked, and must not wake the loop while nobody wants it.
fn set_interest(ep: &Epoll, fd: RawFd, tok: u64, events: u32, registered: &mut bool) -> bool {
    match (events, *registered) {
        (0, false) => true,
        (0, true) => {
            ep.delete(fd);
            *registered = false;
            true
        }
        (e, true) => ep.modify(fd, e, tok).is_ok(),
        (e, false) => {
            *registered = ep.add(fd, e, tok).is_ok();
            *registered
        }
    }
}

enum SpawnError {
    Invalid(ErrorReply),
    Failed(StartFailure),
}

pub struct Agent {
    cfg: Config,
    ep: Epoll,
    sigfd: OwnedFd,
    listener: Option<OwnedFd>,
    sessions: HashMap<u64, Session>,
    procs: BTreeMap<u64, Proc>,
    next_id: u64,
    env: Vec<Var>,
    workdir: Vec<u8>,
    devnull: Option<OwnedFd>,
    can_switch: bool,
    uid: u32,
    gid: u32,
    pid1: bool,
    expires: Option<Instant>,
    init_id: Option<u64>,
    exit: Option<i32>,
    buf: Vec<u8>,
    users: users::Db,
}

/// Whether the effective capability set holds CAP_SETUID and CAP_SETGID.
fn can_switch_user() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    cap_eff_allows_switch(&status)
}

pub fn cap_eff_allows_switch(status: &str) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|caps| {
            // CAP_SETGID is bit 6, CAP_SETUID bit 7 (linux/capability.h).
            let need = (1u64 << 6) | (1u64 << 7);
            caps & need == need
        })
}

impl Agent {
    pub fn new(cfg: Config) -> std::io::Result<Agent> {
        let pid1 = sys::pid() == 1;
        if !pid1 {
            // Orphans of our commands come back to us rather than to the real init.
            sys::set_child_subreaper()?;
        }
        // A same-uid command must not ptrace the agent (nor read its memory).
        sys::set_dumpable(false)?;
        sys::unignore_signals();
        sys::ignore_signal(libc::SIGPIPE);
        let sigfd = sys::signalfd(&[
            libc::SIGCHLD,
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGWINCH,
        ])?;
        let ep = Epoll::new()?;
        ep.add(sigfd.as_raw_fd(), IN, T_SIGNAL)?;
        let mut env = env::parse_environ(std::env::vars_os().map(|(k, v)| {
            use std::os::unix::ffi::OsStrExt;
            let mut e = k.as_bytes().to_vec();
            e.push(b'=');
            e.extend_from_slice(v.as_bytes());
            e
        }));
        // The runtime gave PID 1 the HOME of its user when the image set none; an exec as
        // another user must get that user's HOME instead, as under docker exec.
        let (passwd, groups) = users::load();
        let own_home = users::resolve("", sys::uid(), &passwd, &groups)
            .map(|id| id.home)
            .unwrap_or_else(|_| "/".into());
        env::drop_runtime_home(&mut env, &own_home);
        let workdir = std::env::current_dir()
            .map(|d| {
                use std::os::unix::ffi::OsStrExt;
                d.as_os_str().as_bytes().to_vec()
            })
            .unwrap_or_else(|_| b"/".to_vec());
        let expires = cfg.expires_at.and_then(|at| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            // A time beyond what the clock can hold never comes.
            Instant::now().checked_add(Duration::from_secs(at.saturating_sub(now)))
        });
        let mut agent = Agent {
            ep,
            sigfd,
            listener: None,
            sessions: HashMap::new(),
            procs: BTreeMap::new(),
            next_id: 1,
            env,
            workdir,
            devnull: sys::open(c"/dev/null", libc::O_RDWR).ok(),
            can_switch: can_switch_user(),
            uid: sys::uid(),
            gid: sys::gid(),
            pid1,
            expires,
            init_id: None,
            exit: None,
            buf: vec![0; MAX_DATA_CHUNK],
            users: users::Db::default(),
            cfg,
        };
        if agent.cfg.stdio {
            agent.open_stdio_session();
        }
        if let Some(name) = agent.cfg.socket.clone() {
            match sys::listen_abstract(&name) {
                Ok(fd) => {
                    agent.ep.add(fd.as_raw_fd(), IN, T_LISTEN)?;
                    agent.listener = Some(fd);
                }
                Err(e) => eprintln!(
                    "headjack-agent: not listening on @{name} ({e}): sessions only on stdio"
                ),
            }
        }
        Ok(agent)
    }

    fn open_stdio_session(&mut self) {
        let id = self.next();
        // Larger pipe buffers between the runtime and us: fewer wake-ups per megabyte.
        for fd in [0, 1] {
            sys::grow_pipe(fd);
        }
        let _ = sys::set_nonblocking(0, true);
        if let Err(e) = self.ep.add(0, IN, token(T_SESSION_IN, id, 0)) {
            eprintln!("headjack-agent: stdin cannot carry a session ({e}); use the socket");
            return;
        }
        let mut s = Session::new(0, 1, None, "stdio".into());
        s.r_registered = true;
        let _ = sys::set_nonblocking(1, true);
        if self.ep.add(1, OUT, token(T_SESSION_OUT, id, 0)).is_ok() {
            self.ep.delete(1);
        } else {
            // Not pollable (a regular file): write blocking.
            let _ = sys::set_nonblocking(1, false);
            s.out_blocking = true;
        }
        self.sessions.insert(id, s);
    }

    fn next(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Runs until the init ends, the agent expires or a stop signal arrives; returns the exit
    /// code.
    pub fn run(mut self) -> i32 {
        if !self.cfg.init.is_empty() {
            let spec = ExecSpec {
                argv: self
                    .cfg
                    .init
                    .iter()
                    .map(|a| a.as_bytes().to_vec())
                    .collect(),
                ..Default::default()
            };
            match self.spawn(&spec, true, true, None) {
                Ok(id) => self.init_id = Some(id),
                Err(SpawnError::Invalid(e)) => {
                    eprintln!("headjack-agent: init command: {}", e.message);
                    return 126;
                }
                Err(SpawnError::Failed(f)) => {
                    eprintln!("headjack-agent: init command: {}", f.message);
                    return f.kind.exit_code();
                }
            }
        }
        let mut events = Vec::with_capacity(64);
        loop {
            if let Some(code) = self.exit {
                self.shutdown();
                return code;
            }
            let timeout = self.timeout_ms();
            if let Err(e) = self.ep.wait(&mut events, timeout) {
                eprintln!("headjack-agent: epoll failed ({e}); exiting");
                return 1;
            }
            for (t, ev) in std::mem::take(&mut events) {
                self.dispatch(t, ev);
            }
            self.tick();
            self.pump_reads();
            self.flush_sessions();
        }
    }

    fn timeout_ms(&self) -> i32 {
        let busy = self.sessions.values().any(|s| {
            s.streams
                .values()
                .any(|st| matches!(st, Stream::Read(_, c) if *c > 0))
        });
        if busy {
            return 0;
        }
        let now = Instant::now();
        let mut next: Option<Instant> = self.expires;
        for p in self.procs.values().filter(|p| p.running()) {
            if let (Some(d), false) = (p.deadline, p.timed_out) {
                next = Some(next.map_or(d, |n| n.min(d)));
            }
            // Past the grace period, output events (or credit) finish the process: waking on
            // a passed deadline would only spin while a client holds back credit.
            if let Some((_, at)) = p.exited
                && at + p.grace > now
            {
                let d = at + p.grace;
                next = Some(next.map_or(d, |n| n.min(d)));
            }
        }
        match next {
            None => -1,
            Some(d) => {
                let ms = d.saturating_duration_since(Instant::now()).as_millis();
                // Round up: waking early would spin.
                (ms + 1).min(i32::MAX as u128) as i32
            }
        }
    }

    fn dispatch(&mut self, t: u64, ev: u32) {
        let (kind, id, idx) = untoken(t);
        match kind {
            T_SIGNAL => self.on_signals(),
            T_LISTEN => self.on_accept(),
            T_SESSION_IN => {
                let (rfd, wfd) = match self.sessions.get(&id) {
                    Some(s) => (s.rfd, s.wfd),
                    None => return,
                };
                if ev & (IN | libc::EPOLLHUP as u32 | libc::EPOLLERR as u32) != 0 {
                    self.on_session_readable(id);
                }
                if rfd == wfd && ev & OUT != 0 {
                    self.flush_session(id);
                }
            }
            T_SESSION_OUT => {
                if ev & (libc::EPOLLERR as u32) != 0 {
                    if let Some(s) = self.sessions.get_mut(&id) {
                        s.dead = true;
                    }
                } else {
                    self.flush_session(id);
                }
            }
            T_OUT => self.on_output(id, idx),
            T_STDIN => {
                // On an error (the command closed its stdin) the write fails and the input is
                // dropped: the same path as a plain write.
                self.flush_stdin(id);
            }
            T_REPORT => self.on_report(id),
            _ => {}
        }
    }

    // ----- signals --------------------------------------------------------------------------

    fn on_signals(&mut self) {
        for sig in sys::read_signals(self.sigfd.as_raw_fd()) {
            match sig {
                libc::SIGCHLD => while sys::try_wait(-1).is_some() {},
                _ => {
                    let init = self.init_id.and_then(|i| self.procs.get(&i));
                    match init {
                        Some(p) if p.running() => {
                            let id = p.id;
                            self.signal(id, sig);
                        }
                        _ if sig == libc::SIGTERM || sig == libc::SIGINT => {
                            eprintln!("headjack-agent: stopping on signal {sig}");
                            self.exit = Some(0);
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    fn shutdown(&mut self) {
        // Say goodbye where we can; the transports may not be read any more, so do not wait long.
        let until = Instant::now() + Duration::from_millis(100);
        while Instant::now() < until && self.sessions.values().any(|s| s.pending() > 0) {
            for s in self.sessions.values_mut() {
                let _ = s.flush();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if self.pid1 {
            // Our exit takes the namespace down anyway; this makes it immediate.
            let _ = sys::kill(-1, libc::SIGKILL);
        } else {
            // Shims see their control pipe close when we exit and kill their trees; ask now.
            let ids: Vec<u64> = self.procs.keys().copied().collect();
            for id in ids {
                self.signal(id, libc::SIGKILL);
            }
        }
    }

    fn tick(&mut self) {
        let now = Instant::now();
        if let Some(at) = self.expires
            && now >= at
        {
            eprintln!("headjack-agent: expired; stopping everything");
            self.exit = Some(0);
        }
        let due: Vec<u64> = self
            .procs
            .values()
            .filter(|p| p.running() && !p.timed_out && p.deadline.is_some_and(|d| now >= d))
            .map(|p| p.id)
            .collect();
        for id in due {
            if let Some(p) = self.procs.get_mut(&id) {
                p.timed_out = p.exited.is_none();
                if !p.timed_out {
                    // Ended already; only descendants hold the output open.
                    p.deadline = None;
                }
            }
            self.signal(id, libc::SIGKILL);
        }
        let waiting: Vec<u64> = self
            .procs
            .values()
            .filter(|p| p.running() && p.exited.is_some())
            .map(|p| p.id)
            .collect();
        for id in waiting {
            self.try_finish(id);
        }
    }

    // ----- sessions -------------------------------------------------------------------------

    fn on_accept(&mut self) {
        let Some(l) = self.listener.as_ref().map(|l| l.as_raw_fd()) else {
            return;
        };
        loop {
            let fd = match sys::accept(l) {
                Ok(Some(fd)) => fd,
                Ok(None) => return,
                Err(e) => {
                    eprintln!("headjack-agent: accept failed: {e}");
                    return;
                }
            };
            let (pid, uid) = sys::peer_cred(fd.as_raw_fd()).unwrap_or((0, u32::MAX));
            if uid != 0 && uid != self.uid {
                // Any process of the container can reach the socket: only root (or the
                // agent's own user) may drive the agent, or a user could run commands as root.
                let msg = Message::Error(ErrorReply {
                    code: ErrorCode::PermissionDenied,
                    message: format!(
                        "the agent only serves uid 0 and its own uid {}; this peer is uid {uid}: \
                         run `headjack-agent relay` as root",
                        self.uid
                    ),
                });
                if let Ok(f) = msg.to_frame(proto::CONNECTION) {
                    let _ = sys::write(fd.as_raw_fd(), &f);
                }
                continue;
            }
            let id = self.next();
            let raw = fd.as_raw_fd();
            if self.ep.add(raw, IN, token(T_SESSION_IN, id, 0)).is_err() {
                continue;
            }
            let mut s = Session::new(raw, raw, Some(fd), format!("socket (pid {pid})"));
            s.r_registered = true;
            self.sessions.insert(id, s);
        }
    }

    fn on_session_readable(&mut self, sid: u64) {
        for _ in 0..16 {
            let Some(s) = self.sessions.get_mut(&sid) else {
                return;
            };
            if s.pending() > MAX_PENDING_OUT {
                // The client sends requests but does not read the answers: stop reading its
                // requests until it catches up, rather than buffer answers without bound.
                self.pause_input(sid, true);
                return;
            }
            let n = match sys::read(s.rfd, &mut self.buf) {
                Ok(0) => {
                    s.dead = true;
                    return;
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    s.dead = true;
                    return;
                }
            };
            s.dec.feed(&self.buf[..n]);
            loop {
                let Some(s) = self.sessions.get_mut(&sid) else {
                    return;
                };
                let Some(frame) = s.dec.next_frame() else {
                    break;
                };
                match frame {
                    Ok(f) => match Message::decode(f.kind, &f.payload) {
                        Ok(m) => self.on_message(sid, f.stream, m),
                        Err(e) => s.send_error(f.stream, ErrorCode::Malformed, &e.to_string()),
                    },
                    Err(e) => {
                        let stream = match e {
                            proto::DecodeError::TooLarge { stream, .. } => stream,
                            proto::DecodeError::BadMagic => proto::CONNECTION,
                        };
                        s.send_error(stream, ErrorCode::Malformed, &e.to_string());
                    }
                }
            }
        }
    }

    /// Stops (or resumes) reading a session's requests.
    fn pause_input(&mut self, sid: u64, pause: bool) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if s.in_paused != pause {
            s.in_paused = pause;
            self.update_session_interest(sid);
        }
    }

    /// Registers a session's transport for what it waits for: requests unless paused, room
    /// to write while answers wait.
    fn update_session_interest(&mut self, sid: u64) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        let read = if s.in_paused { 0 } else { IN };
        let write = if s.out_armed && !s.out_blocking {
            OUT
        } else {
            0
        };
        let tok = token(T_SESSION_IN, sid, 0);
        if s.rfd == s.wfd {
            set_interest(&self.ep, s.rfd, tok, read | write, &mut s.r_registered);
        } else {
            set_interest(&self.ep, s.rfd, tok, read, &mut s.r_registered);
            let tok = token(T_SESSION_OUT, sid, 0);
            set_interest(&self.ep, s.wfd, tok, write, &mut s.w_registered);
        }
    }

    fn flush_session(&mut self, sid: u64) {
        let resume = self
            .sessions
            .get(&sid)
            .is_some_and(|s| s.in_paused && s.pending() < MAX_PENDING_OUT / 2);
        if resume {
            self.pause_input(sid, false);
        }
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        match s.flush() {
            Ok(done) => {
                if s.out_armed == done {
                    s.out_armed = !done;
                    self.update_session_interest(sid);
                }
            }
            Err(_) => s.dead = true,
        }
    }

    fn flush_sessions(&mut self) {
        let ids: Vec<u64> = self.sessions.keys().copied().collect();
        for id in ids {
            if self
                .sessions
                .get(&id)
                .is_some_and(|s| s.pending() > 0 || s.in_paused)
            {
                self.flush_session(id);
            }
            if self.sessions.get(&id).is_some_and(|s| s.dead) {
                self.close_session(id);
            }
        }
    }

    /// Ends a session: its execs are killed (nobody can read them any more), its followers
    /// and waiters dropped, its unfinished writes discarded. Background processes live on.
    fn close_session(&mut self, sid: u64) {
        let Some(mut s) = self.sessions.remove(&sid) else {
            return;
        };
        if s.r_registered {
            self.ep.delete(s.rfd);
        }
        if s.wfd != s.rfd && s.w_registered {
            self.ep.delete(s.wfd);
        }
        self.drop_streams(sid, &mut s);
        if s.stdio {
            // Keep 0 and 1 occupied so no later pipe gets them (a shim closes its 0 and 1).
            if let Some(null) = &self.devnull {
                let _ = sys::dup2(null.as_raw_fd(), 0);
                let _ = sys::dup2(null.as_raw_fd(), 1);
            }
        }
    }

    fn drop_streams(&mut self, sid: u64, s: &mut Session) {
        for (_, st) in s.streams.drain() {
            match st {
                Stream::Exec(id) => {
                    if let Some(p) = self.procs.get_mut(&id) {
                        p.owner = None;
                    }
                    self.signal(id, libc::SIGKILL);
                    // Output nobody will read: read it freely so the process can die.
                    self.arm_outputs(id);
                }
                Stream::Attach(id) | Stream::Wait(id) => {
                    if let Some(p) = self.procs.get_mut(&id) {
                        p.attachers.retain(|a| a.session != sid);
                        p.waiters.retain(|w| w.0 != sid);
                    }
                }
                Stream::Starting(_) | Stream::Read(..) | Stream::Write(..) => {}
            }
        }
    }

    fn on_message(&mut self, sid: u64, stream: u32, msg: Message) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if !s.hello && !matches!(msg, Message::Hello(_)) {
            s.send_error(
                stream,
                ErrorCode::InvalidArgument,
                "this session has not said Hello: send Hello first",
            );
            return;
        }
        let opens_stream = matches!(
            msg,
            Message::Exec(_)
                | Message::Start(_)
                | Message::ListProcesses
                | Message::Attach { .. }
                | Message::Wait { .. }
                | Message::Kill { .. }
                | Message::Forget { .. }
                | Message::ReadFile { .. }
                | Message::WriteFile(_)
                | Message::Stat { .. }
                | Message::ListDir { .. }
                | Message::Mkdir(_)
                | Message::Remove { .. }
        );
        if opens_stream {
            if stream == proto::CONNECTION {
                s.send_error(
                    stream,
                    ErrorCode::InvalidArgument,
                    "stream 0 is the connection's own: requests need a stream id from 1 up",
                );
                return;
            }
            if s.streams.contains_key(&stream) {
                s.send_error(
                    stream,
                    ErrorCode::StreamInUse,
                    &format!("stream {stream} is still in use: pick an id not open"),
                );
                return;
            }
        }
        match msg {
            Message::Hello(h) => self.on_hello(sid, stream, h),
            Message::Exec(spec) => match self.spawn(&spec, false, false, Some((sid, stream))) {
                Ok(id) => {
                    if let Some(s) = self.sessions.get_mut(&sid) {
                        s.streams.insert(stream, Stream::Exec(id));
                    }
                }
                Err(e) => self.reply_spawn_error(sid, stream, e),
            },
            Message::Start(spec) => match self.spawn(&spec, true, false, None) {
                Ok(id) => {
                    if let Some(s) = self.sessions.get_mut(&sid) {
                        s.streams.insert(stream, Stream::Starting(id));
                    }
                }
                Err(e) => self.reply_spawn_error(sid, stream, e),
            },
            Message::StdinClose => {
                if let Some(id) = self.exec_of(sid, stream) {
                    self.close_stdin(id);
                }
            }
            Message::Resize { rows, cols } => {
                if let Some(id) = self.exec_of(sid, stream)
                    && let Some(fd) = self.procs.get(&id).and_then(|p| p.master_fd())
                {
                    let _ = sys::set_winsize(fd, rows, cols);
                }
            }
            Message::Signal(sig) => {
                if !(1..=64).contains(&sig) {
                    let s = self.sessions.get_mut(&sid).expect("checked");
                    s.send_error(
                        stream,
                        ErrorCode::InvalidArgument,
                        &format!("{sig} is not a signal number (1 to 64)"),
                    );
                } else if let Some(id) = self.exec_of(sid, stream) {
                    self.signal(id, sig);
                }
            }
            Message::Cancel => self.on_cancel(sid, stream),
            Message::Credit(n) => self.on_credit(sid, stream, n),
            Message::Data { data, .. } => self.on_data(sid, stream, &data),
            Message::End => self.on_end(sid, stream),
            Message::ListProcesses => {
                let infos: Vec<_> = self.procs.values().map(|p| p.info()).collect();
                let s = self.sessions.get_mut(&sid).expect("checked");
                let mut chunk = Vec::new();
                let mut size = 0;
                for i in infos {
                    size += 64 + i.argv.iter().map(|a| a.len() + 4).sum::<usize>();
                    chunk.push(i);
                    if size > LIST_CHUNK {
                        s.send(stream, &Message::Processes(std::mem::take(&mut chunk)));
                        size = 0;
                    }
                }
                s.send(stream, &Message::Processes(chunk));
                s.send(stream, &Message::End);
            }
            Message::Attach { process, replay } => self.on_attach(sid, stream, process, replay),
            Message::Wait { process } => {
                let s = self.sessions.get_mut(&sid).expect("checked");
                match self.procs.get_mut(&process) {
                    None => s.send_error(stream, ErrorCode::NoSuchProcess, &no_such(process)),
                    Some(p) => match &p.status {
                        Some(st) => s.send(stream, &Message::Exited(st.clone())),
                        None => {
                            p.waiters.push((sid, stream));
                            s.streams.insert(stream, Stream::Wait(process));
                        }
                    },
                }
            }
            Message::Kill { process, signal } => {
                if !(1..=64).contains(&signal) {
                    let s = self.sessions.get_mut(&sid).expect("checked");
                    s.send_error(
                        stream,
                        ErrorCode::InvalidArgument,
                        &format!("{signal} is not a signal number (1 to 64)"),
                    );
                    return;
                }
                let exists = self.procs.contains_key(&process);
                if exists {
                    self.signal(process, signal);
                }
                let s = self.sessions.get_mut(&sid).expect("checked");
                if exists {
                    s.send(stream, &Message::Ok);
                } else {
                    s.send_error(stream, ErrorCode::NoSuchProcess, &no_such(process));
                }
            }
            Message::Forget { process } => self.on_forget(sid, stream, process),
            Message::ReadFile { path, max_bytes } => {
                let s = self.sessions.get_mut(&sid).expect("checked");
                match files::open_read(&path, max_bytes) {
                    Ok(r) => {
                        s.send(
                            stream,
                            &Message::FileInfo {
                                size: r.size,
                                mode: r.mode,
                            },
                        );
                        s.streams.insert(stream, Stream::Read(Box::new(r), WINDOW));
                    }
                    Err(e) => s.send_reply(stream, e),
                }
            }
            Message::WriteFile(spec) => {
                let serial = self.next();
                let s = self.sessions.get_mut(&sid).expect("checked");
                match files::open_write(spec, serial) {
                    Ok(w) => {
                        s.streams
                            .insert(stream, Stream::Write(Some(Box::new(w)), 0));
                    }
                    Err(e) => {
                        s.send_reply(stream, e);
                        s.streams.insert(stream, Stream::Write(None, 0));
                    }
                }
            }
            Message::Stat { path, follow } => {
                let s = self.sessions.get_mut(&sid).expect("checked");
                match files::stat(&path, follow) {
                    Ok(st) => s.send(stream, &Message::StatReply(st)),
                    Err(e) => s.send_reply(stream, e),
                }
            }
            Message::ListDir { path } => {
                let s = self.sessions.get_mut(&sid).expect("checked");
                match files::list(&path) {
                    Ok(entries) => {
                        let mut chunk = Vec::new();
                        let mut size = 0;
                        for e in entries {
                            size += 64 + e.name.len();
                            chunk.push(e);
                            if size > LIST_CHUNK {
                                s.send(stream, &Message::DirList(std::mem::take(&mut chunk)));
                                size = 0;
                            }
                        }
                        s.send(stream, &Message::DirList(chunk));
                        s.send(stream, &Message::End);
                    }
                    Err(e) => s.send_reply(stream, e),
                }
            }
            Message::Mkdir(spec) => {
                let s = self.sessions.get_mut(&sid).expect("checked");
                match files::mkdir(&spec) {
                    Ok(()) => s.send(stream, &Message::Ok),
                    Err(e) => s.send_reply(stream, e),
                }
            }
            Message::Remove { path, recursive } => {
                let s = self.sessions.get_mut(&sid).expect("checked");
                match files::remove(&path, recursive) {
                    Ok(()) => s.send(stream, &Message::Ok),
                    Err(e) => s.send_reply(stream, e),
                }
            }
            other => {
                let s = self.sessions.get_mut(&sid).expect("checked");
                s.send_error(
                    stream,
                    ErrorCode::InvalidArgument,
                    &format!(
                        "message kind {} goes from the agent to a client, not to the agent",
                        other.kind()
                    ),
                );
            }
        }
    }

    fn on_hello(&mut self, sid: u64, stream: u32, h: proto::Hello) {
        // The newest version both speak.
        let version = h.max_version.min(PROTOCOL_VERSION);
        if version < h.min_version || version < proto::OLDEST_PROTOCOL_VERSION {
            let s = self.sessions.get_mut(&sid).expect("checked");
            s.send_error(
                stream,
                ErrorCode::UnsupportedVersion,
                &format!(
                    "this agent ({}) speaks protocol versions {} to {PROTOCOL_VERSION}; the \
                     client ({}) speaks {} to {}: use matching headjack and agent builds",
                    env!("CARGO_PKG_VERSION"),
                    proto::OLDEST_PROTOCOL_VERSION,
                    h.client,
                    h.min_version,
                    h.max_version
                ),
            );
            return;
        }
        // A second Hello starts over: a new client took over this transport (the stdio one,
        // after the host process that held it died).
        let mut s = self.sessions.remove(&sid).expect("checked");
        if s.hello {
            eprintln!(
                "headjack-agent: new hello on the {} session ({}); its old streams end",
                s.label, h.client
            );
            self.drop_streams(sid, &mut s);
        }
        s.hello = true;
        s.version = version;
        let mut caps = 0;
        if self.can_switch {
            caps |= capability::SWITCH_USER;
        }
        if self.listener.is_some() {
            caps |= capability::SOCKET;
        }
        if process::oom_kills().is_some() {
            caps |= capability::OOM;
        }
        if self.pid1 {
            caps |= capability::PID1;
        }
        if version >= 2 {
            caps |= capability::REPLAY_MARK;
        }
        s.send(
            stream,
            &Message::HelloReply(HelloReply {
                version,
                agent_version: env!("CARGO_PKG_VERSION").into(),
                arch: std::env::consts::ARCH.into(),
                pid: sys::pid() as u32,
                uid: self.uid,
                gid: self.gid,
                capabilities: caps,
                window: WINDOW,
                max_payload: proto::MAX_PAYLOAD as u32,
            }),
        );
        self.sessions.insert(sid, s);
    }

    fn reply_spawn_error(&mut self, sid: u64, stream: u32, e: SpawnError) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        match e {
            SpawnError::Invalid(r) => s.send_reply(stream, r),
            SpawnError::Failed(f) => s.send(stream, &Message::Exited(failed_status(f))),
        }
    }

    fn exec_of(&self, sid: u64, stream: u32) -> Option<u64> {
        match self.sessions.get(&sid)?.streams.get(&stream)? {
            Stream::Exec(id) => Some(*id),
            _ => None,
        }
    }

    fn on_cancel(&mut self, sid: u64, stream: u32) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        let Some(st) = s.streams.remove(&stream) else {
            return;
        };
        let mut one = Session::new(-1, -1, None, String::new());
        one.streams.insert(stream, st);
        self.drop_streams(sid, &mut one);
    }

    fn on_credit(&mut self, sid: u64, stream: u32, n: u32) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        match s.streams.get_mut(&stream) {
            Some(Stream::Exec(id)) => {
                let id = *id;
                if let Some(p) = self.procs.get_mut(&id) {
                    p.credit = p.credit.saturating_add(n).min(MAX_CREDIT);
                }
                self.arm_outputs(id);
            }
            Some(Stream::Attach(id)) => {
                let id = *id;
                if let Some(p) = self.procs.get_mut(&id)
                    && let Some(a) = p
                        .attachers
                        .iter_mut()
                        .find(|a| a.session == sid && a.stream == stream)
                {
                    a.credit = a.credit.saturating_add(n).min(MAX_CREDIT);
                }
                self.pump_attachers(id);
            }
            Some(Stream::Read(_, credit)) => *credit = credit.saturating_add(n).min(MAX_CREDIT),
            _ => {}
        }
    }

    fn on_data(&mut self, sid: u64, stream: u32, data: &[u8]) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        match s.streams.get_mut(&stream) {
            Some(Stream::Exec(id)) => {
                let id = *id;
                self.feed_stdin(id, data);
            }
            Some(Stream::Write(w, consumed)) => {
                let mut failed = None;
                if let Some(writer) = w
                    && let Err(e) = writer.write(data)
                {
                    // Dropping the writer removes the temporary file.
                    *w = None;
                    failed = Some(e);
                }
                *consumed += data.len() as u32;
                let grant = (*consumed >= CREDIT_THRESHOLD).then(|| std::mem::take(consumed));
                if let Some(e) = failed {
                    s.send_reply(stream, e);
                }
                if let Some(n) = grant {
                    s.send(stream, &Message::Credit(n));
                }
            }
            _ => {}
        }
    }

    fn on_end(&mut self, sid: u64, stream: u32) {
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if let Some(Stream::Write(..)) = s.streams.get(&stream)
            && let Some(Stream::Write(w, _)) = s.streams.remove(&stream)
            && let Some(w) = w
        {
            match w.finish() {
                Ok(()) => s.send(stream, &Message::Ok),
                Err(e) => s.send_reply(stream, e),
            }
        }
    }

    fn on_attach(&mut self, sid: u64, stream: u32, process: u64, replay: bool) {
        let s = self.sessions.get_mut(&sid).expect("checked");
        let Some(p) = self.procs.get_mut(&process) else {
            s.send_error(stream, ErrorCode::NoSuchProcess, &no_such(process));
            return;
        };
        let Some(ring) = &p.ring else {
            s.send_error(
                stream,
                ErrorCode::InvalidArgument,
                &format!(
                    "process {process} is a session's exec; only background processes (started \
                     with Start) can be attached"
                ),
            );
            return;
        };
        // Replaying from offset 0 tells the follower, with a Gap first, how much output the
        // ring no longer holds.
        let pos = if replay { 0 } else { ring.end() };
        p.attachers.push(Attacher {
            session: sid,
            stream,
            pos,
            credit: WINDOW,
            // Version 1 clients do not know `Replayed`.
            replay_until: (replay && s.version >= 2).then(|| ring.end()),
        });
        s.streams.insert(stream, Stream::Attach(process));
        self.pump_attachers(process);
    }

    fn on_forget(&mut self, sid: u64, stream: u32, process: u64) {
        let s = self.sessions.get_mut(&sid).expect("checked");
        match self.procs.get(&process) {
            None => s.send_error(stream, ErrorCode::NoSuchProcess, &no_such(process)),
            Some(p) if p.running() => s.send_error(
                stream,
                ErrorCode::Busy,
                &format!("process {process} is still running: kill it or wait for it first"),
            ),
            Some(_) => {
                let p = self.procs.remove(&process).expect("checked");
                for a in p.attachers {
                    if let Some(s) = self.sessions.get_mut(&a.session) {
                        s.streams.remove(&a.stream);
                        s.send(a.stream, &Message::End);
                    }
                }
                if let Some(s) = self.sessions.get_mut(&sid) {
                    s.send(stream, &Message::Ok);
                }
            }
        }
    }

    fn pump_reads(&mut self) {
        for s in self.sessions.values_mut() {
            let ids: Vec<u32> = s
                .streams
                .iter()
                .filter(|(_, st)| matches!(st, Stream::Read(_, c) if *c > 0))
                .map(|(id, _)| *id)
                .collect();
            for stream in ids {
                // A few chunks per turn, so other work interleaves.
                for _ in 0..4 {
                    let Some(Stream::Read(r, credit)) = s.streams.get_mut(&stream) else {
                        break;
                    };
                    if *credit == 0 {
                        break;
                    }
                    let max = (*credit as usize).min(MAX_DATA_CHUNK);
                    match r.next_chunk(&mut self.buf[..max]) {
                        Ok(0) => {
                            s.streams.remove(&stream);
                            s.send(stream, &Message::End);
                            break;
                        }
                        Ok(n) => {
                            *credit -= n as u32;
                            s.send_data(stream, DataKind::Bytes, &self.buf[..n]);
                        }
                        Err(e) => {
                            s.streams.remove(&stream);
                            s.send_reply(stream, e);
                            break;
                        }
                    }
                }
            }
        }
    }

    // ----- processes ------------------------------------------------------------------------

    fn spawn(
        &mut self,
        spec: &ExecSpec,
        background: bool,
        init: bool,
        owner: Option<(u64, u32)>,
    ) -> Result<u64, SpawnError> {
        let invalid = |m: String| {
            SpawnError::Invalid(ErrorReply {
                code: ErrorCode::InvalidArgument,
                message: m,
            })
        };
        env::validate(&spec.argv, &spec.env).map_err(invalid)?;
        let program = String::from_utf8_lossy(&spec.argv[0]).into_owned();
        let fail = |kind: StartFailureKind, message: String| {
            SpawnError::Failed(StartFailure { kind, message })
        };
        let user = spec
            .user
            .clone()
            .or_else(|| self.cfg.default_user.clone())
            .unwrap_or_default();
        self.users.refresh();
        let id = users::resolve(&user, self.uid, &self.users.passwd, &self.users.groups)
            .map_err(|e| match e {
            users::ResolveError::UnknownUser(u) => fail(
                StartFailureKind::UnknownUser,
                format!(
                    "unable to find user {u}: no matching entries in the container's /etc/passwd"
                ),
            ),
            users::ResolveError::UnknownGroup(g) => fail(
                StartFailureKind::UnknownGroup,
                format!(
                    "unable to find group {g}: no matching entries in the container's /etc/group"
                ),
            ),
        })?;
        let identity = if self.can_switch {
            Some((id.uid, id.gid, id.groups.clone()))
        } else if id.uid == self.uid && id.gid == self.gid {
            None
        } else {
            return Err(fail(
                StartFailureKind::UserSwitchDenied,
                format!(
                    "cannot run {program} as user {user:?} (uid {}, gid {}): the agent runs as \
                     uid {} without CAP_SETUID/CAP_SETGID (capabilities dropped, or a non-root \
                     agent); run it as uid {}, or through the engine's exec",
                    id.uid, id.gid, self.uid, self.uid
                ),
            ));
        };
        let env = env::build(&self.env, &spec.env, &id.home, spec.tty);
        let path = env::get(&env, b"PATH")
            .unwrap_or(env::DEFAULT_PATH)
            .to_vec();
        let cstr =
            |b: &[u8]| CString::new(b).map_err(|_| invalid("a NUL byte in the request".into()));
        let workdir = spec.workdir.clone().unwrap_or_else(|| self.workdir.clone());
        let launch_strings = (|| -> Result<_, SpawnError> {
            Ok((
                spec.argv
                    .iter()
                    .map(|a| cstr(a))
                    .collect::<Result<Vec<_>, _>>()?,
                env.iter()
                    .map(|(k, v)| {
                        let mut e = k.clone();
                        e.push(b'=');
                        e.extend_from_slice(v);
                        cstr(&e)
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                env::candidates(&spec.argv[0], &path)
                    .iter()
                    .map(|c| cstr(c))
                    .collect::<Result<Vec<_>, _>>()?,
                cstr(&workdir)?,
            ))
        })()?;
        let (argv, envp, candidates, workdir_c) = launch_strings;
        let sys_fail = |what: &str, e: std::io::Error| {
            fail(
                StartFailureKind::Other,
                format!("starting {program}: {what}: {e}"),
            )
        };
        // The command's stdio, and our ends of it.
        let mut outs: [Option<Output>; 2] = [None, None];
        let mut stdin: Option<Input> = None;
        let mut master: Option<OwnedFd> = None;
        let child_fds: Vec<OwnedFd>;
        let (cin, cout, cerr);
        if spec.tty {
            let (m, slave) = sys::open_pty().map_err(|e| sys_fail("opening a terminal", e))?;
            if let Some((rows, cols)) = spec.tty_size {
                let _ = sys::set_winsize(m.as_raw_fd(), rows, cols);
            }
            let input = sys::dup(m.as_raw_fd()).map_err(|e| sys_fail("opening a terminal", e))?;
            master = Some(sys::dup(m.as_raw_fd()).map_err(|e| sys_fail("opening a terminal", e))?);
            outs[0] = Some(Output {
                fd: m,
                kind: DataKind::Stdout,
                armed: false,
            });
            if spec.stdin && !background {
                stdin = Some(Input::new(input));
            }
            let s = slave.as_raw_fd();
            (cin, cout, cerr) = (s, s, s);
            child_fds = vec![slave];
        } else {
            let (or, ow) = sys::pipe().map_err(|e| sys_fail("creating a pipe", e))?;
            let (er, ew) = sys::pipe().map_err(|e| sys_fail("creating a pipe", e))?;
            outs[0] = Some(Output {
                fd: or,
                kind: DataKind::Stdout,
                armed: false,
            });
            outs[1] = Some(Output {
                fd: er,
                kind: DataKind::Stderr,
                armed: false,
            });
            let mut fds = vec![];
            let ci = if spec.stdin && !background {
                let (ir, iw) = sys::pipe().map_err(|e| sys_fail("creating a pipe", e))?;
                stdin = Some(Input::new(iw));
                let r = ir.as_raw_fd();
                fds.push(ir);
                r
            } else if let Some(null) = &self.devnull {
                null.as_raw_fd()
            } else {
                // No /dev/null: an empty pipe reads as end of file just the same.
                let (ir, iw) = sys::pipe().map_err(|e| sys_fail("creating a pipe", e))?;
                drop(iw);
                let r = ir.as_raw_fd();
                fds.push(ir);
                r
            };
            (cin, cout, cerr) = (ci, ow.as_raw_fd(), ew.as_raw_fd());
            fds.push(ow);
            fds.push(ew);
            child_fds = fds;
        }
        let launch = Launch {
            argv,
            env: envp,
            candidates,
            workdir: workdir_c,
            identity,
            stdin: cin,
            stdout: cout,
            stderr: cerr,
            tty: spec.tty,
        };
        let oom_before = process::oom_kills();
        let shim = shim::spawn(&launch).map_err(|e| sys_fail("forking", e))?;
        drop(child_fds);
        let pid = self.next();
        // Output is read once the shim reports the start, so `Started` precedes any `Data`.
        for o in outs.iter().flatten() {
            let _ = sys::nonblocking_new(o.fd.as_raw_fd());
        }
        if let Some(i) = &stdin {
            // Registered only while there is input to write.
            let _ = sys::nonblocking_new(i.fd.as_raw_fd());
        }
        let _ = sys::nonblocking_new(shim.report.as_raw_fd());
        let _ = self
            .ep
            .add(shim.report.as_raw_fd(), IN, token(T_REPORT, pid, 0));
        let ring_bytes = spec
            .ring_bytes
            .map_or(self.cfg.ring_bytes, |r| r as usize)
            .min(256 << 20);
        self.procs.insert(
            pid,
            Proc {
                id: pid,
                argv: spec.argv.clone(),
                background,
                init,
                tty: spec.tty,
                pid: 0,
                ctl: Some(shim.ctl),
                report: Some(shim.report),
                report_buf: Vec::new(),
                outs,
                stdin,
                master,
                started_ms: sys::now_ms(),
                deadline: spec
                    .timeout_ms
                    .and_then(|ms| Instant::now().checked_add(Duration::from_millis(ms))),
                grace: spec
                    .grace_ms
                    .map_or(DEFAULT_GRACE, |ms| Duration::from_millis(ms.into())),
                exited: None,
                failure: None,
                shim_lost: false,
                timed_out: false,
                killed: false,
                oom_before,
                status: None,
                owner,
                credit: WINDOW,
                ring: background.then(|| Ring::new(ring_bytes)),
                attachers: Vec::new(),
                waiters: Vec::new(),
                output_bytes: 0,
            },
        );
        Ok(pid)
    }

    /// Signals a process's tree through its shim (SIGKILL: until nothing is left).
    fn signal(&mut self, id: u64, sig: i32) {
        let Some(p) = self.procs.get_mut(&id) else {
            return;
        };
        if !p.running() {
            return;
        }
        if sig == libc::SIGKILL {
            p.killed = true;
        }
        if let Some(ctl) = &p.ctl {
            let _ = sys::write(ctl.as_raw_fd(), &[b'K', sig as u8]);
        }
    }

    fn on_report(&mut self, id: u64) {
        let Some(p) = self.procs.get_mut(&id) else {
            return;
        };
        let Some(fd) = p.report.as_ref().map(|r| r.as_raw_fd()) else {
            return;
        };
        let mut buf = [0u8; 64];
        let mut eof = false;
        loop {
            match sys::read(fd, &mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => p.report_buf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        let reports = Report::parse(&mut p.report_buf);
        for r in reports {
            match r {
                Report::Started(pid) => {
                    if let Some(p) = self.procs.get_mut(&id) {
                        p.pid = pid;
                    }
                    self.on_started(id);
                    self.arm_outputs(id);
                }
                Report::Failed { stage, errno } => {
                    let p = self.procs.get_mut(&id).expect("present");
                    p.failure = Some(start_failure(p, stage, errno, &self.workdir));
                }
                Report::Exited(st) => {
                    let p = self.procs.get_mut(&id).expect("present");
                    p.exited = Some((st, Instant::now()));
                }
            }
        }
        let Some(p) = self.procs.get_mut(&id) else {
            return;
        };
        if eof {
            self.ep.delete(fd);
            p.report = None;
            if p.exited.is_none() && p.failure.is_none() {
                eprintln!(
                    "headjack-agent: the shim of process {id} vanished without reporting its end"
                );
                p.shim_lost = true;
            }
        }
        self.try_finish(id);
    }

    fn on_started(&mut self, id: u64) {
        let Some(p) = self.procs.get(&id) else {
            return;
        };
        let msg = Message::Started {
            process: id,
            pid: p.pid,
        };
        if let Some((sid, stream)) = p.owner
            && let Some(s) = self.sessions.get_mut(&sid)
        {
            s.send(stream, &msg);
        }
        // A background start is answered now, and its stream ends.
        for s in self.sessions.values_mut() {
            let starting: Vec<u32> = s
                .streams
                .iter()
                .filter(|(_, st)| matches!(st, Stream::Starting(p) if *p == id))
                .map(|(k, _)| *k)
                .collect();
            for stream in starting {
                s.streams.remove(&stream);
                s.send(stream, &msg);
            }
        }
    }

    fn arm_outputs(&mut self, id: u64) {
        let Some(p) = self.procs.get_mut(&id) else {
            return;
        };
        let want = p.owner.is_none() || p.credit > 0;
        for (i, o) in p.outs.iter_mut().enumerate() {
            if let Some(o) = o {
                let fd = o.fd.as_raw_fd();
                let events = if want { IN } else { 0 };
                set_interest(&self.ep, fd, token(T_OUT, id, i), events, &mut o.armed);
            }
        }
    }

    fn on_output(&mut self, id: u64, idx: usize) {
        let mut ring_grew = false;
        for _ in 0..4 {
            let Some(p) = self.procs.get_mut(&id) else {
                return;
            };
            let Some(o) = p.outs[idx].as_ref() else {
                break;
            };
            let limit = match p.owner {
                Some(_) if p.ring.is_none() => (p.credit as usize).min(MAX_DATA_CHUNK),
                _ => MAX_DATA_CHUNK,
            };
            if limit == 0 {
                self.arm_outputs(id);
                break;
            }
            let kind = o.kind;
            match sys::read(o.fd.as_raw_fd(), &mut self.buf[..limit]) {
                Ok(0) => {
                    self.close_output(id, idx);
                    break;
                }
                Ok(n) => {
                    let data = &self.buf[..n];
                    p.output_bytes += n as u64;
                    if let Some(ring) = &mut p.ring {
                        ring.push(kind, data);
                        ring_grew = true;
                        if p.init {
                            let _ = sys::write_all(2, data);
                        }
                    } else if let Some((sid, stream)) = p.owner {
                        p.credit -= n as u32;
                        if let Some(s) = self.sessions.get_mut(&sid) {
                            s.send_data(stream, kind, data);
                        }
                    }
                    if n < limit {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                // A terminal whose every slave is closed reads EIO: its end of file.
                Err(_) => {
                    self.close_output(id, idx);
                    break;
                }
            }
        }
        if ring_grew {
            self.pump_attachers(id);
        }
        if self.procs.get(&id).is_some_and(|p| p.exited.is_some()) {
            self.try_finish(id);
        }
    }

    fn close_output(&mut self, id: u64, idx: usize) {
        if let Some(p) = self.procs.get_mut(&id)
            && let Some(mut o) = p.outs[idx].take()
        {
            // A terminal's master has duplicates (stdin, resizing): closing this descriptor
            // alone would not take it out of the epoll set.
            let fd = o.fd.as_raw_fd();
            set_interest(&self.ep, fd, 0, 0, &mut o.armed);
        }
    }

    fn feed_stdin(&mut self, id: u64, data: &[u8]) {
        let Some(p) = self.procs.get_mut(&id) else {
            return;
        };
        match &mut p.stdin {
            Some(i) if !i.close_when_empty => {
                i.line_pending = data
                    .last()
                    .map_or(i.line_pending, |b| *b != b'\n' && *b != b'\r');
                i.buf.extend_from_slice(data);
                self.flush_stdin(id);
            }
            _ => {
                // No stdin (or closed): acknowledge the bytes so the client never stalls.
                self.credit_owner(id, data.len() as u32);
            }
        }
    }

    fn close_stdin(&mut self, id: u64) {
        let Some(p) = self.procs.get_mut(&id) else {
            return;
        };
        let tty = p.tty;
        let Some(i) = &mut p.stdin else {
            return;
        };
        if tty {
            // A terminal has no end of input: its line discipline turns ^D into end of file
            // (twice after an unfinished line, whose first ^D only flushes the line). Hanging
            // the terminal up instead would kill the command before it read its input.
            let eot: &[u8] = if i.line_pending { b"\x04\x04" } else { b"\x04" };
            i.buf.extend_from_slice(eot);
            i.line_pending = false;
        } else {
            i.close_when_empty = true;
        }
        self.flush_stdin(id);
    }

    fn flush_stdin(&mut self, id: u64) {
        let Some(p) = self.procs.get_mut(&id) else {
            return;
        };
        let Some(i) = &mut p.stdin else {
            return;
        };
        let mut broken = false;
        while i.pos < i.buf.len() {
            match sys::write(i.fd.as_raw_fd(), &i.buf[i.pos..]) {
                Ok(n) => {
                    i.pos += n;
                    i.pending_credit += n as u32;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    // The command closed its stdin (or ended): what is left is dropped.
                    i.pending_credit += (i.buf.len() - i.pos) as u32;
                    broken = true;
                    break;
                }
            }
        }
        let fd = i.fd.as_raw_fd();
        let empty = broken || i.pos == i.buf.len();
        if empty {
            i.buf.clear();
            i.pos = 0;
        }
        let closing = broken || (empty && i.close_when_empty);
        let events = if empty || closing { 0 } else { OUT };
        set_interest(&self.ep, fd, token(T_STDIN, id, 0), events, &mut i.armed);
        // Credit goes back in batches; all of it when the input ends.
        let grant = if closing || i.pending_credit >= CREDIT_THRESHOLD {
            std::mem::take(&mut i.pending_credit)
        } else {
            0
        };
        if closing {
            p.stdin = None;
        }
        self.credit_owner(id, grant);
    }

    /// Grants the owner of an exec `n` bytes of input credit.
    fn credit_owner(&mut self, id: u64, n: u32) {
        let Some((sid, stream)) = self.procs.get(&id).and_then(|p| p.owner) else {
            return;
        };
        if n > 0
            && let Some(s) = self.sessions.get_mut(&sid)
        {
            s.send(stream, &Message::Credit(n));
        }
    }

    fn pump_attachers(&mut self, id: u64) {
        let Some(p) = self.procs.get_mut(&id) else {
            return;
        };
        let Some(ring) = &p.ring else {
            return;
        };
        let finished = p.status.clone();
        let mut done = Vec::new();
        for (n, a) in p.attachers.iter_mut().enumerate() {
            let Some(s) = self.sessions.get_mut(&a.session) else {
                done.push(n);
                continue;
            };
            loop {
                if let Some(until) = a.replay_until
                    && a.pos >= until
                {
                    s.send(a.stream, &Message::Replayed);
                    a.replay_until = None;
                }
                if a.pos >= ring.end() {
                    if let Some(st) = &finished {
                        s.send(a.stream, &Message::Exited(st.clone()));
                        s.send(a.stream, &Message::End);
                        s.streams.remove(&a.stream);
                        done.push(n);
                    }
                    break;
                }
                if a.credit == 0 {
                    break;
                }
                let Some(slice) = ring.read_from(a.pos, (a.credit as usize).min(MAX_DATA_CHUNK))
                else {
                    break;
                };
                if slice.lost > 0 {
                    s.send(a.stream, &Message::Gap { lost: slice.lost });
                }
                if !slice.data.is_empty() {
                    s.send_data(a.stream, slice.kind, slice.data);
                    a.credit -= slice.data.len() as u32;
                }
                a.pos = slice.next;
            }
        }
        for n in done.into_iter().rev() {
            p.attachers.remove(n);
        }
    }

    /// Ends a process once it exited (or never started) and its output is done: all read, or
    /// only descendants still hold it open, empty, past the grace period.
    fn try_finish(&mut self, id: u64) {
        let Some(p) = self.procs.get_mut(&id) else {
            return;
        };
        if p.status.is_some() {
            return;
        }
        let abandon = p.failure.is_some() || p.shim_lost;
        let Some(exit_at) = p.exited.map(|(_, at)| at).or(abandon.then(Instant::now)) else {
            return;
        };
        let past_grace = abandon || Instant::now() >= exit_at + p.grace;
        for idx in 0..2 {
            let Some(o) = &p.outs[idx] else {
                continue;
            };
            if past_grace && (abandon || bytes_waiting(o.fd.as_raw_fd()) == 0) {
                let mut o = p.outs[idx].take().expect("present");
                let fd = o.fd.as_raw_fd();
                set_interest(&self.ep, fd, 0, 0, &mut o.armed);
            } else {
                return;
            }
        }
        self.finalize(id);
    }

    fn finalize(&mut self, id: u64) {
        let Some(p) = self.procs.get_mut(&id) else {
            return;
        };
        let oom_now = if p.sigkilled() {
            process::oom_kills()
        } else {
            None
        };
        let status = p.final_status(oom_now);
        p.status = Some(status.clone());
        // Release the shim: what still runs carries on under the agent, as after docker exec.
        if let Some(ctl) = p.ctl.take() {
            let _ = sys::write(ctl.as_raw_fd(), b"R");
        }
        if let Some(r) = p.report.take() {
            self.ep.delete(r.as_raw_fd());
        }
        if let Some(mut i) = p.stdin.take() {
            let fd = i.fd.as_raw_fd();
            set_interest(&self.ep, fd, 0, 0, &mut i.armed);
        }
        p.master = None;
        let msg = Message::Exited(status.clone());
        if let Some((sid, stream)) = p.owner.take()
            && let Some(s) = self.sessions.get_mut(&sid)
        {
            s.streams.remove(&stream);
            s.send(stream, &msg);
        }
        for (sid, stream) in std::mem::take(&mut p.waiters) {
            if let Some(s) = self.sessions.get_mut(&sid) {
                s.streams.remove(&stream);
                s.send(stream, &msg);
            }
        }
        let (background, init) = (p.background, p.init);
        // A background process that never started is answered on its start stream, then
        // forgotten: there is nothing to attach to.
        if status.start_failure.is_some() && background {
            for s in self.sessions.values_mut() {
                let starting: Vec<u32> = s
                    .streams
                    .iter()
                    .filter(|(_, st)| matches!(st, Stream::Starting(p) if *p == id))
                    .map(|(k, _)| *k)
                    .collect();
                for stream in starting {
                    s.streams.remove(&stream);
                    s.send(stream, &msg);
                }
            }
            if !init {
                self.procs.remove(&id);
                return;
            }
        }
        self.pump_attachers(id);
        if init {
            if let Some(f) = &status.start_failure {
                eprintln!("headjack-agent: init command: {}", f.message);
            }
            eprintln!(
                "headjack-agent: the init command ended (exit code {}); stopping",
                status.code
            );
            self.exit = Some(status.code & 0xff);
        } else if !background {
            self.procs.remove(&id);
        }
    }
}

impl Input {
    fn new(fd: OwnedFd) -> Input {
        Input {
            fd,
            buf: Vec::new(),
            pos: 0,
            close_when_empty: false,
            armed: false,
            pending_credit: 0,
            line_pending: false,
        }
    }
}

fn bytes_waiting(fd: RawFd) -> usize {
    let mut n: libc::c_int = 0;
    if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) } == -1 {
        return 0;
    }
    n.max(0) as usize
}

fn no_such(process: u64) -> String {
    format!(
        "no process {process} in this agent: it never existed, was forgotten, or the container \
         restarted"
    )
}

fn failed_status(f: StartFailure) -> ExitStatus {
    ExitStatus {
        code: f.kind.exit_code(),
        signal: None,
        core_dumped: false,
        timed_out: false,
        oom_killed: false,
        start_failure: Some(f),
    }
}

/// Names what went wrong when the command could not start.
fn start_failure(p: &Proc, stage: u32, errno: i32, default_workdir: &[u8]) -> StartFailure {
    let program = p
        .argv
        .first()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .unwrap_or_default();
    let why = sys::errno_text(errno);
    let _ = default_workdir;
    match stage {
        stage::EXEC => match errno {
            libc::ENOENT | libc::ENOTDIR => StartFailure {
                kind: StartFailureKind::NotFound,
                message: format!(
                    "{program}: command not found in the container (not on $PATH, or no such file)"
                ),
            },
            libc::EACCES | libc::EISDIR | libc::EPERM => StartFailure {
                kind: StartFailureKind::NotExecutable,
                message: format!(
                    "{program}: cannot be run in the container (permission denied: not \
                     executable, or a directory)"
                ),
            },
            libc::ENOEXEC => StartFailure {
                kind: StartFailureKind::NotExecutable,
                message: format!(
                    "{program}: cannot be run in the container (exec format error: not a \
                     program for this system, or a script without #!)"
                ),
            },
            _ => StartFailure {
                kind: StartFailureKind::NotExecutable,
                message: format!("{program}: cannot be run in the container ({why})"),
            },
        },
        stage::CHDIR => StartFailure {
            kind: StartFailureKind::NoWorkdir,
            message: format!(
                "cannot run {program}: its working directory cannot be entered ({why}); create \
                 it first or pick another"
            ),
        },
        stage::SETGROUPS | stage::SETGID | stage::SETUID if errno == libc::EPERM => StartFailure {
            kind: StartFailureKind::UserSwitchDenied,
            message: format!(
                "cannot run {program} as another user: switching user was denied ({why}); the \
                 agent lacks CAP_SETUID/CAP_SETGID"
            ),
        },
        _ => StartFailure {
            kind: StartFailureKind::Other,
            message: format!(
                "cannot run {program}: {} failed ({why})",
                match stage {
                    stage::SETGROUPS => "setting supplementary groups",
                    stage::SETGID => "switching group",
                    stage::SETUID => "switching user",
                    stage::TERMINAL => "taking the terminal",
                    stage::STDIO => "setting up stdin/stdout/stderr",
                    stage::FORK => "creating the process",
                    _ => "starting",
                }
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for (k, id, idx) in [
            (T_OUT, 1, 0),
            (T_REPORT, (1 << 50) + 7, 3),
            (T_SIGNAL, 0, 0),
        ] {
            assert_eq!(untoken(token(k, id, idx)), (k, id, idx));
        }
    }

    #[test]
    fn reads_capabilities() {
        assert!(cap_eff_allows_switch(
            "Name:\tx\nCapEff:\t00000000a80425fb\n"
        ));
        assert!(!cap_eff_allows_switch("CapEff:\t0000000000000000\n"));
        // CAP_SETUID (7) without CAP_SETGID (6).
        assert!(!cap_eff_allows_switch("CapEff:\t0000000000000080\n"));
        assert!(!cap_eff_allows_switch(""));
    }
}
