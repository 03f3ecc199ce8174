//! Dockerfile bases: the build context, the cache key, and building at most once per content.

mod cache;
mod context;
#[cfg(test)]
mod context_fuzz;
mod dockerfile;
mod frontend;
mod ignore;
mod key;
mod resolve;

pub use cache::BuiltImage;
pub(crate) use cache::{cache_dir, images, lock_file, prune};
pub(crate) use resolve::resolve;
