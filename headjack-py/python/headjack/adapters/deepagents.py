"""headjack as the sandbox backend of deepagents (``deepagents``; built against 0.7.32).

A deep agent runs its ``execute`` tool and its file tools (``ls``, ``read_file``,
``write_file``, ``edit_file``, ``grep``, ``glob``) on its *backend*. This module is a sandbox
backend on a headjack instance; switching from running on the host is one line::

    from headjack.adapters.deepagents import HeadjackSandbox

    agent = create_deep_agent(
        model=...,
        backend=HeadjackSandbox(base="python:3.12-slim"),   # was LocalShellBackend(root_dir=".")
    )

deepagents' file tools run small Python scripts inside the sandbox (``BaseSandbox``), so the
base needs ``python3``; ``execute`` needs only ``/bin/sh``. The instance is removed by
``close()`` (or leaving a ``with`` block), when the object is garbage-collected, or by
``headjack sweep`` after a crash.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from deepagents.backends.protocol import (
    FILE_NOT_FOUND,
    INVALID_PATH,
    IS_DIRECTORY,
    ExecuteResponse,
    FileDownloadResponse,
    FileUploadResponse,
)
from deepagents.backends.sandbox import BaseSandbox

import headjack

__all__ = ["HeadjackSandbox"]

DEFAULT_TIMEOUT_S = 120
DEFAULT_MAX_OUTPUT_BYTES = 100_000


class HeadjackSandbox(BaseSandbox):
    """A deepagents sandbox backend on one headjack instance.

    Give an existing ``headjack.Instance`` (you keep ownership), or spawn options
    (``base=...`` and any other keyword of ``headjack.Client.spawn``): the sandbox then owns
    its instance and removes it on ``close()``.
    """

    def __init__(
        self,
        instance: headjack.Instance | None = None,
        *,
        client: headjack.Client | None = None,
        workdir: str | None = None,
        default_timeout: int = DEFAULT_TIMEOUT_S,
        max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES,
        **spawn: Any,
    ) -> None:
        if default_timeout <= 0:
            raise ValueError(f"default_timeout must be positive, got {default_timeout}")
        if instance is not None and spawn:
            raise ValueError("give either an instance or spawn options, not both")
        self._owned = instance is None
        if instance is None:
            base = spawn.pop("base", None)
            instance = (client or headjack.Client()).spawn(base, **spawn)
        self._instance = instance
        self._workdir = workdir
        self._default_timeout = default_timeout
        self._max_output_bytes = max_output_bytes

    @property
    def id(self) -> str:
        return self._instance.id

    @property
    def instance(self) -> headjack.Instance:
        """The headjack instance behind this backend."""
        return self._instance

    def close(self) -> None:
        """Removes the instance if this backend spawned it. Idempotent."""
        if self._owned:
            self._instance.close()

    def __enter__(self) -> HeadjackSandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def execute(self, command: str, *, timeout: int | None = None) -> ExecuteResponse:
        """Runs ``command`` with ``/bin/sh -c``; stdout, then stderr lines marked ``[stderr]``
        (as deepagents' local shell does). A timeout kills the command and everything it
        started inside the container; ``timeout=0`` means none."""
        if not command or not isinstance(command, str):
            return ExecuteResponse(output="Error: Command must be a non-empty string.", exit_code=1)
        effective = self._default_timeout if timeout is None else timeout
        if effective < 0:
            raise ValueError(f"timeout must not be negative, got {effective}")
        try:
            r = self._instance.exec(
                ["/bin/sh", "-c", command],
                timeout=effective or None,
                workdir=self._workdir,
                max_output=self._max_output_bytes,
            )
        except headjack.HeadjackError as e:
            return ExecuteResponse(output=f"Error executing command ({e.kind}): {e}", exit_code=1)
        if r.timed_out:
            return ExecuteResponse(
                output=f"Error: Command timed out after {effective} seconds and was killed. "
                "For long-running commands, re-run using the timeout parameter.",
                exit_code=124,
            )
        parts = []
        if r.stdout:
            parts.append(r.stdout_text)
        if r.stderr:
            parts.extend(f"[stderr] {line}" for line in r.stderr_text.strip().split("\n"))
        output = "\n".join(parts) if parts else "<no output>"
        truncated = r.stdout_truncated or r.stderr_truncated
        if truncated:
            output += f"\n\n... Output truncated at {self._max_output_bytes} bytes per stream."
        if r.exit_code != 0:
            output = f"{output.rstrip()}\n\nExit code: {r.exit_code}"
        return ExecuteResponse(output=output, exit_code=r.exit_code, truncated=truncated)

    def upload_files(self, files: list[tuple[str, bytes]]) -> list[FileUploadResponse]:
        """Writes each file (parents created); failures are per file."""
        out = []
        for path, content in files:
            try:
                self._instance.write_file(path, content)
                out.append(FileUploadResponse(path=path))
            except headjack.HeadjackError as e:
                out.append(FileUploadResponse(path=path, error=_file_error(e)))
        return out

    def download_files(self, paths: list[str]) -> list[FileDownloadResponse]:
        """Reads each file; failures are per file (``file_not_found``, ``is_directory``, ...)."""
        out = []
        for path in paths:
            try:
                out.append(FileDownloadResponse(path=path, content=self._instance.read_file(path)))
            except headjack.HeadjackError as e:
                out.append(FileDownloadResponse(path=path, content=None, error=_file_error(e)))
        return out


def _file_error(e: headjack.HeadjackError) -> str:
    """deepagents' standard error names where they apply, headjack's message otherwise."""
    message = str(e)
    if isinstance(e, headjack.NotFoundError):
        return str(FILE_NOT_FOUND)
    if isinstance(e, headjack.InvalidArgumentError):
        if "is a directory" in message:
            return str(IS_DIRECTORY)
        if "absolute" in message or "climbs above" in message or "NUL" in message:
            return str(INVALID_PATH)
    return message

