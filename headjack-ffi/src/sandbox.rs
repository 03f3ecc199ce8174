//! Sandbox features (issue 13): published ports, resource use, fork.

use std::ffi::c_char;

use headjack_core::spec::Publish;

use crate::args::arg_str;
use crate::blocking::block_on;
use crate::error::{fallible, headjack_error};
use crate::handle::{out_ref, write_opt};
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
