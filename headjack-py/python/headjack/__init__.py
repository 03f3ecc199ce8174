"""headjack: spawn isolated container environments in-process and drive them.

Sync API::

    import headjack

    with headjack.spawn(base="./Dockerfile", workspace=".") as env:
        r = env.exec(["pytest", "-q"], timeout=600)
        print(r.exit_code, r.stdout, r.stderr, r.timed_out)
    # the container is removed here, also when the block raised

asyncio API (every async method returns a coroutine, e.g. for ``asyncio.create_task``)::

    async with headjack.AsyncClient() as hj:
        async with await hj.spawn(base="debian:bookworm-slim") as env:
            r = await env.exec(["uname", "-a"])

Everything lives in the Rust core; this package is a thin binding over it.
"""

from __future__ import annotations

from ._options import SpawnOptions
from ._headjack import (
    AsyncClient,
    AsyncExecStream,
    AsyncInstance,
    AsyncLogStream,
    AsyncPool,
    AsyncStatsStream,
    BuildError,
    BuiltImage,
    Chunk,
    Client,
    ConflictError,
    Dockerfile,
    EgressDecision,
    EngineInfo,
    EngineUnavailableError,
    ExecError,
    ExecResult,
    ExecStream,
    ExecTimeoutError,
    ExitStatus,
    ForkedError,
    HeadjackError,
    HeadjackTimeoutError,
    ImageNotFoundError,
    Instance,
    InstanceInfo,
    InternalError,
    InvalidArgumentError,
    InvalidBaseError,
    LocalIOError,
    LogStream,
    Mount,
    NotFoundError,
    Pool,
    PullError,
    ResolvedImage,
    StatsStream,
    UnsupportedError,
    VolumeInfo,
    __version__,
    spawn,
    AsyncProcess,
    Process,
    ProcessInfo,
    attach,
)

__all__ = [
    "AsyncClient",
    "AsyncExecStream",
    "AsyncInstance",
    "AsyncLogStream",
    "AsyncPool",
    "AsyncStatsStream",
    "BuildError",
    "BuiltImage",
    "Chunk",
    "Client",
    "ConflictError",
    "Dockerfile",
    "EgressDecision",
    "EngineInfo",
    "EngineUnavailableError",
    "ExecError",
    "ExecResult",
    "ExecStream",
    "ExecTimeoutError",
    "ExitStatus",
    "ForkedError",
    "HeadjackError",
    "HeadjackTimeoutError",
    "ImageNotFoundError",
    "Instance",
    "InstanceInfo",
    "InternalError",
    "InvalidArgumentError",
    "InvalidBaseError",
    "LocalIOError",
    "LogStream",
    "Mount",
    "NotFoundError",
    "Pool",
    "PullError",
    "ResolvedImage",
    "SpawnOptions",
    "StatsStream",
    "UnsupportedError",
    "VolumeInfo",
    "__version__",
    "spawn",
    "AsyncProcess",
    "Process",
    "ProcessInfo",
    "attach",
]
