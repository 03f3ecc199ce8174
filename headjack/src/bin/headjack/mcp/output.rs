//! Shaping what tools return to a model: output bounded by keeping its start and its end, file
//! contents as text or base64, `ls`-like listings parsed from `stat` lines, octal modes.

use std::collections::VecDeque;

use base64::Engine as _;
use serde::Serialize;

/// Output of one stream, bounded: the first half of the budget and the last half are kept, the
/// middle is dropped (a compiler's first error and a test runner's summary both survive).
#[derive(Debug)]
pub struct Bounded {
    head_cap: usize,
    tail_cap: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: u64,
}

/// What a [`Bounded`] kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    /// The text, with `[… N bytes omitted …]` where the middle was dropped.
    pub text: String,
    /// Bytes dropped from the middle (0: the output is complete).
    pub omitted: u64,
    /// Bytes the stream produced in all.
    pub total: u64,
}

impl Bounded {
    /// A collector keeping at most `limit` bytes.
    pub fn new(limit: usize) -> Bounded {
        let head_cap = limit.div_ceil(2);
        Bounded {
            head_cap,
            tail_cap: limit - head_cap,
            head: Vec::new(),
            tail: VecDeque::new(),
            total: 0,
        }
    }

    /// Adds the next piece of output.
    pub fn push(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        let room = self.head_cap - self.head.len();
        if room > 0 {
            let n = room.min(data.len());
            self.head.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        if self.tail_cap == 0 {
            return;
        }
        if data.len() >= self.tail_cap {
            self.tail.clear();
            self.tail.extend(&data[data.len() - self.tail_cap..]);
            return;
        }
        let overflow = (self.tail.len() + data.len()).saturating_sub(self.tail_cap);
        self.tail.drain(..overflow);
        self.tail.extend(data);
    }

    /// The kept bytes as text (invalid UTF-8 replaced; a character cut by the bound is dropped).
    pub fn finish(self) -> Kept {
        let kept = (self.head.len() + self.tail.len()) as u64;
        let omitted = self.total - kept;
        let tail: Vec<u8> = self.tail.into_iter().collect();
        if omitted == 0 {
            let mut all = self.head;
            all.extend_from_slice(&tail);
            return Kept {
                text: String::from_utf8_lossy(&all).into_owned(),
                omitted,
                total: self.total,
            };
        }
        let head = &self.head[..utf8_prefix_end(&self.head)];
        let tail = &tail[utf8_suffix_start(&tail)..];
        Kept {
            text: format!(
                "{}\n[… {omitted} bytes omitted …]\n{}",
                String::from_utf8_lossy(head),
                String::from_utf8_lossy(tail)
            ),
            omitted,
            total: self.total,
        }
    }
}

/// Where `bytes` ends without a trailing partial UTF-8 character.
pub fn utf8_prefix_end(bytes: &[u8]) -> usize {
    match std::str::from_utf8(bytes) {
        Ok(_) => bytes.len(),
        // An incomplete sequence at the very end: cut before it.
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(_) => bytes.len(),
    }
}

/// Where `bytes` starts without a leading partial UTF-8 character (continuation bytes).
fn utf8_suffix_start(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take(3)
        .take_while(|b| (**b & 0xC0) == 0x80)
        .count()
}

/// File contents for a model: text when they are UTF-8, else base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contents {
    /// `"utf-8"` or `"base64"`.
    pub encoding: &'static str,
    /// The contents in that encoding.
    pub content: String,
}

/// Encodes `data` as text if it is valid UTF-8, else as base64.
pub fn encode_contents(data: &[u8]) -> Contents {
    match std::str::from_utf8(data) {
        Ok(s) => Contents {
            encoding: "utf-8",
            content: s.to_string(),
        },
        Err(_) => Contents {
            encoding: "base64",
            content: base64::engine::general_purpose::STANDARD.encode(data),
        },
    }
}

/// Decodes `content` given in `encoding` (`utf-8`, the default, or `base64`).
pub fn decode_contents(content: &str, encoding: Option<&str>) -> Result<Vec<u8>, String> {
    match encoding.unwrap_or("utf-8").to_ascii_lowercase().as_str() {
        "utf-8" | "utf8" | "text" => Ok(content.as_bytes().to_vec()),
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(content.trim())
            .map_err(|e| format!("content is not valid base64 ({e}); send text with encoding \"utf-8\", or fix the base64")),
        other => Err(format!(
            "unknown encoding {other:?}: use \"utf-8\" (text) or \"base64\" (binary)"
        )),
    }
}

/// Parses a permission mode written in octal (`"644"`, `"0755"`, `"0o600"`).
pub fn parse_mode(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let digits = t
        .strip_prefix("0o")
        .or_else(|| t.strip_prefix("0O"))
        .unwrap_or(t);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if !digits.is_empty() && m <= 0o7777 => Ok(m),
        _ => Err(format!(
            "mode {s:?} is not an octal permission mode: write it like \"644\" or \"0755\""
        )),
    }
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The path, as `find` printed it (under the listed directory).
    pub path: String,
    /// `file`, `directory`, `symlink` or `other`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Size in bytes (for a symlink: the length of its target).
    pub size: u64,
    /// Permission bits, octal (e.g. `"755"`).
    pub mode: String,
    /// Last modification, Unix seconds.
    pub modified: i64,
}

/// The shell script `list_files` runs: `$1` the path (empty: the working directory), `$2` the
/// depth. `stat -c` with the raw
/// mode in hex works the same in GNU coreutils and busybox; `find -exec … +` in both too.
pub const LIST_SCRIPT: &str = r#"p="$1"; d="$2"
[ -n "$p" ] || p="$(pwd)"
if [ ! -e "$p" ] && [ ! -L "$p" ]; then echo "$p does not exist" >&2; exit 2; fi
command -v find >/dev/null 2>&1 && command -v stat >/dev/null 2>&1 || { echo "this image has no find/stat to list files with" >&2; exit 127; }
if [ -d "$p" ] && [ ! -L "$p" ]; then
  find "$p" -mindepth 1 -maxdepth "$d" -exec stat -c '%f %s %Y %n' {} +
else
  stat -c '%f %s %Y %n' "$p"
fi"#;

/// Parses the lines of [`LIST_SCRIPT`]: `<mode hex> <size> <mtime> <path>`. A line that does
/// not start that way continues the previous path (a name with a newline in it).
pub fn parse_listing(text: &str) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for line in text.split('\n') {
        match parse_stat_line(line) {
            Some(e) => out.push(e),
            None => {
                if let Some(last) = out.last_mut() {
                    last.path.push('\n');
                    last.path.push_str(line);
                }
            }
        }
    }
    // The output ends with a newline: the empty piece after it is not part of a name.
    if let Some(last) = out.last_mut()
        && text.ends_with('\n')
        && last.path.ends_with('\n')
    {
        last.path.pop();
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn parse_stat_line(line: &str) -> Option<Entry> {
    let mut parts = line.splitn(4, ' ');
    let mode = u32::from_str_radix(parts.next()?, 16).ok()?;
    let size = parts.next()?.parse().ok()?;
    let modified = parts.next()?.parse().ok()?;
    let path = parts.next()?.to_string();
    if path.is_empty() {
        return None;
    }
    let kind = match mode & 0o170000 {
        0o040000 => "directory",
        0o100000 => "file",
        0o120000 => "symlink",
        _ => "other",
    };
    Some(Entry {
        path,
        kind,
        size,
        mode: format!("{:o}", mode & 0o7777),
        modified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn collect(limit: usize, pieces: &[&[u8]]) -> Kept {
        let mut b = Bounded::new(limit);
        for p in pieces {
            b.push(p);
        }
        b.finish()
    }

    #[test]
    fn bounded_keeps_start_and_end() {
        let k = collect(8, &[b"abcdefgh"]);
        assert_eq!(
            k,
            Kept {
                text: "abcdefgh".into(),
                omitted: 0,
                total: 8
            }
        );
        let k = collect(4, &[b"ab", b"cdef", b"gh"]);
        assert_eq!(k.text, "ab\n[… 4 bytes omitted …]\ngh");
        assert_eq!((k.omitted, k.total), (4, 8));
        let k = collect(0, &[b"abc"]);
        assert_eq!(k.omitted, 3);
        let k = collect(5, &[]);
        assert_eq!(k.text, "");
    }

    #[test]
    fn bounded_does_not_split_characters() {
        // "é" is two bytes; a cut through it drops the half rather than show U+FFFD.
        let k = collect(4, &["aé".as_bytes(), b"xxxx", "éb".as_bytes()]);
        assert!(!k.text.contains('\u{FFFD}'), "{:?}", k.text);
        assert_eq!(k.text, "a\n[… 6 bytes omitted …]\nb");
        let k = collect(6, &["aé".as_bytes(), b"xxxx", "éb".as_bytes()]);
        assert_eq!(k.text, "aé\n[… 4 bytes omitted …]\néb");
    }

    proptest! {
        #[test]
        fn bounded_is_exact_below_the_limit_and_keeps_prefix_and_suffix_above(
            data in proptest::collection::vec(any::<u8>(), 0..400),
            limit in 0usize..200,
            cuts in proptest::collection::vec(0usize..400, 0..6),
        ) {
            let mut b = Bounded::new(limit);
            let mut pieces = cuts.clone();
            pieces.push(0);
            pieces.push(data.len());
            pieces.iter_mut().for_each(|c| *c = (*c).min(data.len()));
            pieces.sort();
            for w in pieces.windows(2) {
                b.push(&data[w[0]..w[1]]);
            }
            let head_cap = b.head_cap;
            let (head, tail) = (b.head.clone(), b.tail.iter().copied().collect::<Vec<_>>());
            let kept = b.finish();
            prop_assert_eq!(kept.total, data.len() as u64);
            if data.len() <= limit {
                prop_assert_eq!(kept.omitted, 0);
                prop_assert_eq!(kept.text, String::from_utf8_lossy(&data).into_owned());
            } else {
                prop_assert_eq!(kept.omitted, (data.len() - limit) as u64);
                prop_assert_eq!(&head[..], &data[..head_cap]);
                prop_assert_eq!(&tail[..], &data[data.len() - (limit - head_cap)..]);
            }
        }

        #[test]
        fn listing_parser_never_panics(text in "\\PC*") {
            let _ = parse_listing(&text);
        }

        #[test]
        fn contents_round_trip(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let c = encode_contents(&data);
            prop_assert_eq!(decode_contents(&c.content, Some(c.encoding)).unwrap(), data);
        }
    }

    #[test]
    fn listings() {
        let text = "41ed 4096 1700000000 /w/src\n81a4 12 1700000001 /w/a b.txt\n\
                    a1ff 7 1700000002 /w/link\n81a4 3 1700000003 /w/two\nlines\n";
        let got = parse_listing(text);
        let names: Vec<&str> = got.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(names, ["/w/a b.txt", "/w/link", "/w/src", "/w/two\nlines"]);
        let kinds: Vec<&str> = got.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["file", "symlink", "directory", "file"]);
        assert_eq!(got[2].mode, "755");
        assert_eq!(got[0].mode, "644");
        assert_eq!(got[0].size, 12);
        assert_eq!(got[0].modified, 1700000001);
        assert!(parse_listing("").is_empty());
        assert!(parse_listing("garbage\n").is_empty());
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("644"), Ok(0o644));
        assert_eq!(parse_mode("0755"), Ok(0o755));
        assert_eq!(parse_mode("0o600"), Ok(0o600));
        assert!(parse_mode("999").is_err());
        assert!(parse_mode("").is_err());
        assert!(parse_mode("17777").is_err());
        assert!(parse_mode("rwx").is_err());
    }

    #[test]
    fn contents() {
        assert_eq!(encode_contents(b"hi\n").encoding, "utf-8");
        assert_eq!(encode_contents(&[0xff, 0]).encoding, "base64");
        assert_eq!(decode_contents("aGk=", Some("base64")).unwrap(), b"hi");
        assert!(decode_contents("%%%", Some("base64")).is_err());
        assert!(decode_contents("x", Some("latin1")).is_err());
    }
}
