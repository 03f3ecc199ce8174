//! The host terminal: raw mode, its size, signals, and standard input read off the runtime.

use std::io::Read;
use std::os::fd::RawFd;

use tokio::sync::mpsc;

/// The signals `run` and `exec` react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// The terminal changed size.
    Resize,
    /// SIGINT, SIGTERM or SIGHUP: stop, clean up, exit 128 + the number.
    Stop(i32),
}

/// Starts a thread that forwards SIGWINCH, SIGINT, SIGTERM and SIGHUP to the returned channel.
/// While it runs, those signals no longer end the process.
pub fn signals() -> std::io::Result<mpsc::UnboundedReceiver<Signal>> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGWINCH};
    let mut sigs = signal_hook::iterator::Signals::new([SIGWINCH, SIGINT, SIGTERM, SIGHUP])?;
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("headjack-signals".into())
        .spawn(move || {
            for s in sigs.forever() {
                let sig = if s == SIGWINCH {
                    Signal::Resize
                } else {
                    Signal::Stop(s)
                };
                if tx.send(sig).is_err() {
                    break;
                }
            }
        })?;
    Ok(rx)
}

/// Reads our standard input on a plain thread (a blocked read must not hold up the runtime)
/// and delivers it in chunks; the channel closes at end of input.
pub fn stdin_reader() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(16);
    let _ = std::thread::Builder::new()
        .name("headjack-stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if tx.blocking_send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
        });
    rx
}

/// The size of the terminal on `fd` as (rows, cols), if it is one.
pub fn size(fd: RawFd) -> Option<(u16, u16)> {
    // SAFETY: TIOCGWINSZ writes a `winsize` into the struct we pass; nothing else is touched.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}

/// The terminal in raw mode; dropping it restores the previous mode.
pub struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    /// Puts the terminal on `fd` in raw mode (input byte by byte, no echo, no signals from keys:
    /// Ctrl-C goes to the command inside the container).
    pub fn enable(fd: RawFd) -> std::io::Result<RawMode> {
        // SAFETY: tcgetattr/tcsetattr read and write a termios struct we own.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut saved) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            if libc::tcsetattr(fd, libc::TCSANOW, &raw) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(RawMode { fd, saved })
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the termios saved in `enable` on the same descriptor.
        unsafe {
            libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved);
        }
    }
}
