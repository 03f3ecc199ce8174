"""`headjack mcp` driven by the real MCP Python client (the `mcp` package, stdio transport)
against the real engine.

Run with `headjack/tests/mcp/run.sh` (builds the binary, makes its own venv). Environment:
HEADJACK_BIN (the binary), HEADJACK_TEST_HOST (the engine, default the Docker socket),
HEADJACK_TEST_BUSYBOX (the fixture image from tests/env/up.sh).

Every server started here labels its instances with a per-test nonce, so the checks for
"nothing left" look at this test's containers only, never at another suite's.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

BIN = os.environ.get("HEADJACK_BIN", str(Path(__file__).parents[3] / "target/debug/headjack"))
HOST = os.environ.get("HEADJACK_TEST_HOST", "unix:///var/run/docker.sock")
BUSYBOX = os.environ.get("HEADJACK_TEST_BUSYBOX", "localhost/headjack-test/busybox:latest")
TOOLS = {
    "spawn", "exec", "start_process", "process_output", "kill_process", "wait_process", "list_processes",
    "read_file", "write_file", "list_files", "list_instances", "remove",
}


def docker(*args: str) -> str:
    out = subprocess.run(
        ["docker", *args], env={**os.environ, "DOCKER_HOST": HOST}, capture_output=True, text=True
    )
    return out.stdout


def containers(nonce: str) -> list[str]:
    """This test's headjack containers on the engine, running or not."""
    out = docker(
        "ps", "-aq", "--filter", "label=io.headjack.managed=true",
        "--filter", f"label=io.headjack.mcp-test={nonce}",
    )
    return out.split()


def wait_until(predicate: Any, what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def server_pids(nonce: str) -> list[int]:
    """PIDs of `headjack mcp` processes started with this nonce in their arguments."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"io.headjack.mcp-test={nonce}".encode() in argv and b"mcp" in argv:
            pids.append(int(proc.name))
    return pids


@pytest.fixture
def nonce() -> Any:
    n = uuid.uuid4().hex[:12]
    yield n
    # Whatever a failing test left behind goes.
    for c in containers(n):
        docker("rm", "-f", c)
    for pid in server_pids(n):
        os.kill(pid, signal.SIGKILL)


def params(nonce: str, *extra: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=BIN,
        args=[
            "--host", HOST, "mcp", "--base", BUSYBOX,
            "--label", "io.headjack.test=1", "--label", f"io.headjack.mcp-test={nonce}",
            *extra,
        ],
    )


@asynccontextmanager
async def session(nonce: str, *extra: str) -> AsyncIterator[Client]:
    async with Client(params(nonce, *extra)) as client:
        yield client


async def call(client: Client, tool: str, args: dict[str, Any]) -> tuple[bool, str, Any]:
    """(is_error, text, structured content) of one tool call."""
    r = await client.call_tool(tool, args)
    text = "".join(getattr(c, "text", "") for c in r.content)
    return bool(r.is_error), text, r.structured_content


async def ok(client: Client, tool: str, args: dict[str, Any]) -> Any:
    is_error, text, data = await call(client, tool, args)
    assert not is_error, f"{tool} {args} failed: {text}"
    return data


async def fails(client: Client, tool: str, args: dict[str, Any], mentions: str) -> str:
    is_error, text, data = await call(client, tool, args)
    assert is_error, f"{tool} {args} should fail, got: {text}"
    assert mentions in text, f"expected {mentions!r} in {text!r}"
    assert data["error"]["message"] == text
    return str(data["error"]["kind"])


def test_tools_are_listed_with_schemas_a_model_can_use(nonce: str) -> None:
    async def go() -> None:
        async with session(nonce) as client:
            assert client.server_info is not None and client.server_info.name == "headjack"
            assert client.instructions and "spawn" in client.instructions
            listed = (await client.list_tools()).tools
            assert {t.name for t in listed} == TOOLS
            for t in listed:
                assert t.description and len(t.description) > 40, t.name
                schema = t.input_schema
                assert schema["type"] == "object" and schema.get("additionalProperties") is False
                for name, prop in schema.get("properties", {}).items():
                    assert "description" in prop or "$ref" in prop or "anyOf" in prop, (t.name, name)
            exec_tool = next(t for t in listed if t.name == "exec")
            assert exec_tool.input_schema["required"] == ["instance"]
            assert {"command", "argv", "timeout_seconds"} <= set(exec_tool.input_schema["properties"])
            required = {t.name: t.input_schema.get("required") for t in listed}
            assert required["start_process"] == ["instance"] and required["list_processes"] == ["instance"]
            for name in ("process_output", "kill_process", "wait_process"):
                assert required[name] == ["instance", "process"], name

    asyncio.run(go())


def test_spawn_exec_files_timeout_remove(nonce: str) -> None:
    async def go() -> None:
        async with session(nonce) as client:
            spawned = await ok(client, "spawn", {"env": {"GREETING": "hello"}, "network": "none"})
            iid = spawned["instance"]
            assert spawned["image"] == BUSYBOX
            assert len(containers(nonce)) == 1

            # A shell command line; the instance's env; stderr apart; the exit code as data.
            r = await ok(client, "exec", {"instance": iid, "command": 'echo "$GREETING"; echo oops >&2; exit 3'})
            assert (r["exit_code"], r["stdout"], r["stderr"], r["timed_out"]) == (3, "hello\n", "oops\n", False)
            # argv runs without a shell; stdin, env and workdir per call.
            r = await ok(client, "exec", {"instance": iid, "argv": ["cat"], "stdin": "fed in"})
            assert r["stdout"] == "fed in"
            r = await ok(client, "exec", {"instance": iid, "argv": ["sh", "-c", "pwd; echo $X"], "workdir": "/tmp", "env": {"X": "y"}})
            assert r["stdout"] == "/tmp\ny\n"
            r = await ok(client, "exec", {"instance": iid, "argv": ["no-such-program"]})
            assert r["exit_code"] == 127

            # Output is bounded: its start and its end are kept, and it says so.
            is_error, text, r = await call(client, "exec", {
                "instance": iid, "command": "echo FIRST; yes 0123456789 | head -c 200000; echo; echo LAST",
                "max_output_bytes": 1000,
            })
            assert not is_error and r["stdout_truncated"] and not r["stderr_truncated"]
            assert r["stdout"].startswith("FIRST\n") and r["stdout"].endswith("LAST\n")
            assert "bytes omitted" in r["stdout"] and len(r["stdout"]) < 1100
            assert "middle" in text

            # A timeout kills the command and everything it started, inside the container.
            started = time.monotonic()
            r = await ok(client, "exec", {"instance": iid, "command": "sleep 300 & sleep 301", "timeout_seconds": 1})
            assert r["timed_out"] is True and time.monotonic() - started < 60
            ps = await ok(client, "exec", {"instance": iid, "argv": ["ps", "-o", "args"]})
            assert "sleep 30" not in ps["stdout"], ps["stdout"]

            # Files: text and binary, parents created, mode; read back; a missing file.
            await ok(client, "write_file", {"instance": iid, "path": "/work/deep/a.txt", "content": "line 1\nline 2\n"})
            r = await ok(client, "read_file", {"instance": iid, "path": "/work/deep/a.txt"})
            assert (r["encoding"], r["content"], r["truncated"]) == ("utf-8", "line 1\nline 2\n", False)
            blob = bytes(range(256))
            await ok(client, "write_file", {
                "instance": iid, "path": "/work/run.sh", "content": base64.b64encode(b"#!/bin/sh\necho ran\n").decode(),
                "encoding": "base64", "mode": "755",
            })
            assert (await ok(client, "exec", {"instance": iid, "argv": ["/work/run.sh"]}))["stdout"] == "ran\n"
            await ok(client, "write_file", {"instance": iid, "path": "/work/blob", "content": base64.b64encode(blob).decode(), "encoding": "base64"})
            r = await ok(client, "read_file", {"instance": iid, "path": "/work/blob"})
            assert r["encoding"] == "base64" and base64.b64decode(r["content"]) == blob
            r = await ok(client, "read_file", {"instance": iid, "path": "/work/deep/a.txt", "max_bytes": 3})
            assert (r["content"], r["truncated"], r["size"]) == ("lin", True, 14)
            assert await fails(client, "read_file", {"instance": iid, "path": "/work/missing.txt"}, "does not exist") == "not_found"
            await fails(client, "read_file", {"instance": iid, "path": "/work"}, "list_files")
            await fails(client, "read_file", {"instance": iid, "path": "relative.txt"}, "absolute")

            # Listing.
            r = await ok(client, "list_files", {"instance": iid, "path": "/work", "depth": 2})
            kinds = {e["path"]: e["type"] for e in r["entries"]}
            assert kinds == {"/work/blob": "file", "/work/deep": "directory", "/work/deep/a.txt": "file", "/work/run.sh": "file"}
            assert next(e for e in r["entries"] if e["path"] == "/work/run.sh")["mode"] == "755"
            await fails(client, "list_files", {"instance": iid, "path": "/nowhere"}, "does not exist")

            # Mistakes are tool errors a model can read, never protocol failures.
            await fails(client, "exec", {"instance": iid, "comand": "ls"}, "unknown field `comand`")
            await fails(client, "exec", {"instance": iid}, "nothing to run")
            await fails(client, "exec", {"instance": iid, "command": "ls", "argv": ["ls"]}, "not both")
            await fails(client, "exec", {"instance": iid, "command": "ls", "timeout_seconds": -1}, "timeout_seconds")
            await fails(client, "exec", {"instance": "nope", "command": "ls"}, f"its instances are: {iid}")
            await fails(client, "spawn", {"network": "host"}, "refused")
            await fails(client, "spawn", {"workspace": "/"}, "--allow-workspace")
            await fails(client, "spawn", {"memory": "lots"}, "not a size")
            await fails(client, "write_file", {"instance": iid, "path": "/x", "content": "%%", "encoding": "base64"}, "base64")
            await fails(client, "write_file", {"instance": iid, "path": "/x", "content": "", "mode": "999"}, "octal")
            assert await fails(client, "spawn", {"base": "localhost/headjack-test/no-such-image:1"}, "no-such-image") in {
                "image_not_found", "pull_failed",
            }

            listed = await ok(client, "list_instances", {})
            assert [i["instance"] for i in listed["instances"]] == [iid]
            assert listed["instances"][0]["state"] == "running"

            await ok(client, "remove", {"instance": iid})
            await fails(client, "exec", {"instance": iid, "command": "true"}, "removed by the remove tool")
            assert containers(nonce) == []
            assert (await ok(client, "list_instances", {}))["instances"] == []

    asyncio.run(go())


def test_background_processes_output_kill_wait(nonce: str) -> None:
    async def go() -> None:
        async with session(nonce) as client:
            iid = (await ok(client, "spawn", {"network": "none"}))["instance"]
            assert (await ok(client, "list_processes", {"instance": iid}))["processes"] == []

            # A process that prints lines and keeps running; its env and workdir.
            started = await ok(client, "start_process", {
                "instance": iid, "command": 'for i in 1 2 3; do echo "line$i $X"; done; pwd; echo warn >&2; exec sleep 300',
                "env": {"X": "x"}, "workdir": "/tmp",
            })
            pid = started["process"]
            assert isinstance(pid, int) and started["instance"] == iid

            def has_all_lines(r: Any) -> bool:
                return "line3 x\n/tmp\n" in r["stdout"] and r["stderr"] == "warn\n"

            r = await ok(client, "process_output", {"instance": iid, "process": pid})
            deadline = time.monotonic() + 20
            while not has_all_lines(r):
                assert time.monotonic() < deadline, f"output never came: {r}"
                await asyncio.sleep(0.1)
                r = await ok(client, "process_output", {"instance": iid, "process": pid})
            assert r["stdout"] == "line1 x\nline2 x\nline3 x\n/tmp\n"
            assert (r["state"], r["stdout_truncated"], r["stderr_truncated"]) == ("running", False, False)
            assert "exit_code" not in r
            # Reading does not consume: a second read (process ID as text too) sees the same.
            r2 = await ok(client, "process_output", {"instance": iid, "process": str(pid)})
            assert (r2["stdout"], r2["stderr"]) == (r["stdout"], r["stderr"])

            listed = (await ok(client, "list_processes", {"instance": iid}))["processes"]
            assert [(p["process"], p["state"], p["argv"][:2]) for p in listed] == [(pid, "running", ["/bin/sh", "-c"])]
            assert listed[0]["pid"] > 0

            # Waiting past a short timeout is a normal result: it still runs.
            is_error, text, w = await call(client, "wait_process", {"instance": iid, "process": pid, "timeout_seconds": 0.5})
            assert not is_error and w["state"] == "running" and "still runs" in text

            # TERM by default; the result says it ended and how.
            is_error, text, k = await call(client, "kill_process", {"instance": iid, "process": pid})
            assert not is_error, text
            assert (k["state"], k["exit_code"], k["exit_reason"], k["signal"]) == ("exited", 143, "killed by signal 15", 15)
            assert "killed by signal 15" in text
            r = await ok(client, "process_output", {"instance": iid, "process": pid})
            assert (r["state"], r["exit_code"], r["exit_reason"]) == ("exited", 143, "killed by signal 15")
            assert r["stdout"] == "line1 x\nline2 x\nline3 x\n/tmp\n", "the output outlives the process"
            w = await ok(client, "wait_process", {"instance": iid, "process": pid})
            assert (w["state"], w["exit_code"], w["timed_out"], w["oom_killed"]) == ("exited", 143, False, False)
            assert await fails(client, "kill_process", {"instance": iid, "process": pid}, "already ended") == "conflict"
            ps = await ok(client, "exec", {"instance": iid, "argv": ["ps", "-o", "args"]})
            assert "sleep 300" not in ps["stdout"], ps["stdout"]

            # A process that ends by itself, as another user; wait_process gives its exit code.
            p2 = (await ok(client, "start_process", {"instance": iid, "argv": ["sh", "-c", "id -u; exit 7"], "user": "65534"}))["process"]
            w = await ok(client, "wait_process", {"instance": iid, "process": p2, "timeout_seconds": 30})
            assert (w["state"], w["exit_code"], w["exit_reason"]) == ("exited", 7, "exited with code 7")
            assert (await ok(client, "process_output", {"instance": iid, "process": p2}))["stdout"] == "65534\n"

            # Its own timeout kills it; KILL by name; no wait at all.
            p3 = (await ok(client, "start_process", {"instance": iid, "command": "sleep 300", "timeout_seconds": 1}))["process"]
            w = await ok(client, "wait_process", {"instance": iid, "process": p3, "timeout_seconds": 30})
            assert (w["state"], w["timed_out"], w["exit_reason"]) == ("exited", True, "timed out")
            p4 = (await ok(client, "start_process", {"instance": iid, "argv": ["sleep", "300"]}))["process"]
            started_at = time.monotonic()
            is_error, text, k = await call(client, "kill_process", {"instance": iid, "process": p4, "signal": "stop"})
            assert not is_error and k["state"] == "running" and "still runs" not in text  # STOP: no wait
            assert time.monotonic() - started_at < 2.5
            k = await ok(client, "kill_process", {"instance": iid, "process": p4, "signal": "SIGKILL", "wait_seconds": 0})
            assert k["state"] == "running" and k["signal"] == 9  # not waited for
            w = await ok(client, "wait_process", {"instance": iid, "process": p4, "timeout_seconds": 30})
            assert (w["exit_code"], w["exit_reason"]) == (137, "killed by signal 9")

            # Long output is bounded: beginning and end kept, marked truncated.
            p5 = (await ok(client, "start_process", {
                "instance": iid, "command": "echo FIRST; yes 0123456789 | head -c 200000; echo; echo LAST",
            }))["process"]
            await ok(client, "wait_process", {"instance": iid, "process": p5, "timeout_seconds": 30})
            is_error, text, r = await call(client, "process_output", {"instance": iid, "process": p5, "max_output_bytes": 1000})
            assert not is_error and r["stdout_truncated"] and r["exit_code"] == 0
            assert r["stdout"].startswith("FIRST\n") and r["stdout"].endswith("LAST\n") and len(r["stdout"]) < 1100
            assert "middle" in text

            ids = [p["process"] for p in (await ok(client, "list_processes", {"instance": iid}))["processes"]]
            assert ids == sorted([pid, p2, p3, p4, p5])

            # Wrong input: tool errors naming what is wrong, never protocol failures.
            assert await fails(client, "process_output", {"instance": iid, "process": 99999}, "its processes are:") == "not_found"
            assert await fails(client, "kill_process", {"instance": iid, "process": 99999}, "no background process 99999") == "not_found"
            await fails(client, "wait_process", {"instance": iid, "process": 99999}, "no background process")
            assert await fails(client, "process_output", {"instance": iid, "process": "abc"}, "not a process ID") == "invalid_argument"
            await fails(client, "process_output", {"instance": iid}, "missing field `process`")
            assert await fails(client, "kill_process", {"instance": iid, "process": pid, "signal": "BOGUS"}, "not a signal") == "invalid_argument"
            await fails(client, "kill_process", {"instance": iid, "process": pid, "signal": 99}, "signal number")
            await fails(client, "kill_process", {"instance": iid, "process": pid, "wait_seconds": 100}, "wait_seconds")
            await fails(client, "wait_process", {"instance": iid, "process": pid, "timeout_seconds": -1}, "timeout_seconds")
            await fails(client, "start_process", {"instance": iid}, "nothing to run")
            await fails(client, "start_process", {"instance": iid, "command": "ls", "argv": ["ls"]}, "not both")
            await fails(client, "start_process", {"instance": iid, "command": "  "}, "empty")
            await fails(client, "start_process", {"instance": iid, "command": "ls", "timeout_seconds": 0}, "timeout_seconds")
            await fails(client, "start_process", {"instance": iid, "command": "cat", "stdin": "x"}, "unknown field `stdin`")
            assert await fails(client, "start_process", {"instance": iid, "argv": ["no-such-program"]}, "command not found") == "exec_failed"
            await fails(client, "start_process", {"instance": iid, "argv": ["true"], "workdir": "/no/such/dir"}, "working directory")
            for tool in ("start_process", "list_processes"):
                assert await fails(client, tool, {"instance": "nope", "command": "ls"} if tool == "start_process"
                                   else {"instance": "nope"}, f"its instances are: {iid}") == "not_found"
            await fails(client, "process_output", {"instance": "nope", "process": pid}, "no instance")

            await ok(client, "remove", {"instance": iid})
            await fails(client, "process_output", {"instance": iid, "process": pid}, "removed by the remove tool")
            await fails(client, "list_processes", {"instance": iid}, "removed by the remove tool")
            assert containers(nonce) == []

    asyncio.run(go())


def test_limits_and_lifetime(nonce: str) -> None:
    async def go() -> None:
        async with session(nonce, "--max-instances", "1") as client:
            first = await ok(client, "spawn", {"lifetime_seconds": 2})
            assert await fails(client, "spawn", {}, "--max-instances") == "conflict"
            wait_until(lambda: containers(nonce) == [], "the instance's lifetime to pass")
            await fails(client, "exec", {"instance": first["instance"], "command": "true"}, "lifetime of 2 seconds")
            await ok(client, "spawn", {})  # the place is free again

    asyncio.run(go())


def test_workspace_only_inside_allowed_directories(nonce: str, tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    (allowed / "proj").mkdir(parents=True)
    (allowed / "proj" / "hello.txt").write_text("from the host\n")
    (tmp_path / "secret").mkdir()

    async def go() -> None:
        async with session(nonce, "--allow-workspace", str(allowed)) as client:
            await fails(client, "spawn", {"workspace": str(tmp_path / "secret")}, "outside the directories")
            await fails(client, "spawn", {"workspace": str(allowed / "proj" / ".." / ".." / "secret")}, "outside")
            iid = (await ok(client, "spawn", {"workspace": str(allowed / "proj"), "workspace_read_only": True}))["instance"]
            r = await ok(client, "exec", {"instance": iid, "command": "pwd; cat hello.txt; touch x 2>&1 || echo read-only"})
            assert r["stdout"] == "/workspace\nfrom the host\n" + r["stdout"].split("from the host\n", 1)[1]
            assert "read-only" in r["stdout"]
            r = await ok(client, "list_files", {"instance": iid})
            assert [e["path"] for e in r["entries"]] == ["/workspace/hello.txt"]

    asyncio.run(go())


def test_a_dockerfile_base_is_built_with_progress_for_the_client(nonce: str, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {BUSYBOX}\nRUN echo {nonce} > /marker\n")
    messages: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")

    async def go() -> str:
        async with session(nonce) as client:
            r = await client.call_tool("spawn", {"base": str(tmp_path / "Dockerfile")}, progress_callback=on_progress)
            assert not r.is_error, r.content
            data = r.structured_content
            assert data is not None
            out = await ok(client, "exec", {"instance": data["instance"], "argv": ["cat", "/marker"]})
            assert out["stdout"] == f"{nonce}\n"
            return str(data["image"])

    image = asyncio.run(go())
    try:
        assert any(m.startswith("build: ") for m in messages), messages
    finally:
        docker("rmi", "-f", image)  # built for this test only (its content has the nonce)


def test_client_disconnect_removes_every_instance(nonce: str) -> None:
    async def go() -> None:
        async with session(nonce) as client:
            ids = [(await ok(client, "spawn", {}))["instance"] for _ in range(3)]
            # A command still running when the client leaves.
            task = asyncio.ensure_future(client.call_tool("exec", {"instance": ids[0], "command": "sleep 600"}))
            await asyncio.sleep(0.5)
            assert len(containers(nonce)) == 3
            task.cancel()
        # The client closed the server's stdin and waited for it to exit.
        assert containers(nonce) == []
        assert server_pids(nonce) == []

    asyncio.run(go())


def test_sigterm_removes_every_instance(nonce: str) -> None:
    proc = subprocess.Popen(
        [params(nonce).command, *params(nonce).args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None

    def rpc(msg: dict[str, Any]) -> dict[str, Any]:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write((json.dumps(msg) + "\n").encode())
        proc.stdin.flush()
        return dict(json.loads(proc.stdout.readline()))

    init = rpc({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
    assert init["result"]["serverInfo"]["name"] == "headjack"
    proc.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
    spawned = rpc({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "spawn", "arguments": {}}})
    assert spawned["result"]["isError"] is False
    assert len(containers(nonce)) == 1
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert containers(nonce) == []


def test_kill_9_leaves_an_orphan_that_sweep_removes(nonce: str) -> None:
    async def go() -> None:
        async with session(nonce) as client:
            await ok(client, "spawn", {})
            assert len(containers(nonce)) == 1
            (pid,) = server_pids(nonce)
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: server_pids(nonce) == [], "the server to die")
            # Nobody cleaned up: the instance is still there, owned by a dead process.
            assert len(containers(nonce)) == 1

    try:
        asyncio.run(go())
    except BaseException as e:  # the client notices its server died; that is the point
        if containers(nonce) == [] or server_pids(nonce):
            raise AssertionError("the kill -9 scenario did not happen as set up") from e
    out = subprocess.run([BIN, "--host", HOST, "sweep"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert containers(nonce) == []
