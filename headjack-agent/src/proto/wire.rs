//! Payload primitives: little-endian integers, length-prefixed byte strings, options, lists.
//! The reader checks every length against the bytes actually present before allocating.

use std::fmt;

/// A payload that does not decode: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    pub(crate) field: &'static str,
    pub(crate) why: &'static str,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.field, self.why)
    }
}

pub(crate) type WireResult<T> = Result<T, WireError>;

pub(crate) struct Enc<'a>(pub &'a mut Vec<u8>);

impl Enc<'_> {
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub fn bool(&mut self, v: bool) {
        self.0.push(u8::from(v));
    }
    pub fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
    }
    pub fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }
    pub fn opt<T>(&mut self, v: &Option<T>, f: impl FnOnce(&mut Self, &T)) {
        match v {
            None => self.u8(0),
            Some(x) => {
                self.u8(1);
                f(self, x);
            }
        }
    }
    pub fn list<T>(&mut self, v: &[T], mut f: impl FnMut(&mut Self, &T)) {
        self.u32(v.len() as u32);
        for x in v {
            f(self, x);
        }
    }
}

pub(crate) struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Dec<'a> {
    pub fn new(buf: &'a [u8]) -> Dec<'a> {
        Dec { buf, pos: 0 }
    }

    fn take(&mut self, n: usize, field: &'static str) -> WireResult<&'a [u8]> {
        if self.buf.len() - self.pos < n {
            return Err(WireError {
                field,
                why: "payload ends early",
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn u8(&mut self, field: &'static str) -> WireResult<u8> {
        Ok(self.take(1, field)?[0])
    }
    pub fn bool(&mut self, field: &'static str) -> WireResult<bool> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(WireError {
                field,
                why: "a boolean that is neither 0 nor 1",
            }),
        }
    }
    pub fn u16(&mut self, field: &'static str) -> WireResult<u16> {
        let b = self.take(2, field)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub fn u32(&mut self, field: &'static str) -> WireResult<u32> {
        let b = self.take(4, field)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn u64(&mut self, field: &'static str) -> WireResult<u64> {
        let b = self.take(8, field)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    pub fn i32(&mut self, field: &'static str) -> WireResult<i32> {
        Ok(self.u32(field)? as i32)
    }
    pub fn i64(&mut self, field: &'static str) -> WireResult<i64> {
        Ok(self.u64(field)? as i64)
    }
    pub fn bytes(&mut self, field: &'static str) -> WireResult<Vec<u8>> {
        let n = self.u32(field)? as usize;
        Ok(self.take(n, field)?.to_vec())
    }
    pub fn str(&mut self, field: &'static str) -> WireResult<String> {
        String::from_utf8(self.bytes(field)?).map_err(|_| WireError {
            field,
            why: "not UTF-8",
        })
    }
    pub fn opt<T>(
        &mut self,
        field: &'static str,
        f: impl FnOnce(&mut Self) -> WireResult<T>,
    ) -> WireResult<Option<T>> {
        match self.u8(field)? {
            0 => Ok(None),
            1 => f(self).map(Some),
            _ => Err(WireError {
                field,
                why: "an option tag that is neither 0 nor 1",
            }),
        }
    }
    /// A list whose elements take at least `min_size` bytes each: a count the payload cannot
    /// hold is refused before anything is allocated.
    pub fn list<T>(
        &mut self,
        field: &'static str,
        min_size: usize,
        mut f: impl FnMut(&mut Self) -> WireResult<T>,
    ) -> WireResult<Vec<T>> {
        let n = self.u32(field)? as usize;
        if n.saturating_mul(min_size.max(1)) > self.remaining() {
            return Err(WireError {
                field,
                why: "a count larger than the payload can hold",
            });
        }
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(f(self)?);
        }
        Ok(v)
    }
    /// The bytes not read yet (the tail of a data frame).
    pub fn rest(&mut self) -> Vec<u8> {
        let s = self.buf[self.pos..].to_vec();
        self.pos = self.buf.len();
        s
    }
}
