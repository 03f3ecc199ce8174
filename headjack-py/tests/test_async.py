"""The asyncio API: AsyncClient / AsyncInstance / async streams, concurrency and cancellation."""

from __future__ import annotations

import asyncio
import pytest

import headjack
from conftest import BASE, containers_of

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
