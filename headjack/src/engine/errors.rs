//! Every classification of engine answers: bollard errors and HTTP statuses to [`ErrorKind`],
//! and the engine texts headjack has to read (Podman's 500s, pull and build output, the
//! runtime's report of a command it could not start).

use bollard::errors::Error as BollardError;

use crate::error::{Error, ErrorKind};

/// Maps a bollard error to headjack's, saying what was being done.
pub(crate) fn map_err(what: &str, e: BollardError) -> Error {
    let (kind, detail) = match &e {
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } => {
            let kind = kind_of_status(*status_code, message);
            (
                kind,
                format!("engine answered {status_code}: {}", message.trim()),
            )
        }
        BollardError::RequestTimeoutError => (
            ErrorKind::Timeout,
            "the engine did not answer in time; it may be overloaded or frozen (raise the bound \
             with Client::with_timeout)"
                .to_string(),
        ),
        BollardError::SocketNotFoundError(p) => (
            ErrorKind::EngineUnavailable,
            format!("engine socket {p} is gone"),
        ),
        // Every way of losing the engine (refused, reset, closed mid-stream) is one kind, whatever
        // layer of the HTTP stack noticed it.
        BollardError::HyperResponseError { .. }
        | BollardError::HyperLegacyError { .. }
        | BollardError::HttpClientError { .. }
        | BollardError::IOError { .. } => (
            ErrorKind::EngineUnavailable,
            format!(
                "lost the connection to the engine: {}; check that it is running (a restarted \
                 engine stops what was running through it)",
                error_chain(&e)
            ),
        ),
        BollardError::DockerStreamError { error } => (ErrorKind::Internal, error.clone()),
        other => (ErrorKind::Internal, other.to_string()),
    };
    Error::new(kind, format!("{what}: {detail}")).with_source(e)
}

/// An error and its causes, joined: hyper's outer messages ("client error (Connect)") say little.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// The kind for an engine answer. Podman often answers 500 where Docker gives 404/409, so
/// the message is consulted too.
pub(crate) fn kind_of_status(status: u16, message: &str) -> ErrorKind {
    let m = message.to_ascii_lowercase();
    match status {
        404 => ErrorKind::NotFound,
        409 => ErrorKind::Conflict,
        400 => ErrorKind::InvalidArgument,
        _ if m.contains("already in use") => ErrorKind::Conflict,
        // Bad input the engine only finds out about when it uses it (Podman and Docker say 500).
        _ if m.contains("unable to find user") || m.contains("unable to find group") => {
            ErrorKind::InvalidArgument
        }
        _ if m.contains("not a directory") => ErrorKind::InvalidArgument,
        _ if m.contains("not found") || m.contains("no such") => ErrorKind::NotFound,
        _ => ErrorKind::Internal,
    }
}

pub(crate) fn is_404(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

pub(crate) fn pull_error(image: &str, e: BollardError) -> Error {
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    let (kind, advice) = if lower.contains("unauthorized")
        || lower.contains("authentication required")
        || lower.contains("denied")
    {
        (
            ErrorKind::PullFailed,
            "check the credentials for this registry in ~/.docker/config.json (docker login)",
        )
    } else if lower.contains("not found")
        || lower.contains("manifest unknown")
        || lower.contains("does not exist")
    {
        (ErrorKind::ImageNotFound, "check the image name and tag")
    } else {
        (
            ErrorKind::PullFailed,
            "check that the registry is reachable from the engine",
        )
    };
    let detail = match &e {
        BollardError::DockerStreamError { error } => error.clone(),
        BollardError::DockerResponseServerError { message, .. } => message.clone(),
        _ => text,
    };
    Error::new(
        kind,
        format!("pulling {image} failed: {}; {advice}", detail.trim()),
    )
    .with_source(e)
}

pub(crate) fn exec_error(container: &str, e: BollardError) -> Error {
    let err = map_err(&format!("running a command in container {container}"), e);
    // Podman says 500 "container state improper" where Docker says 409 "is not running".
    let not_running =
        err.message().contains("state improper") || err.message().contains("is not running");
    match err.kind() {
        _ if not_running => Error::new(
            ErrorKind::Conflict,
            format!(
                "{}; the container is not running (start or resume it first)",
                err.message()
            ),
        ),
        ErrorKind::Conflict => Error::new(
            ErrorKind::Conflict,
            format!(
                "{}; the container is not running (start or resume it first)",
                err.message()
            ),
        ),
        ErrorKind::Internal | ErrorKind::InvalidArgument => {
            Error::new(ErrorKind::ExecFailed, err.message().to_string())
        }
        _ => err,
    }
}

/// Why the runtime could not start a command. Docker and Podman report a missing executable as
/// exit 126/127 plus a runtime message instead of a shell's "command not found".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartFailure {
    /// Not on `$PATH`, or no such file.
    NotFound,
    /// Not executable, or a directory.
    NotExecutable,
    /// The working directory does not exist.
    WorkdirMissing,
    /// The user is not in the container's `/etc/passwd`.
    UnknownUser,
    /// The group is not in the container's `/etc/group`.
    UnknownGroup,
    /// The container stopped between the exec's creation and its start.
    ContainerStopped,
}

/// Whether the first output of an exec opens like the runtime's report of a failed start.
pub(crate) fn looks_like_start_failure(data: &[u8]) -> bool {
    let head = &data[..data.len().min(512)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    text.contains("exec failed")
        || text.contains("oci runtime")
        || text.contains("unable to find user")
        || text.contains("unable to find group")
}

/// Reads the runtime's report (and the exit code it gave) as a start failure, if it is one.
pub(crate) fn start_failure(code: i64, report: &[u8]) -> Option<StartFailure> {
    if code != 126 && code != 127 {
        return None;
    }
    let text = String::from_utf8_lossy(report).to_ascii_lowercase();
    if let Some(f) = identity_failure(&text) {
        return Some(f);
    }
    if !(text.contains("oci runtime") || text.contains("exec failed")) {
        return None;
    }
    if text.contains("stopped state") {
        Some(StartFailure::ContainerStopped)
    } else if text.contains("chdir to cwd") {
        Some(StartFailure::WorkdirMissing)
    } else if text.contains("not found") || text.contains("no such file or directory") {
        Some(StartFailure::NotFound)
    } else if text.contains("permission denied") || text.contains("is a directory") {
        Some(StartFailure::NotExecutable)
    } else {
        None
    }
}

/// An unknown user or group, as the runtime (or Podman's API, on start) words it.
pub(crate) fn identity_failure(lowercase_text: &str) -> Option<StartFailure> {
    if lowercase_text.contains("unable to find user") {
        Some(StartFailure::UnknownUser)
    } else if lowercase_text.contains("unable to find group") {
        Some(StartFailure::UnknownGroup)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_map_to_kinds() {
        let e = map_err(
            "x",
            BollardError::DockerResponseServerError {
                status_code: 404,
                message: "no such".into(),
            },
        );
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = map_err(
            "x",
            BollardError::DockerResponseServerError {
                status_code: 409,
                message: "in use".into(),
            },
        );
        assert_eq!(e.kind(), ErrorKind::Conflict);
        for (status, message, kind) in [
            (
                500,
                "unable to find user nosuch: no matching entries in passwd file",
                ErrorKind::InvalidArgument,
            ),
            (
                500,
                "extraction point is not a directory",
                ErrorKind::InvalidArgument,
            ),
            (500, "no such container", ErrorKind::NotFound),
            (500, "name is already in use", ErrorKind::Conflict),
            (500, "something else", ErrorKind::Internal),
            (400, "bad parameter", ErrorKind::InvalidArgument),
        ] {
            assert_eq!(kind_of_status(status, message), kind, "{status} {message}");
        }
        let e = map_err(
            "x",
            BollardError::IOError {
                err: std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset"),
            },
        );
        assert_eq!(e.kind(), ErrorKind::EngineUnavailable);
    }

    #[test]
    fn recognises_runtime_start_failures() {
        use StartFailure::*;
        let docker = b"OCI runtime exec failed: exec failed: container_linux.go:380: starting container process caused: exec: \"nope\": executable file not found in $PATH: unknown\r\n";
        let docker_perm = b"OCI runtime exec failed: exec failed: unable to start container process: exec: \"/etc/passwd\": permission denied: unknown\r\n";
        let crun = b"crun: executable file `nope` not found in $PATH: No such file or directory: OCI runtime attempted to invoke a command that was not found";
        let runc = b"runc: exec failed: unable to start container process: exec: \"/etc\": is a directory: OCI permission denied";
        let cases: &[(i64, &[u8], Option<StartFailure>)] = &[
            (126, docker, Some(NotFound)),
            (127, crun, Some(NotFound)),
            (126, docker_perm, Some(NotExecutable)),
            (126, runc, Some(NotExecutable)),
            (126, br#"OCI runtime exec failed: exec failed: unable to start container process: chdir to cwd ("/nonexistent") set in config.json failed: no such file or directory: unknown"#, Some(WorkdirMissing)),
            (127, br#"runc: exec failed: unable to start container process: chdir to cwd ("/x") set in config.json failed: no such file or directory: OCI runtime attempted to invoke a command that was not found"#, Some(WorkdirMissing)),
            (126, b"unable to find user nosuch: no matching entries in passwd file\r\n", Some(UnknownUser)),
            (126, b"unable to find group g: no matching entries in group file\r\n", Some(UnknownGroup)),
            (126, b"OCI runtime exec failed: exec failed: cannot exec in a stopped state: unknown\r\n", Some(ContainerStopped)),
            (1, docker, None),
            (0, docker, None),
            (127, b"sh: something else", None),
            (126, b"my-tool: permission denied", None),
        ];
        for (code, text, want) in cases {
            assert_eq!(
                start_failure(*code, text),
                *want,
                "{code} {}",
                String::from_utf8_lossy(text)
            );
        }
        assert!(looks_like_start_failure(docker));
        assert!(looks_like_start_failure(crun));
        assert!(!looks_like_start_failure(b"hello\n"));
    }
}
