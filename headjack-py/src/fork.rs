//! Values that belong to the process that made them. After `os.fork()` the child inherits
//! every headjack object, but not the runtime its connections are registered with nor the
//! containers: dropping them there could unregister the parent's sockets from its event queue
//! (which the child shares) and would remove the parent's containers. [`ParentOnly`] abandons
//! its value in a forked child instead of dropping it.

use std::mem::ManuallyDrop;
use std::ops::Deref;

pub(crate) use headjack::blocking::is_forked_child;

/// A value dropped only in the process that made it (abandoned in a `fork()` child).
pub(crate) struct ParentOnly<T>(ManuallyDrop<T>);

impl<T> ParentOnly<T> {
    pub(crate) fn new(value: T) -> Self {
        ParentOnly(ManuallyDrop::new(value))
    }
}

impl<T> Deref for ParentOnly<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> Drop for ParentOnly<T> {
    fn drop(&mut self) {
        if !is_forked_child() {
            // SAFETY: dropped once, here; never used again.
            unsafe { ManuallyDrop::drop(&mut self.0) }
        }
    }
}
