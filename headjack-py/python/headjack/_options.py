"""The keyword arguments that describe an instance, defined once.

``spawn``, ``pool`` and ``resolve`` take them, on ``Client``, ``AsyncClient`` and the module-level
``headjack.spawn`` alike: the stubs type their ``**kwargs`` with ``Unpack[SpawnOptions]``, the
native module applies them in this order (``_headjack._SPAWN_OPTIONS``), and a test checks that
the two lists, both faces, the stubs and the README agree. ``None`` always means "not given".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Optional, Sequence, TypedDict, Union

if TYPE_CHECKING:
    import os

    from ._headjack import Mount

    StrPath = Union[str, "os.PathLike[str]"]

ProgressEvent = dict[str, Any]
"""One pull or build event: ``{"kind": "pull", "image", "layer", "status", "current", "total"}``
or ``{"kind": "build", "tag", "line"}``; while spawning a devcontainer.json base, also
``{"kind": "hook", "hook", "entry", "line"}`` (a lifecycle hook's output) and
``{"kind": "warning", "source", "message"}`` (something of it not applied)."""


class SpawnOptions(TypedDict, total=False):
    """Keyword arguments of ``spawn``, ``pool`` and ``resolve`` (sync and asyncio alike)."""

    base_dir: Optional[StrPath]
    """Directory that relative paths (Dockerfile, workspace, bind mounts) resolve against;
    default: the current directory."""

    name: Optional[str]
    """Container name, unique on the engine; default ``headjack-<instance id>``."""

    workspace: Optional[StrPath]
    """Host directory bind-mounted at ``/workspace`` (or ``workspace_target``), which becomes the
    working directory."""

    workspace_read_only: Optional[bool]
    """Mount the workspace read-only (needs ``workspace``)."""

    workspace_target: Optional[str]
    """Where the workspace is mounted instead of ``/workspace`` (needs ``workspace``)."""

    mounts: Optional[Sequence[Mount]]
    """Extra mounts: ``Mount.bind(...)``, ``Mount.volume(...)``, ``Mount.tmpfs(...)``."""

    env: Optional[Mapping[str, str]]
    """Environment variables of the container and every command run in it."""

    user: Optional[str]
    """User commands run as unless they say otherwise (``name``, ``uid`` or ``uid:gid``)."""

    workdir: Optional[str]
    """Working directory; default: the workspace if any, else the image's."""

    labels: Optional[Mapping[str, str]]
    """Container labels (``io.headjack.*`` keys are reserved)."""

    cpus: Optional[float]
    """CPU limit in cores (e.g. ``1.5``)."""

    memory: Optional[int]
    """Memory limit in bytes (swap limited to the same); a command the limit kills is reported
    with ``oom_killed``."""

    pids: Optional[int]
    """Maximum number of processes (default 4096)."""

    network: Optional[str]
    """``"bridge"`` (the default), ``"none"``, or the name of an existing engine network."""

    runtime: Optional[str]
    """Engine runtime, e.g. ``"runsc"`` for gVisor."""

    pull: Optional[Literal["missing", "always", "never"]]
    """When an image base is pulled: ``"missing"`` (the default), ``"always"`` or ``"never"``."""

    platform: Optional[str]
    """Platform to pull or build for, e.g. ``"linux/amd64"``."""

    expires_after: Optional[float]
    """Seconds after which ``sweep`` may remove the instance even if its owner still runs (at most
    100 years)."""

    readiness: Optional[Sequence[str]]
    """A command (argv) spawning waits on until it exits 0 inside the container."""

    readiness_timeout: Optional[float]
    """Seconds the readiness command gets before spawning fails with ``HeadjackTimeoutError``
    (default 60)."""

    readiness_interval: Optional[float]
    """Seconds between readiness attempts (default 0.1)."""

    progress: Optional[Callable[[ProgressEvent], object]]
    """Called with each pull or build event, on the calling thread (the event loop's, for
    asyncio); an exception in it is reported as unraisable and does not stop the work."""

    hardened: Optional[bool]
    """All capabilities dropped, read-only root filesystem with a tmpfs ``/tmp``, and no network
    unless ``network`` names one."""

    allow_privileged: Optional[bool]
    """Allow a privileged container when the base asks for one (a devcontainer.json with
    ``privileged: true``); refused otherwise."""

    detached: Optional[bool]
    """The instance outlives this process: no owner, so ``sweep`` removes it only once
    ``expires_after`` has passed (combine with ``keep()``)."""

    init: Optional[Sequence[str]]
    """Keep-alive command (default: the image's ``io.headjack.init`` label, else
    ``sleep infinity``)."""

    egress: Optional[Mapping[Literal["allow", "deny"], Sequence[str]]]
    """Egress policy, enforced fail-closed by headjack's egress proxy: ``{"allow": [patterns]}``
    (only these hosts: ``"pypi.org"``, ``"*.pythonhosted.org"``, ``"github.com:443"``,
    ``"10.0.0.0/8"``) or ``{"deny": [patterns]}`` (all but these). The instance sits on a network
    of its own with no route out; not with ``network="none"`` or a named network."""
    publish: Optional[Sequence[Union[int, str]]]
    """Container TCP ports to publish on the host: ``8080`` (a free host port on 127.0.0.1),
    ``"9000:8080"`` or ``"0.0.0.0:9000:8080"``; ``Instance.port(8080)`` says where."""

    volumes: Optional[Mapping[str, str]]
    """Named volumes to mount, ``{name: "/path"}`` (``"/path:ro"`` read-only): created when
    missing, kept after the instance."""

    shm_size: Optional[int]
    """Size of ``/dev/shm`` in bytes."""

    cpuset: Optional[str]
    """The CPUs the instance may use, e.g. ``"0-1"``."""

    ulimits: Optional[Mapping[str, Union[int, tuple[int, int]]]]
    """Resource limits of every process, as ``ulimit`` names them: ``{"nofile": (soft, hard)}``, or
    one int for both (``{"core": 0}``); ``-1`` is unlimited. Names: ``nofile``, ``nproc``,
    ``core``, ``stack``, ``memlock``, ``fsize``, ``cpu``, ... (an unknown one is refused)."""

    disk: Optional[int]
    """Size of the writable root filesystem in bytes (at least 1 MiB). Only some storage drivers
    can (overlay on xfs with ``pquota``, btrfs, zfs); elsewhere ``spawn`` raises
    ``UnsupportedError`` naming the engine's driver."""
