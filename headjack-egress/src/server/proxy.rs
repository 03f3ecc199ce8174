//! The HTTP forward proxy: plain requests in absolute form, and CONNECT tunnels.
//!
//! One request per client connection: the proxy asks the upstream to close after its response
//! (`Connection: close`) and tells the client the same, so every request gets its own decision.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::timeout;

use super::events;
use super::state::{Source, State};
use super::tunnel::{self, Activity, FirstBytes};
use crate::control::{LogEntry, Via};
use crate::http::{self, Authority, ChunkedEnd, Framing, Head, HeadError};
use crate::policy::{Host, normalize_ip};
use crate::tls;

/// Upstream addresses tried per connection, in order (IPv4 first).
const MAX_ADDRESSES_TRIED: usize = 4;

/// Accepts proxy connections until the listener fails.
pub(crate) async fn serve(state: Arc<State>, listener: TcpListener) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(state.config.limits.max_connections));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accepting a proxy connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let permit = permits.clone().try_acquire_owned();
        let state = state.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            match permit {
                Ok(_permit) => handle(state, stream, peer).await,
                Err(_) => {
                    let msg = "the egress proxy has too many open connections; retry later";
                    let _ = timeout(
                        Duration::from_secs(5),
                        respond(stream, 503, "Service Unavailable", msg),
                    )
                    .await;
                }
            }
        });
    }
}

async fn handle(state: Arc<State>, mut client: TcpStream, peer: SocketAddr) {
    let ip = normalize_ip(peer.ip());
    let mut buf = Vec::with_capacity(4096);
    let head = match timeout(
        state.config.limits.head_timeout,
        read_head(&mut client, &mut buf, http::parse_request),
    )
    .await
    {
        Err(_) => {
            let msg = format!(
                "no complete request head within {} s",
                state.config.limits.head_timeout.as_secs()
            );
            return respond(client, 408, "Request Timeout", &msg).await;
        }
        Ok(Err(ReadError::Closed)) => return,
        Ok(Err(ReadError::Bad(e))) => {
            return respond(client, e.status, reason_phrase(e.status), &e.reason).await;
        }
        Ok(Ok(h)) => h,
    };
    let early = buf.split_off(head.len);
    let connect = head.method.eq_ignore_ascii_case("CONNECT");
    let via = if connect { Via::Connect } else { Via::Http };
    let target = if connect {
        http::parse_authority(&head.target, None).map(|a| (a, String::new()))
    } else {
        absolute_target(&head)
    };
    let (auth, origin) = match target {
        Ok(t) => t,
        Err(e) => {
            return respond(
                client,
                400,
                "Bad Request",
                &format!("headjack egress proxy: {e}"),
            )
            .await;
        }
    };
    let Some(source) = state.source(ip) else {
        let why = format!(
            "no egress policy is registered for source {ip} (the proxy denies unknown sources)"
        );
        record_unknown(&state, ip, via, &auth, &why);
        return deny(client, via, &auth, None, &why).await;
    };
    let Some(policy) = source.policy() else {
        return deny(client, via, &auth, Some(&source), "the source was removed").await;
    };
    let Some(_conn) = state.open_connection(&source) else {
        let msg = format!(
            "instance {} has too many open connections through the egress proxy",
            source.instance
        );
        return respond(client, 503, "Service Unavailable", &msg).await;
    };
    let verdict = policy.check(&auth.host, auth.port);
    let host_text = auth.host.to_string();
    if !verdict.allowed {
        state.record(
            &source,
            via,
            &host_text,
            Some(auth.port),
            false,
            &verdict.reason,
        );
        let why = format!("{} ({policy})", verdict.reason);
        return deny(client, via, &auth, Some(&source), &why).await;
    }
    let upstream = match connect_upstream(&state, &auth).await {
        Ok(u) => u,
        Err(Upstream::Guarded(why)) => {
            state.record(&source, via, &host_text, Some(auth.port), false, &why);
            return deny(client, via, &auth, Some(&source), &why).await;
        }
        Err(Upstream::Failed(why)) => {
            state.record(
                &source,
                via,
                &host_text,
                Some(auth.port),
                true,
                &format!("{}; but {why}", verdict.reason),
            );
            return respond(
                client,
                502,
                "Bad Gateway",
                &format!("headjack egress proxy: {why}"),
            )
            .await;
        }
    };
    state.record(
        &source,
        via,
        &host_text,
        Some(auth.port),
        true,
        &verdict.reason,
    );
    if connect {
        tunnel_connect(&state, &source, client, upstream, early, auth).await;
    } else {
        forward_http(
            &state, &source, client, upstream, &head, early, &auth, &origin,
        )
        .await;
    }
}

/// The authority of an absolute-form request, checked against its Host header.
fn absolute_target(head: &Head) -> Result<(Authority, String), String> {
    let (auth, origin) = http::parse_absolute_form(&head.target)?;
    let hosts: Vec<&[u8]> = head.header_values("host").collect();
    match hosts.as_slice() {
        [] if head.minor_version >= 1 => Err("an HTTP/1.1 request needs a Host header".into()),
        [] => Ok((auth, origin)),
        [one] if http::host_header_matches(one, &auth) => Ok((auth, origin)),
        [one] => Err(format!(
            "the Host header `{}` names another destination than the request target `{auth}`",
            String::from_utf8_lossy(one)
                .chars()
                .take(100)
                .collect::<String>()
        )),
        _ => Err("the request has more than one Host header".into()),
    }
}

enum Upstream {
    /// The destination is behind the guard (another instance, the proxy, metadata).
    Guarded(String),
    /// Resolution or connection failed.
    Failed(String),
}

async fn connect_upstream(state: &State, auth: &Authority) -> Result<TcpStream, Upstream> {
    let addrs = match &auth.host {
        Host::Ip(ip) => vec![*ip],
        Host::Name(n) => state.resolver.lookup(n).await.map_err(Upstream::Failed)?,
    };
    let mut guarded = None;
    let usable: Vec<IpAddr> = addrs
        .into_iter()
        .filter(|a| match state.guard.check(*a) {
            Ok(()) => true,
            Err(why) => {
                guarded.get_or_insert_with(|| {
                    format!(
                        "{} is {why}; the proxy never connects there",
                        tunnel::show(*a)
                    )
                });
                false
            }
        })
        .collect();
    if usable.is_empty() {
        return Err(Upstream::Guarded(
            guarded.unwrap_or_else(|| format!("`{}` has no address", auth.host)),
        ));
    }
    let mut errors = Vec::new();
    // A name with many addresses must not stretch one request over many connect timeouts.
    for addr in usable.into_iter().take(MAX_ADDRESSES_TRIED) {
        match timeout(
            state.config.limits.connect_timeout,
            TcpStream::connect((addr, auth.port)),
        )
        .await
        {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Ok(Err(e)) => errors.push(format!("{addr}: {e}")),
            Err(_) => errors.push(format!(
                "{addr}: no answer within {} s",
                state.config.limits.connect_timeout.as_secs()
            )),
        }
    }
    Err(Upstream::Failed(format!(
        "could not connect to {auth} ({})",
        errors.join("; ")
    )))
}

async fn tunnel_connect(
    state: &State,
    source: &Source,
    client: TcpStream,
    upstream: TcpStream,
    early: Vec<u8>,
    auth: Authority,
) {
    let limits = &state.config.limits;
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = upstream.into_split();
    if cw
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    let activity = Activity::new();
    let first = match auth.host.name() {
        // A tunnel to a name must talk TLS to that name, if it talks TLS at all.
        Some(name) => {
            tunnel::check_first_flight(&mut cr, &mut cw, &mut ur, early, name, limits, &activity)
                .await
        }
        None => FirstBytes::Pass(early),
    };
    let (host, why) = match first {
        FirstBytes::Pass(bytes) => {
            if uw.write_all(&bytes).await.is_err() {
                return;
            }
            let work = async {
                tokio::join!(
                    tunnel::pump(&mut cr, &mut uw, &activity),
                    tunnel::pump(&mut ur, &mut cw, &activity)
                );
            };
            let watch = Some((source.watch(), auth.host.clone(), auth.port));
            if let Some(why) = tunnel::supervise(work, &activity, limits.idle_timeout, watch).await
            {
                state.record(
                    source,
                    Via::Connect,
                    &auth.host.to_string(),
                    Some(auth.port),
                    false,
                    &format!("tunnel closed: {why}"),
                );
            }
            return;
        }
        FirstBytes::WrongName(sni) => (
            sni,
            format!(
                "the TLS ClientHello names another server than the tunnel to {auth} was opened for"
            ),
        ),
        FirstBytes::Malformed(e) => (
            auth.host.to_string(),
            format!("the tunnel to {auth} carries a malformed TLS ClientHello ({e})"),
        ),
        FirstBytes::End => return,
    };
    state.record(source, Via::Connect, &host, Some(auth.port), false, &why);
    // A TLS alert, so the client's TLS library reports a refusal rather than a reset.
    let _ = cw.write_all(&tls::ALERT_ACCESS_DENIED).await;
    let _ = cw.shutdown().await;
}

#[allow(clippy::too_many_arguments)]
async fn forward_http(
    state: &State,
    source: &Source,
    client: TcpStream,
    upstream: TcpStream,
    head: &Head,
    early: Vec<u8>,
    auth: &Authority,
    origin: &str,
) {
    let limits = &state.config.limits;
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = upstream.into_split();
    let mut out =
        format!("{} {origin} HTTP/1.{}\r\n", head.method, head.minor_version).into_bytes();
    if head.header_values("host").next().is_none() {
        out.extend_from_slice(format!("Host: {}\r\n", host_header(auth)).as_bytes());
    }
    for (name, value) in head.end_to_end_headers() {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(&early);
    if uw.write_all(&out).await.is_err() {
        return respond_half(
            &mut cw,
            502,
            "Bad Gateway",
            &format!("headjack egress proxy: {auth} closed the connection"),
        )
        .await;
    }
    let activity = Activity::new();
    // The request body (if any) flows up while the response comes down; the exchange ends when
    // the response does.
    let up = async {
        tunnel::pump(&mut cr, &mut uw, &activity).await;
        std::future::pending::<()>().await;
    };
    let down = async {
        if let Err(e) = relay_response(&head.method, &mut ur, &mut cw, &activity).await {
            respond_half(
                &mut cw,
                e.status,
                reason_phrase(e.status),
                &format!("headjack egress proxy: {}", e.reason),
            )
            .await;
        }
    };
    let work = async {
        tokio::select! {
            () = up => {},
            () = down => {},
        }
    };
    let watch = Some((source.watch(), auth.host.clone(), auth.port));
    if let Some(why) = tunnel::supervise(work, &activity, limits.idle_timeout, watch).await {
        state.record(
            source,
            Via::Http,
            &auth.host.to_string(),
            Some(auth.port),
            false,
            &format!("request aborted: {why}"),
        );
    }
}

/// Copies the upstream's response to the client with its connection headers replaced by
/// `Connection: close`, up to the end of its body (an upstream that keeps the connection open
/// anyway does not hold the exchange). Errors only before anything was sent to the client.
async fn relay_response<R, W>(
    method: &str,
    ur: &mut R,
    cw: &mut W,
    activity: &Activity,
) -> Result<(), HeadError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = Vec::with_capacity(8192);
    let framing = loop {
        let head = match read_head(ur, &mut buf, http::parse_response).await {
            Ok(h) => h,
            Err(ReadError::Closed) => {
                return Err(HeadError {
                    status: 502,
                    reason: "the upstream closed without a response".into(),
                });
            }
            Err(ReadError::Bad(e)) => return Err(e),
        };
        activity.touch();
        let interim = (100..200).contains(&head.status) && head.status != 101;
        let framing = if interim {
            Framing::Empty
        } else {
            http::response_framing(method, &head)?
        };
        let mut out = format!(
            "HTTP/1.{} {} {}\r\n",
            head.minor_version, head.status, head.reason
        )
        .into_bytes();
        for (name, value) in head.end_to_end_headers() {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        if !interim {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        buf.drain(..head.len);
        if cw.write_all(&out).await.is_err() {
            return Ok(());
        }
        if !interim {
            break framing;
        }
    };
    let _ = copy_body(framing, buf, ur, cw, activity).await;
    let _ = cw.shutdown().await;
    Ok(())
}

/// Copies a response body delimited by `framing`; `first` holds bytes already read.
async fn copy_body<R, W>(
    framing: Framing,
    first: Vec<u8>,
    ur: &mut R,
    cw: &mut W,
    activity: &Activity,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut left = match framing {
        Framing::Empty => return Ok(()),
        Framing::Length(n) => n,
        Framing::Chunked | Framing::UntilClose => u64::MAX,
    };
    let mut chunked = (framing == Framing::Chunked).then(ChunkedEnd::default);
    let mut buf = first;
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let mut end = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if let Some(c) = chunked.as_mut() {
            match c.feed(&buf[..end]) {
                Ok(Some(n)) => {
                    end = n;
                    left = 0;
                }
                Ok(None) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        }
        cw.write_all(&buf[..end]).await?;
        activity.touch();
        if left != u64::MAX {
            left -= end as u64;
        }
        if left == 0 {
            return Ok(());
        }
        let n = ur.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        activity.touch();
        buf.clear();
        buf.extend_from_slice(&chunk[..n]);
    }
}

enum ReadError {
    Closed,
    Bad(HeadError),
}

/// Reads until `parse` finds a complete head at the start of `buf` (bounded by the parser).
async fn read_head<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    parse: fn(&[u8]) -> Result<Option<Head>, HeadError>,
) -> Result<Head, ReadError> {
    let mut chunk = [0u8; 8192];
    loop {
        if !buf.is_empty() {
            match parse(buf) {
                Ok(Some(h)) => return Ok(h),
                Ok(None) => {}
                Err(e) => return Err(ReadError::Bad(e)),
            }
        }
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return Err(ReadError::Closed),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn host_header(auth: &Authority) -> String {
    if auth.port == 80 {
        match &auth.host {
            Host::Ip(IpAddr::V6(v6)) => format!("[{v6}]"),
            h => h.to_string(),
        }
    } else {
        auth.to_string()
    }
}

fn record_unknown(state: &State, ip: IpAddr, via: Via, auth: &Authority, why: &str) {
    let entry = LogEntry {
        seq: 0,
        time: crate::time::now(),
        via,
        host: auth.host.to_string(),
        port: Some(auth.port),
        allowed: false,
        reason: why.to_string(),
        count: 1,
    };
    events::decision(state.config.log_to_stderr, None, ip, &entry);
}

/// A 403 that says what was denied, for whom and why, so an agent sees why its tool failed.
async fn deny(client: TcpStream, via: Via, auth: &Authority, source: Option<&Source>, why: &str) {
    let what = match via {
        Via::Connect => format!("CONNECT {auth}"),
        _ => format!("HTTP request to {auth}"),
    };
    let whom = source.map_or(String::new(), |s| format!(" for instance {}", s.instance));
    let body = format!(
        "headjack egress: {what} denied{whom}: {why}.\nTo reach it, change the instance's egress policy (for example Instance::set_egress).\n"
    );
    // Tools that print only the status line (pip: "Tunnel connection failed: 403 ...") still
    // show the gist through the reason phrase.
    let phrase = format!("Forbidden by headjack egress policy ({auth})");
    respond(client, 403, &phrase, &body).await;
}

async fn respond(mut client: TcpStream, status: u16, phrase: &str, body: &str) {
    respond_half(&mut client, status, phrase, body).await;
    // Let the client read the response before the close (a reset could discard it).
    let _ = client.shutdown().await;
    let mut sink = [0u8; 1024];
    let _ = timeout(Duration::from_secs(2), async {
        while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

async fn respond_half<W: AsyncWrite + Unpin>(w: &mut W, status: u16, phrase: &str, body: &str) {
    let body = if body.ends_with('\n') {
        body.to_string()
    } else {
        format!("{body}\n")
    };
    let msg = format!(
        "HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\nX-Headjack-Egress: {}\r\n\r\n{body}",
        body.len(),
        if status == 403 { "denied" } else { "error" },
    );
    let _ = w.write_all(msg.as_bytes()).await;
    let _ = w.flush().await;
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        403 => "Forbidden",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    }
}
