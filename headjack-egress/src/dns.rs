//! Minimal DNS messages (RFC 1035): read the question of a query, build short replies, build
//! A/AAAA queries and read the addresses out of their answers. Hand-rolled because a static
//! binary must not touch the C library's resolver, and all the proxy needs is this much.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Record type A (IPv4 address).
pub const TYPE_A: u16 = 1;
/// Record type CNAME.
pub const TYPE_CNAME: u16 = 5;
/// Record type AAAA (IPv6 address).
pub const TYPE_AAAA: u16 = 28;
/// Class IN.
pub const CLASS_IN: u16 = 1;

/// No error.
pub const RCODE_NOERROR: u8 = 0;
/// The query could not be read.
pub const RCODE_FORMERR: u8 = 1;
/// The server failed (e.g. no upstream answered).
pub const RCODE_SERVFAIL: u8 = 2;
/// The name does not exist (or, here: the policy hides it).
pub const RCODE_NXDOMAIN: u8 = 3;
/// The kind of query is not supported.
pub const RCODE_NOTIMP: u8 = 4;
/// The server refuses to answer this client.
pub const RCODE_REFUSED: u8 = 5;

const HEADER_LEN: usize = 12;
const FLAG_QR: u16 = 0x8000;
const FLAG_TC: u16 = 0x0200;
const FLAG_RD: u16 = 0x0100;
const FLAG_RA: u16 = 0x0080;
/// Longest encoded name (RFC 1035 §2.3.4).
const MAX_WIRE_NAME: usize = 255;
/// Compression pointers followed before a name is declared malformed.
const MAX_POINTERS: usize = 32;

/// A malformed or unsupported message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsError {
    /// What is wrong.
    pub reason: &'static str,
    /// The response code that fits a reply to it.
    pub rcode: u8,
}

impl DnsError {
    const fn formerr(reason: &'static str) -> Self {
        DnsError {
            reason,
            rcode: RCODE_FORMERR,
        }
    }
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason)
    }
}

impl std::error::Error for DnsError {}

/// The parts of a query the proxy decides on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// The message id.
    pub id: u16,
    /// Header flags as sent.
    pub flags: u16,
    /// The queried name, lower case, without the trailing dot (empty for the root).
    pub name: String,
    /// The record type asked for.
    pub qtype: u16,
    /// The class asked for.
    pub qclass: u16,
    /// Where the question section ends in the message.
    question_end: usize,
}

/// Reads the header and the single question of a query.
///
/// # Errors
/// A message that is not a standard query with exactly one well-formed question.
pub fn parse_query(msg: &[u8]) -> Result<Query, DnsError> {
    if msg.len() < HEADER_LEN {
        return Err(DnsError::formerr("shorter than a DNS header"));
    }
    let id = be16(msg, 0);
    let flags = be16(msg, 2);
    if flags & FLAG_QR != 0 {
        return Err(DnsError::formerr("a response, not a query"));
    }
    if (flags >> 11) & 0xF != 0 {
        return Err(DnsError {
            reason: "only standard queries are supported",
            rcode: RCODE_NOTIMP,
        });
    }
    if be16(msg, 4) != 1 {
        return Err(DnsError::formerr("a query must hold exactly one question"));
    }
    let (name, end) = read_name(msg, HEADER_LEN, true)?;
    if end + 4 > msg.len() {
        return Err(DnsError::formerr("question cut short"));
    }
    Ok(Query {
        id,
        flags,
        name,
        qtype: be16(msg, end),
        qclass: be16(msg, end + 2),
        question_end: end + 4,
    })
}

/// A reply to `query` (the message it was parsed from) with no records and the given code.
pub fn reply(msg: &[u8], query: &Query, rcode: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(query.question_end);
    out.extend_from_slice(&query.id.to_be_bytes());
    let flags = FLAG_QR | (query.flags & FLAG_RD) | FLAG_RA | u16::from(rcode & 0xF);
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&msg[HEADER_LEN..query.question_end]);
    out
}

/// A header-only reply to a message whose question could not be read; `None` when even the
/// header is missing (such a packet is dropped).
pub fn error_reply(msg: &[u8], rcode: u8) -> Option<Vec<u8>> {
    if msg.len() < HEADER_LEN || be16(msg, 2) & FLAG_QR != 0 {
        return None;
    }
    let mut out = vec![0; HEADER_LEN];
    out[..2].copy_from_slice(&msg[..2]);
    let flags = FLAG_QR | (be16(msg, 2) & (FLAG_RD | 0x7800)) | FLAG_RA | u16::from(rcode & 0xF);
    out[2..4].copy_from_slice(&flags.to_be_bytes());
    Some(out)
}

/// A recursive query for `name` (no trailing dot needed).
///
/// # Errors
/// A name that cannot be encoded (empty label, label over 63 bytes, name over 255 bytes).
pub fn build_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, DnsError> {
    let mut out = Vec::with_capacity(HEADER_LEN + name.len() + 6);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&FLAG_RD.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    let name = name.strip_suffix('.').unwrap_or(name);
    if !name.is_empty() {
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(DnsError::formerr(
                    "a label is empty or longer than 63 bytes",
                ));
            }
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
    }
    out.push(0);
    if out.len() - HEADER_LEN > MAX_WIRE_NAME {
        return Err(DnsError::formerr("name longer than 255 bytes"));
    }
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(out)
}

/// The addresses in an answer to a query built by [`build_query`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The response code.
    pub rcode: u8,
    /// The server cut the reply short (retry over TCP).
    pub truncated: bool,
    /// A and AAAA records of the answer section, in order (the CNAME chain is the resolver's job).
    pub addrs: Vec<IpAddr>,
}

/// Reads an answer to the query (`id`, `name`, `qtype`).
///
/// # Errors
/// A malformed message, or one that does not answer that query.
pub fn parse_answer(msg: &[u8], id: u16, name: &str, qtype: u16) -> Result<Answer, DnsError> {
    if msg.len() < HEADER_LEN {
        return Err(DnsError::formerr("shorter than a DNS header"));
    }
    let flags = be16(msg, 2);
    if be16(msg, 0) != id || flags & FLAG_QR == 0 {
        return Err(DnsError::formerr("not the answer to this query"));
    }
    let rcode = (flags & 0xF) as u8;
    let truncated = flags & FLAG_TC != 0;
    let (qd, an) = (be16(msg, 4), be16(msg, 6));
    let mut pos = HEADER_LEN;
    if qd != 1 {
        return Err(DnsError::formerr("an answer must repeat the one question"));
    }
    let (qname, end) = read_name(msg, pos, false)?;
    if end + 4 > msg.len() {
        return Err(DnsError::formerr("question cut short"));
    }
    let want = name.strip_suffix('.').unwrap_or(name);
    if !qname.eq_ignore_ascii_case(want) || be16(msg, end) != qtype {
        return Err(DnsError::formerr("the answer is for another question"));
    }
    pos = end + 4;
    let mut addrs = Vec::new();
    for _ in 0..an {
        if truncated && pos >= msg.len() {
            break;
        }
        let (_, end) = read_name(msg, pos, false)?;
        if end + 10 > msg.len() {
            return Err(DnsError::formerr("record cut short"));
        }
        let (rtype, class, rdlen) = (
            be16(msg, end),
            be16(msg, end + 2),
            usize::from(be16(msg, end + 8)),
        );
        let rdata = end + 10;
        if rdata + rdlen > msg.len() {
            return Err(DnsError::formerr("record data cut short"));
        }
        let data = &msg[rdata..rdata + rdlen];
        match (rtype, class, rdlen) {
            (TYPE_A, CLASS_IN, 4) if qtype == TYPE_A => addrs.push(IpAddr::V4(Ipv4Addr::new(
                data[0], data[1], data[2], data[3],
            ))),
            (TYPE_AAAA, CLASS_IN, 16) if qtype == TYPE_AAAA => {
                let mut b = [0u8; 16];
                b.copy_from_slice(data);
                addrs.push(IpAddr::V6(Ipv6Addr::from(b)));
            }
            _ => {}
        }
        pos = rdata + rdlen;
    }
    Ok(Answer {
        rcode,
        truncated,
        addrs,
    })
}

/// Reads a (possibly compressed) name at `pos`; returns it in lower case with the offset just
/// after it. With `strict`, labels must be host-name characters (the name is a policy input).
fn read_name(msg: &[u8], mut pos: usize, strict: bool) -> Result<(String, usize), DnsError> {
    let mut name = String::new();
    let mut wire_len = 1;
    let mut end = None;
    let mut jumps = 0;
    loop {
        let Some(&len) = msg.get(pos) else {
            return Err(DnsError::formerr("name cut short"));
        };
        match len & 0xC0 {
            0x00 if len == 0 => {
                return Ok((name, end.unwrap_or(pos + 1)));
            }
            0x00 => {
                let len = usize::from(len);
                let Some(label) = msg.get(pos + 1..pos + 1 + len) else {
                    return Err(DnsError::formerr("label cut short"));
                };
                wire_len += len + 1;
                if wire_len > MAX_WIRE_NAME {
                    return Err(DnsError::formerr("name longer than 255 bytes"));
                }
                if strict
                    && !label
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
                {
                    return Err(DnsError {
                        reason: "the name has characters no host name has",
                        rcode: RCODE_NXDOMAIN,
                    });
                }
                if !name.is_empty() {
                    name.push('.');
                }
                name.extend(label.iter().map(|b| char::from(b.to_ascii_lowercase())));
                pos += 1 + len;
            }
            0xC0 => {
                let Some(&low) = msg.get(pos + 1) else {
                    return Err(DnsError::formerr("compression pointer cut short"));
                };
                let target = usize::from(u16::from_be_bytes([len & 0x3F, low]));
                jumps += 1;
                // Pointers must go backwards: that and the bound rule out loops.
                if target >= pos || jumps > MAX_POINTERS {
                    return Err(DnsError::formerr("bad compression pointer"));
                }
                end.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return Err(DnsError::formerr("unsupported label type")),
        }
    }
}

fn be16(msg: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([msg[at], msg[at + 1]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A query for `www.Example.org` type A, as `dig` sends it (with an EDNS OPT record).
    const DIG_QUERY: &[u8] = &[
        0x12, 0x34, 0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, 1, //
        3, b'w', b'w', b'w', 7, b'E', b'x', b'a', b'm', b'p', b'l', b'e', 3, b'o', b'r', b'g',
        0, //
        0, 1, 0, 1, //
        0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn reads_a_real_query_and_replies() {
        let q = parse_query(DIG_QUERY).unwrap();
        assert_eq!(
            (q.id, q.name.as_str(), q.qtype, q.qclass),
            (0x1234, "www.example.org", TYPE_A, CLASS_IN)
        );
        let r = reply(DIG_QUERY, &q, RCODE_NXDOMAIN);
        assert_eq!(&r[..4], &[0x12, 0x34, 0x81, 0x83]);
        assert_eq!(&r[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&r[12..], &DIG_QUERY[12..33]);
        assert_eq!(
            parse_query(&r).unwrap_err().reason,
            "a response, not a query"
        );
    }

    #[test]
    fn rejects_malformed_queries() {
        let mut two = DIG_QUERY.to_vec();
        two[5] = 2;
        let mut notify = DIG_QUERY.to_vec();
        notify[2] |= 4 << 3;
        let mut loop_ptr = DIG_QUERY[..12].to_vec();
        loop_ptr.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
        let mut bad_label = DIG_QUERY[..12].to_vec();
        bad_label.extend_from_slice(&[3, b'a', b'/', b'b', 0, 0, 1, 0, 1]);
        let table: &[(&[u8], &str, u8)] = &[
            (&[], "shorter than a DNS header", RCODE_FORMERR),
            (&two, "exactly one question", RCODE_FORMERR),
            (&notify, "standard queries", RCODE_NOTIMP),
            (&DIG_QUERY[..20], "label cut short", RCODE_FORMERR),
            (&DIG_QUERY[..30], "question cut short", RCODE_FORMERR),
            (&loop_ptr, "bad compression pointer", RCODE_FORMERR),
            (&bad_label, "no host name has", RCODE_NXDOMAIN),
        ];
        for &(msg, why, rcode) in table {
            let err = parse_query(msg).unwrap_err();
            assert_eq!(
                (err.reason.contains(why), err.rcode),
                (true, rcode),
                "{why}: {err:?}"
            );
        }
        assert_eq!(
            error_reply(&two, RCODE_FORMERR).unwrap(),
            [0x12, 0x34, 0x81, 0x81, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(error_reply(&[1, 2, 3], RCODE_FORMERR), None);
    }

    #[test]
    fn builds_queries_and_reads_answers_with_cnames_and_compression() {
        let q = build_query(7, "www.example.org.", TYPE_A).unwrap();
        assert_eq!(parse_query(&q).unwrap().name, "www.example.org");
        // The answer: www.example.org CNAME web.example.org; web.example.org A 192.0.2.1 and 192.0.2.2.
        let mut a = q.clone();
        a[2] = 0x81;
        a[3] = 0x80;
        a[7] = 3;
        a.extend_from_slice(&[
            0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 6, 3, b'w', b'e', b'b', 0xC0, 16,
        ]);
        let web = 12 + 17 + 4 + 12;
        for last in [1, 2] {
            a.extend_from_slice(&[
                0xC0, web as u8, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, last,
            ]);
        }
        let ans = parse_answer(&a, 7, "www.example.org", TYPE_A).unwrap();
        assert_eq!(
            ans.addrs,
            vec![
                "192.0.2.1".parse::<IpAddr>().unwrap(),
                "192.0.2.2".parse().unwrap()
            ]
        );
        assert_eq!((ans.rcode, ans.truncated), (RCODE_NOERROR, false));
        assert!(
            parse_answer(&a, 8, "www.example.org", TYPE_A).is_err(),
            "wrong id"
        );
        assert!(
            parse_answer(&a, 7, "example.org", TYPE_A).is_err(),
            "wrong name"
        );
        assert!(
            parse_answer(&a, 7, "www.example.org", TYPE_AAAA).is_err(),
            "wrong type"
        );
        assert!(
            parse_answer(&a[..a.len() - 3], 7, "www.example.org", TYPE_A).is_err(),
            "cut short"
        );
        assert!(build_query(1, "a..b", TYPE_A).is_err());
        assert!(build_query(1, &"a".repeat(64), TYPE_A).is_err());
        assert!(build_query(1, &["abcdefghi"; 30].join("."), TYPE_A).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(msg in prop::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(q) = parse_query(&msg) {
                let r = reply(&msg, &q, RCODE_REFUSED);
                prop_assert_eq!(&r[..2], &msg[..2]);
            }
            let _ = error_reply(&msg, RCODE_FORMERR);
            let _ = parse_answer(&msg, 0, "a.b", TYPE_A);
        }

        #[test]
        fn mutated_answers_never_panic(flip in prop::collection::vec((0usize..80, any::<u8>()), 0..6), cut in 0usize..90) {
            let mut a = build_query(9, "x.example", TYPE_AAAA).unwrap();
            a[2] |= 0x80;
            a[7] = 1;
            a.extend_from_slice(&[0xC0, 12, 0, 28, 0, 1, 0, 0, 0, 1, 0, 16]);
            a.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            for (i, b) in flip {
                if i < a.len() { a[i] = b; }
            }
            a.truncate(cut.max(1));
            let _ = parse_answer(&a, 9, "x.example", TYPE_AAAA);
            let _ = parse_query(&a);
        }

        #[test]
        fn queries_round_trip(labels in prop::collection::vec("[a-z0-9_-]{1,20}", 1..6), id in any::<u16>(), aaaa in any::<bool>()) {
            let name = labels.join(".");
            let qtype = if aaaa { TYPE_AAAA } else { TYPE_A };
            let q = build_query(id, &name, qtype).unwrap();
            let p = parse_query(&q).unwrap();
            prop_assert_eq!((p.id, p.name, p.qtype), (id, name, qtype));
        }
    }
}
