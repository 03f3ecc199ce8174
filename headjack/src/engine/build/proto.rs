//! Just enough protobuf for the BuildKit messages headjack exchanges with the engine: the
//! status stream of a build (`moby.buildkit.v1.StatusResponse`, read), the secrets service
//! (`GetSecretRequest` read, `GetSecretResponse` written), the file transfer of a build context
//! (fsutil's `Packet` and `Stat`, both ways) and the health check the engine sends to a session.
//!
//! Hand-written instead of generated: four messages do not justify a code generator and a gRPC
//! stack, and a decoder this small can be fuzzed whole. Unknown fields are skipped, as protobuf
//! requires; malformed input is an error, never a panic.

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError(pub(crate) &'static str);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed protobuf: {}", self.0)
    }
}

type Decoded<T> = Result<T, DecodeError>;

/// A protobuf wire-format reader over one message.
struct Reader<'a> {
    buf: &'a [u8],
}

/// The value of one field as it is on the wire.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// Fixed 32- and 64-bit fields (none of the fields headjack reads).
    Fixed,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn varint(&mut self) -> Decoded<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&b, rest) = self
                .buf
                .split_first()
                .ok_or(DecodeError("truncated varint"))?;
            self.buf = rest;
            if i == 9 && b > 1 {
                return Err(DecodeError("varint overflows 64 bits"));
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: u64) -> Decoded<&'a [u8]> {
        let n = usize::try_from(n).map_err(|_| DecodeError("length out of range"))?;
        if n > self.buf.len() {
            return Err(DecodeError("length beyond the end of the message"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// The next field number and value, or `None` at the end of the message.
    fn field(&mut self) -> Decoded<Option<(u64, Value<'a>)>> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 {
            return Err(DecodeError("field number 0"));
        }
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed
            }
            2 => {
                let n = self.varint()?;
                Value::Bytes(self.take(n)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed
            }
            _ => return Err(DecodeError("unsupported wire type")),
        };
        Ok(Some((number, value)))
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A point in time (`google.protobuf.Timestamp`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Timestamp {
    pub(crate) seconds: i64,
    pub(crate) nanos: i32,
}

impl Timestamp {
    fn decode(buf: &[u8]) -> Decoded<Timestamp> {
        let mut t = Timestamp::default();
        let mut r = Reader::new(buf);
        while let Some((n, v)) = r.field()? {
            match (n, v) {
                (1, Value::Varint(s)) => t.seconds = s as i64,
                (2, Value::Varint(ns)) => t.nanos = ns as i32,
                _ => {}
            }
        }
        Ok(t)
    }

    /// Seconds from `self` to `later` (0 when `later` is earlier).
    pub(crate) fn seconds_until(&self, later: &Timestamp) -> f64 {
        let a = self.seconds as f64 + f64::from(self.nanos) / 1e9;
        let b = later.seconds as f64 + f64::from(later.nanos) / 1e9;
        (b - a).max(0.0)
    }
}

/// One step of a build graph (`moby.buildkit.v1.Vertex`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Vertex {
    pub(crate) digest: String,
    pub(crate) name: String,
    pub(crate) cached: bool,
    pub(crate) started: Option<Timestamp>,
    pub(crate) completed: Option<Timestamp>,
    pub(crate) error: String,
}

impl Vertex {
    fn decode(buf: &[u8]) -> Decoded<Vertex> {
        let mut v = Vertex::default();
        let mut r = Reader::new(buf);
        while let Some((n, val)) = r.field()? {
            match (n, val) {
                (1, Value::Bytes(b)) => v.digest = text(b),
                (3, Value::Bytes(b)) => v.name = text(b),
                (4, Value::Varint(x)) => v.cached = x != 0,
                (5, Value::Bytes(b)) => v.started = Some(Timestamp::decode(b)?),
                (6, Value::Bytes(b)) => v.completed = Some(Timestamp::decode(b)?),
                (7, Value::Bytes(b)) => v.error = text(b),
                _ => {}
            }
        }
        Ok(v)
    }
}

/// Output a step printed (`moby.buildkit.v1.VertexLog`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct VertexLog {
    pub(crate) vertex: String,
    /// 1 stdout, 2 stderr.
    pub(crate) stream: i64,
    pub(crate) msg: Vec<u8>,
}

impl VertexLog {
    fn decode(buf: &[u8]) -> Decoded<VertexLog> {
        let mut l = VertexLog::default();
        let mut r = Reader::new(buf);
        while let Some((n, val)) = r.field()? {
            match (n, val) {
                (1, Value::Bytes(b)) => l.vertex = text(b),
                (3, Value::Varint(x)) => l.stream = x as i64,
                (4, Value::Bytes(b)) => l.msg = b.to_vec(),
                _ => {}
            }
        }
        Ok(l)
    }
}

/// One message of a build's status stream (`moby.buildkit.v1.StatusResponse`): vertex
/// updates and log output. Progress counters and warnings are skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StatusResponse {
    pub(crate) vertexes: Vec<Vertex>,
    pub(crate) logs: Vec<VertexLog>,
}

impl StatusResponse {
    /// Decodes one message.
    ///
    /// # Errors
    ///
    /// Truncated or malformed input.
    pub(crate) fn decode(buf: &[u8]) -> Decoded<StatusResponse> {
        let mut s = StatusResponse::default();
        let mut r = Reader::new(buf);
        while let Some((n, val)) = r.field()? {
            match (n, val) {
                (1, Value::Bytes(b)) => s.vertexes.push(Vertex::decode(b)?),
                (3, Value::Bytes(b)) => s.logs.push(VertexLog::decode(b)?),
                _ => {}
            }
        }
        Ok(s)
    }
}

/// The ID of a `moby.buildkit.secrets.v1.GetSecretRequest`.
///
/// # Errors
///
/// Truncated or malformed input.
pub(crate) fn get_secret_request_id(buf: &[u8]) -> Decoded<String> {
    let mut id = String::new();
    let mut r = Reader::new(buf);
    while let Some((n, val)) = r.field()? {
        if let (1, Value::Bytes(b)) = (n, val) {
            id = text(b);
        }
    }
    Ok(id)
}

/// An fsutil packet type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PacketType {
    Stat = 0,
    Req = 1,
    Data = 2,
    Fin = 3,
    Err = 4,
}

/// An fsutil `Packet` as the receiving side sends it: a request for a file (`Req` with its
/// ID), the end (`Fin`) or an error (`Err` with its text in `data`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Packet {
    pub(crate) kind: PacketType,
    pub(crate) id: u32,
    pub(crate) data: Vec<u8>,
}

impl Packet {
    /// Decodes one packet (a stat in it is skipped: the receiver sends none).
    ///
    /// # Errors
    ///
    /// Truncated or malformed input, or an unknown packet type.
    pub(crate) fn decode(buf: &[u8]) -> Decoded<Packet> {
        let mut p = Packet {
            kind: PacketType::Stat,
            id: 0,
            data: Vec::new(),
        };
        let mut r = Reader::new(buf);
        while let Some((n, val)) = r.field()? {
            match (n, val) {
                (1, Value::Varint(t)) => {
                    p.kind = match t {
                        0 => PacketType::Stat,
                        1 => PacketType::Req,
                        2 => PacketType::Data,
                        3 => PacketType::Fin,
                        4 => PacketType::Err,
                        _ => return Err(DecodeError("unknown packet type")),
                    }
                }
                (3, Value::Varint(id)) => {
                    p.id = u32::try_from(id).map_err(|_| DecodeError("packet ID out of range"))?
                }
                (4, Value::Bytes(b)) => p.data = b.to_vec(),
                _ => {}
            }
        }
        Ok(p)
    }
}

/// fsutil's `Stat` of one file, directory or symlink. `mode` is a Go `os.FileMode`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Stat {
    pub(crate) path: String,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) size: i64,
    pub(crate) mod_time: i64,
    pub(crate) linkname: String,
}

fn put_varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
    if v != 0 {
        put_varint(out, field << 3);
        put_varint(out, v);
    }
}

/// A `Packet` carrying a stat (`None`: the end of the listing).
pub(crate) fn stat_packet(stat: Option<&Stat>) -> Vec<u8> {
    let mut out = Vec::new();
    // type = PACKET_STAT (0) is the default and not written.
    if let Some(st) = stat {
        let mut m = Vec::with_capacity(st.path.len() + st.linkname.len() + 32);
        put_bytes(&mut m, 1, st.path.as_bytes());
        put_varint_field(&mut m, 2, u64::from(st.mode));
        put_varint_field(&mut m, 3, u64::from(st.uid));
        put_varint_field(&mut m, 4, u64::from(st.gid));
        put_varint_field(&mut m, 5, st.size as u64);
        put_varint_field(&mut m, 6, st.mod_time as u64);
        if !st.linkname.is_empty() {
            put_bytes(&mut m, 7, st.linkname.as_bytes());
        }
        put_bytes(&mut out, 2, &m);
    }
    out
}

/// A `Packet` of type `kind` for file `id` with `data`.
pub(crate) fn packet(kind: PacketType, id: u32, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 16);
    put_varint_field(&mut out, 1, kind as u64);
    put_varint_field(&mut out, 3, u64::from(id));
    if !data.is_empty() {
        put_bytes(&mut out, 4, data);
    }
    out
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, field << 3 | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A `GetSecretResponse` carrying `data`.
pub(crate) fn get_secret_response(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 6);
    put_bytes(&mut out, 1, data);
    out
}

/// A `grpc.health.v1.HealthCheckResponse` saying SERVING.
pub(crate) fn health_serving() -> Vec<u8> {
    vec![0x08, 0x01]
}

#[cfg(test)]
pub(crate) mod encode {
    //! An encoder for the messages the decoder reads, so tests can make real ones.
    use super::*;

    fn put_varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
        put_varint(out, field << 3);
        put_varint(out, v);
    }

    /// A Stat message on its own, decoded back by the tests.
    pub(crate) fn stat_fields(packet: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let mut r = Reader::new(packet);
        let mut out = Vec::new();
        while let Ok(Some((n, v))) = r.field() {
            match v {
                Value::Bytes(b) => out.push((n, b.to_vec())),
                Value::Varint(x) => out.push((n, x.to_be_bytes().to_vec())),
                Value::Fixed => {}
            }
        }
        out
    }

    pub(crate) fn timestamp(t: &Timestamp) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint_field(&mut out, 1, t.seconds as u64);
        put_varint_field(&mut out, 2, t.nanos as i64 as u64);
        out
    }

    pub(crate) fn vertex(v: &Vertex) -> Vec<u8> {
        let mut out = Vec::new();
        put_bytes(&mut out, 1, v.digest.as_bytes());
        put_bytes(&mut out, 2, b"sha256:input");
        put_bytes(&mut out, 3, v.name.as_bytes());
        put_varint_field(&mut out, 4, u64::from(v.cached));
        if let Some(t) = &v.started {
            put_bytes(&mut out, 5, &timestamp(t));
        }
        if let Some(t) = &v.completed {
            put_bytes(&mut out, 6, &timestamp(t));
        }
        put_bytes(&mut out, 7, v.error.as_bytes());
        out
    }

    pub(crate) fn status(s: &StatusResponse) -> Vec<u8> {
        let mut out = Vec::new();
        for v in &s.vertexes {
            put_bytes(&mut out, 1, &vertex(v));
        }
        // A VertexStatus (field 2) the decoder skips.
        put_bytes(&mut out, 2, &[0x0a, 0x01, b'x', 0x20, 0x05]);
        for l in &s.logs {
            let mut m = Vec::new();
            put_bytes(&mut m, 1, l.vertex.as_bytes());
            put_bytes(&mut m, 2, &timestamp(&Timestamp::default()));
            put_varint_field(&mut m, 3, l.stream as u64);
            put_bytes(&mut m, 4, &l.msg);
            put_bytes(&mut out, 3, &m);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_a_status_message_the_engine_sent() {
        // Captured from Docker 20.10.24: one vertex, "[internal] load remote build context",
        // started.
        let b64 = "CnwKR3NoYTI1NjplYmFmZjIwMzQyYmUyZTBmNThhOTQ5MTMyYjJmOTEzZDQ2YWVjZjY1MmRiZjBmMDRmZGYwZGJiNTExZjFhNTczGiRbaW50ZXJuYWxdIGxvYWQgcmVtb3RlIGJ1aWxkIGNvbnRleHQqCwjB6rfYBhDs7IVa";
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let s = StatusResponse::decode(&raw).unwrap();
        assert_eq!(s.vertexes.len(), 1);
        let v = &s.vertexes[0];
        assert_eq!(v.name, "[internal] load remote build context");
        assert!(v.digest.starts_with("sha256:ebaff2"));
        assert!(v.started.is_some() && v.completed.is_none());
        assert!(!v.cached);
    }

    #[test]
    fn secret_request_and_responses() {
        // GetSecretRequest{ID: "tok", annotations: {"a": "b"}}
        let req = [
            0x0a, 3, b't', b'o', b'k', 0x12, 6, 0x0a, 1, b'a', 0x12, 1, b'b',
        ];
        assert_eq!(get_secret_request_id(&req).unwrap(), "tok");
        assert_eq!(get_secret_response(b"xy"), [0x0a, 2, b'x', b'y']);
        let big = vec![7u8; 300];
        let resp = get_secret_response(&big);
        assert_eq!(&resp[..3], &[0x0a, 0xac, 0x02]);
        assert_eq!(resp.len(), 303);
    }

    #[test]
    fn packets_both_ways() {
        // REQ for file 7, as the receiver sends it.
        assert_eq!(
            Packet::decode(&[0x08, 1, 0x18, 7]).unwrap(),
            Packet {
                kind: PacketType::Req,
                id: 7,
                data: vec![]
            }
        );
        assert_eq!(Packet::decode(&[0x08, 3]).unwrap().kind, PacketType::Fin);
        let err = Packet::decode(&[0x08, 4, 0x22, 2, b'n', b'o']).unwrap();
        assert_eq!(
            (err.kind, err.data.as_slice()),
            (PacketType::Err, &b"no"[..])
        );
        assert!(Packet::decode(&[0x08, 9]).is_err());
        assert!(Packet::decode(&[0x18, 0xff, 0xff, 0xff, 0xff, 0x1f]).is_err());
        // DATA for file 2, and the empty DATA that ends a file.
        assert_eq!(
            packet(PacketType::Data, 2, b"ab"),
            [0x08, 2, 0x18, 2, 0x22, 2, b'a', b'b']
        );
        assert_eq!(packet(PacketType::Data, 0, b""), [0x08, 2]);
        assert_eq!(packet(PacketType::Fin, 0, b""), [0x08, 3]);
        // The end of the listing is an empty message; a stat is field 2.
        assert!(stat_packet(None).is_empty());
        let st = Stat {
            path: "dir/f".into(),
            mode: 0o644,
            size: 3,
            mod_time: 1_153_704_088_000_000_000,
            ..Stat::default()
        };
        let p = stat_packet(Some(&st));
        let fields = encode::stat_fields(&p);
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].0, 2);
        let inner = encode::stat_fields(&fields[0].1);
        let numbers: Vec<u64> = inner.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [1, 2, 5, 6]);
        assert_eq!(inner[0].1, b"dir/f");
    }

    #[test]
    fn malformed_input_is_an_error() {
        for bad in [
            &[0x0a][..],          // key without length
            &[0x0a, 0x05, 1][..], // length past the end
            &[0x0b][..],          // group start (wire type 3)
            &[0x08][..],          // varint missing
            &[0x00, 0x00][..],    // field 0
            &[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ][..],
        ] {
            assert!(StatusResponse::decode(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            StatusResponse::decode(&[]).unwrap(),
            StatusResponse::default()
        );
    }

    fn arb_timestamp() -> impl Strategy<Value = Option<Timestamp>> {
        proptest::option::of(
            (0i64..4_000_000_000, 0i32..1_000_000_000)
                .prop_map(|(seconds, nanos)| Timestamp { seconds, nanos }),
        )
    }

    fn arb_vertex() -> impl Strategy<Value = Vertex> {
        (
            ".{0,20}",
            ".{0,40}",
            any::<bool>(),
            arb_timestamp(),
            arb_timestamp(),
            ".{0,20}",
        )
            .prop_map(|(digest, name, cached, started, completed, error)| Vertex {
                digest,
                name,
                cached,
                started,
                completed,
                error,
            })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = StatusResponse::decode(&bytes);
            let _ = get_secret_request_id(&bytes);
            let _ = Packet::decode(&bytes);
        }

        #[test]
        fn packets_round_trip(kind in 0u8..5, id in any::<u32>(), data in proptest::collection::vec(any::<u8>(), 0..40)) {
            let kind = [PacketType::Stat, PacketType::Req, PacketType::Data, PacketType::Fin, PacketType::Err][kind as usize];
            let p = Packet::decode(&packet(kind, id, &data)).unwrap();
            prop_assert_eq!(p, Packet { kind, id, data });
        }

        #[test]
        fn status_messages_round_trip(
            vertexes in proptest::collection::vec(arb_vertex(), 0..4),
            logs in proptest::collection::vec((".{0,10}", 1i64..3, proptest::collection::vec(any::<u8>(), 0..50)), 0..4),
        ) {
            let s = StatusResponse {
                vertexes,
                logs: logs.into_iter().map(|(vertex, stream, msg)| VertexLog { vertex, stream, msg }).collect(),
            };
            let bytes = encode::status(&s);
            prop_assert_eq!(StatusResponse::decode(&bytes).unwrap(), s.clone());
            // Any truncation is an error or a shorter message, never a panic.
            for cut in 0..bytes.len() {
                let _ = StatusResponse::decode(&bytes[..cut]);
            }
        }
    }
}
