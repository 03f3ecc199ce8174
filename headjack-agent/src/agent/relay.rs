//! `headjack-agent relay`: joins stdin/stdout to the running agent's abstract socket, so a
//! second host process gets its own session through the engine's exec.

use std::os::fd::AsRawFd;

use super::sys;

/// Copies both ways until the agent closes the session; returns the exit code.
pub fn run(socket: &str) -> i32 {
    let sock = match sys::connect_abstract(socket) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "headjack-agent relay: cannot reach the agent at @{socket} ({e}): is the agent \
                 running as this container's init, and is this the same container?"
            );
            return 1;
        }
    };
    let fd = sock.as_raw_fd();
    // stdin → socket on a thread; socket → stdout here. End of stdin half-closes the socket,
    // and the session ends when the agent closes its side.
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match sys::read(0, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sys::write_all(fd, &buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        sys::shutdown_write(fd);
    });
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match sys::read(fd, &mut buf) {
            Ok(0) | Err(_) => return 0,
            Ok(n) => {
                if sys::write_all(1, &buf[..n]).is_err() {
                    return 0;
                }
            }
        }
    }
}
