//! The shim: one process per exec, between the agent and the command.
//!
//! The agent forks it (no re-exec: the agent is single-threaded, so the child may run ordinary
//! code). The shim makes itself a child subreaper, so every descendant of the command —
//! however it double-forks, `setsid`s or `nohup`s — reparents to it rather than to PID 1; it
//! forks the command, reports how the command started and ended, and on request kills the
//! whole tree (scanning /proc until nothing is left). It exits when the agent releases it (the
//! exec is over: descendants still running then carry on under the agent, as with
//! `docker exec`) or when the agent disappears (then it kills the tree first).
//!
//! Pipes between agent and shim carry fixed-size records:
//! - control (agent → shim): `K` signal (u8) — signal the tree (SIGKILL: until empty);
//!   `R` — release: exit now. End of file: the agent is gone.
//! - report (shim → agent): `S` pid (u32) — started; `F` stage (u32) errno (i32) — could not
//!   start; `E` wait status (i32) — the command ended.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::sys::{self, Fork, Pid};
use super::tree;

/// Where starting the command failed.
pub mod stage {
    pub const CHDIR: u32 = 1;
    pub const SETGROUPS: u32 = 2;
    pub const SETGID: u32 = 3;
    pub const SETUID: u32 = 4;
    pub const EXEC: u32 = 5;
    pub const TERMINAL: u32 = 6;
    pub const STDIO: u32 = 7;
    pub const FORK: u32 = 8;
}

/// Everything the command's process needs, prepared before forking.
pub struct Launch {
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    /// Paths to try for argv[0], in order.
    pub candidates: Vec<CString>,
    pub workdir: CString,
    /// (uid, gid, supplementary groups) to switch to; `None` keeps the agent's identity.
    pub identity: Option<(u32, u32, Vec<u32>)>,
    pub stdin: RawFd,
    pub stdout: RawFd,
    pub stderr: RawFd,
    /// stdin/stdout/stderr are a terminal's slave: make it the controlling terminal.
    pub tty: bool,
}

/// A running shim, seen from the agent.
pub struct Shim {
    /// Write end of the control pipe.
    pub ctl: OwnedFd,
    /// Read end of the report pipe.
    pub report: OwnedFd,
}

/// A record the shim sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    Started(u32),
    Failed { stage: u32, errno: i32 },
    Exited(i32),
}

impl Report {
    /// Takes the complete records at the front of `buf`.
    pub fn parse(buf: &mut Vec<u8>) -> Vec<Report> {
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let rest = &buf[at..];
            let (len, r) = match rest.first() {
                Some(b'S') if rest.len() >= 5 => (5, Report::Started(u32_at(rest, 1))),
                Some(b'E') if rest.len() >= 5 => (5, Report::Exited(u32_at(rest, 1) as i32)),
                Some(b'F') if rest.len() >= 9 => (
                    9,
                    Report::Failed {
                        stage: u32_at(rest, 1),
                        errno: u32_at(rest, 5) as i32,
                    },
                ),
                Some(b'S' | b'E' | b'F') | None => break,
                Some(_) => {
                    // Not a record: the shim does not send these; drop the byte.
                    at += 1;
                    continue;
                }
            };
            out.push(r);
            at += len;
        }
        buf.drain(..at);
        out
    }

    fn encode(self) -> Vec<u8> {
        let mut v = Vec::with_capacity(9);
        match self {
            Report::Started(pid) => {
                v.push(b'S');
                v.extend_from_slice(&pid.to_le_bytes());
            }
            Report::Exited(st) => {
                v.push(b'E');
                v.extend_from_slice(&st.to_le_bytes());
            }
            Report::Failed { stage, errno } => {
                v.push(b'F');
                v.extend_from_slice(&stage.to_le_bytes());
                v.extend_from_slice(&errno.to_le_bytes());
            }
        }
        v
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Forks a shim that runs `launch`. The caller closes its copies of the command's stdio after.
pub fn spawn(launch: &Launch) -> io::Result<Shim> {
    let (ctl_r, ctl_w) = sys::pipe()?;
    let (rep_r, rep_w) = sys::pipe()?;
    match sys::fork()? {
        Fork::Child => {
            drop(ctl_w);
            drop(rep_r);
            run(launch, ctl_r, rep_w)
        }
        Fork::Parent(_) => Ok(Shim {
            ctl: ctl_w,
            report: rep_r,
        }),
    }
}

fn run(launch: &Launch, ctl: OwnedFd, report: OwnedFd) -> ! {
    // The name `ps` shows: this is not the agent.
    unsafe { libc::prctl(libc::PR_SET_NAME, c"headjack-shim".as_ptr(), 0, 0, 0) };
    if let Err(e) = sys::set_child_subreaper() {
        eprintln!("headjack-agent: shim cannot become a subreaper ({e}); kills may miss orphans");
    }
    sys::close_fds_except(&[
        ctl.as_raw_fd(),
        report.as_raw_fd(),
        launch.stdin,
        launch.stdout,
        launch.stderr,
    ]);
    // fd 0 and 1 were the agent's channel: the shim must not hold them.
    match sys::open(c"/dev/null", libc::O_RDWR) {
        Ok(null) => {
            let _ = sys::dup2(null.as_raw_fd(), 0);
            let _ = sys::dup2(null.as_raw_fd(), 1);
        }
        Err(_) => {
            let _ = sys::dup2(2, 0);
            let _ = sys::dup2(2, 1);
        }
    }
    let send = |r: Report| {
        let _ = sys::write_all(report.as_raw_fd(), &r.encode());
    };
    // SIGCHLD is blocked (inherited from the agent): read it from a signalfd.
    let sigfd = match sys::signalfd(&[libc::SIGCHLD]) {
        Ok(fd) => fd,
        Err(e) => {
            send(Report::Failed {
                stage: stage::FORK,
                errno: e.raw_os_error().unwrap_or(libc::EIO),
            });
            sys::exit_now(1)
        }
    };
    let (err_r, err_w) = match sys::pipe() {
        Ok(p) => p,
        Err(e) => {
            send(Report::Failed {
                stage: stage::FORK,
                errno: e.raw_os_error().unwrap_or(libc::EIO),
            });
            sys::exit_now(1)
        }
    };
    let child = match sys::fork() {
        Ok(Fork::Child) => {
            drop(err_r);
            exec_command(launch, err_w)
        }
        Ok(Fork::Parent(pid)) => pid,
        Err(e) => {
            send(Report::Failed {
                stage: stage::FORK,
                errno: e.raw_os_error().unwrap_or(libc::EAGAIN),
            });
            sys::exit_now(1)
        }
    };
    drop(err_w);
    for fd in [launch.stdin, launch.stdout, launch.stderr] {
        unsafe { libc::close(fd) };
    }
    // The error pipe closes on exec (success) or carries why the command could not start.
    let mut why = [0u8; 8];
    let n = sys::read_full(err_r.as_raw_fd(), &mut why).unwrap_or(0);
    drop(err_r);
    if n == 8 {
        let mut status = 0;
        unsafe { libc::waitpid(child, &mut status, 0) };
        send(Report::Failed {
            stage: u32_at(&why, 0),
            errno: u32_at(&why, 4) as i32,
        });
        sys::exit_now(0)
    }
    send(Report::Started(child as u32));
    supervise(child, ctl, sigfd, send)
}

fn supervise(child: Pid, ctl: OwnedFd, sigfd: OwnedFd, send: impl Fn(Report)) -> ! {
    let me = sys::pid();
    let mut status: Option<i32> = None;
    let mut reported = false;
    let record = |pid: Pid, st: i32, status: &mut Option<i32>| {
        if pid == child {
            *status = Some(st);
        }
    };
    loop {
        if let (Some(st), false) = (status, reported) {
            send(Report::Exited(st));
            reported = true;
        }
        let mut fds = [
            libc::pollfd {
                fd: ctl.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sigfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if r < 0 {
            continue;
        }
        if fds[1].revents != 0 {
            sys::read_signals(sigfd.as_raw_fd());
            while let Some((pid, st)) = sys::try_wait(-1) {
                record(pid, st, &mut status);
            }
        }
        if fds[0].revents != 0 {
            let mut buf = [0u8; 64];
            let n = sys::read(ctl.as_raw_fd(), &mut buf).unwrap_or(0);
            if n == 0 {
                // The agent is gone: nobody will collect this tree; end it.
                tree::kill_all(me, |_, _| {});
                sys::exit_now(0)
            }
            let mut cmds = buf[..n].iter();
            while let Some(c) = cmds.next() {
                match c {
                    b'R' => sys::exit_now(0),
                    b'K' => {
                        let sig = cmds.next().copied().unwrap_or(libc::SIGKILL as u8) as i32;
                        if sig == libc::SIGKILL {
                            tree::kill_all(me, |pid, st| record(pid, st, &mut status));
                        } else {
                            tree::signal_all(me, sig);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// In the command's process: set up and exec; on failure, say why on `err` and exit.
fn exec_command(l: &Launch, err: OwnedFd) -> ! {
    let fail = |stage: u32, errno: i32| -> ! {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&stage.to_le_bytes());
        b[4..].copy_from_slice(&errno.to_le_bytes());
        let _ = sys::write_all(err.as_raw_fd(), &b);
        sys::exit_now(127)
    };
    let errno = || {
        io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    };
    // Its own session and process group, so the agent's job control cannot touch it.
    unsafe { libc::setsid() };
    if l.tty && unsafe { libc::ioctl(l.stdin, libc::TIOCSCTTY, 0) } == -1 {
        fail(stage::TERMINAL, errno());
    }
    for (from, to) in [(l.stdin, 0), (l.stdout, 1), (l.stderr, 2)] {
        if sys::dup2(from, to).is_err() {
            fail(stage::STDIO, errno());
        }
    }
    if unsafe { libc::chdir(l.workdir.as_ptr()) } == -1 {
        fail(stage::CHDIR, errno());
    }
    if let Some((uid, gid, groups)) = &l.identity {
        if unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } == -1 {
            fail(stage::SETGROUPS, errno());
        }
        if unsafe { libc::setgid(*gid) } == -1 {
            fail(stage::SETGID, errno());
        }
        if unsafe { libc::setuid(*uid) } == -1 {
            fail(stage::SETUID, errno());
        }
    }
    sys::reset_signals();
    let mut argv: Vec<*const libc::c_char> = l.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = l.env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    let mut denied = false;
    for path in &l.candidates {
        unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        match errno() {
            libc::ENOENT | libc::ENOTDIR => {}
            libc::EACCES => denied = true,
            e => fail(stage::EXEC, e),
        }
    }
    fail(
        stage::EXEC,
        if denied { libc::EACCES } else { libc::ENOENT },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_records_round_trip_in_pieces() {
        let records = [
            Report::Started(42),
            Report::Exited(0x0900),
            Report::Failed {
                stage: stage::CHDIR,
                errno: 2,
            },
        ];
        let wire: Vec<u8> = records.iter().flat_map(|r| r.encode()).collect();
        for split in 0..wire.len() {
            let mut buf = wire[..split].to_vec();
            let mut got = Report::parse(&mut buf);
            buf.extend_from_slice(&wire[split..]);
            got.extend(Report::parse(&mut buf));
            assert_eq!(got, records, "split at {split}");
            assert!(buf.is_empty());
        }
    }
}
