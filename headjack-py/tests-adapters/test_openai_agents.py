"""The OpenAI Agents SDK adapter against the real engine: the SDK's own sandbox session
interface called directly, then a whole ``Runner`` run driven by the SDK's ``ScriptedModel``
(no LLM)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from agents import RunConfig, Runner
from agents.run_config import SandboxRunConfig
from agents.sandbox import Manifest, SandboxAgent
from agents.sandbox.entries import S3Mount
from agents.sandbox.entries.mounts.base import DockerVolumeMountStrategy
from agents.sandbox.errors import (
    ExecTimeoutError,
    ExecTransportError,
    MountConfigError,
    WorkspaceReadNotFoundError,
)
from agents.sandbox.session import SandboxSession
from agents.testing import ScriptedModel, assistant_message, function_call
from conftest import BUSYBOX, HOST, Labels

import headjack
from headjack.adapters.openai_agents import (
    HeadjackSandboxClient,
    HeadjackSandboxClientOptions,
    HeadjackSandboxSession,
    HeadjackSandboxSessionState,
)


def options(labels: Labels, **kw: object) -> HeadjackSandboxClientOptions:
    return HeadjackSandboxClientOptions(BUSYBOX, labels=labels.labels, **kw)  # type: ignore[arg-type]


def inner(session: SandboxSession) -> HeadjackSandboxSession:
    s = session._inner
    assert isinstance(s, HeadjackSandboxSession)
    return s


async def test_exec_files_and_errors_through_the_session_interface(labels: Labels) -> None:
    client = HeadjackSandboxClient(host=HOST)
    session = await client.create(options=options(labels, network="none"))
    try:
        async with session:
            assert await session.running()
            assert len(labels.containers()) == 1

            # Commands run in the workspace root, through `sh -lc`.
            r = await session.exec("pwd; echo out; echo err >&2")
            assert (r.exit_code, r.stdout, r.stderr) == (0, b"/workspace\nout\n", b"err\n")
            r = await session.exec("exit 3")
            assert r.exit_code == 3 and not r.ok()
            r = await session.exec("no-such-command")
            assert r.exit_code == 127
            r = await session.exec("id -u", user="nobody")
            assert r.stdout.strip() == b"65534"

            # A timeout is the SDK's ExecTimeoutError, and the command is gone afterwards.
            with pytest.raises(ExecTimeoutError):
                await session.exec("sleep 300 & sleep 301", timeout=1)
            ps = await session.exec("ps -o args")
            assert b"sleep 30" not in ps.stdout, ps.stdout

            # Files, relative to the workspace root or absolute inside it.
            await session.write(Path("notes/a.txt"), io.BytesIO(b"hello\n"))
            assert (await session.read(Path("notes/a.txt"))).read() == b"hello\n"
            assert (await session.read(Path("/workspace/notes/a.txt"))).read() == b"hello\n"
            assert await session.read_bounded(Path("notes/a.txt"), max_bytes=3) == b"hel"
            with pytest.raises(WorkspaceReadNotFoundError):
                await session.read(Path("notes/missing.txt"))
            with pytest.raises(WorkspaceReadNotFoundError):
                await session.read_bounded(Path("notes/missing.txt"), max_bytes=3)
            # A write keeps the mode of the file it replaces.
            await session.write(Path("run.sh"), io.BytesIO(b"#!/bin/sh\necho one\n"))
            await session.exec("chmod 755 run.sh")
            await session.write(Path("run.sh"), io.BytesIO(b"#!/bin/sh\necho two\n"))
            assert (await session.exec("./run.sh")).stdout == b"two\n"
            names = sorted(e.path for e in await session.ls(Path(".")))
            assert names == ["/workspace/notes", "/workspace/run.sh"]
            await session.mkdir(Path("a/b"), parents=True)
            await session.rm(Path("a"), recursive=True)
            assert not (await session.exec("test -e a")).ok()
            # Paths leaving the workspace are refused before anything runs.
            with pytest.raises(Exception, match="workspace|escape|absolute"):
                await session.write(Path("../etc/evil"), io.BytesIO(b"x"))
    finally:
        await client.delete(session)
    assert labels.containers() == []
    # Calls on a deleted sandbox fail as the SDK's transport errors.
    with pytest.raises(ExecTransportError):
        await session.exec("true")


async def test_interactive_processes_outlive_the_call(labels: Labels) -> None:
    client = HeadjackSandboxClient(host=HOST)
    session = await client.create(options=options(labels))
    try:
        async with session:
            s = inner(session)
            # A command still running when the call yields gets a session ID ...
            update = await s.pty_exec_start("sleep 1; echo done", yield_time_s=0.25)
            assert update.process_id is not None and update.exit_code is None
            # ... and a later call collects its output and exit code.
            for _ in range(40):
                later = await s.pty_write_stdin(session_id=update.process_id, chars="", yield_time_s=0.5)
                if later.exit_code is not None:
                    break
            assert later.exit_code == 0 and later.process_id is None
            assert b"done" in update.output + later.output

            # With a terminal, input goes to the process.
            shell = await s.pty_exec_start("sh", tty=True, shell=False, yield_time_s=0.5)
            assert shell.process_id is not None
            echoed = await s.pty_write_stdin(session_id=shell.process_id, chars="echo $((6*7))\n", yield_time_s=1)
            assert b"42" in echoed.output
            gone = await s.pty_write_stdin(session_id=shell.process_id, chars="exit 5\n", yield_time_s=2)
            assert gone.exit_code == 5

            # A process still running when the session stops is killed.
            await s.pty_exec_start("sleep 600", yield_time_s=0.25)
            await s.pty_terminate_all()
            assert b"sleep 600" not in (await session.exec("ps -o args")).stdout
    finally:
        await client.delete(session)
    assert labels.containers() == []


async def test_workspace_snapshot_round_trip_and_resume(labels: Labels, tmp_path: Path) -> None:
    client = HeadjackSandboxClient(host=HOST)
    first = await client.create(options=options(labels))
    second = await client.create(options=options(labels))
    try:
        async with first, second:
            await first.write(Path("src/main.py"), io.BytesIO(b"print('hi')\n"))
            await first.exec("ln -s src/main.py link.py && mkdir -p empty")
            archive = await inner(first).persist_workspace()
            with tarfile.open(fileobj=archive, mode="r:*") as tar:
                names = sorted(m.name.removeprefix("./") for m in tar.getmembers())
            assert {"src/main.py", "link.py", "empty"} <= set(names)
            archive.seek(0)
            await inner(second).hydrate_workspace(archive)
            assert (await second.read(Path("src/main.py"))).read() == b"print('hi')\n"
            assert (await second.exec("readlink link.py")).stdout == b"src/main.py\n"

            # Resume: the same instance while it exists ...
            state = client.deserialize_session_state(client.serialize_session_state(inner(first).state))
            assert isinstance(state, HeadjackSandboxSessionState)
            resumed = await client.resume(state)
            assert inner(resumed).instance.id == inner(first).instance.id
            assert (await resumed.read(Path("src/main.py"))).read() == b"print('hi')\n"
    finally:
        await client.delete(first)
        await client.delete(second)
    # ... and a like one once it is gone.
    state.workspace_root_ready = True
    replacement = await client.resume(state)
    try:
        assert inner(replacement).instance.id != inner(first).instance.id
        await replacement.start()
        assert (await replacement.exec("pwd")).stdout == b"/workspace\n"
    finally:
        await client.delete(replacement)
    assert labels.containers() == []


async def test_bad_options_are_clear_errors(labels: Labels) -> None:
    client = HeadjackSandboxClient(host=HOST)
    with pytest.raises(headjack.HeadjackError, match="no-such-image"):
        await client.create(options=HeadjackSandboxClientOptions(
            "localhost/headjack-test/no-such-image:1", labels=labels.labels))
    mount = S3Mount(bucket="b", mount_strategy=DockerVolumeMountStrategy(driver="rclone"))
    with pytest.raises(MountConfigError, match="not supported"):
        await client.create(options=options(labels), manifest=Manifest(entries={"data": mount}))
    with pytest.raises(ValueError, match="not both"):
        HeadjackSandboxClient(headjack.AsyncClient(HOST), host=HOST)
    assert labels.containers() == []


async def test_a_whole_agent_run_with_the_sdks_scripted_model(labels: Labels) -> None:
    model = ScriptedModel([
        [function_call("exec_command", {"cmd": "echo hello from headjack > greeting.txt && cat greeting.txt"}, call_id="c1")],
        [function_call("exec_command", {"cmd": "sleep 30", "yield_time_ms": 300}, call_id="c2")],
        [assistant_message("done")],
    ])
    agent = SandboxAgent(name="worker", instructions="Use the shell.", model=model)
    run_config = RunConfig(
        sandbox=SandboxRunConfig(client=HeadjackSandboxClient(host=HOST), options=options(labels)),
        tracing_disabled=True,
    )
    result = await Runner.run(agent, "write a greeting", run_config=run_config)
    assert result.final_output == "done"
    outputs = [str(getattr(item, "output", "")) for item in result.new_items]
    assert any("hello from headjack" in o and "exited with code 0" in o for o in outputs), outputs
    # The long command kept running past its yield: the model got a session ID for it.
    assert any("Process running with session ID" in o for o in outputs), outputs
    model.assert_complete()
    # The runner created the sandbox, so it deleted it (and the still-running sleep with it).
    assert labels.containers() == []
