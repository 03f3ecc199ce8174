"""headjack as the sandbox of the OpenAI Agents SDK (``openai-agents``; built against 0.24.0).

The SDK runs a ``SandboxAgent``'s tools (``exec_command``, ``write_stdin``, ``apply_patch``,
``view_image``, file access) in a sandbox session that a *sandbox client* creates. This module
is such a client, next to the SDK's own ``DockerSandboxClient``; switching is one line::

    from headjack.adapters.openai_agents import HeadjackSandboxClient, HeadjackSandboxClientOptions

    run_config = RunConfig(sandbox=SandboxRunConfig(
        client=HeadjackSandboxClient(),                                  # was DockerSandboxClient(docker.from_env())
        options=HeadjackSandboxClientOptions(base="python:3.12-slim"),   # was DockerSandboxClientOptions(image=...)
    ))

What headjack brings: the base is any headjack base (an image, a Dockerfile built once per
content, or None for headjack's default base); Docker or Podman; a timed-out command is
really killed inside the container with everything it started; interactive processes
(``exec_command`` that keeps running, ``write_stdin``) ride on headjack's exec streams; and a
crashed host process leaves nothing that ``headjack sweep`` does not remove.

Not supported (yet): manifest ``Mount`` entries (S3, GCS, ... volume mounts) and exposed ports;
asking for them is a clear error.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import tarfile
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal, cast

from agents.sandbox.errors import (
    ExecTimeoutError,
    ExecTransportError,
    MountConfigError,
    WorkspaceArchiveReadError,
    WorkspaceArchiveWriteError,
    WorkspaceReadNotFoundError,
)
from agents.sandbox.manifest import Manifest
from agents.sandbox.session import SandboxSession, SandboxSessionState
from agents.sandbox.session.base_sandbox_session import BaseSandboxSession
from agents.sandbox.session.dependencies import Dependencies
from agents.sandbox.session.manager import Instrumentation
from agents.sandbox.session.pty_output import collect_pty_output
from agents.sandbox.session.pty_types import (
    PTY_PROCESSES_MAX,
    PtyExecUpdate,
    allocate_pty_process_id,
    clamp_pty_yield_time_ms,
    process_id_to_prune_from_meta,
    resolve_pty_write_yield_time_ms,
)
from agents.sandbox.session.runtime_helpers import (
    RESOLVE_WORKSPACE_PATH_HELPER,
    RuntimeHelperScript,
)
from agents.sandbox.session.sandbox_client import BaseSandboxClient, BaseSandboxClientOptions
from agents.sandbox.session.workspace_payloads import coerce_write_payload
from agents.sandbox.snapshot import SnapshotBase, SnapshotSpec, resolve_snapshot
from agents.sandbox.types import ExecResult, User
from agents.sandbox.util.tar_utils import (
    UnsafeTarMemberError,
    strip_tar_member_prefix,
    validate_tarfile,
)
from agents.sandbox.workspace_paths import sandbox_path_str
from pydantic import Field

import headjack

__all__ = [
    "HeadjackSandboxClient",
    "HeadjackSandboxClientOptions",
    "HeadjackSandboxSession",
    "HeadjackSandboxSessionState",
]

# Writes go through the container (not the archive API) so an existing file keeps its mode
# and owner, and a write as a user obeys that user's permissions.
_WRITE_SCRIPT = 'mkdir -p -- "$(dirname -- "$1")" && cat > "$1"'
_READ_BOUNDED_SCRIPT = '[ -e "$1" ] || exit 44; [ -f "$1" ] || exit 45; head -c "$2" < "$1"'
_READ_MISSING = 44
_STOP_GRACE_S = 2.0


class HeadjackSandboxClientOptions(BaseSandboxClientOptions):
    """How to spawn the sandbox: headjack's spawn options that make sense for an agent."""

    type: Literal["headjack"] = "headjack"
    base: str | None = None
    """An image (``"python:3.12-slim"``), a Dockerfile path (``"./Dockerfile"``), or None for
    headjack's default base."""
    network: str | None = None
    """``"bridge"`` (default), ``"none"``, or a named engine network."""
    memory: int | None = None
    """Memory limit in bytes."""
    cpus: float | None = None
    pids: int | None = None
    runtime: str | None = None
    """Engine runtime, e.g. ``"runsc"`` (gVisor)."""
    hardened: bool = False
    """No capabilities, read-only root with a writable /tmp, no network. The workspace root
    must then be on a writable path (e.g. ``Manifest(root="/tmp/workspace")``)."""
    labels: dict[str, str] = Field(default_factory=dict)
    expires_after: float | None = None
    """Seconds after which ``headjack sweep`` may remove the container."""

    def __init__(
        self,
        base: str | None = None,
        *,
        type: Literal["headjack"] = "headjack",
        network: str | None = None,
        memory: int | None = None,
        cpus: float | None = None,
        pids: int | None = None,
        runtime: str | None = None,
        hardened: bool = False,
        labels: dict[str, str] | None = None,
        expires_after: float | None = None,
    ) -> None:
        super().__init__(
            type=type,
            base=base,
            network=network,
            memory=memory,
            cpus=cpus,
            pids=pids,
            runtime=runtime,
            hardened=hardened,
            labels={} if labels is None else labels,
            expires_after=expires_after,
        )


class HeadjackSandboxSessionState(SandboxSessionState):
    """What it takes to find the sandbox again (or spawn a like one) after a pause."""

    type: Literal["headjack"] = "headjack"
    instance_id: str
    options: HeadjackSandboxClientOptions


@dataclass
class _Process:
    """A command started by ``pty_exec_start`` whose output is read by later calls."""

    stream: headjack.AsyncExecStream
    tty: bool
    last_used: float = field(default_factory=time.monotonic)
    chunks: deque[bytes] = field(default_factory=deque)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    notify: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None
    exit_code: int | None = None


class HeadjackSandboxSession(BaseSandboxSession):
    """A sandbox session on one headjack instance."""

    state: HeadjackSandboxSessionState

    def __init__(
        self,
        *,
        instance: headjack.AsyncInstance,
        state: HeadjackSandboxSessionState,
    ) -> None:
        self._instance = instance
        self.state = state
        self._root_ready = state.workspace_root_ready
        self._processes: dict[int, _Process] = {}
        self._process_lock = asyncio.Lock()

    @property
    def instance(self) -> headjack.AsyncInstance:
        """The headjack instance behind this session."""
        return self._instance

    # --- lifecycle ---------------------------------------------------------------------------

    async def _ensure_backend_started(self) -> None:
        if not await self.running():
            await self._instance.start()

    async def _after_start(self) -> None:
        self._root_ready = True

    def _mark_workspace_root_ready_from_probe(self) -> None:
        super()._mark_workspace_root_ready_from_probe()
        self._root_ready = True

    async def running(self) -> bool:
        try:
            return await self._instance.status() == "running"
        except headjack.HeadjackError:
            return False

    async def _shutdown_backend(self) -> None:
        # Like the SDK's Docker backend: stop now, the client's delete() removes.
        try:
            if await self.running():
                await self._instance.stop(_STOP_GRACE_S)
        except headjack.HeadjackError:
            pass

    def supports_pty(self) -> bool:
        return True

    # --- paths -------------------------------------------------------------------------------

    def _runtime_helpers(self) -> tuple[RuntimeHelperScript, ...]:
        return (RESOLVE_WORKSPACE_PATH_HELPER,)

    def _current_runtime_helper_cache_key(self) -> object | None:
        return self.state.instance_id

    async def _validate_path_access(self, path: Path | str, *, for_write: bool = False) -> Path:
        # Resolved inside the container, so a symlink cannot lead a write out of the workspace.
        return Path(await self._validate_remote_path_access(path, for_write=for_write))

    # --- exec --------------------------------------------------------------------------------

    @staticmethod
    def _user_name(user: str | User | None) -> str | None:
        return user.name if isinstance(user, User) else user

    def _workdir(self) -> str | None:
        # The root exists only once the manifest was applied; earlier commands run where the
        # image says.
        return self.state.manifest.root if self._root_ready else None

    async def exec(
        self,
        *command: str | Path,
        timeout: float | None = None,
        shell: bool | list[str] = True,
        user: str | User | None = None,
    ) -> ExecResult:
        # headjack runs a command as a user natively: no sudo needed in the image.
        argv = self._prepare_exec_command(*command, shell=shell, user=None)
        return await self._run(argv, timeout=timeout, user=self._user_name(user))

    async def _exec_internal(self, *command: str | Path, timeout: float | None = None) -> ExecResult:
        return await self._run([str(c) for c in command], timeout=timeout, user=None)

    async def _run(
        self,
        argv: Sequence[str],
        *,
        timeout: float | None,
        user: str | None,
        stdin: bytes | None = None,
    ) -> ExecResult:
        try:
            r = await self._instance.exec(
                list(argv), timeout=timeout, workdir=self._workdir(), user=user, stdin=stdin
            )
        except headjack.HeadjackError as e:
            raise ExecTransportError(command=list(argv), cause=e, context={"message": str(e)}) from e
        if r.timed_out:
            # headjack already killed the command and everything it started.
            raise ExecTimeoutError(command=list(argv), timeout_s=timeout)
        return ExecResult(stdout=r.stdout, stderr=r.stderr, exit_code=r.exit_code)

    # --- files -------------------------------------------------------------------------------

    async def read(self, path: Path, *, user: str | User | None = None) -> io.IOBase:
        workspace_path = await self._validate_path_access(path)
        path_arg = sandbox_path_str(workspace_path)
        if user is None:
            try:
                return io.BytesIO(await self._instance.read_file(path_arg))
            except headjack.NotFoundError as e:
                raise WorkspaceReadNotFoundError(path=path, cause=e) from e
            except headjack.HeadjackError as e:
                raise WorkspaceArchiveReadError(path=path, cause=e, context={"message": str(e)}) from e
        # As a user: through the container, with that user's permissions.
        command = ("cat", "--", path_arg)
        result = await self.exec(*command, shell=False, user=user)
        if not result.ok():
            await self._raise_read_error_from_exec(
                path=path, workspace_path=workspace_path, command=command, result=result, user=user
            )
        return io.BytesIO(result.stdout)

    async def _read_bounded(self, path: Path, *, max_bytes: int) -> bytes:
        workspace_path = await self._validate_path_access(path)
        result = await self.exec(
            "/bin/sh", "-c", _READ_BOUNDED_SCRIPT, "sh", sandbox_path_str(workspace_path),
            str(max_bytes), shell=False, timeout=30.0,
        )
        if result.exit_code == _READ_MISSING:
            raise WorkspaceReadNotFoundError(path=path)
        if not result.ok():
            raise WorkspaceArchiveReadError(path=path)
        return bytes(result.stdout)

    async def write(self, path: Path, data: io.IOBase, *, user: str | User | None = None) -> None:
        payload = coerce_write_payload(path=path, data=data)
        workspace_path = await self._validate_path_access(path, for_write=True)
        body = payload.stream.read()
        argv = ["sh", "-c", _WRITE_SCRIPT, "sh", sandbox_path_str(workspace_path)]
        result = await self._run(argv, timeout=None, user=self._user_name(user), stdin=body)
        if not result.ok():
            raise WorkspaceArchiveWriteError(
                path=workspace_path,
                context={"stderr": result.stderr.decode("utf-8", errors="replace"), "exit_code": result.exit_code},
            )

    async def persist_workspace(self) -> io.IOBase:
        """The workspace as a tar stream with workspace-relative members (copied out through
        the engine's archive API: no tar needed in the image)."""
        root = self._workspace_root_path()
        skip = {PurePosixPath(p.as_posix()) for p in self._persist_workspace_skip_relpaths()}
        staging = Path(tempfile.mkdtemp(prefix="headjack-persist-"))
        try:
            try:
                await self._instance.copy_out(root.as_posix(), staging)
            except headjack.HeadjackError as e:
                raise WorkspaceArchiveReadError(path=root, cause=e, context={"message": str(e)}) from e
            top = staging / root.name

            def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
                rel = PurePosixPath(info.name).relative_to(root.name)
                if any(rel == s or s in rel.parents for s in skip):
                    return None
                return info

            archive = tempfile.SpooledTemporaryFile(max_size=64 << 20)
            with tarfile.open(fileobj=archive, mode="w") as tar:
                tar.add(top, arcname=root.name, filter=keep)
            archive.seek(0)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        stripped: io.IOBase = strip_tar_member_prefix(
            cast(io.IOBase, archive), prefix=root.name, relativize_symlinks_under=root
        )
        return stripped

    async def hydrate_workspace(self, data: io.IOBase) -> None:
        """Unpacks a tar from ``persist_workspace`` under the workspace root (validated, then
        copied in through the engine's archive API)."""
        root = self._workspace_root_path()
        staging = Path(tempfile.mkdtemp(prefix="headjack-hydrate-"))
        try:
            with tempfile.TemporaryFile() as spool:
                shutil.copyfileobj(cast(io.BufferedIOBase, data), spool)
                spool.seek(0)
                try:
                    with tarfile.open(fileobj=spool, mode="r:*") as tar:
                        validate_tarfile(tar, allow_external_symlink_targets=False)
                        tar.extractall(staging, filter="tar")
                except UnsafeTarMemberError as e:
                    raise WorkspaceArchiveWriteError(
                        path=root, context={"reason": e.reason, "member": e.member}, cause=e
                    ) from e
                except (tarfile.TarError, OSError) as e:
                    raise WorkspaceArchiveWriteError(path=root, cause=e) from e
            mkdir = await self.exec("mkdir", "-p", "--", root.as_posix(), shell=False)
            if not mkdir.ok():
                raise WorkspaceArchiveWriteError(path=root, context={"stderr": mkdir.stderr.decode(errors="replace")})
            for child in sorted(staging.iterdir()):
                try:
                    await self._instance.copy_in(child, root.as_posix())
                except headjack.HeadjackError as e:
                    raise WorkspaceArchiveWriteError(path=root, cause=e, context={"message": str(e)}) from e
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    # --- interactive processes ---------------------------------------------------------------

    async def pty_exec_start(
        self,
        *command: str | Path,
        timeout: float | None = None,
        shell: bool | list[str] = True,
        user: str | User | None = None,
        tty: bool = False,
        yield_time_s: float | None = None,
        max_output_tokens: int | None = None,
    ) -> PtyExecUpdate:
        argv = self._prepare_exec_command(*command, shell=shell, user=None)
        try:
            stream = await asyncio.wait_for(
                self._instance.exec_stream(
                    argv, workdir=self._workdir(), user=self._user_name(user), tty=tty, interactive=tty
                ),
                timeout=timeout,
            )
        except asyncio.TimeoutError as e:
            raise ExecTimeoutError(command=argv, timeout_s=timeout, cause=e) from e
        except headjack.HeadjackError as e:
            raise ExecTransportError(command=argv, context={"retry_safe": True}, cause=e) from e
        process = _Process(stream=stream, tty=tty)
        process.reader = asyncio.create_task(self._pump(process))
        async with self._process_lock:
            process_id = allocate_pty_process_id(set(self._processes))
            pruned = self._prune_processes()
            self._processes[process_id] = process
        if pruned is not None:
            await self._terminate(pruned)
        yield_ms = 10_000 if yield_time_s is None else int(yield_time_s * 1000)
        return await self._collect(process_id, process, clamp_pty_yield_time_ms(yield_ms), max_output_tokens)

    async def pty_write_stdin(
        self,
        *,
        session_id: int,
        chars: str,
        yield_time_s: float | None = None,
        max_output_tokens: int | None = None,
    ) -> PtyExecUpdate:
        async with self._process_lock:
            process = self._resolve_pty_session_entry(pty_processes=self._processes, session_id=session_id)
        if chars:
            if not process.tty:
                raise RuntimeError("stdin is not available for this process")
            try:
                await process.stream.write(chars)
            except headjack.HeadjackError:
                pass  # the process already ended; its output and exit code follow
            await asyncio.sleep(0.1)
        yield_ms = 250 if yield_time_s is None else int(yield_time_s * 1000)
        process.last_used = time.monotonic()
        return await self._collect(
            session_id,
            process,
            resolve_pty_write_yield_time_ms(yield_time_ms=yield_ms, input_empty=chars == ""),
            max_output_tokens,
        )

    async def pty_terminate_all(self) -> None:
        async with self._process_lock:
            processes = list(self._processes.values())
            self._processes.clear()
        for p in processes:
            await self._terminate(p)

    @staticmethod
    async def _pump(p: _Process) -> None:
        try:
            async for chunk in p.stream:
                async with p.lock:
                    p.chunks.append(chunk.data)
                p.notify.set()
            status = await p.stream.wait()
            p.exit_code = status.exit_code
        except headjack.HeadjackError:
            pass
        finally:
            p.closed.set()
            p.notify.set()

    async def _collect(
        self, process_id: int, p: _Process, yield_ms: int, max_output_tokens: int | None
    ) -> PtyExecUpdate:
        output, original_token_count, output_closed = await collect_pty_output(
            output_chunks=p.chunks,
            output_lock=p.lock,
            output_notify=p.notify,
            is_done=p.closed.is_set,
            yield_time_ms=yield_ms,
            max_output_tokens=max_output_tokens,
        )
        live: int | None = process_id
        if output_closed:
            async with self._process_lock:
                self._processes.pop(process_id, None)
            await self._terminate(p)
            live = None
        return PtyExecUpdate(
            process_id=live,
            output=output,
            exit_code=p.exit_code if output_closed else None,
            original_token_count=original_token_count,
        )

    def _prune_processes(self) -> _Process | None:
        if len(self._processes) < PTY_PROCESSES_MAX:
            return None
        meta = [(pid, p.last_used, p.closed.is_set()) for pid, p in self._processes.items()]
        victim = process_id_to_prune_from_meta(meta)
        return None if victim is None else self._processes.pop(victim, None)

    @staticmethod
    async def _terminate(p: _Process) -> None:
        # Closing a stream that is still running kills the command inside the container.
        try:
            await p.stream.close()
        except headjack.HeadjackError:
            pass
        if p.reader is not None:
            await asyncio.gather(p.reader, return_exceptions=True)


class HeadjackSandboxClient(BaseSandboxClient[HeadjackSandboxClientOptions]):
    """Creates, resumes and deletes sandbox sessions on headjack instances.

    ``options`` may be omitted (``supports_default_options``): the sandbox then starts from
    headjack's default base.
    """

    backend_id = "headjack"
    supports_default_options = True

    def __init__(
        self,
        client: headjack.AsyncClient | None = None,
        *,
        host: str | None = None,
        instrumentation: Instrumentation | None = None,
        dependencies: Dependencies | None = None,
    ) -> None:
        super().__init__()
        if client is not None and host is not None:
            raise ValueError("give either a headjack.AsyncClient or a host, not both")
        self.client = client if client is not None else headjack.AsyncClient(host)
        self._instrumentation = instrumentation if instrumentation is not None else Instrumentation()
        self._dependencies = dependencies

    async def _spawn(self, options: HeadjackSandboxClientOptions, manifest: Manifest) -> headjack.AsyncInstance:
        if manifest.mount_targets():
            raise MountConfigError(
                message="the headjack sandbox does not support manifest mounts yet; copy the data in with manifest file entries",
                context={"backend": "headjack"},
            )
        env = await manifest.environment.resolve()
        return await self.client.spawn(
            options.base,
            env=env,
            network=options.network,
            memory=options.memory,
            cpus=options.cpus,
            pids=options.pids,
            runtime=options.runtime,
            hardened=options.hardened,
            labels=options.labels,
            expires_after=options.expires_after,
        )

    async def create(
        self,
        *,
        snapshot: SnapshotSpec | SnapshotBase | None = None,
        manifest: Manifest | None = None,
        options: HeadjackSandboxClientOptions | None = None,
    ) -> SandboxSession:
        options = options if options is not None else HeadjackSandboxClientOptions()
        manifest = manifest if manifest is not None else Manifest()
        self._validate_manifest_for_create(manifest)
        instance = await self._spawn(options, manifest)
        try:
            session_id = uuid.uuid4()
            state = HeadjackSandboxSessionState(
                session_id=session_id,
                manifest=manifest,
                snapshot=resolve_snapshot(snapshot, str(session_id)),
                instance_id=instance.id,
                options=options,
            )
            inner = HeadjackSandboxSession(instance=instance, state=state)
            return self._wrap_session(inner, instrumentation=self._instrumentation)
        except BaseException:
            await instance.remove()
            raise

    async def delete(self, session: SandboxSession) -> SandboxSession:
        inner = session._inner
        if not isinstance(inner, HeadjackSandboxSession):
            raise TypeError("HeadjackSandboxClient.delete expects a session it created")
        try:
            await inner.pty_terminate_all()
        finally:
            await inner.instance.remove()
        return session

    async def resume(self, state: SandboxSessionState) -> SandboxSession:
        if not isinstance(state, HeadjackSandboxSessionState):
            raise TypeError("HeadjackSandboxClient.resume expects a HeadjackSandboxSessionState")
        try:
            instance = await self.client.attach(state.instance_id)
            reused = True
        except headjack.NotFoundError:
            # Gone (removed, swept after a crash): a like instance, restored from the snapshot.
            instance = await self._spawn(state.options, state.manifest)
            state.instance_id = instance.id
            state.workspace_root_ready = False
            reused = False
        inner = HeadjackSandboxSession(instance=instance, state=state)
        inner._set_start_state_preserved(reused)
        return self._wrap_session(inner, instrumentation=self._instrumentation)

    def deserialize_session_state(self, payload: dict[str, object]) -> SandboxSessionState:
        return self._deserialize_session_state_payload(payload, HeadjackSandboxSessionState)
