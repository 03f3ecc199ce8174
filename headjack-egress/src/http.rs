//! HTTP/1 heads as a forward proxy sees them: the request head, its target (absolute-form URL or
//! CONNECT authority), the Host header, and the upstream's response head.

use crate::policy::Host;

/// The largest request or response head the proxy reads.
pub const MAX_HEAD: usize = 64 * 1024;
/// The most header lines in one head.
pub const MAX_HEADERS: usize = 100;

/// Headers that belong to one connection and are not forwarded (RFC 9110 §7.6.1), plus the
/// proxy's own credentials.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
];

/// A parsed head (request or response).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// Request: the method. Response: empty.
    pub method: String,
    /// Request: the request target as sent. Response: empty.
    pub target: String,
    /// Response: the status code. Request: 0.
    pub status: u16,
    /// Response: the reason phrase. Request: empty.
    pub reason: String,
    /// The minor HTTP version (0 or 1).
    pub minor_version: u8,
    /// Header lines in order, names as sent.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Bytes the head took (what follows is the body).
    pub len: usize,
}

impl Head {
    /// The values of header `name` (case-insensitive).
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The headers to forward: hop-by-hop ones and those the Connection header names dropped.
    pub fn end_to_end_headers(&self) -> impl Iterator<Item = &(String, Vec<u8>)> + '_ {
        let named: Vec<String> = self
            .header_values("connection")
            .flat_map(|v| {
                String::from_utf8_lossy(v)
                    .split(',')
                    .map(|t| t.trim().to_ascii_lowercase())
                    .collect::<Vec<_>>()
            })
            .collect();
        self.headers.iter().filter(move |(n, _)| {
            let n = n.to_ascii_lowercase();
            !HOP_BY_HOP.contains(&n.as_str()) && !named.contains(&n)
        })
    }
}

/// A head that cannot be read, with the HTTP status that answers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadError {
    /// 400 (bad request) or 431 (header fields too large).
    pub status: u16,
    /// What is wrong.
    pub reason: String,
}

fn bad(status: u16, reason: impl Into<String>) -> HeadError {
    HeadError {
        status,
        reason: reason.into(),
    }
}

/// Parses a request head from the start of `buf`; `Ok(None)` means "read more".
///
/// # Errors
/// Malformed heads (400), and heads over [`MAX_HEAD`] bytes or [`MAX_HEADERS`] lines (431).
pub fn parse_request(buf: &[u8]) -> Result<Option<Head>, HeadError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => Ok(Some(Head {
            method: req.method.unwrap_or_default().to_string(),
            target: req.path.unwrap_or_default().to_string(),
            status: 0,
            reason: String::new(),
            minor_version: req.version.unwrap_or(1),
            headers: req
                .headers
                .iter()
                .map(|h| (h.name.to_string(), h.value.to_vec()))
                .collect(),
            len,
        })),
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => Ok(None),
        Ok(_) => Err(bad(
            431,
            format!("the request head is larger than {} KiB", MAX_HEAD / 1024),
        )),
        Err(httparse::Error::TooManyHeaders) => Err(bad(
            431,
            format!("the request has more than {MAX_HEADERS} header lines"),
        )),
        Err(e) => Err(bad(400, format!("the request head is malformed ({e})"))),
    }
}

/// Parses a response head from the start of `buf`; `Ok(None)` means "read more".
///
/// # Errors
/// Malformed or oversized heads.
pub fn parse_response(buf: &[u8]) -> Result<Option<Head>, HeadError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut slots);
    match res.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => Ok(Some(Head {
            method: String::new(),
            target: String::new(),
            status: res.code.unwrap_or_default(),
            reason: res.reason.unwrap_or_default().to_string(),
            minor_version: res.version.unwrap_or(1),
            headers: res
                .headers
                .iter()
                .map(|h| (h.name.to_string(), h.value.to_vec()))
                .collect(),
            len,
        })),
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => Ok(None),
        Ok(_) | Err(httparse::Error::TooManyHeaders) => {
            Err(bad(502, "the upstream's response head is too large"))
        }
        Err(e) => Err(bad(
            502,
            format!("the upstream's response head is malformed ({e})"),
        )),
    }
}

/// A destination host and port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Authority {
    /// The host, validated and normalised.
    pub host: Host,
    /// The port.
    pub port: u16,
}

impl std::fmt::Display for Authority {
    /// `host:port`, IPv6 in brackets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.host {
            Host::Ip(std::net::IpAddr::V6(v6)) => write!(f, "[{v6}]:{}", self.port),
            h => write!(f, "{h}:{}", self.port),
        }
    }
}

/// Parses `host:port`, `[v6]:port`, or with a `default_port` also a bare `host` / `[v6]`.
///
/// # Errors
/// What is wrong with the authority.
pub fn parse_authority(s: &str, default_port: Option<u16>) -> Result<Authority, String> {
    if s.contains('@') {
        return Err("credentials in the URL are not supported".into());
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or("`[` without a closing `]`")?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`[{v6}]` is not an IPv6 address"));
        }
        match after {
            "" => (v6, None),
            _ => (
                v6,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| format!("unexpected `{after}` after `]`"))?,
                ),
            ),
        }
    } else {
        match s.rsplit_once(':') {
            Some((_, _)) if s.matches(':').count() > 1 => {
                return Err("an IPv6 address must be written in brackets".into());
            }
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(format!("port `{p}` is not a port from 1 to 65535")),
            Ok(n) if p.bytes().all(|b| b.is_ascii_digit()) => n,
            Ok(_) => return Err(format!("port `{p}` is not a number")),
        },
        None => default_port.ok_or("the port is missing (CONNECT needs `host:port`)")?,
    };
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    let host = Host::parse(host).map_err(|e| format!("host `{host}`: {e}"))?;
    Ok(Authority { host, port })
}

/// Splits an absolute-form request target (`http://host[:port]/path?query`) into its authority
/// and the origin-form target (`/path?query`) to send upstream.
///
/// # Errors
/// Other schemes (`https://` goes through CONNECT), origin-form targets, malformed authorities.
pub fn parse_absolute_form(target: &str) -> Result<(Authority, String), String> {
    let Some((scheme, rest)) = target.split_once("://") else {
        return Err(format!(
            "the request target `{}` is not an absolute URL; this is an egress proxy: set HTTP_PROXY and request `http://host/path`",
            truncate(target)
        ));
    };
    if scheme.eq_ignore_ascii_case("https") {
        return Err(
            "https:// URLs go through `CONNECT host:443`, not a plain request to the proxy".into(),
        );
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(format!(
            "the scheme `{}` is not supported (http only; other protocols go through CONNECT)",
            truncate(scheme)
        ));
    }
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let authority = parse_authority(authority, Some(80))?;
    let path = path.split('#').next().unwrap_or_default();
    let origin = match path.chars().next() {
        None => "/".to_string(),
        Some('?') => format!("/{path}"),
        Some(_) => path.to_string(),
    };
    Ok((authority, origin))
}

/// Does the Host header name the same destination as the request target?
pub fn host_header_matches(value: &[u8], target: &Authority) -> bool {
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| parse_authority(v.trim(), Some(80)).ok())
        .is_some_and(|a| &a == target)
}

/// Where a response body ends (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 1xx, 204, 304).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding: read until the last chunk and trailers (see [`ChunkedEnd`]).
    Chunked,
    /// Until the upstream closes.
    UntilClose,
}

/// How the body of `response` to a `method` request is delimited.
///
/// # Errors
/// Conflicting or malformed Content-Length headers (a response smuggling risk): 502.
pub fn response_framing(method: &str, response: &Head) -> Result<Framing, HeadError> {
    if method.eq_ignore_ascii_case("HEAD")
        || (100..200).contains(&response.status)
        || matches!(response.status, 204 | 304)
    {
        return Ok(Framing::Empty);
    }
    if let Some(te) = response.header_values("transfer-encoding").last() {
        let last = String::from_utf8_lossy(te)
            .rsplit(',')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        return Ok(if last == "chunked" {
            Framing::Chunked
        } else {
            Framing::UntilClose
        });
    }
    let mut length = None;
    for v in response.header_values("content-length") {
        for part in String::from_utf8_lossy(v).split(',') {
            let part = part.trim();
            let n: u64 = part
                .parse()
                .ok()
                .filter(|_| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| {
                    bad(
                        502,
                        format!("the upstream sent an invalid Content-Length `{part}`"),
                    )
                })?;
            if length.is_some_and(|l| l != n) {
                return Err(bad(
                    502,
                    "the upstream sent conflicting Content-Length headers",
                ));
            }
            length = Some(n);
        }
    }
    Ok(length.map_or(Framing::UntilClose, Framing::Length))
}

/// Finds the end of a chunked body in a stream of bytes without buffering it.
#[derive(Clone, Debug, Default)]
pub struct ChunkedEnd {
    state: Chunk,
    /// Bytes in the current size line or trailer section (bounded).
    line: usize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Chunk {
    #[default]
    Size,
    SizeValue(u64),
    Extension(u64),
    SizeLf(u64),
    Data(u64),
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    TrailerEndLf,
    Done,
}

/// Longest chunk-size line or trailer section accepted.
const MAX_CHUNK_LINE: usize = 4096;

impl ChunkedEnd {
    /// Feeds the next bytes; `Ok(Some(n))` means the body ends after the first `n` of them.
    ///
    /// # Errors
    /// A malformed chunked body.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<usize>, &'static str> {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            self.state = match self.state {
                Chunk::Size | Chunk::SizeValue(_) => {
                    let so_far = if let Chunk::SizeValue(v) = self.state {
                        Some(v)
                    } else {
                        None
                    };
                    match (b as char).to_digit(16) {
                        Some(d) => {
                            let v = so_far.unwrap_or(0);
                            if v > (u64::MAX >> 4) {
                                return Err("chunk size too large");
                            }
                            Chunk::SizeValue(v << 4 | u64::from(d))
                        }
                        None => match (so_far, b) {
                            (None, _) => return Err("chunk size missing"),
                            (Some(v), b';' | b' ' | b'\t') => Chunk::Extension(v),
                            (Some(v), b'\r') => Chunk::SizeLf(v),
                            _ => return Err("malformed chunk size"),
                        },
                    }
                }
                Chunk::Extension(v) => {
                    self.line += 1;
                    if self.line > MAX_CHUNK_LINE {
                        return Err("chunk extension too long");
                    }
                    if b == b'\r' {
                        Chunk::SizeLf(v)
                    } else {
                        Chunk::Extension(v)
                    }
                }
                Chunk::SizeLf(v) => {
                    if b != b'\n' {
                        return Err("chunk size line not ended by CRLF");
                    }
                    self.line = 0;
                    if v == 0 {
                        Chunk::TrailerStart
                    } else {
                        Chunk::Data(v)
                    }
                }
                Chunk::Data(left) => {
                    let take = left.min((bytes.len() - i) as u64);
                    i += take as usize;
                    self.state = if take == left {
                        Chunk::DataCr
                    } else {
                        Chunk::Data(left - take)
                    };
                    continue;
                }
                Chunk::DataCr if b == b'\r' => Chunk::DataLf,
                Chunk::DataLf if b == b'\n' => Chunk::Size,
                Chunk::DataCr | Chunk::DataLf => return Err("chunk data not followed by CRLF"),
                Chunk::TrailerStart if b == b'\r' => Chunk::TrailerEndLf,
                Chunk::TrailerStart | Chunk::TrailerLine => {
                    self.line += 1;
                    if self.line > MAX_CHUNK_LINE * 16 {
                        return Err("chunked trailers too long");
                    }
                    if b == b'\n' {
                        Chunk::TrailerStart
                    } else {
                        Chunk::TrailerLine
                    }
                }
                Chunk::TrailerEndLf if b == b'\n' => Chunk::Done,
                Chunk::TrailerEndLf => return Err("chunked body not ended by CRLF"),
                Chunk::Done => return Ok(Some(i)),
            };
            i += 1;
            if self.state == Chunk::Done {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }
}

fn truncate(s: &str) -> String {
    match s.char_indices().nth(80) {
        None => s.to_string(),
        Some((at, _)) => format!("{}…", &s[..at]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn request_heads() {
        let raw = b"GET http://Allowed.test:8080/a?b HTTP/1.1\r\nHost: allowed.test:8080\r\nConnection: keep-alive, X-Trace\r\nX-Trace: 1\r\nProxy-Authorization: x\r\nAccept: */*\r\n\r\nBODY";
        let head = parse_request(raw).unwrap().unwrap();
        assert_eq!(
            (head.method.as_str(), head.minor_version, head.len),
            ("GET", 1, raw.len() - 4)
        );
        let kept: Vec<&str> = head.end_to_end_headers().map(|(n, _)| n.as_str()).collect();
        assert_eq!(kept, ["Host", "Accept"]);
        let (auth, origin) = parse_absolute_form(&head.target).unwrap();
        assert_eq!(
            (auth.to_string(), origin.as_str()),
            ("allowed.test:8080".to_string(), "/a?b")
        );
        assert!(host_header_matches(b"allowed.test:8080", &auth));
        assert!(host_header_matches(b"ALLOWED.test.:8080", &auth));
        assert!(!host_header_matches(b"allowed.test", &auth));
        assert!(!host_header_matches(b"denied.test:8080", &auth));
        assert_eq!(parse_request(&raw[..20]).unwrap(), None);
    }

    #[test]
    fn bad_request_heads() {
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "A: b\r\n".repeat(MAX_HEADERS + 1)
        );
        let big = format!("GET / HTTP/1.1\r\nA: {}", "b".repeat(MAX_HEAD));
        for (raw, status) in [
            (&b"GET / HTTP/1.1\r\nBad Header\r\n\r\n"[..], 400),
            (many.as_bytes(), 431),
            (big.as_bytes(), 431),
            (b"\x16\x03\x01\x02\x00", 400),
        ] {
            assert_eq!(parse_request(raw).unwrap_err().status, status);
        }
    }

    #[test]
    fn targets_and_authorities() {
        let ok = [
            ("http://a.test", "a.test:80", "/"),
            ("http://a.test?x=1", "a.test:80", "/?x=1"),
            ("HTTP://[2001:db8::1]:81/p#frag", "[2001:db8::1]:81", "/p"),
            ("http://192.0.2.1/x", "192.0.2.1:80", "/x"),
        ];
        for (t, auth, origin) in ok {
            let (a, o) = parse_absolute_form(t).unwrap_or_else(|e| panic!("{t}: {e}"));
            assert_eq!((a.to_string().as_str(), o.as_str()), (auth, origin), "{t}");
        }
        let bad = [
            ("/index.html", "not an absolute URL"),
            ("https://a.test/", "CONNECT"),
            ("ftp://a.test/", "not supported"),
            ("http://user:pw@a.test/", "credentials"),
            ("http://a.test:0/", "not a port"),
            ("http://a.test:99999/", "not a port"),
            ("http://a.test:+80/", "not a number"),
            ("http://a..test/", "empty label"),
            ("http:///x", "host is empty"),
            ("http://2001:db8::1/", "brackets"),
        ];
        for (t, why) in bad {
            let e = parse_absolute_form(t).unwrap_err();
            assert!(e.contains(why), "{t}: {e}");
        }
        assert_eq!(
            parse_authority("pypi.org:443", None).unwrap().to_string(),
            "pypi.org:443"
        );
        assert!(
            parse_authority("pypi.org", None)
                .unwrap_err()
                .contains("port is missing")
        );
        assert!(parse_authority("[::1", None).is_err());
    }

    fn head(raw: &str) -> Head {
        parse_response(raw.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn response_framing_table() {
        let table = [
            (
                "GET",
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                Ok(Framing::Length(5)),
            ),
            (
                "GET",
                "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n",
                Ok(Framing::Length(5)),
            ),
            (
                "HEAD",
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                Ok(Framing::Empty),
            ),
            (
                "GET",
                "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
                Ok(Framing::Empty),
            ),
            ("GET", "HTTP/1.1 204 No Content\r\n\r\n", Ok(Framing::Empty)),
            (
                "GET",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n\r\n",
                Ok(Framing::Chunked),
            ),
            (
                "GET",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                Ok(Framing::UntilClose),
            ),
            ("GET", "HTTP/1.0 200 OK\r\n\r\n", Ok(Framing::UntilClose)),
            (
                "GET",
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                Err(502),
            ),
            (
                "GET",
                "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
                Err(502),
            ),
            (
                "GET",
                "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
                Err(502),
            ),
        ];
        for (method, raw, want) in table {
            assert_eq!(
                response_framing(method, &head(raw)).map_err(|e| e.status),
                want,
                "{raw}"
            );
        }
    }

    #[test]
    fn chunked_end() {
        let body = b"5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        let end = body.len() - 4;
        assert_eq!(ChunkedEnd::default().feed(body), Ok(Some(end)));
        for split in 0..body.len() {
            let mut c = ChunkedEnd::default();
            let first = c.feed(&body[..split]).unwrap();
            let got = match first {
                Some(n) => n,
                None => split + c.feed(&body[split..]).unwrap().unwrap(),
            };
            assert_eq!(got, end, "split at {split}");
        }
        assert_eq!(ChunkedEnd::default().feed(b"0\r\n\r\n"), Ok(Some(5)));
        for bad in [
            &b"x\r\n"[..],
            b"5\r\nhelloXX",
            b"\r\n",
            b"5\rX",
            b"fffffffffffffffff\r\n",
        ] {
            assert!(
                ChunkedEnd::default().feed(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    proptest! {
        #[test]
        fn chunked_scanner_never_panics(buf in prop::collection::vec(any::<u8>(), 0..400), split in 0usize..400) {
            let mut c = ChunkedEnd::default();
            let split = split.min(buf.len());
            if let Ok(None) = c.feed(&buf[..split]) {
                let _ = c.feed(&buf[split..]);
            }
        }

        #[test]
        fn chunked_bodies_end_where_they_end(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..50), 0..6), split in 0usize..400) {
            let mut body = Vec::new();
            for c in &chunks {
                body.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                body.extend_from_slice(c);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(b"0\r\n\r\n");
            let end = body.len();
            body.extend_from_slice(b"GET / HTTP/1.1\r\n");
            let split = split.min(body.len());
            let mut c = ChunkedEnd::default();
            let got = match c.feed(&body[..split]).unwrap() {
                Some(n) => n,
                None => split + c.feed(&body[split..]).unwrap().unwrap(),
            };
            prop_assert_eq!(got, end);
        }

        #[test]
        fn arbitrary_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_request(&buf);
            if let Ok(Some(h)) = parse_response(&buf) {
                let _ = response_framing("GET", &h);
            }
        }

        #[test]
        fn request_like_text_never_panics(m in "[A-Z]{1,8}", t in "\\PC{0,60}", hs in prop::collection::vec(("[!-~]{1,12}", "\\PC{0,20}"), 0..5)) {
            let mut raw = format!("{m} {t} HTTP/1.1\r\n");
            for (n, v) in &hs { raw.push_str(&format!("{n}: {v}\r\n")); }
            raw.push_str("\r\n");
            if let Ok(Some(head)) = parse_request(raw.as_bytes()) {
                let _ = parse_absolute_form(&head.target);
                let _ = parse_authority(&head.target, None);
                for (_, v) in &head.headers {
                    if let Ok((a, _)) = parse_absolute_form(&head.target) { let _ = host_header_matches(v, &a); }
                }
            }
        }
    }
}
