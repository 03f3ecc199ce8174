//! Handle ownership, stated once per handle type (after rustls-ffi's `Castable`).
//!
//! A C handle type (`headjack_client`, `headjack_exec`, ...) is a pointer to its Rust value,
//! allocated either as a `Box` (one owner; its `_free` drops it) or as an `Arc` (shared: a call
//! in progress on another thread holds its own reference, so the handle may be freed meanwhile).
//! Each type says which, and what it points to, by implementing [`Castable`]; the helpers below
//! are the only places that turn those pointers back into references or owners, so every
//! `unsafe` about handle lifetimes is here.

use std::sync::Arc;

use headjack_core::blocking;

use crate::status::Failure;

/// One owner: created by [`box_out`], dropped by [`free_box`].
pub(crate) struct OwnershipBox;

/// Shared: created by [`arc_out`], borrowed for a call by [`try_arc`], released by
/// [`free_arc`].
pub(crate) struct OwnershipArc;

/// A C handle type: how it is owned and what it points to.
pub(crate) trait Castable {
    /// [`OwnershipBox`] or [`OwnershipArc`].
    type Ownership;
    /// The Rust value behind the pointer.
    type RustType;
    /// The value holds engine state (connections, containers) that belongs to the process that
    /// made it. In a `fork()`ed child, freeing such a handle abandons its memory instead of
    /// dropping it: the connections are registered with the parent's runtime and the
    /// containers are the parent's.
    const ENGINE_STATE: bool = false;
}

/// Moves `value` to C as a new `Box` handle.
pub(crate) fn box_out<C: Castable<Ownership = OwnershipBox>>(value: C::RustType) -> *mut C {
    Box::into_raw(Box::new(value)).cast()
}

/// Moves `value` to C as a new `Arc` handle.
pub(crate) fn arc_out<C: Castable<Ownership = OwnershipArc>>(value: C::RustType) -> *const C {
    Arc::into_raw(Arc::new(value)).cast()
}

/// The value behind a live handle of either ownership; NULL is an error naming `what`.
pub(crate) fn try_ref<'a, C: Castable>(
    handle: *const C,
    what: &str,
) -> Result<&'a C::RustType, Failure> {
    // SAFETY: the caller passes NULL or a live handle of this type (the header's contract),
    // which points to a `C::RustType` made by `box_out` / `arc_out`.
    unsafe { handle.cast::<C::RustType>().as_ref() }
        .ok_or_else(|| Failure::invalid(format!("{what} is NULL")))
}

/// A reference of its own to the value behind a live `Arc` handle, which keeps the value alive
/// for the whole call even if another thread frees the handle meanwhile.
pub(crate) fn try_arc<C: Castable<Ownership = OwnershipArc>>(
    handle: *const C,
    what: &str,
) -> Result<Arc<C::RustType>, Failure> {
    if handle.is_null() {
        return Err(Failure::invalid(format!("{what} is NULL")));
    }
    let raw = handle.cast::<C::RustType>();
    // SAFETY: a live handle made by `arc_out`: one more strong reference, owned by the Arc
    // made from it.
    unsafe {
        Arc::increment_strong_count(raw);
        Ok(Arc::from_raw(raw))
    }
}

/// Drops the value behind a `Box` handle (abandons it in a forked child when it holds engine
/// state). NULL is ignored.
pub(crate) fn free_box<C: Castable<Ownership = OwnershipBox>>(handle: *mut C) {
    if handle.is_null() {
        return;
    }
    // SAFETY: made by `box_out` and freed once (the header's contract).
    let value = unsafe { Box::from_raw(handle.cast::<C::RustType>()) };
    release::<C, _>(value);
}

/// Gives up the handle's own reference to an `Arc` handle's value and returns it, so the
/// caller can finish the value's work (the memory goes once calls in progress return). `None`
/// for NULL, and in a forked child for values holding engine state (abandoned).
pub(crate) fn free_arc<C: Castable<Ownership = OwnershipArc>>(
    handle: *const C,
) -> Option<Arc<C::RustType>> {
    if handle.is_null() {
        return None;
    }
    // SAFETY: made by `arc_out`; the handle's reference is given up once (the header's
    // contract).
    let value = unsafe { Arc::from_raw(handle.cast::<C::RustType>()) };
    if C::ENGINE_STATE && blocking::is_forked_child() {
        std::mem::forget(value);
        return None;
    }
    Some(value)
}

fn release<C: Castable, T>(value: T) {
    if C::ENGINE_STATE && blocking::is_forked_child() {
        std::mem::forget(value);
    } else {
        drop(value);
    }
}

/// Fills an out-parameter the caller may pass as NULL; `value` is only made when it is not
/// (so an allocation handed to C is never made and lost).
pub(crate) fn write_opt<T>(out: *mut T, value: impl FnOnce() -> T) {
    // SAFETY: the caller passes NULL or a pointer to writable storage for a `T`.
    if let Some(slot) = unsafe { out.as_mut() } {
        *slot = value();
    }
}

/// The storage behind a required out-parameter; NULL is an error naming `what`. Checked before
/// any work, so a NULL out-parameter never costs an engine call.
pub(crate) fn out_ref<'a, T>(out: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    // SAFETY: the caller passes NULL or a pointer to writable storage for a `T`.
    unsafe { out.as_mut() }.ok_or_else(|| Failure::invalid(format!("{what} is NULL")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    struct BoxHandle;
    impl Castable for BoxHandle {
        type Ownership = OwnershipBox;
        type RustType = Counted;
    }

    struct ArcHandle;
    impl Castable for ArcHandle {
        type Ownership = OwnershipArc;
        type RustType = Counted;
        const ENGINE_STATE: bool = true;
    }

    #[test]
    fn box_handles_are_dropped_once_and_null_is_refused() {
        let drops = Arc::new(AtomicUsize::new(0));
        let h = box_out::<BoxHandle>(Counted(drops.clone()));
        assert!(try_ref(h.cast_const(), "h").is_ok());
        free_box(h);
        free_box::<BoxHandle>(std::ptr::null_mut());
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        let e = try_ref::<BoxHandle>(std::ptr::null(), "thing")
            .err()
            .unwrap();
        assert!(e.message.contains("thing is NULL"));
    }

    #[test]
    fn an_arc_handle_outlives_its_free_while_borrowed() {
        let drops = Arc::new(AtomicUsize::new(0));
        let h = arc_out::<ArcHandle>(Counted(drops.clone()));
        let borrowed = try_arc(h, "h").unwrap();
        drop(free_arc(h));
        assert_eq!(
            drops.load(Ordering::SeqCst),
            0,
            "freed while a call held it"
        );
        drop(borrowed);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert!(free_arc::<ArcHandle>(std::ptr::null()).is_none());
        assert!(try_arc::<ArcHandle>(std::ptr::null(), "h").is_err());
    }

    #[test]
    fn out_parameters() {
        let mut slot = 0u32;
        write_opt(&mut slot, || 5);
        write_opt(std::ptr::null_mut(), || -> u32 {
            panic!("not made for NULL")
        });
        assert_eq!(slot, 5);
        assert!(out_ref::<u32>(std::ptr::null_mut(), "out").is_err());
        *out_ref(&mut slot, "out").unwrap() = 9;
        assert_eq!(slot, 9);
    }
}
