//! `headjack_instance`: a running environment, and what `list` / `inspect` report about one.

use std::ffi::{CString, c_char};
use std::ptr;
use std::time::Duration;

use headjack_core::instance::InstanceInfo;
use headjack_core::{Instance, Status};

use crate::args::{arg_bytes, arg_mode, arg_path, arg_str, cstring, opt_str};
use crate::blocking::block_on;
use crate::boundary::ffi_panic_boundary;
use crate::error::{fallible, headjack_error};
use crate::handle::{Castable, OwnershipBox, box_out, free_box, out_ref, try_ref, write_opt};
use crate::memory::{headjack_buffer, headjack_string_list, string_list_out, string_out};
use crate::status::{Failure, headjack_status};

/// A running environment (a container). Created by `headjack_client_spawn` or
/// `headjack_client_attach`; freed by `headjack_instance_free`, which removes the container
/// unless `headjack_instance_keep` was called (attached handles are kept).
///
/// Thread-safe: any number of threads may run commands, move files and query it at once. Not to
/// be freed while another thread uses it. After `headjack_instance_remove` every operation fails
/// with `HEADJACK_NOT_FOUND` (free the handle as usual).
pub struct headjack_instance {
    _private: [u8; 0],
}

impl Castable for headjack_instance {
    type Ownership = OwnershipBox;
    type RustType = InstanceHandle;
    const ENGINE_STATE: bool = true;
}

/// What a `headjack_instance` holds: the core instance (whose drop removes the container,
/// unless kept) and its names as C strings.
pub(crate) struct InstanceHandle {
    pub(crate) inner: Instance,
    id: CString,
    container_id: CString,
    name: CString,
    image: CString,
    warnings: Vec<CString>,
}

/// Moves a core instance to C.
pub(crate) fn instance_out(inner: Instance) -> *mut headjack_instance {
    box_out::<headjack_instance>(InstanceHandle {
        id: cstring(inner.id()),
        container_id: cstring(inner.container_id()),
        name: cstring(inner.name()),
        image: cstring(inner.image()),
        warnings: inner.warnings().iter().map(|w| cstring(w)).collect(),
        inner,
    })
}

pub(crate) fn inst<'a>(instance: *const headjack_instance) -> Result<&'a InstanceHandle, Failure> {
    try_ref(instance, "instance")
}

/// A C string of a live instance, or NULL.
fn name_of(
    instance: *const headjack_instance,
    field: impl FnOnce(&InstanceHandle) -> &CString,
) -> *const c_char {
    inst(instance).map_or(ptr::null(), |i| field(i).as_ptr())
}

/// Frees an instance handle and removes its container (blocking until removed), unless
/// `headjack_instance_keep` was called or the handle came from `headjack_client_attach`. NULL is
/// ignored. A removal failure is logged (through `tracing`) and otherwise ignored; call
/// `headjack_instance_remove` first to see it.
///
/// In a `fork()`ed child of the process that created the handle, the container is left alone
/// (it belongs to the parent) and only the handle's memory is abandoned. May be called from a
/// callback (for another instance than the one whose command is streaming).
///
/// Not to be called twice, nor while another thread uses the object.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_free(instance: *mut headjack_instance) {
    ffi_panic_boundary! { free_box(instance) }
}

/// Keeps the container when the handle is freed (find it again with `headjack_client_attach`;
/// `headjack_client_sweep` still removes it once this process is gone or it expired).
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_keep(
    instance: *const headjack_instance,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        inst(instance)?.inner.keep();
        Ok(())
    })
}

/// Whether headjack's in-container agent runs as the instance's PID 1 (false for NULL, for
/// instances spawned with `headjack_spec_set_engine_exec`, or where it could not run).
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_has_agent(instance: *const headjack_instance) -> bool {
    ffi_panic_boundary! { inst(instance).is_ok_and(|i| i.inner.has_agent()) }
}

/// headjack's ID for this instance (label `io.headjack.instance`). Owned by the handle (valid
/// until `headjack_instance_free`); NULL when `instance` is NULL. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_id(instance: *const headjack_instance) -> *const c_char {
    ffi_panic_boundary! { name_of(instance, |i| &i.id) }
}

/// The engine's container ID. Owned by the handle; NULL when `instance` is NULL. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_container_id(
    instance: *const headjack_instance,
) -> *const c_char {
    ffi_panic_boundary! { name_of(instance, |i| &i.container_id) }
}

/// The container name. Owned by the handle; NULL when `instance` is NULL. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_name(instance: *const headjack_instance) -> *const c_char {
    ffi_panic_boundary! { name_of(instance, |i| &i.name) }
}

/// The fully qualified image reference the container runs. Owned by the handle; NULL when
/// `instance` is NULL. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_image(instance: *const headjack_instance) -> *const c_char {
    ffi_panic_boundary! { name_of(instance, |i| &i.image) }
}

/// Writes `data[0..len]` to absolute container path `path` with permission bits `mode` (e.g.
/// `0644`), creating missing parent directories. `data` may be NULL when `len` is 0.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_write_file(
    instance: *const headjack_instance,
    path: *const c_char,
    data: *const u8,
    len: usize,
    mode: u32,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let instance = inst(instance)?;
        let path = arg_str(path, "path")?;
        let data = arg_bytes(data, len, "data")?;
        let mode = arg_mode(mode, "mode")?;
        Ok(block_on(
            instance.inner.write_file_with_mode(path, data, mode),
        )??)
    })
}

/// Reads the regular file at absolute container path `path` into `*out`, a buffer the caller
/// frees with `headjack_buffer_free`. `HEADJACK_NOT_FOUND` when it does not exist.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_read_file(
    instance: *const headjack_instance,
    path: *const c_char,
    out: *mut headjack_buffer,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let instance = inst(instance)?;
        let path = arg_str(path, "path")?;
        let out = out_ref(out, "out")?;
        let data = block_on(instance.inner.read_file(path))??;
        *out = headjack_buffer::from_vec(data);
        Ok(())
    })
}

/// Copies host file or directory `host_path` (any bytes but NUL) into container directory
/// `container_dir` (which must exist), keeping its name: `"./src"` into `"/workspace"` gives
/// `/workspace/src`. Symlinks are copied as links.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_copy_in(
    instance: *const headjack_instance,
    host_path: *const c_char,
    container_dir: *const c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let instance = inst(instance)?;
        let src = arg_path(host_path, "host_path")?;
        let dest = arg_str(container_dir, "container_dir")?;
        Ok(block_on(instance.inner.copy_in(src, dest))??)
    })
}

/// Copies container file or directory `container_path` into host directory `host_dir` (created
/// if missing), keeping its name. Entries that would land outside `host_dir` are refused and
/// nothing is written.
///
/// When `out_written` is not NULL, on success `*out_written` is a new list of the host paths
/// written, which the caller frees with `headjack_string_list_free`.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_copy_out(
    instance: *const headjack_instance,
    container_path: *const c_char,
    host_dir: *const c_char,
    out_written: *mut *mut headjack_string_list,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let instance = inst(instance)?;
        let src = arg_str(container_path, "container_path")?;
        let dest = arg_path(host_dir, "host_dir")?;
        let written = block_on(instance.inner.copy_out(src, dest))??;
        write_opt(out_written, || {
            let paths: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
            string_list_out(&paths)
        });
        Ok(())
    })
}

/// The output of the container's keep-alive process so far (standard output and error in the
/// order they arrived), in `*out`, a buffer the caller frees with `headjack_buffer_free`.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_logs(
    instance: *const headjack_instance,
    out: *mut headjack_buffer,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let instance = inst(instance)?;
        let out = out_ref(out, "out")?;
        let chunks = block_on(instance.inner.logs())??;
        *out =
            headjack_buffer::from_vec(chunks.iter().flat_map(|c| c.data.iter().copied()).collect());
        Ok(())
    })
}

/// Stops the container: SIGTERM, then SIGKILL after `grace_ms` milliseconds. Its files are
/// kept; `headjack_instance_start` brings it back. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_stop(
    instance: *const headjack_instance,
    grace_ms: u64,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        Ok(block_on(
            inst(instance)?.inner.stop(Duration::from_millis(grace_ms)),
        )??)
    })
}

/// Sends `signal` (e.g. `"SIGTERM"`; NULL means `"SIGKILL"`) to the container's main process.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_kill(
    instance: *const headjack_instance,
    signal: *const c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let instance = inst(instance)?;
        let signal = opt_str(signal, "signal")?.unwrap_or("SIGKILL");
        Ok(block_on(instance.inner.kill(signal))??)
    })
}

/// Starts a stopped container again. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_start(
    instance: *const headjack_instance,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || Ok(block_on(inst(instance)?.inner.start())??))
}

/// Restarts the container (stop with `grace_ms`, then start). Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_restart(
    instance: *const headjack_instance,
    grace_ms: u64,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        Ok(block_on(
            inst(instance)?
                .inner
                .restart(Duration::from_millis(grace_ms)),
        )??)
    })
}

/// Freezes every process of the container. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_pause(
    instance: *const headjack_instance,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || Ok(block_on(inst(instance)?.inner.pause())??))
}

/// Thaws a paused container. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_resume(
    instance: *const headjack_instance,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || Ok(block_on(inst(instance)?.inner.resume())??))
}

/// The state of an instance's container.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum headjack_state {
    /// Created, never started.
    HEADJACK_STATE_CREATED = 1,
    /// Running.
    HEADJACK_STATE_RUNNING = 2,
    /// Frozen by `headjack_instance_pause`.
    HEADJACK_STATE_PAUSED = 3,
    /// Being restarted.
    HEADJACK_STATE_RESTARTING = 4,
    /// Stopped; see the exit code.
    HEADJACK_STATE_EXITED = 5,
    /// Being removed.
    HEADJACK_STATE_REMOVING = 6,
    /// The engine gave up on it.
    HEADJACK_STATE_DEAD = 7,
    /// A state this version does not name (see the state name).
    HEADJACK_STATE_OTHER = 99,
}

/// The C state and exit code of a core status.
fn state_of(status: &Status) -> (headjack_state, i64) {
    use headjack_state::*;
    match status {
        Status::Created => (HEADJACK_STATE_CREATED, 0),
        Status::Running => (HEADJACK_STATE_RUNNING, 0),
        Status::Paused => (HEADJACK_STATE_PAUSED, 0),
        Status::Restarting => (HEADJACK_STATE_RESTARTING, 0),
        Status::Exited(code) => (HEADJACK_STATE_EXITED, *code),
        Status::Removing => (HEADJACK_STATE_REMOVING, 0),
        Status::Dead => (HEADJACK_STATE_DEAD, 0),
        _ => (HEADJACK_STATE_OTHER, 0),
    }
}

/// The container's state in `*out_state`, and (when `out_exit_code` is not NULL) the keep-alive
/// process's exit code in `*out_exit_code` (0 unless the state is `HEADJACK_STATE_EXITED`).
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_status(
    instance: *const headjack_instance,
    out_state: *mut headjack_state,
    out_exit_code: *mut i64,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let instance = inst(instance)?;
        let out = out_ref(out_state, "out_state")?;
        let status = block_on(instance.inner.status())??;
        let (state, code) = state_of(&status);
        *out = state;
        write_opt(out_exit_code, || code);
        Ok(())
    })
}

/// Saves the container's filesystem as image `reference` (e.g.
/// `"localhost/myagent/after-setup:1"`), usable as a base for later spawns.
///
/// When `out_reference` is not NULL, on success `*out_reference` is the image's fully qualified
/// reference, a new string the caller frees with `headjack_string_free`. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_commit(
    instance: *const headjack_instance,
    reference: *const c_char,
    out_reference: *mut *mut c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let instance = inst(instance)?;
        let reference = arg_str(reference, "reference")?;
        let image = block_on(instance.inner.commit(reference))??;
        write_opt(out_reference, || string_out(&image.to_string()));
        Ok(())
    })
}

/// Removes the container now (forcefully). Removing twice is harmless. Afterwards every
/// operation on the handle fails with `HEADJACK_NOT_FOUND`; it still has to be freed with
/// `headjack_instance_free`. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_remove(
    instance: *const headjack_instance,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || Ok(block_on(inst(instance)?.inner.remove())??))
}

/// What `headjack_client_list` and `headjack_instance_inspect` report about an instance. Owned
/// by the list or info object it came from; never free its strings.
#[repr(C)]
#[derive(Debug)]
pub struct headjack_instance_info {
    /// headjack's instance ID.
    pub id: *const c_char,
    /// The engine's container ID.
    pub container_id: *const c_char,
    /// The container name.
    pub name: *const c_char,
    /// The base as it was asked for.
    pub base: *const c_char,
    /// The image the container runs.
    pub image: *const c_char,
    /// `<host>/<pid>/<start time>` of the process that spawned it.
    pub owner: *const c_char,
    /// Its state.
    pub state: headjack_state,
    /// The state's name (`"running"`, `"exited"`, ...), also for `HEADJACK_STATE_OTHER`.
    pub state_name: *const c_char,
    /// The keep-alive process's exit code when the state is `HEADJACK_STATE_EXITED`, else 0.
    pub exit_code: i64,
    /// Unix seconds after which sweep may remove it; 0 when it does not expire.
    pub expires: u64,
    /// The container's label keys, sorted (`labels_len` of them).
    pub label_keys: *const *const c_char,
    /// The container's label values, in the order of `label_keys`.
    pub label_values: *const *const c_char,
    /// How many labels there are.
    pub labels_len: usize,
    /// The memory limit killed the container's main process (only `headjack_instance_inspect`
    /// reads it; in a `headjack_client_list` it is false).
    pub oom_killed: bool,
    /// Why the container stopped: `"killed: out of memory"` (only `headjack_instance_inspect`
    /// can tell), `"killed by signal N"`, `"exited with code N"` or `"dead (...)"`; NULL while
    /// it has not stopped.
    pub exit_reason: *const c_char,
}

/// A list of instances, owned by the caller and freed by `headjack_instance_list_free`.
#[repr(C)]
#[derive(Debug)]
pub struct headjack_instance_list {
    /// The instances; NULL when `len` is 0.
    pub items: *const headjack_instance_info,
    /// How many instances `items` holds.
    pub len: usize,
}

/// The strings an info points into.
struct InfoStore {
    _strings: Vec<CString>,
    _keys: Vec<*const c_char>,
    _values: Vec<*const c_char>,
}

fn info_parts(i: &InstanceInfo) -> (headjack_instance_info, InfoStore) {
    let (state, exit_code) = state_of(&i.status);
    let mut labels: Vec<(&String, &String)> = i.labels.iter().collect();
    labels.sort();
    let mut strings: Vec<CString> = [&i.id, &i.container_id, &i.name, &i.base, &i.image, &i.owner]
        .iter()
        .map(|s| cstring(s))
        .collect();
    strings.push(cstring(i.status.as_str()));
    let exit_reason = i.exit_reason().map(|r| {
        strings.push(cstring(&r));
        strings.len() - 1
    });
    let first_label = strings.len();
    for (k, v) in &labels {
        strings.push(cstring(k));
        strings.push(cstring(v));
    }
    let keys: Vec<*const c_char> = (0..labels.len())
        .map(|n| strings[first_label + 2 * n].as_ptr())
        .collect();
    let values: Vec<*const c_char> = (0..labels.len())
        .map(|n| strings[first_label + 2 * n + 1].as_ptr())
        .collect();
    let or_null = |v: &Vec<*const c_char>| {
        if v.is_empty() {
            ptr::null()
        } else {
            v.as_ptr()
        }
    };
    let info = headjack_instance_info {
        id: strings[0].as_ptr(),
        container_id: strings[1].as_ptr(),
        name: strings[2].as_ptr(),
        base: strings[3].as_ptr(),
        image: strings[4].as_ptr(),
        owner: strings[5].as_ptr(),
        state,
        state_name: strings[6].as_ptr(),
        exit_code,
        expires: i.expires.unwrap_or(0),
        label_keys: or_null(&keys),
        label_values: or_null(&values),
        labels_len: labels.len(),
        oom_killed: i.oom_killed,
        exit_reason: exit_reason.map_or(ptr::null(), |n| strings[n].as_ptr()),
    };
    (
        info,
        InfoStore {
            _strings: strings,
            _keys: keys,
            _values: values,
        },
    )
}

impl Castable for headjack_instance_list {
    type Ownership = OwnershipBox;
    type RustType = ListBox;
}

/// A `headjack_instance_list` with its storage (the list must stay first).
#[repr(C)]
pub(crate) struct ListBox {
    list: headjack_instance_list,
    _items: Vec<headjack_instance_info>,
    _stores: Vec<InfoStore>,
}

/// Moves a list of infos to C.
pub(crate) fn list_out(infos: Vec<InstanceInfo>) -> *mut headjack_instance_list {
    let (items, stores): (Vec<_>, Vec<_>) = infos.iter().map(info_parts).unzip();
    let list = headjack_instance_list {
        items: if items.is_empty() {
            ptr::null()
        } else {
            items.as_ptr()
        },
        len: items.len(),
    };
    box_out::<headjack_instance_list>(ListBox {
        list,
        _items: items,
        _stores: stores,
    })
}

/// Frees a list of instances and everything it holds. NULL is ignored.
///
/// Not to be called twice, nor while another thread uses the object.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_list_free(list: *mut headjack_instance_list) {
    ffi_panic_boundary! { free_box(list) }
}

impl Castable for headjack_instance_info {
    type Ownership = OwnershipBox;
    type RustType = InfoBox;
}

/// A `headjack_instance_info` with its storage (the info must stay first).
#[repr(C)]
pub(crate) struct InfoBox {
    info: headjack_instance_info,
    _store: InfoStore,
}

/// Everything headjack knows about this instance, in `*out`, a new info the caller frees with
/// `headjack_instance_info_free`. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_inspect(
    instance: *const headjack_instance,
    out: *mut *mut headjack_instance_info,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let instance = inst(instance)?;
        let out = out_ref(out, "out")?;
        let info = block_on(instance.inner.inspect())??;
        let (info, store) = info_parts(&info);
        *out = box_out::<headjack_instance_info>(InfoBox {
            info,
            _store: store,
        });
        Ok(())
    })
}

/// Frees an info returned by `headjack_instance_inspect` (not one inside a list). NULL is
/// ignored.
///
/// Not to be called twice, nor while another thread uses the object.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_info_free(info: *mut headjack_instance_info) {
    ffi_panic_boundary! { free_box(info) }
}

/// Replaces the egress policy of an instance spawned with one (`headjack_spec_set_egress`):
/// with `allow`, only hosts matching `patterns[0..count]`; without, all but them. Takes effect
/// for its next connection, request and DNS lookup. `HEADJACK_INVALID_ARGUMENT` for an invalid
/// pattern, `HEADJACK_CONFLICT` for an instance spawned without a policy. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_set_egress(
    instance: *const headjack_instance,
    allow: bool,
    patterns: *const *const c_char,
    count: usize,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let instance = inst(instance)?;
        let egress = crate::spec::egress_of(allow, patterns, count)?;
        Ok(block_on(instance.inner.set_egress(egress))??)
    })
}

/// The decisions of the instance's egress proxy, oldest first, into `*out` (a list the caller
/// frees with `headjack_string_list_free`): one JSON object per decision, e.g.
/// `{"seq":3,"time":"2026-11-30T21:53:55.863Z","via":"connect","host":"pypi.org","port":443,
/// "allowed":true,"reason":"allowed by pattern `pypi.org`","count":1}` (`via` is `http`,
/// `connect` or `dns`; `port` is null for DNS). `HEADJACK_CONFLICT` for an instance spawned
/// without a policy. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_egress_log(
    instance: *const headjack_instance,
    out: *mut *mut headjack_string_list,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let instance = inst(instance)?;
        let out = out_ref(out, "out")?;
        let log = block_on(instance.inner.egress_log())??;
        let lines: Vec<String> = log.iter().map(decision_json).collect();
        *out = string_list_out(&lines);
        Ok(())
    })
}

/// One decision as a JSON object.
fn decision_json(d: &headjack_core::EgressDecision) -> String {
    let s = |v: &str| {
        let mut o = String::from("\"");
        for c in v.chars() {
            match c {
                '"' => o.push_str("\\\""),
                '\\' => o.push_str("\\\\"),
                c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
                c => o.push(c),
            }
        }
        o.push('"');
        o
    };
    format!(
        "{{\"seq\":{},\"time\":{},\"via\":{},\"host\":{},\"port\":{},\"allowed\":{},\"reason\":{},\"count\":{}}}",
        d.seq,
        s(&d.time),
        s(&d.via),
        s(&d.host),
        d.port.map_or("null".to_string(), |p| p.to_string()),
        d.allowed,
        s(&d.reason),
        d.count
    )
}

/// How many warnings the instance's base gave: what it asked for and headjack did not apply
/// (a devcontainer.json's unsupported keys); 0 for NULL and for other bases. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_warning_count(instance: *const headjack_instance) -> usize {
    ffi_panic_boundary! { inst(instance).map_or(0, |i| i.warnings.len()) }
}

/// Warning `index` (0-based, below `headjack_instance_warning_count`): one message naming the
/// file, line, column and key. Owned by the handle (valid until `headjack_instance_free`); NULL
/// when `instance` is NULL or `index` is out of range. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_warning(
    instance: *const headjack_instance,
    index: usize,
) -> *const c_char {
    ffi_panic_boundary! {
        inst(instance)
            .ok()
            .and_then(|i| i.warnings.get(index))
            .map_or(ptr::null(), |w| w.as_ptr())
    }
}
