//! Dockerfile bases: the build context, the cache key, and building at most once per content.

// The allowances are for items used by the build integration (resolve.rs), not all wired yet.
#[allow(dead_code)]
mod context;
#[allow(dead_code)]
mod dockerfile;
#[allow(dead_code)]
mod ignore;
#[allow(dead_code)]
mod key;
mod resolve;

pub use resolve::BuiltImage;
pub(crate) use resolve::{images, prune, resolve, resolve_default};
