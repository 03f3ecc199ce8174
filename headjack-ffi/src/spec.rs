//! `headjack_spec`: what to launch, built with setters.

use std::ffi::{c_char, c_void};
use std::future::Future;
use std::ptr;
use std::sync::Mutex;
use std::time::Duration;

use headjack_core::spec::{PullPolicy, Readiness};
use headjack_core::{Base, Mount, Network, Progress, Spec};

use crate::args::{arg_argv, arg_path, arg_str, cstring, opt_path};
use crate::blocking::block_on;
use crate::boundary::ffi_panic_boundary;
use crate::error::{fallible, headjack_error};
use crate::handle::{Castable, OwnershipBox, box_out, free_box, try_ref};
use crate::status::{Failure, headjack_status};

/// What a progress event is about.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum headjack_progress_kind {
    /// A registry pull moved on (`image`, `layer`, `status`, `current`, `total` are set).
    HEADJACK_PROGRESS_PULL = 1,
    /// A Dockerfile build printed a line (`image` is the tag being built, `line` is set).
    HEADJACK_PROGRESS_BUILD = 2,
    /// A devcontainer.json lifecycle hook printed a line while spawning (`image` is the hook's
    /// name, e.g. `postCreateCommand`; `line` is set).
    HEADJACK_PROGRESS_HOOK = 3,
    /// Something the base asked for is not applied (`image` is its source, the definition
    /// file; `line` is the message).
    HEADJACK_PROGRESS_WARNING = 4,
}

/// One progress event of a pull or a build. It and its strings are valid only during the
/// callback: copy what you keep.
#[repr(C)]
#[derive(Debug)]
pub struct headjack_progress {
    /// Pull or build.
    pub kind: headjack_progress_kind,
    /// The image being pulled, or the tag being built (fully qualified).
    pub image: *const c_char,
    /// Pull: the layer this event is about; NULL if none. Build: NULL.
    pub layer: *const c_char,
    /// Pull: the engine's status text (`Downloading`, `Pull complete`, ...). Build: NULL.
    pub status: *const c_char,
    /// Build: one line of output, without its newline. Pull: NULL.
    pub line: *const c_char,
    /// Pull: bytes done so far for this layer; -1 when unknown (and for builds).
    pub current: i64,
    /// Pull: total bytes of this layer; -1 when unknown (and for builds).
    pub total: i64,
}

/// Receives progress events. Called on the thread that called the function that pulls or
/// builds (`headjack_client_spawn`, `headjack_client_resolve`), before that function returns,
/// with the `userdata` given to `headjack_spec_set_progress`. It must not call headjack
/// functions (they fail with `HEADJACK_CONFLICT`).
pub type headjack_progress_cb =
    Option<unsafe extern "C" fn(userdata: *mut c_void, event: *const headjack_progress)>;

/// A progress callback with its userdata, as the spec stores it.
#[derive(Clone, Copy)]
pub(crate) struct ProgressTarget {
    cb: unsafe extern "C" fn(*mut c_void, *const headjack_progress),
    userdata: *mut c_void,
}

impl ProgressTarget {
    /// Calls the C callback with `event`, flattened through the core's accessors.
    fn deliver(&self, event: &Progress) {
        let kind = match event.kind() {
            "pull" => headjack_progress_kind::HEADJACK_PROGRESS_PULL,
            "build" => headjack_progress_kind::HEADJACK_PROGRESS_BUILD,
            "hook" => headjack_progress_kind::HEADJACK_PROGRESS_HOOK,
            "warning" => headjack_progress_kind::HEADJACK_PROGRESS_WARNING,
            // A kind this version does not know: not part of the C ABI yet.
            _ => return,
        };
        let image = cstring(event.image());
        let [layer, status, line] =
            [event.layer(), event.status(), event.line()].map(|s| s.map(cstring));
        let ptr = |s: &Option<std::ffi::CString>| s.as_ref().map_or(ptr::null(), |s| s.as_ptr());
        let bytes = |n: Option<u64>| n.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let event = headjack_progress {
            kind,
            image: image.as_ptr(),
            layer: ptr(&layer),
            status: ptr(&status),
            line: ptr(&line),
            current: bytes(event.current()),
            total: bytes(event.total()),
        };
        // SAFETY: the caller registered this function with this userdata.
        unsafe { (self.cb)(self.userdata, &event) };
    }
}

/// What the spec setters build up: the core spec (every option lives there, order-free) and the
/// C progress callback, which the core cannot hold (it must be called on the caller's thread).
#[derive(Clone, Default)]
pub(crate) struct SpecState {
    spec: Spec,
    progress: Option<ProgressTarget>,
}

/// A description of an instance to launch: its base and options. Create it with
/// `headjack_spec_new`, configure it with the `headjack_spec_set_*` / `headjack_spec_add_*`
/// setters, pass it to `headjack_client_spawn` (as often as you like), free it with
/// `headjack_spec_free`.
///
/// A spec may be used from several threads (calls on it are serialised), but not freed while
/// in use.
pub struct headjack_spec {
    _private: [u8; 0],
}

impl Castable for headjack_spec {
    type Ownership = OwnershipBox;
    type RustType = SpecHandle;
}

/// What a `headjack_spec` holds.
#[derive(Default)]
pub(crate) struct SpecHandle {
    state: Mutex<SpecState>,
}

pub(crate) fn spec_ref<'a>(spec: *const headjack_spec) -> Result<&'a SpecHandle, Failure> {
    try_ref(spec, "spec")
}

/// The body of a setter taking one string: checks `spec`, then `value` (named `what`).
fn set_str(
    spec: *const headjack_spec,
    value: *const c_char,
    what: &str,
    err: *mut *mut headjack_error,
    apply: impl FnOnce(Spec, &str) -> Spec,
) -> headjack_status {
    fallible(err, || {
        let spec = spec_ref(spec)?;
        let value = arg_str(value, what)?;
        spec.update(|s| apply(s, value))
    })
}

/// The body of a setter taking a `key` and a `value` string.
fn set_pair(
    spec: *const headjack_spec,
    key: *const c_char,
    value: *const c_char,
    err: *mut *mut headjack_error,
    apply: impl FnOnce(Spec, &str, &str) -> Spec,
) -> headjack_status {
    fallible(err, || {
        let spec = spec_ref(spec)?;
        let key = arg_str(key, "key")?;
        let value = arg_str(value, "value")?;
        spec.update(|s| apply(s, key, value))
    })
}

impl SpecHandle {
    fn with(&self, f: impl FnOnce(&mut SpecState) -> Result<(), Failure>) -> Result<(), Failure> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut st)
    }

    pub(crate) fn update(&self, f: impl FnOnce(Spec) -> Spec) -> Result<(), Failure> {
        self.with(|st| {
            let spec = std::mem::take(&mut st.spec);
            st.spec = f(spec);
            Ok(())
        })
    }

    /// A copy of the current state.
    pub(crate) fn snapshot(&self) -> SpecState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl SpecState {
    /// Runs `f` with the core spec on the caller's thread, delivering the progress events the
    /// core emits (from any thread) to the C callback on the caller's thread.
    pub(crate) fn run<T, F, Fut>(self, f: F) -> Result<T, Failure>
    where
        F: FnOnce(Spec) -> Fut,
        Fut: Future<Output = headjack_core::Result<T>>,
    {
        let SpecState {
            mut spec, progress, ..
        } = self;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Progress>();
        if progress.is_some() {
            spec = spec.progress(move |p: &Progress| {
                let _ = tx.send(p.clone());
            });
        } else {
            drop(tx);
        }
        let deliver = |p: &Progress| {
            if let Some(t) = &progress {
                t.deliver(p);
            }
        };
        block_on(async move {
            let fut = f(spec);
            tokio::pin!(fut);
            loop {
                tokio::select! {
                    biased;
                    Some(event) = rx.recv() => deliver(&event),
                    result = &mut fut => {
                        while let Ok(event) = rx.try_recv() {
                            deliver(&event);
                        }
                        break result;
                    }
                }
            }
        })?
        .map_err(Failure::from)
    }
}

/// A new spec: the default base, bridge network, default limits. Never NULL (aborts only if
/// memory is exhausted). Free it with `headjack_spec_free`.
///
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_new() -> *mut headjack_spec {
    ffi_panic_boundary! { box_out::<headjack_spec>(SpecHandle::default()) }
}

/// Frees a spec. NULL is ignored. Instances spawned from it are not affected.
///
/// Not to be called twice, nor while another thread uses the object.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_free(spec: *mut headjack_spec) {
    ffi_panic_boundary! { free_box(spec) }
}

/// Sets the base: `""` for the default base, an image reference (`debian:bookworm-slim`,
/// `ghcr.io/org/img@sha256:...`), or a Dockerfile path (`./Dockerfile`, `ci/dev.Containerfile`),
/// classified by the core's `Base::parse` rules.
///
/// The string is checked now: an invalid reference or a missing Dockerfile fails with
/// `HEADJACK_INVALID_BASE` and leaves the spec unchanged. Relative paths resolve against the
/// spec's base directory, so call `headjack_spec_set_base_dir` first if you use one.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_base(
    spec: *mut headjack_spec,
    base: *const c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let spec = spec_ref(spec)?;
        let base = arg_str(base, "base")?;
        spec.with(|st| {
            let with_base = st.spec.clone().base(base);
            with_base.check_base()?;
            st.spec = with_base;
            Ok(())
        })
    })
}

/// Sets the base to the Dockerfile at `path`, taken as given: no guessing from the name and no
/// existence check now (a missing file fails the build). `context` is the build context
/// directory; NULL means the Dockerfile's directory. Relative paths resolve against the spec's
/// base directory when spawning. Both may be any bytes but NUL.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_dockerfile(
    spec: *mut headjack_spec,
    path: *const c_char,
    context: *const c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let spec = spec_ref(spec)?;
        let path = arg_path(path, "path")?;
        let context = opt_path(context, "context")?;
        let mut d = Base::dockerfile(path);
        if let Some(c) = context {
            d = d.context(c);
        }
        spec.update(|s| s.base(d))
    })
}

/// Sets a build argument (`--build-arg key=value`) of the Dockerfile base; a later value for a
/// key replaces an earlier one. Build arguments are part of the build's cache key. Build
/// options may be set before or after the base; spawning fails with `HEADJACK_INVALID_ARGUMENT`
/// when the base is not a Dockerfile.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_build_arg(
    spec: *mut headjack_spec,
    key: *const c_char,
    value: *const c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    set_pair(spec, key, value, err, |s, k, v| s.build_arg(k, v))
}

/// Builds the Dockerfile base up to stage `stage` (`--target`). Spawning fails with
/// `HEADJACK_INVALID_ARGUMENT` when the base is not a Dockerfile.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_build_target(
    spec: *mut headjack_spec,
    stage: *const c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    set_str(spec, stage, "stage", err, |s, v| s.build_target(v))
}

/// Builds the Dockerfile base for `platform` (`--platform`, e.g. `"linux/amd64"`); the same as
/// `headjack_spec_set_platform`, which also applies to the images the build pulls.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_build_platform(
    spec: *mut headjack_spec,
    platform: *const c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    headjack_spec_set_platform(spec, platform, err)
}

/// Ignores the engine's layer cache and headjack's build cache when building the Dockerfile
/// base (`--no-cache`). Spawning fails with `HEADJACK_INVALID_ARGUMENT` when the base is not a
/// Dockerfile.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_build_no_cache(
    spec: *mut headjack_spec,
    no_cache: bool,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        spec_ref(spec)?.update(|s| s.build_no_cache(no_cache))
    })
}

/// Sets the directory that relative paths (Dockerfile, workspace, bind mounts) resolve
/// against. Default: the process's current directory. Any bytes but NUL (need not be UTF-8).
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_base_dir(
    spec: *mut headjack_spec,
    dir: *const c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let spec = spec_ref(spec)?;
        let dir = arg_path(dir, "dir")?;
        spec.update(|s| s.base_dir(dir))
    })
}

/// Sets the container name (unique on the engine). Default: `headjack-<instance id>`.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_name(
    spec: *mut headjack_spec,
    name: *const c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    set_str(spec, name, "name", err, |s, v| s.name(v))
}

/// Bind-mounts host directory `dir` at `/workspace` (read-only when `read_only`), which becomes
/// the working directory. `dir` may be any bytes but NUL.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_workspace(
    spec: *mut headjack_spec,
    dir: *const c_char,
    read_only: bool,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let spec = spec_ref(spec)?;
        let dir = arg_path(dir, "dir")?;
        spec.update(|s| s.workspace(dir).workspace_read_only(read_only))
    })
}

/// Changes where the workspace is mounted (default `/workspace`). Before or after
/// `headjack_spec_set_workspace`; spawning without a workspace fails with
/// `HEADJACK_INVALID_ARGUMENT`.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_workspace_target(
    spec: *mut headjack_spec,
    target: *const c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    set_str(spec, target, "target", err, |s, v| s.workspace_target(v))
}

/// Adds a bind mount of host file or directory `host` (any bytes but NUL; relative paths
/// resolve against the base directory) at absolute container path `target`.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_add_bind_mount(
    spec: *mut headjack_spec,
    host: *const c_char,
    target: *const c_char,
    read_only: bool,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let spec = spec_ref(spec)?;
        let host = arg_path(host, "host")?;
        let target = arg_str(target, "target")?;
        let m = Mount::bind(host, target);
        spec.update(|s| s.mount(if read_only { m.read_only() } else { m }))
    })
}

/// Adds engine volume `name` (created by the engine if missing) at container path `target`.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_add_volume_mount(
    spec: *mut headjack_spec,
    name: *const c_char,
    target: *const c_char,
    read_only: bool,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let spec = spec_ref(spec)?;
        let name = arg_str(name, "name")?;
        let target = arg_str(target, "target")?;
        let m = Mount::volume(name, target);
        spec.update(|s| s.mount(if read_only { m.read_only() } else { m }))
    })
}

/// Adds a fresh in-memory filesystem at container path `target`, bounded to `size_bytes`
/// (0: the engine's default bound).
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_add_tmpfs_mount(
    spec: *mut headjack_spec,
    target: *const c_char,
    size_bytes: u64,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let spec = spec_ref(spec)?;
        let target = arg_str(target, "target")?;
        spec.update(|s| s.mount(Mount::tmpfs(target, (size_bytes > 0).then_some(size_bytes))))
    })
}

/// Sets environment variable `key` to `value` for the container and every command run in it.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_env(
    spec: *mut headjack_spec,
    key: *const c_char,
    value: *const c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    set_pair(spec, key, value, err, |s, k, v| s.env(k, v))
}

/// Sets the user commands run as unless they say otherwise (`name`, `uid` or `uid:gid`).
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_user(
    spec: *mut headjack_spec,
    user: *const c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    set_str(spec, user, "user", err, |s, v| s.user(v))
}

/// Sets the working directory. Default: the workspace mount if any, else the image's.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_workdir(
    spec: *mut headjack_spec,
    dir: *const c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    set_str(spec, dir, "dir", err, |s, v| s.workdir(v))
}

/// Adds a label to the container (`io.headjack.*` keys are reserved: spawning fails).
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_label(
    spec: *mut headjack_spec,
    key: *const c_char,
    value: *const c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    set_pair(spec, key, value, err, |s, k, v| s.label(k, v))
}

/// Sets the CPU limit in cores (e.g. 1.5). Checked when spawning.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_cpus(
    spec: *mut headjack_spec,
    cpus: f64,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || spec_ref(spec)?.update(|s| s.cpus(cpus)))
}

/// Sets the memory limit in bytes (swap is limited to the same amount). Checked when spawning.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_memory(
    spec: *mut headjack_spec,
    bytes: u64,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || spec_ref(spec)?.update(|s| s.memory(bytes)))
}

/// Sets the maximum number of processes (default 4096). Checked when spawning.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_pids(
    spec: *mut headjack_spec,
    limit: i64,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || spec_ref(spec)?.update(|s| s.pids(limit)))
}

/// Sets the network: `"bridge"` (the default), `"none"`, or the name of an existing engine
/// network.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_network(
    spec: *mut headjack_spec,
    network: *const c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let spec = spec_ref(spec)?;
        let network = arg_str(network, "network")?;
        spec.update(|s| s.network(Network::parse(network)))
    })
}

/// Sets the engine runtime, e.g. `"runsc"` for gVisor.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_runtime(
    spec: *mut headjack_spec,
    runtime: *const c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    set_str(spec, runtime, "runtime", err, |s, v| s.runtime(v))
}

/// Sets when an image base is pulled: `"missing"` (the default), `"always"` or `"never"`.
/// Anything else fails with `HEADJACK_INVALID_ARGUMENT`.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_pull_policy(
    spec: *mut headjack_spec,
    policy: *const c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let spec = spec_ref(spec)?;
        let policy = PullPolicy::parse(arg_str(policy, "policy")?)?;
        spec.update(|s| s.pull(policy))
    })
}

/// Sets the platform to pull or build for, e.g. `"linux/amd64"`.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_platform(
    spec: *mut headjack_spec,
    platform: *const c_char,
    err: *mut *mut headjack_error,
) -> headjack_status {
    set_str(spec, platform, "platform", err, |s, v| s.platform(v))
}

/// Lets `headjack_client_sweep` remove the instance `ms` milliseconds after it was spawned,
/// even if its owner process still runs.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_expires_after_ms(
    spec: *mut headjack_spec,
    ms: u64,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        spec_ref(spec)?.update(|s| s.expires_after(Duration::from_millis(ms)))
    })
}

/// Makes spawning wait until `argv[0..argc]` exits 0 inside the container, retried every
/// `interval_ms` (0: 100 ms) for up to `timeout_ms`; spawning fails with `HEADJACK_TIMEOUT`
/// otherwise.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_readiness(
    spec: *mut headjack_spec,
    argv: *const *const c_char,
    argc: usize,
    timeout_ms: u64,
    interval_ms: u64,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let spec = spec_ref(spec)?;
        let argv = arg_argv(argv, argc, "argv")?;
        let mut check = Readiness::command(argv, Duration::from_millis(timeout_ms));
        if interval_ms > 0 {
            check = check.interval(Duration::from_millis(interval_ms));
        }
        spec.update(|s| s.readiness(check))
    })
}

/// Receives pull and build progress through `cb(userdata, event)`, called on the thread that
/// spawns. `cb` NULL removes the callback. `userdata` is passed through untouched and must stay
/// valid while the spec may be used to spawn.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_progress(
    spec: *mut headjack_spec,
    cb: headjack_progress_cb,
    userdata: *mut c_void,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        spec_ref(spec)?.with(|st| {
            st.progress = cb.map(|cb| ProgressTarget { cb, userdata });
            Ok(())
        })
    })
}

/// Turns the hardened preset on or off: all capabilities dropped, read-only root filesystem
/// with a tmpfs `/tmp`, and no network unless `headjack_spec_set_network` names one.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_hardened(
    spec: *mut headjack_spec,
    hardened: bool,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || spec_ref(spec)?.update(|s| s.hardened(hardened)))
}

/// Makes the instance outlive this process: it gets no owner, so `headjack_client_sweep` removes
/// it only once its lifetime (`headjack_spec_set_expires_after_ms`) has passed. Combine with
/// `headjack_instance_keep` (freeing the handle still removes it otherwise). `false` turns it
/// off again.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_detached(
    spec: *mut headjack_spec,
    detached: bool,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || spec_ref(spec)?.update(|s| s.detached(detached)))
}

/// Runs commands through the engine's exec instead of headjack's in-container agent (which,
/// by default, is every instance's PID 1: commands start in about a millisecond and a timeout
/// kills every process a command started). `false` turns it off again.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_engine_exec(
    spec: *mut headjack_spec,
    engine_exec: bool,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        spec_ref(spec)?.update(|s| s.engine_exec(engine_exec))
    })
}

/// Overrides the keep-alive command (default: the image's `io.headjack.init` label, else
/// `sleep infinity`).
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_init(
    spec: *mut headjack_spec,
    argv: *const *const c_char,
    argc: usize,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let spec = spec_ref(spec)?;
        let argv = arg_argv(argv, argc, "argv")?;
        spec.update(|s| s.init(argv))
    })
}

/// The patterns `patterns[0..count]` (NULL when `count` is 0), each a UTF-8 string.
pub(crate) fn arg_patterns(
    patterns: *const *const c_char,
    count: usize,
) -> Result<Vec<String>, Failure> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if patterns.is_null() {
        return Err(Failure::invalid(format!(
            "patterns is NULL but count is {count}"
        )));
    }
    (0..count)
        .map(|i| {
            // SAFETY: the caller promises `count` readable elements.
            let p = unsafe { *patterns.add(i) };
            arg_str(p, &format!("patterns[{i}]")).map(str::to_string)
        })
        .collect()
}

/// The egress policy of `patterns[0..count]`: an allow-list when `allow`, else a deny-list.
pub(crate) fn egress_of(
    allow: bool,
    patterns: *const *const c_char,
    count: usize,
) -> Result<headjack_core::Egress, Failure> {
    let patterns = arg_patterns(patterns, count)?;
    Ok(if allow {
        headjack_core::Egress::allow(patterns)
    } else {
        headjack_core::Egress::deny(patterns)
    })
}

/// Sets an egress policy: with `allow`, the instance reaches only hosts matching
/// `patterns[0..count]` (e.g. `"pypi.org"`, `"*.pythonhosted.org"`, `"github.com:443"`,
/// `"10.0.0.0/8"`; `count` 0: nothing at all); without, everything but them. Enforced
/// fail-closed by headjack's egress proxy: the instance sits on a network of its own with no
/// route out. `patterns` may be NULL when `count` is 0. Invalid patterns, or a policy combined
/// with network `"none"` or a named network, fail the spawn with `HEADJACK_INVALID_ARGUMENT`.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_egress(
    spec: *mut headjack_spec,
    allow: bool,
    patterns: *const *const c_char,
    count: usize,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        let spec = spec_ref(spec)?;
        let egress = egress_of(allow, patterns, count)?;
        spec.update(|s| s.egress(egress))
    })
}

/// Allows a privileged container when the base asks for one (a devcontainer.json with
/// `privileged: true`); without it such a base is refused with `HEADJACK_INVALID_BASE`.
///
/// Thread-safe: calls on one spec are serialised.
#[unsafe(no_mangle)]
pub extern "C" fn headjack_spec_set_allow_privileged(
    spec: *mut headjack_spec,
    allow: bool,
    err: *mut *mut headjack_error,
) -> headjack_status {
    fallible(err, || {
        spec_ref(spec)?.update(|s| s.allow_privileged(allow))
    })
}
