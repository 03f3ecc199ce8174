//! The context as a reproducible tar (the classic builder and Podman read this).

use super::hash::{HashingReader, open_regular};
use super::*;

impl Context {
    /// Writes the context as an uncompressed, reproducible tar (see [`Context::write_tar_with`]).
    #[cfg(test)]
    pub(crate) fn write_tar(&self, out: impl Write) -> Result<()> {
        self.write_tar_with(out, None, &[])
    }

    /// Writes the context as an uncompressed, reproducible tar, with the Dockerfile's content
    /// replaced by `dockerfile` if given (a translation of the bytes read during the walk) and
    /// `generated` files added under [`Context::generated_dir`].
    ///
    /// Entries come in `rel_path` order with mtime fixed, uid/gid 0, no user or group names,
    /// the exact permission bits of files and directories (0777 for symlinks, as any tar has),
    /// long names as GNU long-name records; an outside Dockerfile comes next under
    /// [`dockerfile_name_in_tar`](Self::dockerfile_name_in_tar), generated files last. Every file
    /// is re-hashed while it is written: if it changed since the walk this is an `Io` error, so
    /// an image is never built from content other than the one its cache key names.
    pub(crate) fn write_tar_with(
        &self,
        out: impl Write,
        dockerfile: Option<&[u8]>,
        generated: &[Generated],
    ) -> Result<()> {
        let tar_err = |e: io::Error| Error::io("writing the build context tar", e);
        let mut builder = tar::Builder::new(out);
        for entry in &self.entries {
            let mut header = base_header();
            match entry.kind {
                EntryKind::Dir => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(entry.mode);
                    let name = format!("{}/", entry.rel_path);
                    builder
                        .append_data(&mut header, name, io::empty())
                        .map_err(tar_err)?;
                }
                EntryKind::Symlink => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    let target = entry.link_target.as_deref().unwrap_or_default();
                    builder
                        .append_link(&mut header, &entry.rel_path, target)
                        .map_err(tar_err)?;
                }
                EntryKind::File
                    if dockerfile.is_some()
                        && matches!(&self.dockerfile, DockerfilePlace::Inside(rel) if *rel == entry.rel_path) =>
                {
                    let bytes = dockerfile.unwrap_or_default();
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(entry.mode);
                    header.set_size(bytes.len() as u64);
                    builder
                        .append_data(&mut header, &entry.rel_path, bytes)
                        .map_err(tar_err)?;
                }
                EntryKind::File => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(entry.mode);
                    header.set_size(entry.size);
                    let file = open_regular(&entry.abs_path).map_err(|e| {
                        Error::io(format!("cannot read {}", entry.abs_path.display()), e)
                    })?;
                    let mut reader = HashingReader::new(file.take(entry.size));
                    builder
                        .append_data(&mut header, &entry.rel_path, &mut reader)
                        .map_err(|e| {
                            Error::io(format!("cannot read {}", entry.abs_path.display()), e)
                        })?;
                    let (count, digest) = reader.finish();
                    if count != entry.size || Some(digest) != entry.digest {
                        return Err(Error::new(
                            ErrorKind::Io,
                            format!(
                                "{} changed while the build context was being sent; retry",
                                entry.abs_path.display()
                            ),
                        ));
                    }
                }
            }
        }
        if let DockerfilePlace::Outside(name) = &self.dockerfile {
            let bytes = dockerfile.unwrap_or(&self.dockerfile_bytes);
            let mut header = base_header();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(bytes.len() as u64);
            builder
                .append_data(&mut header, name, bytes)
                .map_err(tar_err)?;
        }
        if !generated.is_empty() {
            let root = self.generated_dir();
            let mut dirs: Vec<String> = vec![root.clone()];
            for g in generated {
                let mut parent = Path::new(&g.path).parent();
                while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
                    dirs.push(format!("{root}/{}", p.display()));
                    parent = p.parent();
                }
            }
            dirs.sort();
            dirs.dedup();
            for dir in dirs {
                let mut header = base_header();
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                builder
                    .append_data(&mut header, format!("{dir}/"), io::empty())
                    .map_err(tar_err)?;
            }
            for g in generated {
                let mut header = base_header();
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(g.mode);
                header.set_size(g.data.len() as u64);
                builder
                    .append_data(&mut header, format!("{root}/{}", g.path), g.data.as_slice())
                    .map_err(tar_err)?;
            }
        }
        let mut out = builder.into_inner().map_err(tar_err)?;
        out.flush().map_err(tar_err)
    }
}

/// A GNU header with the fixed fields of every entry.
fn base_header() -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_mtime(TAR_MTIME);
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(0);
    header
}
