"""Background processes through Python (sync and asyncio): started, listed, replayed, followed,
signalled, waited for and forgotten; and one that outlives the Python process that started it
(``kill -9``) and is reattached from this one with its output replayed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

import headjack
from conftest import BASE, containers_of

LABELS = {"io.headjack.test": "1"}

# A child Python process: spawns an instance, keeps it, starts a background process that prints,
# then waits for a go-ahead; prints the IDs and sleeps until it is killed.
CHILD = """
import json, sys, time, headjack
env = headjack.spawn(base=sys.argv[1], labels={"io.headjack.test": "1"}, detached=True)
env.keep()
p = env.start_process(
    ["sh", "-c", "echo before $WHO; echo err >&2; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo after; exit 3"],
    env={"WHO": "child"},
)
print(json.dumps({"instance": env.id, "process": p.id}), flush=True)
time.sleep(600)
"""


def text(chunks: list[headjack.Chunk], stream: str = "stdout") -> str:
    return b"".join(c.data for c in chunks if c.stream == stream).decode()


def test_a_process_outlives_its_python_process_and_is_reattached() -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD, BASE], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    instance_id = None
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line, f"the child printed nothing: {child.communicate(timeout=60)}"
        ids = json.loads(line)
        instance_id = ids["instance"]
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL

        env = headjack.attach(instance_id)
        listed = {p.id: p for p in env.processes()}
        assert ids["process"] in listed, listed
        info = listed[ids["process"]]
        assert info.running and info.status is None and info.pid > 1
        assert info.argv[0] == "sh"

        p = env.process(ids["process"])
        assert p.id == ids["process"]
        kept = p.output()  # replay only: returns while the process still runs
        assert text(kept) == "before child\n"
        assert text(kept, "stderr") == "err\n"

        with p.attach() as stream:
            env.exec(["touch", "/tmp/go"], check=True)
            chunks = list(stream)
            assert text(chunks) == "before child\nafter\n"
            assert stream.status is not None and stream.status.exit_code == 3
        status = p.wait()
        assert status.exit_code == 3 and not status.timed_out
        ended = {i.id: i for i in env.processes()}[p.id]
        assert not ended.running and ended.status is not None and ended.status.exit_code == 3
        p.forget()
        assert p.id not in {i.id for i in env.processes()}
        with pytest.raises(headjack.NotFoundError):
            p.wait()
    finally:
        if child.poll() is None:
            child.kill()
        if instance_id is not None:
            headjack.attach(instance_id).remove()
            assert containers_of(instance_id) == []


def test_sync_kill_timeout_and_wrong_input(env: headjack.Instance) -> None:
    p = env.start_process(["sleep", "300"])
    with pytest.raises(headjack.ConflictError):
        p.forget()  # still runs
    p.kill("KILL")
    assert p.wait().exit_code == 137
    p.forget()

    p = env.start_process(["sh", "-c", "sleep 300 & wait"])
    p.kill()  # SIGTERM, to the process and everything it started
    assert p.wait().exit_code == 143
    # The container's command lines, read through /proc (PID 1, the agent, is always there).
    left = env.exec(["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"]).stdout
    assert b"headjack-agent" in left and b"sleep 300" not in left, left
    p.forget()

    p = env.start_process(["sleep", "300"], timeout=0.5)
    st = p.wait()
    assert st.timed_out and not st.success
    p.forget()

    with pytest.raises(headjack.InvalidArgumentError, match="not a signal"):
        env.start_process(["true"]).kill("BOGUS")
    with pytest.raises(headjack.InvalidArgumentError, match="not a signal number"):
        env.process(1).kill(99)
    with pytest.raises(TypeError, match="signal"):
        env.process(1).kill(True)
    with pytest.raises(TypeError):
        env.start_process(["cat"], stdin=b"x")  # type: ignore[call-arg]
    with pytest.raises(headjack.NotFoundError):
        env.process(424242).wait()
    with pytest.raises(ValueError, match=">= 0"):
        env.process(-1)
    with pytest.raises(headjack.HeadjackError, match="/no/such/program"):
        env.start_process(["/no/such/program"])
    for i in env.processes():
        if not i.running:
            env.process(i.id).forget()


async def test_async_processes() -> None:
    async with headjack.AsyncClient() as hj:
        async with await hj.spawn(base=BASE, labels=LABELS) as env:
            p = await env.start_process(["sh", "-c", "echo one; echo two; sleep 300"],
                                        workdir="/tmp")
            assert isinstance(p, headjack.AsyncProcess)
            assert [i.id for i in await env.processes()] == [p.id]
            stream = await p.attach()
            got = b""
            async for chunk in stream:
                got += chunk.data
                if got == b"one\ntwo\n":
                    break
            await stream.close()  # stops following; the process goes on
            assert (await env.processes())[0].running
            again = env.process(p.id)
            assert text(await again.output()) == "one\ntwo\n"
            # replay=False: only what comes after attaching, here nothing before the end.
            live = await again.attach(replay=False)
            await again.kill(signal.SIGTERM)
            assert [c async for c in live] == []
            assert (await again.wait()).exit_code == 143
            await again.forget()
            assert await env.processes() == []
        assert containers_of(env.id) == []
