//! Sandbox features (issue 13): published ports, limits, resource use, fork, named volumes,
//! checkpoints, exit reasons.

use std::ffi::{CString, c_char};
use std::ptr;

use headjack_core::spec::Publish;
use headjack_core::volume::VolumeInfo;

use crate::args::{arg_str, cstring};
use crate::blocking::block_on;
use crate::boundary::ffi_panic_boundary;
use crate::client::{client_ref, headjack_client};
use crate::error::{fallible, headjack_error};
use crate::exec::headjack_exit_status;
use crate::handle::{Castable, OwnershipBox, box_out, free_box, out_ref, write_opt};
use crate::instance::{headjack_instance, inst, instance_out};
use crate::memory::string_out;
use crate::spec::{headjack_spec, spec_ref};
use crate::status::headjack_status;

/// Publishes a container TCP port on the host. `publish` is `"PORT"` (a free host port on
/// 127.0.0.1, chosen by the engine), `"HOST_PORT:PORT"` or `"IP:HOST_PORT:PORT"`; read at once
/// (`HEADJACK_INVALID_ARGUMENT` when it cannot be), the rest is checked when spawning (port 0,
/// a port given twice, no network). `headjack_instance_port` says where it was published.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_add_publish(
    spec: *mut headjack_spec,
    publish: *const c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let spec = spec_ref(spec)?;
        let p = Publish::parse(arg_str(publish, "publish")?)?;
        spec.update(|s| s.publish_port(p))
    })
}

/// Where container TCP port `container_port` is published: on success `*out_host` is the host
/// address (a new string the caller frees with `headjack_string_free`; NULL `out_host` skips
/// it) and `*out_port` the host port. `HEADJACK_NOT_FOUND` when the port is not published.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_port(
    instance: *const headjack_instance,
    container_port: u16,
    out_host: *mut *mut c_char,
    out_port: *mut u16,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let instance = inst(instance)?;
        let out_port = out_ref(out_port, "out_port")?;
        let addr = block_on(instance.inner.port(container_port))??;
        *out_port = addr.port();
        write_opt(out_host, || string_out(&addr.ip().to_string()));
        Ok(())
    })
}

/// An instance's resource use at one moment (`headjack_instance_stats`). A value the engine
/// does not report is 0 (`memory_peak_bytes`, `memory_limit_bytes` without a limit).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct headjack_stats {
    /// CPU time of all its processes, in nanoseconds.
    pub cpu_time_ns: u64,
    /// Memory in use now, in bytes.
    pub memory_bytes: u64,
    /// The most memory used at once, in bytes (0: unknown).
    pub memory_peak_bytes: u64,
    /// The memory limit in bytes (0: none).
    pub memory_limit_bytes: u64,
    /// Processes and threads alive.
    pub pids: u64,
    /// Bytes received over the network.
    pub net_rx_bytes: u64,
    /// Bytes sent over the network.
    pub net_tx_bytes: u64,
    /// Bytes read from block devices.
    pub block_read_bytes: u64,
    /// Bytes written to block devices.
    pub block_write_bytes: u64,
}

/// Samples the instance's resource use into `*out`. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_stats(
    instance: *const headjack_instance,
    out: *mut headjack_stats,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let instance = inst(instance)?;
        let out = out_ref(out, "out")?;
        let s = block_on(instance.inner.stats())??;
        *out = headjack_stats {
            cpu_time_ns: s.cpu_time.as_nanos() as u64,
            memory_bytes: s.memory_bytes,
            memory_peak_bytes: s.memory_peak_bytes.unwrap_or(0),
            memory_limit_bytes: s.memory_limit_bytes.unwrap_or(0),
            pids: s.pids,
            net_rx_bytes: s.net_rx_bytes,
            net_tx_bytes: s.net_tx_bytes,
            block_read_bytes: s.block_read_bytes,
            block_write_bytes: s.block_write_bytes,
        };
        Ok(())
    })
}

/// Forks the instance: a new instance (`*out`, freed with `headjack_instance_free`, which
/// removes it) from a snapshot of this one's files, with the same settings. The snapshot image
/// is removed with the fork unless `keep_snapshot`. `HEADJACK_NOT_FOUND` for a removed
/// instance. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_fork(
    instance: *const headjack_instance,
    keep_snapshot: bool,
    out: *mut *mut headjack_instance,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let instance = inst(instance)?;
        let out = out_ref(out, "out")?;
        let fork = block_on(instance.inner.fork_with(keep_snapshot))??;
        *out = instance_out(fork);
        Ok(())
    })
}

/// Sets the size of the instance's `/dev/shm` in bytes (the engines' default is 64 MiB).
/// Checked when spawning (`HEADJACK_INVALID_ARGUMENT` below 4096 bytes).
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_shm_size(
    spec: *mut headjack_spec,
    bytes: u64,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || spec_ref(spec)?.update(|s| s.shm_size(bytes)))
}

/// Sets the CPUs the instance may run on, as the kernel writes them: `"0-3"`, `"0,2"`, `"1"`.
/// Checked when spawning (`HEADJACK_INVALID_ARGUMENT` for a malformed list).
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_cpuset(
    spec: *mut headjack_spec,
    cpus: *const c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let spec = spec_ref(spec)?;
        let cpus = arg_str(cpus, "cpus")?;
        spec.update(|s| s.cpuset(cpus))
    })
}

/// Adds a resource limit of every process in the instance: `name` as `ulimit` names it
/// (`"nofile"`, `"nproc"`, `"core"`, `"stack"`, `"memlock"`, `"fsize"`, `"cpu"`, ...), with its
/// `soft` and `hard` values; -1 is unlimited. A later limit of the same name replaces an
/// earlier one. Checked when spawning (`HEADJACK_INVALID_ARGUMENT` for an unknown name, or a
/// soft value above the hard one).
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_add_ulimit(
    spec: *mut headjack_spec,
    name: *const c_char,
    soft: i64,
    hard: i64,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let spec = spec_ref(spec)?;
        let name = arg_str(name, "name")?;
        spec.update(|s| s.ulimit(name, soft, hard))
    })
}

/// Sets the size of the instance's writable root filesystem in bytes (the engine's
/// `--storage-opt size`). Only some storage drivers can (overlay on xfs with `pquota`, btrfs,
/// zfs, devicemapper); elsewhere spawning fails with `HEADJACK_UNSUPPORTED` naming the engine's
/// storage driver. Checked when spawning (`HEADJACK_INVALID_ARGUMENT` below 1 MiB).
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_disk(
    spec: *mut headjack_spec,
    bytes: u64,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || spec_ref(spec)?.update(|s| s.disk(bytes)))
}

/// One named volume headjack created. Its strings belong to the list it is in.
#[repr(C)]
#[derive(Debug)]
pub struct headjack_volume {
    /// The engine's volume name.
    pub name: *const c_char,
    /// The volume driver (`local`).
    pub driver: *const c_char,
    /// Where the engine keeps it on its host.
    pub mountpoint: *const c_char,
    /// When the engine created it (RFC 3339, as the engine reports it).
    pub created_at: *const c_char,
    /// Unix seconds after which `headjack_client_sweep` may remove it; 0: never.
    pub expires: u64,
}

/// A list of named volumes; owned by the caller and freed by `headjack_volume_list_free`.
#[repr(C)]
#[derive(Debug)]
pub struct headjack_volume_list {
    /// The volumes; NULL when `len` is 0.
    pub items: *const headjack_volume,
    /// How many volumes `items` holds.
    pub len: usize,
}

impl Castable for headjack_volume_list {
    type Ownership = OwnershipBox;
    type RustType = VolumeListBox;
}

/// A `headjack_volume_list` with its storage (the list must stay first).
#[repr(C)]
pub(crate) struct VolumeListBox {
    list: headjack_volume_list,
    _items: Vec<headjack_volume>,
    _strings: Vec<CString>,
}

fn volume_list_out(volumes: Vec<VolumeInfo>) -> *mut headjack_volume_list {
    let mut strings = Vec::with_capacity(volumes.len() * 4);
    let mut items = Vec::with_capacity(volumes.len());
    for v in &volumes {
        let at = strings.len();
        for s in [&v.name, &v.driver, &v.mountpoint, &v.created_at] {
            strings.push(cstring(s));
        }
        items.push(headjack_volume {
            // The CStrings' heap buffers do not move when `strings` grows.
            name: strings[at].as_ptr(),
            driver: strings[at + 1].as_ptr(),
            mountpoint: strings[at + 2].as_ptr(),
            created_at: strings[at + 3].as_ptr(),
            expires: v.expires.unwrap_or(0),
        });
    }
    let list = headjack_volume_list {
        items: if items.is_empty() {
            ptr::null()
        } else {
            items.as_ptr()
        },
        len: items.len(),
    };
    box_out::<headjack_volume_list>(VolumeListBox {
        list,
        _items: items,
        _strings: strings,
    })
}

/// The named volumes headjack created on this engine (`headjack_spec_add_volume_mount` creates
/// them when missing). On success `*out` is a new list the caller frees with
/// `headjack_volume_list_free`.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_client_volumes(
    client: *const headjack_client,
    out: *mut *mut headjack_volume_list,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let client = client_ref(client)?.client();
        let out = out_ref(out, "out")?;
        let volumes = block_on(client.volumes())??;
        *out = volume_list_out(volumes);
        Ok(())
    })
}

/// Frees a list of volumes and everything it holds. NULL is ignored.
///
/// Not to be called twice, nor while another thread uses the object.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_volume_list_free(list: *mut headjack_volume_list) {
    ffi_panic_boundary! { free_box(list) }
}

/// Removes named volume `name` and its data; removing a volume that does not exist does
/// nothing. `HEADJACK_CONFLICT` while an instance mounts it; `HEADJACK_INVALID_ARGUMENT` for a
/// name that cannot be a volume's, or a volume headjack did not create.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_client_remove_volume(
    client: *const headjack_client,
    name: *const c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let client = client_ref(client)?.client();
        let name = arg_str(name, "name")?;
        Ok(block_on(client.remove_volume(name))??)
    })
}

/// Saves the instance's processes with their memory as checkpoint `name`, leaving it running;
/// `headjack_client_restore` brings them back. Needs an engine that can (Docker in experimental
/// mode with CRIU or runsc; Podman with CRIU): otherwise `HEADJACK_UNSUPPORTED`, whose message
/// says why and what it needs. `HEADJACK_INVALID_ARGUMENT` for a bad name, `HEADJACK_NOT_FOUND`
/// for a removed instance.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_instance_checkpoint(
    instance: *const headjack_instance,
    name: *const c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let instance = inst(instance)?;
        let name = arg_str(name, "name")?;
        Ok(block_on(instance.inner.checkpoint(name))??)
    })
}

/// Restores stopped instance `id_or_name` from its checkpoint `name`
/// (`headjack_instance_checkpoint`): its processes continue from where they were. On success
/// `*out` is a new handle (kept when freed, as from `headjack_client_attach`).
/// `HEADJACK_UNSUPPORTED` when the engine cannot restore checkpoints (the message says why),
/// `HEADJACK_CONFLICT` while the instance runs, `HEADJACK_NOT_FOUND` for an unknown instance,
/// `HEADJACK_INVALID_ARGUMENT` for a bad name.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_client_restore(
    client: *const headjack_client,
    id_or_name: *const c_char,
    name: *const c_char,
    out: *mut *mut headjack_instance,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let client = client_ref(client)?.client();
        let id = arg_str(id_or_name, "id_or_name")?;
        let name = arg_str(name, "name")?;
        let out = out_ref(out, "out")?;
        let instance = block_on(client.restore(id, name))??;
        *out = instance_out(instance);
        Ok(())
    })
}

/// How a command ended, in words: `"killed: out of memory"` when the memory limit killed it,
/// `"timed out"`, `"killed by signal N"` or `"exited with code N"` (the same words as
/// `headjack_output.exit_reason`). A new string the caller frees with `headjack_string_free`;
/// NULL when `status` is NULL.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_exit_status_reason(status: *const headjack_exit_status) -> *mut c_char {
    ffi_panic_boundary! {
        // SAFETY: the caller passes NULL or a pointer to a readable `headjack_exit_status`.
        match unsafe { status.as_ref() } {
            None => ptr::null_mut(),
            Some(s) => string_out(&crate::exec::reason_of(s.code, s.timed_out, s.oom_killed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn reason(status: &headjack_exit_status) -> String {
        let p = headjack_exit_status_reason(status);
        // SAFETY: a new string from headjack, freed right after.
        let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
        crate::memory::headjack_string_free(p);
        s
    }

    #[test]
    fn exit_reasons_in_the_cores_words() {
        let st = |code, timed_out, oom_killed| headjack_exit_status {
            code,
            timed_out,
            oom_killed,
            kill_failed: false,
        };
        assert_eq!(reason(&st(137, false, true)), "killed: out of memory");
        assert_eq!(reason(&st(124, true, false)), "timed out");
        assert_eq!(reason(&st(143, false, false)), "killed by signal 15");
        assert_eq!(reason(&st(3, false, false)), "exited with code 3");
        assert!(headjack_exit_status_reason(ptr::null()).is_null());
    }

    #[test]
    fn volume_lists() {
        let empty = volume_list_out(Vec::new());
        // SAFETY: a live list.
        let l = unsafe { &*empty };
        assert!(l.items.is_null() && l.len == 0);
        headjack_volume_list_free(empty);
        let v = VolumeInfo {
            name: "cache".into(),
            driver: "local".into(),
            mountpoint: "/var/lib/x".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            expires: Some(7),
            labels: Default::default(),
        };
        let list = volume_list_out(vec![v.clone(), v]);
        // SAFETY: a live list of two.
        unsafe {
            assert_eq!((*list).len, 2);
            let second = &*(*list).items.add(1);
            assert_eq!(CStr::from_ptr(second.name), c"cache");
            assert_eq!(CStr::from_ptr(second.created_at), c"2026-01-01T00:00:00Z");
            assert_eq!(second.expires, 7);
        }
        headjack_volume_list_free(list);
    }
}
