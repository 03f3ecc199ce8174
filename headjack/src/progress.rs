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
}

impl Progress {
    /// A short stable name of the event's kind: `"pull"` or `"build"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Progress::Pull { .. } => "pull",
            Progress::Build { .. } => "build",
        }
    }

    /// The image being pulled, or the tag being built (fully qualified).
    pub fn image(&self) -> &str {
        match self {
            Progress::Pull { image, .. } => image,
            Progress::Build { tag, .. } => tag,
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

    /// Build: one line of output, without its newline.
    pub fn line(&self) -> Option<&str> {
        match self {
            Progress::Build { line, .. } => Some(line),
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
