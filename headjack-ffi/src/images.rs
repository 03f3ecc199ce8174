//! `headjack_image_list`: the images headjack built (Dockerfile bases), for listing and pruning.

use std::ffi::{CString, c_char};
use std::ptr;

use headjack_core::client::BuiltImage;

use crate::args::cstring;
use crate::blocking::block_on;
use crate::boundary::ffi_panic_boundary;
use crate::client::{client_ref, headjack_client};
use crate::error::{fallible, headjack_error};
use crate::handle::{Castable, OwnershipBox, box_out, free_box, out_ref};
use crate::status::headjack_status;

/// One image headjack built from a Dockerfile. Its strings belong to the list it is in.
#[repr(C)]
#[derive(Debug)]
pub struct headjack_image {
    /// The tag, `localhost/headjack/<slug>:<key16>` (usable as a base).
    pub reference: *const c_char,
    /// The engine's image ID (`sha256:…`).
    pub id: *const c_char,
    /// The cache key (in full when this machine built or used it, else the tag's 16 digits).
    pub key: *const c_char,
    /// The Dockerfile it was built from; empty when this machine has no record of it.
    pub source: *const c_char,
    /// When it was built (unix seconds).
    pub created: i64,
    /// When a resolve on this machine last used it (unix seconds); 0 when unknown.
    pub last_used: i64,
    /// Size in bytes, as the engine reports it.
    pub size: i64,
}

/// A list of built images, most recently used first; owned by the caller and freed by
/// `headjack_image_list_free`.
#[repr(C)]
#[derive(Debug)]
pub struct headjack_image_list {
    /// The images; NULL when `len` is 0.
    pub items: *const headjack_image,
    /// How many images `items` holds.
    pub len: usize,
}

impl Castable for headjack_image_list {
    type Ownership = OwnershipBox;
    type RustType = ImageListBox;
}

/// A `headjack_image_list` with its storage (the list must stay first).
#[repr(C)]
pub(crate) struct ImageListBox {
    list: headjack_image_list,
    _items: Vec<headjack_image>,
    _strings: Vec<CString>,
}

fn image_list_out(images: Vec<BuiltImage>) -> *mut headjack_image_list {
    let mut strings = Vec::with_capacity(images.len() * 4);
    let mut items = Vec::with_capacity(images.len());
    for i in &images {
        let at = strings.len();
        for s in [&i.reference, &i.id, &i.key, &i.source] {
            strings.push(cstring(s));
        }
        items.push(headjack_image {
            // The CStrings' heap buffers do not move when `strings` grows.
            reference: strings[at].as_ptr(),
            id: strings[at + 1].as_ptr(),
            key: strings[at + 2].as_ptr(),
            source: strings[at + 3].as_ptr(),
            created: i.created,
            last_used: i.last_used.unwrap_or(0),
            size: i.size,
        });
    }
    let list = headjack_image_list {
        items: if items.is_empty() {
            ptr::null()
        } else {
            items.as_ptr()
        },
        len: items.len(),
    };
    box_out::<headjack_image_list>(ImageListBox {
        list,
        _items: items,
        _strings: strings,
    })
}

/// The images headjack built on this engine (tagged `localhost/headjack/…`), most recently used
/// first. Images headjack did not build are not listed. On success `*out` is a new list the
/// caller frees with `headjack_image_list_free`.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_client_images(
    client: *const headjack_client,
    out: *mut *mut headjack_image_list,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let client = client_ref(client)?.client();
        let out = out_ref(out, "out")?;
        let images = block_on(client.images())??;
        *out = image_list_out(images);
        Ok(())
    })
}

/// Frees a list of images and everything it holds. NULL is ignored.
///
/// Not to be called twice, nor while another thread uses the object.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_image_list_free(list: *mut headjack_image_list) {
    ffi_panic_boundary! { free_box(list) }
}
