//! Progress of long engine operations (pulls and builds), delivered to a caller's callback.

use std::fmt;
use std::sync::Arc;

/// One progress event. Also logged through `tracing` at debug level.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A registry pull moved on.
    Pull {
        /// The image being pulled, fully qualified.
        image: String,
        /// The layer this event is about, if any.
        layer: Option<String>,
        /// The engine's status text (`Downloading`, `Pull complete`, …).
        status: String,
        /// Bytes done so far for this layer, if known.
        current: Option<u64>,
        /// Total bytes of this layer, if known.
        total: Option<u64>,
    },
    /// A Dockerfile build printed a line of output.
    Build {
        /// The tag being built.
        tag: String,
        /// One line of build output, without its trailing newline.
        line: String,
    },
    /// A dev container lifecycle hook (`onCreateCommand`, `postCreateCommand`, …) printed a
    /// line of output while the instance was being spawned.
    Hook {
        /// The hook, as the definition names it (`postCreateCommand`).
        hook: String,
        /// The entry's name when the hook is an object of parallel commands.
        entry: Option<String>,
        /// One line of output (stdout or stderr), without its trailing newline.
        line: String,
    },
    /// Something in the base was not applied (an unsupported `devcontainer.json` key, say).
    Warning {
        /// Where it comes from (the definition file).
        source: String,
        /// What was not applied, and why.
        message: String,
    },
}

impl Progress {
    /// A short stable name of the event's kind: `"pull"`, `"build"`, `"hook"` or `"warning"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Progress::Pull { .. } => "pull",
            Progress::Build { .. } => "build",
            Progress::Hook { .. } => "hook",
            Progress::Warning { .. } => "warning",
        }
    }

    /// The image being pulled, or the tag being built (fully qualified); for a hook, the hook's
    /// name; for a warning, its source.
    pub fn image(&self) -> &str {
        match self {
            Progress::Pull { image, .. } => image,
            Progress::Build { tag, .. } => tag,
            Progress::Hook { hook, .. } => hook,
            Progress::Warning { source, .. } => source,
        }
    }

    /// Pull: the layer this event is about, if any.
    pub fn layer(&self) -> Option<&str> {
        match self {
            Progress::Pull { layer, .. } => layer.as_deref(),
            _ => None,
        }
    }

    /// Pull: the engine's status text (`Downloading`, `Pull complete`, …).
    pub fn status(&self) -> Option<&str> {
        match self {
            Progress::Pull { status, .. } => Some(status),
            _ => None,
        }
    }

    /// Build or hook: one line of output, without its newline; warning: its message.
    pub fn line(&self) -> Option<&str> {
        match self {
            Progress::Build { line, .. } | Progress::Hook { line, .. } => Some(line),
            Progress::Warning { message, .. } => Some(message),
            _ => None,
        }
    }

    /// Pull: bytes done so far for this layer, if known.
    pub fn current(&self) -> Option<u64> {
        match self {
            Progress::Pull { current, .. } => *current,
            _ => None,
        }
    }

    /// Pull: total bytes of this layer, if known.
    pub fn total(&self) -> Option<u64> {
        match self {
            Progress::Pull { total, .. } => *total,
            _ => None,
        }
    }
}

/// A shareable progress callback.
#[derive(Clone)]
pub struct ProgressFn(Arc<dyn Fn(&Progress) + Send + Sync>);

impl ProgressFn {
    /// Wraps a closure.
    pub fn new(f: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        ProgressFn(Arc::new(f))
    }

    /// Delivers one event to the callback and to `tracing`.
    pub(crate) fn emit(this: Option<&ProgressFn>, event: Progress) {
        tracing::debug!(?event, "progress");
        if let Some(f) = this {
            (f.0)(&event);
        }
    }
}

impl fmt::Debug for ProgressFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProgressFn(..)")
    }
}

impl<F: Fn(&Progress) + Send + Sync + 'static> From<F> for ProgressFn {
    fn from(f: F) -> Self {
        ProgressFn::new(f)
    }
}
