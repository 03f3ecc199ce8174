//! Thin, checked wrappers over the Linux calls the agent needs (std does not expose them).
//! Every wrapper turns -1 into the `io::Error` for errno; none of them allocates.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub type Pid = libc::pid_t;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cvt_isize(r: isize) -> io::Result<usize> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Retries a call interrupted by a signal.
fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// A pipe (read end, write end), both close-on-exec.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    let new = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    if new != flags {
        cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, new) })?;
    }
    Ok(())
}

/// Grows a pipe's buffer toward 1 MiB (as far as the system allows); no-op for non-pipes.
pub fn grow_pipe(fd: RawFd) {
    for size in [1 << 20, 256 << 10] {
        if unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, size) } != -1 {
            return;
        }
    }
}

/// Makes a descriptor this process just created non-blocking (it has no other status flags to
/// keep, so one call does).
pub fn nonblocking_new(fd: RawFd) -> io::Result<()> {
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) }).map(|_| ())
}

pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    retry(|| cvt_isize(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) }))
}

pub fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    retry(|| cvt_isize(unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) }))
}

/// Writes all of `buf` to a blocking descriptor.
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = write(fd, buf)?;
        buf = &buf[n..];
    }
    Ok(())
}

/// Reads until `buf` is full or end of file; returns how much was read.
pub fn read_full(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let n = read(fd, &mut buf[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

pub fn dup(fd: RawFd) -> io::Result<OwnedFd> {
    let r = cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) })?;
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

pub fn dup2(from: RawFd, to: RawFd) -> io::Result<()> {
    retry(|| cvt(unsafe { libc::dup2(from, to) })).map(|_| ())
}

pub fn open(path: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    let fd = retry(|| cvt(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) }))?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

// ----- epoll -------------------------------------------------------------------------------

pub struct Epoll(OwnedFd);

pub const IN: u32 = libc::EPOLLIN as u32;
pub const OUT: u32 = libc::EPOLLOUT as u32;

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        cvt(unsafe { libc::epoll_ctl(self.0.as_raw_fd(), op, fd, &mut ev) }).map(|_| ())
    }

    pub fn add(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events, token)
    }

    pub fn modify(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, events, token)
    }

    pub fn delete(&self, fd: RawFd) {
        // Closing a descriptor removes it anyway; a failure here changes nothing.
        let _ = self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0);
    }

    /// Waits for events; `timeout_ms` -1 waits forever. Returns (token, events) pairs.
    pub fn wait(&self, out: &mut Vec<(u64, u32)>, timeout_ms: i32) -> io::Result<()> {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 64];
        out.clear();
        let n = match cvt(unsafe {
            libc::epoll_wait(self.0.as_raw_fd(), evs.as_mut_ptr(), 64, timeout_ms)
        }) {
            Ok(n) => n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e),
        };
        out.extend(evs[..n].iter().map(|e| (e.u64, e.events)));
        Ok(())
    }
}

// ----- signals -----------------------------------------------------------------------------

pub fn sigset(signals: &[libc::c_int]) -> libc::sigset_t {
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, *s);
        }
        set
    }
}

/// Blocks `signals` and returns a non-blocking signalfd that reads them.
pub fn signalfd(signals: &[libc::c_int]) -> io::Result<OwnedFd> {
    let set = sigset(signals);
    cvt(unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) })?;
    let fd = cvt(unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) })?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads the signal numbers pending on a signalfd.
pub fn read_signals(fd: RawFd) -> Vec<i32> {
    let mut out = Vec::new();
    loop {
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let n = unsafe {
            libc::read(
                fd,
                (&mut info as *mut libc::signalfd_siginfo).cast(),
                std::mem::size_of::<libc::signalfd_siginfo>(),
            )
        };
        if n != std::mem::size_of::<libc::signalfd_siginfo>() as isize {
            return out;
        }
        out.push(info.ssi_signo as i32);
    }
}

pub fn ignore_signal(sig: libc::c_int) {
    unsafe { libc::signal(sig, libc::SIG_IGN) };
}

/// The kernel's `struct sigaction` (not glibc's: glibc refuses its internal signals 32 and 33,
/// which a parent may still have left ignored). Only the handler is read or set; the rest is 0.
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Sets every signal the agent was started with ignored back to its default (a parent such as
/// `nohup` may have ignored some; commands must not inherit that). Once, at start.
pub fn unignore_signals() {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        let mut old = KernelSigaction {
            handler: 0,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        let r = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                std::ptr::null::<KernelSigaction>(),
                &mut old as *mut KernelSigaction,
                8usize,
            )
        };
        if r == 0 && old.handler == libc::SIG_IGN {
            let dfl = KernelSigaction {
                handler: libc::SIG_DFL,
                flags: 0,
                restorer: 0,
                mask: 0,
            };
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    &dfl as *const KernelSigaction,
                    std::ptr::null_mut::<KernelSigaction>(),
                    8usize,
                )
            };
        }
    }
}

/// Restores what a child about to exec would inherit from the agent across exec: the ignored
/// SIGPIPE (the only disposition the agent changes: handled ones reset by themselves, and
/// [`unignore_signals`] cleared inherited ones) and the blocked signals.
pub fn reset_signals() {
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let empty = sigset(&[]);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

// ----- processes ---------------------------------------------------------------------------

pub enum Fork {
    Child,
    Parent(Pid),
}

/// Forks. The agent is single-threaded, so the child may allocate.
pub fn fork() -> io::Result<Fork> {
    match cvt(unsafe { libc::fork() })? {
        0 => Ok(Fork::Child),
        pid => Ok(Fork::Parent(pid)),
    }
}

/// Reaps one child (`pid` -1 for any) without blocking: `Some((pid, raw status))`.
pub fn try_wait(pid: Pid) -> Option<(Pid, i32)> {
    let mut status = 0;
    let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    if r > 0 { Some((r, status)) } else { None }
}

pub fn kill(pid: Pid, sig: i32) -> io::Result<()> {
    cvt(unsafe { libc::kill(pid, sig) }).map(|_| ())
}

pub fn set_child_subreaper() -> io::Result<()> {
    cvt(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }).map(|_| ())
}

pub fn set_dumpable(on: bool) -> io::Result<()> {
    cvt(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, libc::c_ulong::from(on), 0, 0, 0) }).map(|_| ())
}

pub fn exit_now(code: i32) -> ! {
    unsafe { libc::_exit(code) }
}

/// Closes every descriptor from 3 up except those in `keep`.
pub fn close_fds_except(keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|f| *f >= 3).collect();
    keep.sort_unstable();
    let mut from: u32 = 3;
    for k in keep.iter().map(|k| *k as u32) {
        if k > from {
            close_range(from, k - 1);
        }
        from = from.max(k + 1);
    }
    close_range(from, u32::MAX);
}

fn close_range(first: u32, last: u32) {
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
    if r == 0 {
        return;
    }
    // Kernels (or gVisor versions) without close_range: close what /proc says is open.
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        let open: Vec<u32> = dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        for fd in open {
            if fd >= first && fd <= last {
                unsafe { libc::close(fd as RawFd) };
            }
        }
    } else {
        for fd in first..last.min(4096) {
            unsafe { libc::close(fd as RawFd) };
        }
    }
}

// ----- identity ----------------------------------------------------------------------------

pub fn uid() -> u32 {
    unsafe { libc::geteuid() }
}
pub fn gid() -> u32 {
    unsafe { libc::getegid() }
}
pub fn pid() -> Pid {
    unsafe { libc::getpid() }
}

// ----- terminals ---------------------------------------------------------------------------

/// A new pseudo-terminal: (master, slave). The slave is opened through the master
/// (TIOCGPTPEER) where the kernel allows, so it works whatever is mounted at /dev/pts.
pub fn open_pty() -> io::Result<(OwnedFd, OwnedFd)> {
    let master = open(
        c"/dev/ptmx",
        libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK,
    )?;
    let unlock: libc::c_int = 0;
    cvt(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) })?;
    let peer = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if peer >= 0 {
        return Ok((master, unsafe { OwnedFd::from_raw_fd(peer) }));
    }
    let mut n: libc::c_uint = 0;
    cvt(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) })?;
    let path = std::ffi::CString::new(format!("/dev/pts/{n}")).expect("no NUL");
    let slave = open(&path, libc::O_RDWR | libc::O_NOCTTY)?;
    Ok((master, slave))
}

pub fn set_winsize(fd: RawFd, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    cvt(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) }).map(|_| ())
}

// ----- sockets -----------------------------------------------------------------------------

fn abstract_addr(name: &str) -> (libc::sockaddr_un, libc::socklen_t) {
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    // Abstract: a leading NUL, then the name (not NUL-terminated; the length says where it ends).
    let bytes = name.as_bytes();
    let n = bytes.len().min(addr.sun_path.len() - 1);
    for (i, b) in bytes[..n].iter().enumerate() {
        addr.sun_path[i + 1] = *b as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + 1 + n;
    (addr, len as libc::socklen_t)
}

fn unix_socket() -> io::Result<OwnedFd> {
    let fd =
        cvt(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Listens on the abstract unix socket `@name`.
pub fn listen_abstract(name: &str) -> io::Result<OwnedFd> {
    let fd = unix_socket()?;
    let (addr, len) = abstract_addr(name);
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            len,
        )
    })?;
    cvt(unsafe { libc::listen(fd.as_raw_fd(), 64) })?;
    set_nonblocking(fd.as_raw_fd(), true)?;
    Ok(fd)
}

/// Connects to the abstract unix socket `@name`.
pub fn connect_abstract(name: &str) -> io::Result<OwnedFd> {
    let fd = unix_socket()?;
    let (addr, len) = abstract_addr(name);
    retry(|| {
        cvt(unsafe {
            libc::connect(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_un).cast(),
                len,
            )
        })
    })?;
    Ok(fd)
}

/// Accepts one connection (non-blocking, close-on-exec); `None` when none is pending.
pub fn accept(fd: RawFd) -> io::Result<Option<OwnedFd>> {
    let r = unsafe {
        libc::accept4(
            fd,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
        )
    };
    if r == -1 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
            _ => Err(e),
        };
    }
    Ok(Some(unsafe { OwnedFd::from_raw_fd(r) }))
}

/// The connected peer's (pid, uid).
pub fn peer_cred(fd: RawFd) -> io::Result<(Pid, u32)> {
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    cvt(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    })?;
    Ok((cred.pid, cred.uid))
}

pub fn shutdown_write(fd: RawFd) {
    unsafe { libc::shutdown(fd, libc::SHUT_WR) };
}

/// The wall clock, milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// errno text without Rust's " (os error N)" suffix.
pub fn errno_text(errno: i32) -> String {
    let s = io::Error::from_raw_os_error(errno).to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_ascii_lowercase(),
        None => s,
    }
}
