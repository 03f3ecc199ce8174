"""The asyncio API: AsyncClient / AsyncInstance / async streams, concurrency and cancellation."""

from __future__ import annotations

import asyncio
import collections.abc
import gc
import pathlib
import threading

import pytest

import headjack
from conftest import BASE, containers_of, docker, unique

LABELS = {"io.headjack.test": "1"}
PS = ["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"]


async def test_gather_16_spawns() -> None:
    async with headjack.AsyncClient() as hj:
        envs = await asyncio.gather(*(hj.spawn(base=BASE, labels=LABELS) for _ in range(16)))
        try:
            assert len({e.id for e in envs}) == 16
            results = await asyncio.gather(*(e.exec(["echo", e.id]) for e in envs))
            assert [r.stdout.decode().strip() for r in results] == [e.id for e in envs]
        finally:
            await asyncio.gather(*(e.close() for e in envs))
        for e in envs:
            assert containers_of(e.id) == []


async def test_async_instance_calls(tmp_path: object) -> None:
    hj = headjack.AsyncClient()
    assert "not connected" in repr(hj)
    assert (await hj.connect()) is hj
    info = await hj.info()
    assert info.kind in ("docker", "podman")
    async with await hj.spawn(BASE, env={"K": "v"}, labels=LABELS) as env:
        assert isinstance(env, headjack.AsyncInstance)
        r = await env.exec(["sh", "-c", 'echo "$K"; cat'], stdin=b"in")
        assert (r.exit_code, r.stdout) == (0, b"v\nin")
        with pytest.raises(headjack.ExecError):
            await env.exec(["false"], check=True)
        await env.write_file("/tmp/a/b", "text", mode=0o600)
        assert await env.read_file("/tmp/a/b") == b"text"
        stream = await env.exec_stream(["sh", "-c", "echo 1; echo 2 >&2"])
        chunks = [c async for c in stream]
        assert sorted(c.stream for c in chunks) == ["stderr", "stdout"]
        assert (await stream.wait()).exit_code == 0
        s = await env.exec_stream(["cat"], interactive=True)
        async with s:
            await s.write(b"abc")
            await s.close_stdin()
            assert b"".join([c.data async for c in s]) == b"abc"
            assert s.status is not None and s.status.success
        logs = await env.logs()
        assert isinstance(logs, list)
        log_stream = env.logs_stream()
        assert b"".join([c.data async for c in log_stream]) == b"".join(c.data for c in logs)
        await log_stream.close()
        assert await env.status() == "running"
        await env.pause()
        assert (await env.inspect()).status == "paused"
        await env.resume()
        await env.stop(grace=0)
        await env.start()
        await env.restart(grace=0)
        await env.kill("SIGKILL")
        await env.start()
        assert await env.status() == "running"
        out_dir = __import__("pathlib").Path(str(tmp_path))
        await env.copy_in(out_dir, "/tmp")
        written = await env.copy_out("/tmp/a", out_dir / "out")
        assert written
        assert any(i.id == env.id for i in await hj.list())
        env.keep()
        again = await hj.attach(env.id)
        assert again.kept
        await again.remove()
        await again.close()
    assert containers_of(env.id) == []
    assert isinstance(await hj.sweep(), list)
    assert isinstance(await hj.images(), list)
    assert await hj.prune_images(10**6) == []
    assert (await hj.resolve(BASE)).reference == BASE
    await hj.close()


async def test_async_with_propagates_and_removes() -> None:
    hj = headjack.AsyncClient()
    seen: list[str] = []
    with pytest.raises(KeyError):
        async with await hj.spawn(BASE, labels=LABELS) as env:
            seen.append(env.id)
            raise KeyError("boom")
    assert containers_of(seen[0]) == []
    await env.close()  # idempotent
    assert env.closed
    with pytest.raises(headjack.NotFoundError):
        await env.exec(["true"])


async def test_cancel_exec_kills_process() -> None:
    hj = headjack.AsyncClient()
    async with await hj.spawn(BASE, labels=LABELS) as env:
        task = asyncio.ensure_future(env.exec(["sleep", "33"]))
        for _ in range(100):  # wait until the command runs
            if b"sleep 33" in (await env.exec(PS)).stdout:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("sleep 33 never started")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        listing = b"sleep 33"
        for _ in range(100):  # the kill runs in the background: poll until it is done
            listing = (await env.exec(PS)).stdout
            if b"sleep 33" not in listing:
                break
            await asyncio.sleep(0.1)
        assert b"sleep 33" not in listing


async def test_wait_for_timeout_cancels() -> None:
    hj = headjack.AsyncClient()
    async with await hj.spawn(BASE, labels=LABELS) as env:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(env.exec(["sleep", "34"]), timeout=0.5)
        listing = b"sleep 34"
        for _ in range(100):
            listing = (await env.exec(PS)).stdout
            if b"sleep 34" not in listing:
                break
            await asyncio.sleep(0.1)
        assert b"sleep 34" not in listing


async def test_event_loop_not_blocked() -> None:
    hj = headjack.AsyncClient()
    async with await hj.spawn(BASE, labels=LABELS) as env:
        exec_task = asyncio.ensure_future(env.exec(["sleep", "1"]))
        ticks_while_running = 0
        while not exec_task.done():
            await asyncio.sleep(0.01)
            if not exec_task.done():
                ticks_while_running += 1
        assert (await exec_task).exit_code == 0
        # Other coroutines ran while the exec was pending: the loop was never blocked on it.
        assert ticks_while_running >= 2


async def test_reading_task_does_not_block_writing_task() -> None:
    hj = headjack.AsyncClient()
    async with await hj.spawn(BASE, labels=LABELS) as env:
        s = await env.exec_stream(["sh", "-c", "read l; echo got-$l; read m; echo got-$m"],
                                  interactive=True)

        async def read() -> bytes:
            return b"".join([c.data async for c in s])

        reader = asyncio.ensure_future(read())
        await asyncio.sleep(0.3)  # the reader now waits on output only our input produces
        await asyncio.wait_for(s.write(b"one\n"), 30)
        await asyncio.wait_for(s.write(b"two\n"), 30)
        await asyncio.wait_for(s.close_stdin(), 30)
        assert await asyncio.wait_for(reader, 30) == b"got-one\ngot-two\n"
        assert s.status is not None and s.status.success


async def test_async_methods_return_real_coroutines() -> None:
    hj = headjack.AsyncClient()
    spawning = hj.spawn(BASE, labels=LABELS)
    assert asyncio.iscoroutine(spawning) and isinstance(spawning, collections.abc.Coroutine)
    async with await spawning as env:
        task = asyncio.create_task(env.exec(["echo", "in the background"]))
        assert (await task).stdout == b"in the background\n"
        # Nothing runs before it is awaited (and closing it unawaited is harmless).
        never = env.exec(["sleep", "36"])
        assert "AsyncInstance.exec" in repr(never) and "not started" in repr(never)
        await asyncio.sleep(0.3)
        assert b"sleep 36" not in (await env.exec(PS)).stdout
        never.close()
        # A coroutine runs once.
        once = env.exec(["true"])
        assert (await once).exit_code == 0
        with pytest.raises(RuntimeError, match="cannot reuse already awaited coroutine"):
            await once
        # asyncio's helpers take them as they take any coroutine.
        done, _ = await asyncio.wait([asyncio.ensure_future(env.status())])
        assert done.pop().result() == "running"
        assert await asyncio.wait_for(env.read_file("/etc/passwd"), 30)
        # Methods with no engine call return at once on both faces.
        assert not asyncio.iscoroutine(env.logs_stream())
        env.keep()  # sync on both faces
        assert env.kept


async def test_closing_a_started_coroutine_kills_its_command() -> None:
    async with await headjack.AsyncClient().spawn(BASE, labels=LABELS) as env:
        running = env.exec(["sleep", "37"])
        waiting = asyncio.ensure_future(running)
        for _ in range(100):
            if b"sleep 37" in (await env.exec(PS)).stdout:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("sleep 37 never started")
        running.close()  # as when a coroutine is collected while it runs
        listing = b"sleep 37"
        for _ in range(100):
            listing = (await env.exec(PS)).stdout
            if b"sleep 37" not in listing:
                break
            await asyncio.sleep(0.1)
        assert b"sleep 37" not in listing
        waiting.cancel()


async def test_a_pending_call_keeps_its_instance() -> None:
    env = await headjack.AsyncClient().spawn(BASE, labels=LABELS)
    iid = env.id
    pending = env.exec(["echo", "kept"])
    del env
    gc.collect()
    assert containers_of(iid), "collected while a call on it was pending"
    assert (await pending).stdout == b"kept\n"
    del pending
    gc.collect()
    assert containers_of(iid) == [], "a collected instance is removed"


async def test_progress_is_delivered_on_the_event_loop_thread(tmp_path: pathlib.Path) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {BASE}\nRUN echo {unique('async-build')}\n")
    threads: set[int] = set()
    events: list[dict[str, object]] = []

    def on_progress(event: dict[str, object]) -> None:
        threads.add(threading.get_ident())
        events.append(event)

    hj = headjack.AsyncClient()
    resolved = await hj.resolve(str(tmp_path / "Dockerfile"), progress=on_progress)
    try:
        assert resolved.built
        assert any(e["kind"] == "build" for e in events)
        assert threads == {threading.get_ident()}
    finally:
        docker("rmi", resolved.reference)


async def test_async_exec_outcomes() -> None:
    async with await headjack.AsyncClient().spawn(BASE, labels=LABELS, memory=32 << 20) as env:
        r = await env.exec(["sh", "-c", "head -c 200000000 /dev/zero | tail -c 100000000 >/dev/null"])
        assert r.oom_killed and r.exit_code != 0
        s = await env.exec_stream(["env", "-i", "sleep", "303"], timeout=0.5)
        status = await s.wait()
        # The agent kills what the engine path could not (no marker after `env -i`).
        assert status.timed_out and not status.kill_failed
