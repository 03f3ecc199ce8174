//! Decisions and lifecycle events as JSON lines on stderr: the proxy container's log.

use std::io::Write;
use std::net::IpAddr;

use crate::control::LogEntry;

/// A decision about a connection from `ip` (of `instance`, when it is a registered source),
/// written when `enabled` (the proxy's `log_to_stderr`).
pub(crate) fn decision(enabled: bool, instance: Option<&str>, ip: IpAddr, entry: &LogEntry) {
    if !enabled {
        return;
    }
    let mut v = serde_json::to_value(entry).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.remove("seq");
        obj.remove("count");
        obj.insert("event".into(), "decision".into());
        obj.insert("source".into(), ip.to_string().into());
        obj.insert(
            "instance".into(),
            instance.map_or(serde_json::Value::Null, |i| i.into()),
        );
    }
    write_line(&v);
}

/// Something that happened to the proxy or a source, written when `enabled`.
pub(crate) fn lifecycle(enabled: bool, event: &str, mut fields: serde_json::Value) {
    if !enabled {
        return;
    }
    if let Some(obj) = fields.as_object_mut() {
        obj.insert("time".into(), crate::time::now().into());
        obj.insert("event".into(), event.into());
    }
    write_line(&fields);
}

fn write_line(v: &serde_json::Value) {
    let mut line = v.to_string();
    line.push('\n');
    // One write per line under the lock, so lines from concurrent tasks do not interleave.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}
