//! Dockerfile bases: the build context, the cache key, and building at most once per content.

mod resolve;

pub use resolve::BuiltImage;
pub(crate) use resolve::{images, prune, resolve, resolve_default};
