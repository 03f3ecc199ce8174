//! `headjack_client`: a connection to an engine; spawn, attach, list, sweep.

use std::ffi::{CString, c_char};
use std::ptr;

use headjack_core::Client;
use headjack_core::client::EngineKind;

use crate::boundary::{
    arg_mut, arg_ref, arg_str, block_on, cstring, guard, guard_or, opt_str, runtime,
};
use crate::error::{headjack_error, headjack_status};
use crate::instance::{headjack_instance, headjack_instance_list, instance_out, list_out};
use crate::memory::{headjack_string_list, string_list_out, string_out};
use crate::spec::headjack_spec;

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
    pub(crate) client: Client,
    info: headjack_engine_info,
    _strings: [CString; 5],
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
    guard(err, || {
        let host = opt_str(host, "host")?.filter(|h| !h.is_empty());
        let out = arg_mut(out, "out")?;
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
        *out = Box::into_raw(Box::new(headjack_client {
            client,
            info,
            _strings: strings,
        }));
        Ok(())
    })
}

/// Frees a client. NULL is ignored. Instances spawned or attached through it are not affected.
///
/// Not to be called while another thread uses the client.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_client_free(client: *mut headjack_client) {
    guard_or((), || {
        if client.is_null() {
            return;
        }
        // SAFETY: created by headjack_client_connect, freed once.
        let client = unsafe { Box::from_raw(client) };
        if crate::boundary::forked() {
            // Its connections belong to the parent's runtime: leave them alone.
            std::mem::forget(client);
            return;
        }
        match runtime() {
            Ok(rt) => {
                let _entered = rt.enter();
                drop(client);
            }
            Err(_) => drop(client),
        }
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
    guard_or(ptr::null(), || {
        // SAFETY: NULL or a live client.
        unsafe { client.as_ref() }.map_or(ptr::null(), |c| &c.info as *const headjack_engine_info)
    })
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
    guard(err, || {
        let client = arg_ref(client, "client")?;
        let spec = arg_ref(spec, "spec")?;
        let out = arg_mut(out, "out")?;
        let instance = spec.snapshot().run(|s| client.client.spawn(s))?;
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
    guard(err, || {
        let client = arg_ref(client, "client")?;
        let spec = arg_ref(spec, "spec")?;
        let out = arg_mut(out_reference, "out_reference")?;
        let spec = spec.snapshot();
        let resolved = spec.run(|s| async move { client.client.resolve(&s).await })?;
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
    guard(err, || {
        let client = arg_ref(client, "client")?;
        let id = arg_str(id_or_name, "id_or_name")?;
        let out = arg_mut(out, "out")?;
        let instance = block_on(client.client.attach(id))??;
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
    guard(err, || {
        let client = arg_ref(client, "client")?;
        let out = arg_mut(out, "out")?;
        let infos = block_on(client.client.list())??;
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
    guard(err, || {
        let client = arg_ref(client, "client")?;
        let removed = block_on(client.client.sweep())??;
        // SAFETY: NULL or writable.
        if let Some(out) = unsafe { out_removed.as_mut() } {
            *out = string_list_out(&removed);
        }
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
    guard(err, || {
        let client = arg_ref(client, "client")?;
        let removed = block_on(client.client.prune_images(keep_last))??;
        // SAFETY: NULL or writable.
        if let Some(out) = unsafe { out_removed.as_mut() } {
            *out = string_list_out(&removed);
        }
        Ok(())
    })
}
