//! The file tools: `read_file`, `write_file`, `list_files`.

use super::*;

impl Session {
    pub(super) async fn read_file(&self, a: ReadFileArgs) -> Result<Reply, ToolError> {
        let instance = self.instance(&a.instance)?;
        let data = instance.read_file(&a.path).await.map_err(|e| {
            if e.kind() == headjack::ErrorKind::InvalidArgument
                && e.message().contains("is a directory")
            {
                ToolError::invalid(format!(
                    "{} is a directory; list it with list_files",
                    a.path
                ))
            } else {
                e.into()
            }
        })?;
        let max = a
            .max_bytes
            .unwrap_or(tools::DEFAULT_MAX_READ)
            .min(tools::MAX_READ);
        let size = data.len();
        let truncated = size > max;
        let mut shown = &data[..size.min(max)];
        if truncated {
            // A text file cut by the bound stays text: drop the character the cut went through.
            shown = &shown[..output::utf8_prefix_end(shown)];
        }
        let contents = output::encode_contents(shown);
        let mut text = match contents.encoding {
            "utf-8" => contents.content.clone(),
            _ => format!(
                "(binary file of {size} bytes, shown as base64)\n{}",
                contents.content
            ),
        };
        if truncated {
            text.push_str(&format!(
                "\n[truncated: the first {} of {size} bytes; raise max_bytes or read pieces with exec (e.g. sed -n, tail -c)]",
                shown.len()
            ));
        }
        Ok(Reply {
            text,
            data: json!({
                "path": a.path,
                "size": size,
                "encoding": contents.encoding,
                "content": contents.content,
                "truncated": truncated,
            }),
        })
    }

    pub(super) async fn write_file(&self, a: WriteFileArgs) -> Result<Reply, ToolError> {
        let instance = self.instance(&a.instance)?;
        let data = output::decode_contents(&a.content, a.encoding.as_deref())
            .map_err(ToolError::invalid)?;
        let mode = match &a.mode {
            Some(m) => output::parse_mode(m).map_err(ToolError::invalid)?,
            None => 0o644,
        };
        instance.write_file_with_mode(&a.path, &data, mode).await?;
        Ok(Reply {
            text: format!("wrote {} bytes to {} (mode {mode:o})", data.len(), a.path),
            data: json!({ "path": a.path, "bytes": data.len(), "mode": format!("{mode:o}") }),
        })
    }

    pub(super) async fn list_files(&self, a: ListFilesArgs) -> Result<Reply, ToolError> {
        let instance = self.instance(&a.instance)?;
        let depth = a.depth.unwrap_or(1);
        if !(1..=32).contains(&depth) {
            return Err(ToolError::invalid(format!(
                "depth {depth}: give 1 (the directory's own entries) up to 32"
            )));
        }
        let max = a
            .max_entries
            .unwrap_or(tools::DEFAULT_MAX_ENTRIES)
            .clamp(1, tools::MAX_ENTRIES);
        let path = a.path.unwrap_or_default();
        let exec = Exec::new([
            "/bin/sh".to_string(),
            "-c".to_string(),
            output::LIST_SCRIPT.to_string(),
            "list_files".to_string(),
            path.clone(),
            depth.to_string(),
        ])
        .timeout(Duration::from_secs(120))
        .max_output(LISTING_OUTPUT);
        let out = instance.exec(exec).await?;
        let stderr = out.stderr_text();
        match out.exit_code {
            _ if out.timed_out => {
                return Err(ToolError::new(
                    "timeout",
                    format!(
                        "listing {path} took over 120 seconds; list a smaller directory or a lower depth"
                    ),
                ));
            }
            2 => return Err(ToolError::new("not_found", stderr.trim().to_string())),
            126 | 127 => {
                return Err(ToolError::new(
                    "exec_failed",
                    format!(
                        "list_files needs /bin/sh, find and stat in the instance, and this image lacks them ({}); run your own listing with exec",
                        stderr.trim()
                    ),
                ));
            }
            _ => {}
        }
        let mut entries: Vec<Entry> = output::parse_listing(&out.stdout_text());
        let truncated = entries.len() > max || out.stdout_truncated;
        entries.truncate(max);
        let shown = if path.is_empty() {
            "the working directory".to_string()
        } else {
            path.clone()
        };
        let mut text = format!("{} entries in {shown}", entries.len());
        if truncated {
            text.push_str(&format!(
                " (truncated at {max}: list a subdirectory or a lower depth)"
            ));
        }
        text.push('\n');
        for e in &entries {
            let kind = match e.kind {
                "directory" => "dir ",
                "file" => "file",
                "symlink" => "link",
                _ => "othr",
            };
            text.push_str(&format!("{kind} {:>4} {:>10} {}\n", e.mode, e.size, e.path));
        }
        // Unreadable subdirectories: the rest of the listing still stands.
        let warnings =
            (out.exit_code != 0 && !stderr.trim().is_empty()).then(|| stderr.trim().to_string());
        if let Some(w) = &warnings {
            text.push_str(&format!("warnings:\n{w}\n"));
        }
        Ok(Reply {
            text,
            data: json!({ "entries": entries, "truncated": truncated, "warnings": warnings }),
        })
    }
}
