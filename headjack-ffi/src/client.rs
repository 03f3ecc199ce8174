//! `headjack_client`: a connection to an engine; spawn, attach, list, sweep.

use std::ffi::{CString, c_char};
use std::ptr;
use std::sync::RwLock;

use headjack_core::Client;
use headjack_core::client::EngineKind;

use crate::args::{arg_millis, arg_str, cstring, opt_str};
use crate::blocking::block_on;
use crate::boundary::ffi_panic_boundary;
use crate::error::{fallible, headjack_error};
use crate::handle::{Castable, OwnershipBox, box_out, free_box, out_ref, try_ref, write_opt};
use crate::instance::{headjack_instance, headjack_instance_list, instance_out, list_out};
use crate::memory::{headjack_string_list, string_list_out, string_out};
use crate::spec::{headjack_spec, spec_ref};
use crate::status::{Failure, headjack_status};

/// Which kind of engine answered.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum headjack_engine_kind {
    /// Docker Engine (moby).
    HEADJACK_ENGINE_DOCKER = 1,
    /// Podman's Docker-compatible API.
    HEADJACK_ENGINE_PODMAN = 2,
    /// An engine this version of headjack does not name.
    HEADJACK_ENGINE_OTHER = 99,
}

/// What `headjack_client_info` reports about the connected engine. Owned by the client: valid
/// until `headjack_client_free`; never free it or its strings.
#[repr(C)]
#[derive(Debug)]
pub struct headjack_engine_info {
    /// Docker or Podman.
    pub kind: headjack_engine_kind,
    /// The engine's own version, e.g. `"20.10.24"` or `"4.3.1"`.
    pub version: *const c_char,
    /// The negotiated API version used for every request, e.g. `"1.41"`.
    pub api_version: *const c_char,
    /// Where the engine was reached, e.g. `"unix:///var/run/docker.sock"`.
    pub host: *const c_char,
    /// The engine's operating system (`"linux"`).
    pub os: *const c_char,
    /// The engine's architecture (`"amd64"`, `"arm64"`).
    pub arch: *const c_char,
}

/// A connection to a container engine. Create it with `headjack_client_connect`, free it with
/// `headjack_client_free`. Thread-safe: one client may serve any number of threads at once;
/// share one per process. Instances spawned through it stay usable after it is freed.
pub struct headjack_client {
    _private: [u8; 0],
}

impl Castable for headjack_client {
    type Ownership = OwnershipBox;
    type RustType = ClientHandle;
    const ENGINE_STATE: bool = true;
}

/// What a `headjack_client` holds.
pub(crate) struct ClientHandle {
    /// Replaced (not mutated) by `headjack_client_set_timeout_ms`; calls clone it (cheap).
    client: RwLock<Client>,
    info: headjack_engine_info,
    _strings: [CString; 5],
}

impl ClientHandle {
    /// The core client, as configured now.
    pub(crate) fn client(&self) -> Client {
        self.client
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

pub(crate) fn client_ref<'a>(client: *const headjack_client) -> Result<&'a ClientHandle, Failure> {
    try_ref(client, "client")
}

/// Connects to a container engine and negotiates the API version.
///
/// `host` is `"unix:///path"`, `"tcp://host:port"` or `"http://..."`; NULL (or `""`) picks the
/// first engine that answers: `DOCKER_HOST` if set (and only it), else the Docker sockets, then
/// the Podman sockets. On success `*out` is a new client the caller frees with
/// `headjack_client_free`; on failure `*out` is untouched. `HEADJACK_ENGINE_UNAVAILABLE` when no
/// engine answers.
///
/// Thread-safe. Blocks until connected.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_client_connect(
    host: *const c_char,
    out: *mut *mut headjack_client,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let host = opt_str(host, "host")?.filter(|h| !h.is_empty());
        let out = out_ref(out, "out")?;
        let client = block_on(async {
            match host {
                Some(h) => Client::connect_to(h).await,
                None => Client::connect().await,
            }
        })??;
        let i = client.info();
        let strings = [&i.version, &i.api_version, &i.host, &i.os, &i.arch].map(|s| cstring(s));
        let kind = match i.kind {
            EngineKind::Docker => headjack_engine_kind::HEADJACK_ENGINE_DOCKER,
            EngineKind::Podman => headjack_engine_kind::HEADJACK_ENGINE_PODMAN,
            _ => headjack_engine_kind::HEADJACK_ENGINE_OTHER,
        };
        let info = headjack_engine_info {
            kind,
            version: strings[0].as_ptr(),
            api_version: strings[1].as_ptr(),
            host: strings[2].as_ptr(),
            os: strings[3].as_ptr(),
            arch: strings[4].as_ptr(),
        };
        *out = box_out::<headjack_client>(ClientHandle {
            client: RwLock::new(client),
            info,
            _strings: strings,
        });
        Ok(())
    })
}

/// Frees a client. NULL is ignored. Instances spawned or attached through it are not affected.
///
/// Not to be called while another thread uses the client.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_client_free(client: *mut headjack_client) {
    ffi_panic_boundary! { free_box(client) }
}

/// Bounds every engine call made through this client from now on, and through the instances
/// and pools it spawns or attaches from now on, to `ms` milliseconds (default 60 000): a call
/// the engine does not answer in time fails with `HEADJACK_TIMEOUT` instead of hanging (e.g.
/// when the engine is frozen). Transfers (build contexts, file copies, pulls, commits) have a
/// bound of their own (1 hour); a command's output is never bounded: give the command a
/// timeout (`headjack_command_set_timeout_ms`). `ms == 0` fails with
/// `HEADJACK_INVALID_ARGUMENT`.
///
/// Thread-safe: calls already in flight keep the bound they started with.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_client_set_timeout_ms(
    client: *const headjack_client,
    ms: u64,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let handle = client_ref(client)?;
        let timeout = arg_millis(ms, "ms")?;
        let mut current = handle.client.write().unwrap_or_else(|p| p.into_inner());
        *current = current.with_timeout(timeout);
        Ok(())
    })
}

/// The engine this client talks to. Owned by the client (valid until `headjack_client_free`).
/// NULL when `client` is NULL.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_client_info(
    client: *const headjack_client,
) -> *const headjack_engine_info {
    ffi_panic_boundary! {
        client_ref(client).map_or(ptr::null(), |c| &c.info as *const headjack_engine_info)
    }
}

/// Resolves the spec's base, creates and starts a container, and waits until it is ready (see
/// `headjack_spec_set_readiness`). Pulls or builds the base first when needed, reporting
/// progress to the spec's progress callback on this thread.
///
/// On success `*out` is a new instance the caller frees with `headjack_instance_free`, which
/// removes the container (unless `headjack_instance_keep` was called). On failure `*out` is
/// untouched and nothing is left behind. The spec is only read.
///
/// Thread-safe. Blocks until the instance is ready.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_client_spawn(
    client: *const headjack_client,
    spec: *const headjack_spec,
    out: *mut *mut headjack_instance,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let client = client_ref(client)?.client();
        let spec = spec_ref(spec)?;
        let out = out_ref(out, "out")?;
        let instance = spec
            .snapshot()
            .run(|s| async move { client.spawn(s).await })?;
        *out = instance_out(instance);
        Ok(())
    })
}

/// Resolves the spec's base to a local image without launching anything: pulls a registry image
/// (per the pull policy) or builds a Dockerfile unless its content was built before, reporting
/// progress to the spec's progress callback on this thread.
///
/// On success `*out_reference` is the image's fully qualified reference, a new string the caller
/// frees with `headjack_string_free`.
///
/// Thread-safe. Blocks until the image is there.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_client_resolve(
    client: *const headjack_client,
    spec: *const headjack_spec,
    out_reference: *mut *mut c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let client = client_ref(client)?.client();
        let spec = spec_ref(spec)?;
        let out = out_ref(out_reference, "out_reference")?;
        let resolved = spec
            .snapshot()
            .run(|s| async move { client.resolve(&s).await })?;
        *out = string_out(&resolved.reference);
        Ok(())
    })
}

/// A handle to an existing instance, by headjack instance ID, container name or container ID.
///
/// The handle is *kept*: `headjack_instance_free` does not remove the container (this handle did
/// not create it); call `headjack_instance_remove` to remove it. On success `*out` is a new
/// instance the caller frees with `headjack_instance_free`. `HEADJACK_NOT_FOUND` when there is no
/// such instance, or the container was not created by headjack.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_client_attach(
    client: *const headjack_client,
    id_or_name: *const c_char,
    out: *mut *mut headjack_instance,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let client = client_ref(client)?.client();
        let id = arg_str(id_or_name, "id_or_name")?;
        let out = out_ref(out, "out")?;
        let instance = block_on(client.attach(id))??;
        *out = instance_out(instance);
        Ok(())
    })
}

/// Every headjack instance on this engine (of any owner). On success `*out` is a new list the
/// caller frees with `headjack_instance_list_free`.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_client_list(
    client: *const headjack_client,
    out: *mut *mut headjack_instance_list,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let client = client_ref(client)?.client();
        let out = out_ref(out, "out")?;
        let infos = block_on(client.list())??;
        *out = list_out(infos);
        Ok(())
    })
}

/// Removes the instances whose owner process on this host is gone, or whose expiry passed.
///
/// When `out_removed` is not NULL, on success `*out_removed` is a new list of the removed
/// instance IDs, which the caller frees with `headjack_string_list_free`.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_client_sweep(
    client: *const headjack_client,
    out_removed: *mut *mut headjack_string_list,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let client = client_ref(client)?.client();
        let removed = block_on(client.sweep())??;
        write_opt(out_removed, || string_list_out(&removed));
        Ok(())
    })
}

/// Removes all but the `keep_last` most recently used images headjack built (images in use by a
/// container are kept; images headjack did not build are never touched).
///
/// When `out_removed` is not NULL, on success `*out_removed` is a new list of the removed image
/// references, which the caller frees with `headjack_string_list_free`.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_client_prune_images(
    client: *const headjack_client,
    keep_last: usize,
    out_removed: *mut *mut headjack_string_list,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let client = client_ref(client)?.client();
        let removed = block_on(client.prune_images(keep_last))??;
        write_opt(out_removed, || string_list_out(&removed));
        Ok(())
    })
}
