//! Content hashes of the files sent, on several threads when there are many.

use super::*;

/// What hashing a file finds out about it.
#[derive(Debug, Clone, Copy)]
pub(super) struct FileFacts {
    /// sha256 of the first `size` bytes.
    digest: [u8; 32],
    /// The bytes hashed: the size when the file was opened, or less if it shrank meanwhile.
    size: u64,
    /// Permission bits.
    mode: u32,
}

/// Hashes every file entry and records its size and exec bit, on several threads when there
/// are enough files.
pub(super) fn hash_files(entries: &mut [Entry]) -> Result<()> {
    let files: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].kind == EntryKind::File)
        .collect();
    let threads = if files.len() < PARALLEL_MIN_FILES {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(4)
    };
    let results = if threads <= 1 {
        let mut buf = vec![0u8; READ_BUFFER];
        let mut out = Vec::with_capacity(files.len());
        for &i in &files {
            out.push((i, hash_file(&entries[i].abs_path, &mut buf)?));
        }
        out
    } else {
        hash_parallel(entries, &files, threads)?
    };
    for (i, facts) in results {
        let entry = &mut entries[i];
        entry.digest = Some(facts.digest);
        entry.size = facts.size;
        entry.mode = facts.mode;
    }
    Ok(())
}

/// Hashes `files` (indexes into `entries`) on `threads` threads taking work from a shared counter.
pub(super) fn hash_parallel(
    entries: &[Entry],
    files: &[usize],
    threads: usize,
) -> Result<Vec<(usize, FileFacts)>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let per_thread: Vec<Result<Vec<(usize, FileFacts)>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut buf = vec![0u8; READ_BUFFER];
                    let mut out = Vec::new();
                    while !failed.load(Ordering::Relaxed) {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(&i) = files.get(k) else { break };
                        match hash_file(&entries[i].abs_path, &mut buf) {
                            Ok(facts) => out.push((i, facts)),
                            Err(e) => {
                                failed.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                    }
                    Ok(out)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut all = Vec::with_capacity(files.len());
    for part in per_thread {
        all.extend(part?);
    }
    Ok(all)
}

/// Hashes a file's content (as long as it was when opened), streamed through `buf`.
pub(super) fn hash_file(path: &Path, buf: &mut [u8]) -> Result<FileFacts> {
    let read_err = |e| Error::io(format!("cannot read {}", path.display()), e);
    let mut file = open_regular(path).map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(Error::new(
            ErrorKind::Io,
            format!(
                "{} changed while the build context was read; retry",
                path.display()
            ),
        ));
    }
    let mut hasher = Sha256::new();
    // Reading exactly the stat size saves the final empty read on every file.
    let mut left = meta.len();
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        match file.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                left -= n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_err(e)),
        }
    }
    Ok(FileFacts {
        digest: hasher.finalize().into(),
        size: meta.len() - left,
        mode: permission_bits(&meta),
    })
}

/// Opens a file the walk saw as a regular file, without following a symlink or blocking on a
/// fifo that replaced it since.
pub(super) fn open_regular(path: &Path) -> io::Result<File> {
    let mut options = File::options();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    options.open(path)
}

/// A reader that hashes and counts what passes through it.
pub(super) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`.
    pub(super) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The number of bytes read and their sha256.
    pub(super) fn finish(self) -> (u64, [u8; 32]) {
        (self.count, self.hasher.finalize().into())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}
