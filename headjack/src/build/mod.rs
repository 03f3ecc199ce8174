//! Dockerfile bases: the build context, the cache key, and building at most once per content.

mod cache;
mod context;
mod dockerfile;
mod frontend;
mod ignore;
mod key;
mod resolve;

pub use cache::BuiltImage;
pub(crate) use cache::{cache_dir, images, prune};
pub(crate) use resolve::resolve;
