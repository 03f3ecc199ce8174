"""Type stubs for the native module ``headjack._headjack`` (checked by ``mypy.stubtest``)."""

import builtins
import os
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, TypedDict, Union, final

from typing_extensions import Self, TypeAlias, Unpack

__version__: str
__all__ = [
    "AsyncClient",
    "AsyncExecStream",
    "AsyncInstance",
    "AsyncLogStream",
    "AsyncPool",
    "BuildError",
    "BuiltImage",
    "Chunk",
    "Client",
    "ConflictError",
    "Dockerfile",
    "EngineInfo",
    "EngineUnavailableError",
    "ExecError",
    "ExecResult",
    "ExecStream",
    "ExecTimeoutError",
    "ExitStatus",
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
    "__version__",
    "spawn",
]

_StrPath: TypeAlias = Union[str, os.PathLike[str]]
_Data: TypeAlias = Union[bytes, bytearray, memoryview, str]

# A progress event: {"kind": "pull", "image", "layer", "status", "current", "total"} or
# {"kind": "build", "tag", "line"}.
_ProgressEvent: TypeAlias = dict[str, Any]

class _SpawnOptions(TypedDict, total=False):
    """Keyword arguments of ``spawn`` and ``resolve`` (None means "not given")."""

    base_dir: _StrPath | None
    name: str | None
    workspace: _StrPath | None
    workspace_read_only: bool | None
    workspace_target: str | None
    mounts: Sequence[Mount] | None
    env: Mapping[str, str] | None
    user: str | None
    workdir: str | None
    labels: Mapping[str, str] | None
    cpus: float | None
    memory: int | None
    pids: int | None
    network: str | None
    runtime: str | None
    pull: Literal["missing", "always", "never"] | None
    platform: str | None
    expires_after: float | None
    readiness: Sequence[str] | None
    readiness_timeout: float | None
    readiness_interval: float | None
    progress: Callable[[_ProgressEvent], object] | None
    hardened: bool | None
    detached: bool | None
    init: Sequence[str] | None

_Base: TypeAlias = Union[str, os.PathLike[str], Dockerfile, None]

# --- exceptions -----------------------------------------------------------------------------

class HeadjackError(Exception):
    """_Base class of every error headjack raises."""

    kind: str | None
    message: str

class EngineUnavailableError(HeadjackError):
    """No container engine answered."""

class InvalidBaseError(HeadjackError, ValueError):
    """A base string could not be understood."""

class ImageNotFoundError(HeadjackError):
    """An image is not present locally and could not or may not be pulled."""

class PullError(HeadjackError):
    """A registry pull failed."""

class BuildError(HeadjackError):
    """A Dockerfile build failed."""

    step: str | None
    log_tail: Sequence[str]

class NotFoundError(HeadjackError):
    """A container, instance, exec or path does not exist (also: the instance was closed)."""

class ConflictError(HeadjackError):
    """The request conflicts with the current state."""

class HeadjackTimeoutError(HeadjackError, builtins.TimeoutError):
    """A deadline passed (exec with check=True, readiness check, engine call)."""

    result: ExecResult | None

ExecTimeoutError = HeadjackTimeoutError

class ExecError(HeadjackError):
    """A command could not be run, or (with check=True) exited non-zero."""

    result: ExecResult | None

class LocalIOError(HeadjackError, OSError):
    """A local I/O error."""

class InvalidArgumentError(HeadjackError, ValueError):
    """An argument is unusable."""

class InternalError(HeadjackError):
    """A bug, or an engine answer headjack does not understand."""

# --- values ---------------------------------------------------------------------------------

@final
class Dockerfile:
    """A Dockerfile base with build options."""

    def __new__(
        cls,
        path: _StrPath,
        *,
        context: _StrPath | None = None,
        build_args: Mapping[str, str] | None = None,
        target: str | None = None,
        platform: str | None = None,
        no_cache: bool | None = None,
        secrets: Mapping[str, bytes | bytearray | memoryview | os.PathLike[str] | str] | None = None,
        builder: Literal["auto", "buildkit", "classic"] | None = None,
    ) -> Self: ...
    @property
    def path(self) -> str: ...
    @property
    def context(self) -> str: ...
    @property
    def build_args(self) -> dict[str, str]: ...
    @property
    def target(self) -> str | None: ...
    @property
    def platform(self) -> str | None: ...
    @property
    def no_cache(self) -> bool: ...
    @property
    def secret_ids(self) -> list[str]: ...
    @property
    def builder(self) -> Literal["auto", "buildkit", "classic"]: ...

@final
class Mount:
    """An extra mount for ``spawn(mounts=[...])``."""

    @staticmethod
    def bind(host: _StrPath, target: str, *, read_only: bool | None = None) -> Mount: ...
    @staticmethod
    def volume(name: str, target: str, *, read_only: bool | None = None) -> Mount: ...
    @staticmethod
    def tmpfs(target: str, *, size: int | None = None) -> Mount: ...

@final
class ExecResult:
    """The collected result of ``exec``."""

    @property
    def exit_code(self) -> int: ...
    @property
    def stdout(self) -> bytes: ...
    @property
    def stderr(self) -> bytes: ...
    @property
    def stdout_truncated(self) -> bool: ...
    @property
    def stderr_truncated(self) -> bool: ...
    @property
    def timed_out(self) -> bool: ...
    @property
    def success(self) -> bool: ...
    @property
    def stdout_text(self) -> str: ...
    @property
    def stderr_text(self) -> str: ...

@final
class ExitStatus:
    """How a streamed command ended."""

    @property
    def exit_code(self) -> int: ...
    @property
    def timed_out(self) -> bool: ...
    @property
    def success(self) -> bool: ...

@final
class Chunk:
    """A piece of output as it arrived."""

    @property
    def stream(self) -> Literal["stdout", "stderr"]: ...
    @property
    def data(self) -> bytes: ...

@final
class InstanceInfo:
    """What ``list`` and ``inspect`` report about an instance."""

    @property
    def id(self) -> str: ...
    @property
    def container_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def base(self) -> str: ...
    @property
    def image(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def exit_code(self) -> int | None: ...
    @property
    def owner(self) -> str: ...
    @property
    def expires(self) -> int | None: ...
    @property
    def labels(self) -> dict[str, str]: ...

@final
class EngineInfo:
    """The connected engine."""

    @property
    def kind(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def api_version(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def os(self) -> str: ...
    @property
    def arch(self) -> str: ...

@final
class BuiltImage:
    """A headjack-built image."""

    @property
    def reference(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def created(self) -> int: ...
    @property
    def last_used(self) -> int | None: ...
    @property
    def size(self) -> int: ...

@final
class ResolvedImage:
    """An image resolved from a base."""

    @property
    def reference(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def built(self) -> bool: ...

# --- streams --------------------------------------------------------------------------------

@final
class ExecStream:
    """A running command's output (iterator of Chunk)."""

    def __iter__(self) -> Self: ...
    def __next__(self) -> Chunk: ...
    def wait(self) -> ExitStatus: ...
    @property
    def status(self) -> ExitStatus | None: ...
    def write(self, data: _Data) -> None: ...
    def close_stdin(self) -> None: ...
    def resize(self, rows: int, cols: int) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None = ...,
        exc: BaseException | None = ...,
        tb: TracebackType | None = ...,
        /,
    ) -> Literal[False]: ...

@final
class AsyncExecStream:
    """A running command's output (async iterator of Chunk)."""

    def __aiter__(self) -> Self: ...
    async def __anext__(self) -> Chunk: ...
    async def wait(self) -> ExitStatus: ...
    @property
    def status(self) -> ExitStatus | None: ...
    async def write(self, data: _Data) -> None: ...
    async def close_stdin(self) -> None: ...
    async def resize(self, rows: int, cols: int) -> None: ...
    async def close(self) -> None: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = ...,
        exc: BaseException | None = ...,
        tb: TracebackType | None = ...,
        /,
    ) -> Literal[False]: ...

@final
class LogStream:
    """The keep-alive process's output (iterator of Chunk)."""

    def __iter__(self) -> Self: ...
    def __next__(self) -> Chunk: ...
    def close(self) -> None: ...

@final
class AsyncLogStream:
    """The keep-alive process's output (async iterator of Chunk)."""

    def __aiter__(self) -> Self: ...
    async def __anext__(self) -> Chunk: ...
    async def close(self) -> None: ...

# --- instances ------------------------------------------------------------------------------

@final
class Instance:
    """A running environment (sync API); a context manager that removes it on exit."""

    @property
    def id(self) -> str: ...
    @property
    def container_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def image(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    @property
    def kept(self) -> bool: ...
    def exec(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        user: str | None = None,
        stdin: _Data | None = None,
        check: bool | None = None,
        max_output: int | None = None,
        tty: bool | None = None,
    ) -> ExecResult: ...
    def exec_stream(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        user: str | None = None,
        stdin: _Data | None = None,
        tty: bool | None = None,
        interactive: bool | None = None,
    ) -> ExecStream: ...
    def write_file(self, path: str, data: _Data, *, mode: int | None = None) -> None: ...
    def read_file(self, path: str) -> bytes: ...
    def copy_in(self, src: _StrPath, dest_dir: str) -> None: ...
    def copy_out(self, src: str, dest_dir: _StrPath) -> list[str]: ...
    def logs(self) -> list[Chunk]: ...
    def logs_stream(self, *, follow: bool | None = None) -> LogStream: ...
    def stop(self, grace: float | None = None) -> None: ...
    def kill(self, signal: str | None = None) -> None: ...
    def start(self) -> None: ...
    def restart(self, grace: float | None = None) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def status(self) -> str: ...
    def inspect(self) -> InstanceInfo: ...
    def commit(self, reference: str) -> str: ...
    def remove(self) -> None: ...
    def keep(self) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None = ...,
        exc: BaseException | None = ...,
        tb: TracebackType | None = ...,
        /,
    ) -> Literal[False]: ...

@final
class AsyncInstance:
    """A running environment (asyncio API); an async context manager that removes it on exit."""

    @property
    def id(self) -> str: ...
    @property
    def container_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def image(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    @property
    def kept(self) -> bool: ...
    async def exec(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        user: str | None = None,
        stdin: _Data | None = None,
        check: bool | None = None,
        max_output: int | None = None,
        tty: bool | None = None,
    ) -> ExecResult: ...
    async def exec_stream(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        user: str | None = None,
        stdin: _Data | None = None,
        tty: bool | None = None,
        interactive: bool | None = None,
    ) -> AsyncExecStream: ...
    async def write_file(self, path: str, data: _Data, *, mode: int | None = None) -> None: ...
    async def read_file(self, path: str) -> bytes: ...
    async def copy_in(self, src: _StrPath, dest_dir: str) -> None: ...
    async def copy_out(self, src: str, dest_dir: _StrPath) -> list[str]: ...
    async def logs(self) -> list[Chunk]: ...
    def logs_stream(self, *, follow: bool | None = None) -> AsyncLogStream: ...
    async def stop(self, grace: float | None = None) -> None: ...
    async def kill(self, signal: str | None = None) -> None: ...
    async def start(self) -> None: ...
    async def restart(self, grace: float | None = None) -> None: ...
    async def pause(self) -> None: ...
    async def resume(self) -> None: ...
    async def status(self) -> str: ...
    async def inspect(self) -> InstanceInfo: ...
    async def commit(self, reference: str) -> str: ...
    async def remove(self) -> None: ...
    def keep(self) -> None: ...
    async def close(self) -> None: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = ...,
        exc: BaseException | None = ...,
        tb: TracebackType | None = ...,
        /,
    ) -> Literal[False]: ...

# --- pools ----------------------------------------------------------------------------------

@final
class Pool:
    """Instances of one spec spawned ahead of time (sync API)."""

    def take(self) -> Instance: ...
    @property
    def ready(self) -> int: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None = ...,
        exc: BaseException | None = ...,
        tb: TracebackType | None = ...,
        /,
    ) -> Literal[False]: ...

@final
class AsyncPool:
    """Instances of one spec spawned ahead of time (asyncio API)."""

    async def take(self) -> AsyncInstance: ...
    @property
    def ready(self) -> int: ...
    def close(self) -> None: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = ...,
        exc: BaseException | None = ...,
        tb: TracebackType | None = ...,
        /,
    ) -> Literal[False]: ...

# --- clients --------------------------------------------------------------------------------

@final
class Client:
    """A connection to a container engine (sync API)."""

    def __new__(cls, host: str | None = None) -> Self: ...
    def spawn(self, base: _Base = None, **kwargs: Unpack[_SpawnOptions]) -> Instance: ...
    def pool(self, base: _Base = None, *, size: int = 2, **kwargs: Unpack[_SpawnOptions]) -> Pool: ...
    def resolve(self, base: _Base = None, **kwargs: Unpack[_SpawnOptions]) -> ResolvedImage: ...
    def list(self) -> builtins.list[InstanceInfo]: ...
    def attach(self, id_or_name: str) -> Instance: ...
    def sweep(self) -> builtins.list[str]: ...
    def images(self) -> builtins.list[BuiltImage]: ...
    def prune_images(self, keep_last: int) -> builtins.list[str]: ...
    def remove_image(self, reference: str, *, force: bool | None = None) -> None: ...
    def info(self) -> EngineInfo: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None = ...,
        exc: BaseException | None = ...,
        tb: TracebackType | None = ...,
        /,
    ) -> Literal[False]: ...

@final
class AsyncClient:
    """A connection to a container engine (asyncio API); connects on first use."""

    def __new__(cls, host: str | None = None) -> Self: ...
    async def connect(self) -> Self: ...
    async def spawn(self, base: _Base = None, **kwargs: Unpack[_SpawnOptions]) -> AsyncInstance: ...
    async def pool(self, base: _Base = None, *, size: int = 2, **kwargs: Unpack[_SpawnOptions]) -> AsyncPool: ...
    async def resolve(self, base: _Base = None, **kwargs: Unpack[_SpawnOptions]) -> ResolvedImage: ...
    async def list(self) -> builtins.list[InstanceInfo]: ...
    async def attach(self, id_or_name: str) -> AsyncInstance: ...
    async def sweep(self) -> builtins.list[str]: ...
    async def images(self) -> builtins.list[BuiltImage]: ...
    async def prune_images(self, keep_last: int) -> builtins.list[str]: ...
    async def remove_image(self, reference: str, *, force: bool | None = None) -> None: ...
    async def info(self) -> EngineInfo: ...
    async def close(self) -> None: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = ...,
        exc: BaseException | None = ...,
        tb: TracebackType | None = ...,
        /,
    ) -> Literal[False]: ...

def spawn(base: _Base = None, **kwargs: Unpack[_SpawnOptions]) -> Instance:
    """Spawns an instance on the default engine (sync)."""
