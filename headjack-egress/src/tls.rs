//! The first flight of a TLS client: is it a ClientHello, and which server name (SNI) does it ask
//! for? The proxy uses it to hold a CONNECT tunnel to the name it was opened for.

use std::fmt;

/// The largest ClientHello the proxy reads (handshake message body). Real ones are under 2 KiB;
/// post-quantum key shares bring them to about 1.8 KiB, huge session tickets to a few KiB.
pub const MAX_CLIENT_HELLO: usize = 16 * 1024;
/// The most bytes the parser may ask the caller to buffer: the hello plus record headers.
pub const MAX_BUFFER: usize = MAX_CLIENT_HELLO + 5 * 8 + 1024;

const CONTENT_HANDSHAKE: u8 = 0x16;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const MAX_RECORD: usize = 16 * 1024 + 256;

/// What the first bytes of a tunnel are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FirstFlight {
    /// Not enough bytes yet to tell; read more (the buffer stays within [`MAX_BUFFER`]).
    Incomplete,
    /// Not TLS (another protocol: SSH, plain HTTP, ...).
    NotTls,
    /// A TLS ClientHello, with its server name if it has one (lower case, no trailing dot).
    ClientHello {
        /// The SNI host name.
        sni: Option<String>,
    },
}

/// A TLS handshake that cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsError(pub &'static str);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for TlsError {}

/// Looks at the bytes a client sent first on a tunnel.
///
/// # Errors
/// Bytes that start like TLS but are not a well-formed ClientHello, or one over the size bound.
pub fn parse_first_flight(buf: &[u8]) -> Result<FirstFlight, TlsError> {
    match buf {
        [] => return Ok(FirstFlight::Incomplete),
        [first, ..] if *first != CONTENT_HANDSHAKE => return Ok(FirstFlight::NotTls),
        [_, major, ..] if *major != 3 => return Ok(FirstFlight::NotTls),
        _ => {}
    }
    // Reassemble the handshake message from as many records as it spans.
    let mut hs = Vec::new();
    let mut pos = 0;
    loop {
        if let Some(need) = hello_len(&hs)?
            && hs.len() >= need
        {
            return parse_hello(&hs[4..need]).map(|sni| FirstFlight::ClientHello { sni });
        }
        let Some(header) = buf.get(pos..pos + 5) else {
            return Ok(FirstFlight::Incomplete);
        };
        if header[0] != CONTENT_HANDSHAKE {
            return Err(TlsError("a non-handshake record inside the ClientHello"));
        }
        if header[1] != 3 {
            return Err(TlsError(
                "a record with an unknown TLS version inside the ClientHello",
            ));
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 || len > MAX_RECORD {
            return Err(TlsError("a TLS record of impossible length"));
        }
        if pos + 5 + len > MAX_BUFFER {
            // Real clients send a hello in one or a few records; thousands of tiny ones would
            // make the proxy buffer far more than the hello.
            return Err(TlsError(
                "a ClientHello split into so many TLS records that it exceeds the proxy's buffer",
            ));
        }
        let Some(fragment) = buf.get(pos + 5..pos + 5 + len) else {
            return Ok(FirstFlight::Incomplete);
        };
        hs.extend_from_slice(fragment);
        pos += 5 + len;
    }
}

/// The full length (header included) of the handshake message in `hs`, once its header is there.
fn hello_len(hs: &[u8]) -> Result<Option<usize>, TlsError> {
    let Some(h) = hs.get(..4) else {
        return Ok(None);
    };
    if h[0] != HANDSHAKE_CLIENT_HELLO {
        return Err(TlsError("the first handshake message is not a ClientHello"));
    }
    let len = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
    if len > MAX_CLIENT_HELLO {
        return Err(TlsError("a ClientHello larger than 16 KiB"));
    }
    Ok(Some(4 + len))
}

/// Reads a ClientHello body (RFC 8446 §4.1.2) and returns its SNI host name.
fn parse_hello(body: &[u8]) -> Result<Option<String>, TlsError> {
    let mut r = Reader(body);
    r.take(2 + 32).ok_or(TlsError("ClientHello cut short"))?; // legacy_version, random
    r.vec8()
        .ok_or(TlsError("ClientHello session id cut short"))?;
    let suites = r
        .vec16()
        .ok_or(TlsError("ClientHello cipher suites cut short"))?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err(TlsError("ClientHello cipher suites malformed"));
    }
    r.vec8()
        .ok_or(TlsError("ClientHello compression methods cut short"))?;
    if r.0.is_empty() {
        return Ok(None); // no extensions at all (SSL 3-era clients)
    }
    let mut exts = Reader(
        r.vec16()
            .ok_or(TlsError("ClientHello extensions cut short"))?,
    );
    let mut sni = None;
    while !exts.0.is_empty() {
        let ty = exts.u16().ok_or(TlsError("extension header cut short"))?;
        let data = exts.vec16().ok_or(TlsError("extension cut short"))?;
        if ty != EXT_SERVER_NAME {
            continue;
        }
        if sni.is_some() {
            return Err(TlsError("two server_name extensions"));
        }
        let mut list = Reader(
            Reader(data)
                .vec16()
                .ok_or(TlsError("server_name list cut short"))?,
        );
        while !list.0.is_empty() {
            let kind = list
                .take(1)
                .ok_or(TlsError("server_name entry cut short"))?[0];
            let name = list
                .vec16()
                .ok_or(TlsError("server_name entry cut short"))?;
            if kind != 0 {
                continue; // not host_name: no other kind is defined
            }
            if sni.is_some() {
                return Err(TlsError("two host names in server_name"));
            }
            let valid = !name.is_empty()
                && name
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !valid {
                return Err(TlsError("the server name is not a host name"));
            }
            let name = String::from_utf8_lossy(name).to_ascii_lowercase();
            sni = Some(name.strip_suffix('.').map(str::to_string).unwrap_or(name));
        }
    }
    Ok(sni)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.take(1)?[0]);
        self.take(n)
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }
}

/// A fatal `access_denied` alert, sent to a client whose ClientHello names another host than the
/// tunnel was opened for, so its TLS library reports a refusal instead of a reset.
pub const ALERT_ACCESS_DENIED: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 49];

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A ClientHello in one record, as a TLS 1.3 client sends it, with `sni` (if any) and a
    /// padding extension of `pad` bytes.
    pub(crate) fn client_hello(sni: Option<&str>, pad: usize) -> Vec<u8> {
        let mut exts = Vec::new();
        if let Some(name) = sni {
            let entry_len = 3 + name.len();
            exts.extend_from_slice(&[0, 0]);
            exts.extend_from_slice(&((entry_len + 2) as u16).to_be_bytes());
            exts.extend_from_slice(&(entry_len as u16).to_be_bytes());
            exts.push(0);
            exts.extend_from_slice(&(name.len() as u16).to_be_bytes());
            exts.extend_from_slice(name.as_bytes());
        }
        exts.extend_from_slice(&[0, 43, 0, 3, 2, 3, 4]); // supported_versions: TLS 1.3
        exts.extend_from_slice(&[0, 21]);
        exts.extend_from_slice(&(pad as u16).to_be_bytes());
        exts.extend(std::iter::repeat_n(0, pad));
        let mut body = vec![3, 3];
        body.extend_from_slice(&[7; 32]);
        body.push(32);
        body.extend_from_slice(&[9; 32]);
        body.extend_from_slice(&[0, 4, 0x13, 0x01, 0x13, 0x02, 1, 0]);
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let mut hs = vec![1, 0];
        hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
        hs.extend_from_slice(&body);
        records(&hs, 16384)
    }

    /// Splits a handshake message into records of at most `max` bytes.
    pub(crate) fn records(hs: &[u8], max: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in hs.chunks(max) {
            out.extend_from_slice(&[0x16, 3, 1]);
            out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            out.extend_from_slice(chunk);
        }
        out
    }

    #[test]
    fn reads_sni_across_records_and_asks_for_more() {
        let hello = client_hello(Some("Files.PythonHosted.org."), 600);
        assert_eq!(
            parse_first_flight(&hello),
            Ok(FirstFlight::ClientHello {
                sni: Some("files.pythonhosted.org".into())
            })
        );
        for cut in [1, 4, 5, 40, hello.len() - 1] {
            assert_eq!(
                parse_first_flight(&hello[..cut]),
                Ok(FirstFlight::Incomplete),
                "cut at {cut}"
            );
        }
        let hs = &hello[5..];
        let split = records(hs, 100);
        assert_eq!(parse_first_flight(&split), parse_first_flight(&hello));
        assert_eq!(
            parse_first_flight(&split[..split.len() - 1]),
            Ok(FirstFlight::Incomplete)
        );
        assert_eq!(
            parse_first_flight(&client_hello(None, 0)),
            Ok(FirstFlight::ClientHello { sni: None })
        );
    }

    #[test]
    fn tells_other_protocols_apart_and_rejects_broken_hellos() {
        for other in [
            &b"SSH-2.0-OpenSSH_9.2\r\n"[..],
            b"GET / HTTP/1.1\r\n",
            &[0x16, 0x00, 0x01],
        ] {
            assert_eq!(parse_first_flight(other), Ok(FirstFlight::NotTls));
        }
        let good = client_hello(Some("a.example"), 0);
        let mut not_hello = good.clone();
        not_hello[5] = 2;
        let mut bad_name = client_hello(Some("a/b"), 0);
        let mut zero_len = good.clone();
        zero_len[3..5].copy_from_slice(&[0, 0]);
        let mut huge = good.clone();
        huge[6..9].copy_from_slice(&[0x01, 0x00, 0x00]);
        let mut body_short = good[..good.len() - 10].to_vec();
        let len = body_short.len() - 5;
        body_short[3..5].copy_from_slice(&(len as u16).to_be_bytes());
        body_short[6..9].copy_from_slice(&[0, ((len - 4) >> 8) as u8, (len - 4) as u8]);
        let table: &[(&[u8], &str)] = &[
            (&not_hello, "not a ClientHello"),
            (&bad_name, "not a host name"),
            (&zero_len, "impossible length"),
            (&huge, "larger than 16 KiB"),
            (&body_short, "cut short"),
        ];
        for (bytes, why) in table {
            let err = parse_first_flight(bytes).unwrap_err();
            assert!(err.0.contains(why), "{why}: {err}");
        }
        bad_name.clear();
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(mut buf in prop::collection::vec(any::<u8>(), 0..2000), tls in any::<bool>()) {
            if tls && buf.len() > 2 { buf[0] = 0x16; buf[1] = 3; }
            let _ = parse_first_flight(&buf);
        }

        #[test]
        fn mutated_hellos_never_panic(flips in prop::collection::vec((0usize..300, any::<u8>()), 1..8), cut in 0usize..320) {
            let mut h = client_hello(Some("pypi.org"), 40);
            for (i, b) in flips { if i < h.len() { h[i] = b; } }
            h.truncate(cut);
            let _ = parse_first_flight(&h);
        }

        #[test]
        fn names_survive_any_record_split(name in "[a-z0-9-]{1,20}(\\.[a-z0-9-]{1,20}){0,3}", max in 1usize..300, pad in 0usize..3000) {
            let hello = client_hello(Some(&name), pad);
            let split = records(&hello[5..], max);
            if split.len() <= MAX_BUFFER {
                prop_assert_eq!(parse_first_flight(&split), Ok(FirstFlight::ClientHello { sni: Some(name) }));
            } else {
                // Split into more records than the buffer bound allows (tiny records): refused,
                // never read past the bound.
                prop_assert_eq!(
                    parse_first_flight(&split),
                    Err(TlsError("a ClientHello split into so many TLS records that it exceeds the proxy's buffer"))
                );
            }
        }
    }
}
