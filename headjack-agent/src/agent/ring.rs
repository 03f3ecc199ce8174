//! The bounded output buffer of a background process: the last `capacity` bytes it wrote,
//! stdout and stderr interleaved as they came, addressed by absolute offset so followers can
//! resume where they were and learn how much they missed.

use std::collections::VecDeque;

use headjack_agent::proto::DataKind;

/// Chunks are merged up to this size, so tiny writes do not cost one allocation each.
const MERGE: usize = 16 << 10;

#[derive(Debug)]
struct Chunk {
    offset: u64,
    kind: DataKind,
    data: Vec<u8>,
}

#[derive(Debug)]
pub struct Ring {
    capacity: usize,
    chunks: VecDeque<Chunk>,
    /// Offset of the oldest byte kept.
    start: u64,
    /// Offset after the newest byte (= all bytes ever pushed).
    end: u64,
}

/// What a follower at some offset gets next.
#[derive(Debug, PartialEq, Eq)]
pub struct Slice<'a> {
    /// Bytes the follower missed (evicted before it read them).
    pub lost: u64,
    pub kind: DataKind,
    pub data: &'a [u8],
    /// The follower's offset after this slice.
    pub next: u64,
}

impl Ring {
    pub fn new(capacity: usize) -> Ring {
        Ring {
            capacity,
            chunks: VecDeque::new(),
            start: 0,
            end: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    #[cfg(test)]
    pub fn start(&self) -> u64 {
        self.start
    }

    pub fn end(&self) -> u64 {
        self.end
    }

    pub fn push(&mut self, kind: DataKind, mut data: &[u8]) {
        let total = data.len() as u64;
        if data.len() > self.capacity {
            data = &data[data.len() - self.capacity..];
        }
        let offset = self.end + total - data.len() as u64;
        self.end += total;
        if !data.is_empty() {
            match self.chunks.back_mut() {
                Some(last)
                    if last.kind == kind
                        && last.offset + last.data.len() as u64 == offset
                        && last.data.len() + data.len() <= MERGE =>
                {
                    last.data.extend_from_slice(data)
                }
                _ => self.chunks.push_back(Chunk {
                    offset,
                    kind,
                    data: data.to_vec(),
                }),
            }
        }
        self.evict();
    }

    fn evict(&mut self) {
        let keep_from = self.end.saturating_sub(self.capacity as u64);
        while let Some(front) = self.chunks.front_mut() {
            let front_end = front.offset + front.data.len() as u64;
            if front_end <= keep_from {
                self.chunks.pop_front();
            } else {
                if front.offset < keep_from {
                    front.data.drain(..(keep_from - front.offset) as usize);
                    front.offset = keep_from;
                }
                break;
            }
        }
        self.start = self
            .chunks
            .front()
            .map_or(self.end, |c| c.offset)
            .max(keep_from);
    }

    /// The next bytes (at most `max`) for a follower at offset `pos`; `None` when it has seen
    /// everything.
    pub fn read_from(&self, pos: u64, max: usize) -> Option<Slice<'_>> {
        let lost = self.start.saturating_sub(pos);
        let pos = pos.max(self.start);
        if pos >= self.end || max == 0 {
            return (lost > 0).then_some(Slice {
                lost,
                kind: DataKind::Stdout,
                data: &[],
                next: pos,
            });
        }
        let i = self
            .chunks
            .partition_point(|c| c.offset + c.data.len() as u64 <= pos);
        let c = self.chunks.get(i)?;
        let from = (pos - c.offset) as usize;
        let to = c.data.len().min(from + max);
        Some(Slice {
            lost,
            kind: c.kind,
            data: &c.data[from..to],
            next: c.offset + to as u64,
        })
    }

    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.data.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn replay(r: &Ring, mut pos: u64, max: usize) -> (u64, Vec<(DataKind, u8)>) {
        let mut lost = 0;
        let mut out = Vec::new();
        while let Some(s) = r.read_from(pos, max) {
            lost += s.lost;
            out.extend(s.data.iter().map(|b| (s.kind, *b)));
            if s.next == pos && s.data.is_empty() {
                break;
            }
            pos = s.next;
        }
        (lost, out)
    }

    #[test]
    fn keeps_the_last_bytes_in_order() {
        let mut r = Ring::new(10);
        r.push(DataKind::Stdout, b"hello ");
        r.push(DataKind::Stderr, b"world");
        r.push(DataKind::Stdout, b"!");
        assert_eq!(r.end(), 12);
        assert_eq!(r.start(), 2);
        let (lost, got) = replay(&r, 0, 3);
        assert_eq!(lost, 2);
        let text: Vec<u8> = got.iter().map(|(_, b)| *b).collect();
        assert_eq!(text, b"llo world!");
        assert_eq!(got[3].0, DataKind::Stdout);
        assert_eq!(got[4].0, DataKind::Stderr);
        assert_eq!(r.read_from(12, 5), None);
    }

    #[test]
    fn a_zero_ring_keeps_nothing_but_counts() {
        let mut r = Ring::new(0);
        r.push(DataKind::Stdout, b"abc");
        assert_eq!(r.end(), 3);
        assert_eq!(r.bytes(), 0);
        assert_eq!(r.read_from(0, 10).unwrap().lost, 3);
    }

    proptest! {
        /// Whatever is pushed, the ring holds exactly the last `capacity` bytes, in order, with
        /// their streams, and never more.
        #[test]
        fn holds_exactly_the_tail(cap in 0usize..100,
                                  pushes in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..40)), 0..30),
                                  max in 1usize..50) {
            let mut r = Ring::new(cap);
            let mut all: Vec<(DataKind, u8)> = Vec::new();
            for (err, data) in &pushes {
                let k = if *err { DataKind::Stderr } else { DataKind::Stdout };
                r.push(k, data);
                all.extend(data.iter().map(|b| (k, *b)));
                prop_assert!(r.bytes() <= cap);
            }
            let tail = &all[all.len().saturating_sub(cap)..];
            let (lost, got) = replay(&r, 0, max);
            prop_assert_eq!(lost as usize, all.len() - tail.len());
            prop_assert_eq!(&got[..], tail);
            prop_assert_eq!(r.end() as usize, all.len());
        }
    }
}
