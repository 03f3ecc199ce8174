//! Reading the archives the engine streams out of a container: one file with a size limit, or
//! the whole archive spooled sparse to disk.

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::{Error, ErrorKind, Result};

/// Reads the single regular file of the tar the engine streams for `path`, refusing (before
/// reading its content) a file larger than `limit` bytes or one that is not a regular file.
/// Only the tar headers and the file's own bytes are read: memory stays within the limit.
pub(crate) async fn read_single_file<R: AsyncRead + Unpin>(
    mut tar: R,
    path: &str,
    limit: u64,
) -> Result<Vec<u8>> {
    let io = |e: std::io::Error| Error::io(format!("reading {path}"), e);
    let mut block = [0u8; 512];
    loop {
        if !read_block(&mut tar, &mut block).await.map_err(io)? {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("{path} was not found in the container"),
            ));
        }
        let header = tar::Header::from_byte_slice(&block);
        let size = header.entry_size().map_err(io)?;
        match header.entry_type() {
            // Extended headers (long names, PAX attributes) come before the entry they describe.
            tar::EntryType::XHeader
            | tar::EntryType::XGlobalHeader
            | tar::EntryType::GNULongName
            | tar::EntryType::GNULongLink => {
                skip(&mut tar, padded(size)).await.map_err(io)?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if size > limit {
                    return Err(Error::invalid_argument(format!(
                        "{path} is {} ({size} bytes), more than the read limit of {} ({limit} \
                         bytes); copy it out to disk with copy_out, or raise the limit",
                        crate::spec::human_bytes(size),
                        crate::spec::human_bytes(limit),
                    )));
                }
                let mut data = vec![0u8; size as usize];
                tar.read_exact(&mut data).await.map_err(io)?;
                return Ok(data);
            }
            tar::EntryType::Directory => {
                return Err(Error::invalid_argument(format!(
                    "{path} is a directory; use copy_out to copy directories"
                )));
            }
            tar::EntryType::Symlink => {
                let target = header
                    .link_name()
                    .ok()
                    .flatten()
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                return Err(Error::invalid_argument(format!(
                    "{path} is a symbolic link to {target}; read the target instead"
                )));
            }
            other => {
                return Err(Error::invalid_argument(format!(
                    "{path} is not a regular file ({other:?})"
                )));
            }
        }
    }
}

/// Reads one 512-byte tar block; `false` at a clean end (end of stream or the zero block).
async fn read_block<R: AsyncRead + Unpin>(
    r: &mut R,
    block: &mut [u8; 512],
) -> std::io::Result<bool> {
    let mut got = 0;
    while got < block.len() {
        let n = r.read(&mut block[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(false)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        got += n;
    }
    Ok(block.iter().any(|b| *b != 0))
}

async fn skip<R: AsyncRead + Unpin>(r: &mut R, n: u64) -> std::io::Result<()> {
    let copied = tokio::io::copy(&mut r.take(n), &mut tokio::io::sink()).await?;
    if copied < n {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// `n` rounded up to whole tar blocks.
fn padded(n: u64) -> u64 {
    n.div_ceil(512) * 512
}

/// Copies `from` into `file`, leaving runs of zero bytes as holes: a sparse file streamed out of
/// a container (the engine sends its holes as zeros) stays sparse on the host, and the copy never
/// holds more than one buffer in memory.
pub(crate) async fn copy_sparse<R: AsyncRead + Unpin>(
    mut from: R,
    file: &mut tokio::fs::File,
) -> std::io::Result<u64> {
    use tokio::io::{AsyncSeekExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 << 10];
    let mut len = 0u64;
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().all(|b| *b == 0) {
            file.seek(std::io::SeekFrom::Current(n as i64)).await?;
        } else {
            file.write_all(&buf[..n]).await?;
        }
        len += n as u64;
    }
    file.flush().await?;
    file.set_len(len).await?;
    Ok(len)
}
