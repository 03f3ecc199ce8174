//! The control socket: an abstract unix socket (no file to create, private to the proxy
//! container's network namespace) speaking JSON lines.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio::time::timeout;

use super::state::State;
use crate::control::{self, MAX_LINE, Response};

/// A control connection with no request for this long is closed.
const IDLE: Duration = Duration::from_secs(3600);

pub(crate) fn bind(name: &str) -> io::Result<UnixListener> {
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    let std = std::os::unix::net::UnixListener::bind_addr(&addr)?;
    std.set_nonblocking(true)?;
    UnixListener::from_std(std)
}

pub(crate) async fn serve(state: Arc<State>, listener: UnixListener) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(state.config.limits.max_ctl));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a control connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let permit = permits.clone().try_acquire_owned();
        let state = state.clone();
        tokio::spawn(async move {
            match permit {
                Ok(_p) => {
                    let _ = session(&state, stream).await;
                }
                Err(_) => {
                    let mut s = stream;
                    let line =
                        Response::error("too many control connections are open; retry later")
                            .to_line()
                            + "\n";
                    let _ = s.write_all(line.as_bytes()).await;
                }
            }
        });
    }
}

async fn session(state: &State, stream: UnixStream) -> io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut line = Vec::new();
    loop {
        line.clear();
        let mut limited = (&mut r).take(MAX_LINE as u64 + 1);
        let Ok(n) = timeout(IDLE, limited.read_until(b'\n', &mut line)).await else {
            return Ok(());
        };
        if n? == 0 {
            return Ok(());
        }
        if line.len() > MAX_LINE {
            let msg =
                format!("request line longer than {MAX_LINE} bytes; the connection is closed");
            w.write_all((Response::error(msg).to_line() + "\n").as_bytes())
                .await?;
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let response = match control::parse_request(text) {
            Ok(req) => state.handle(req).await,
            Err(e) => Response::error(e),
        };
        w.write_all((response.to_line() + "\n").as_bytes()).await?;
    }
}
