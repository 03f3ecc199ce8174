"""An asyncio program that ends while headjack work is in flight, run as a subprocess by
test_exit.py: ``python exit_scenario.py MODE RUN_LABEL``.

- ``plain``: the README's asyncio example (gathered spawns, execs and closes, a stream).
- ``cancelled``: an exec cancelled while it runs, then the program ends.
- ``unawaited``: ``main()`` raises with an exec coroutine never awaited and an exec task still
  running, outside any ``async with``: the instance must still be removed at exit.

It must exit 0 (1 with the traceback of "main raised" for ``unawaited``), never crash, and leave
no container labelled ``io.headjack.test.run=RUN_LABEL`` behind.
"""

from __future__ import annotations

import asyncio
import os
import sys

import headjack

BASE = os.environ.get("HEADJACK_TEST_BASE", "localhost/headjack-test/busybox:latest")


async def plain(labels: dict[str, str]) -> None:
    async with headjack.AsyncClient() as hj:
        envs = await asyncio.gather(*(hj.spawn(base=BASE, labels=labels) for _ in range(16)))
        try:
            results = await asyncio.gather(*(e.exec(["uname", "-r"]) for e in envs))
            assert all(r.exit_code == 0 for r in results)
        finally:
            await asyncio.gather(*(e.close() for e in envs))
        async with await hj.spawn(BASE, labels=labels) as env:
            async for chunk in await env.exec_stream(["echo", "hi"]):
                assert chunk.data


async def cancelled(labels: dict[str, str]) -> None:
    async with headjack.AsyncClient() as hj:
        async with await hj.spawn(BASE, labels=labels) as env:
            task = asyncio.create_task(env.exec(["sleep", "30"]))
            await asyncio.sleep(0.3)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass


async def unawaited(labels: dict[str, str]) -> None:
    hj = headjack.AsyncClient()
    env = await hj.spawn(BASE, labels=labels)
    never = env.exec(["sleep", "30"])  # noqa: F841 - never awaited, on purpose
    running = asyncio.create_task(env.exec(["sleep", "31"]))  # noqa: F841 - left running
    await asyncio.sleep(0.2)
    raise RuntimeError("main raised")


def main() -> None:
    mode, run = sys.argv[1], sys.argv[2]
    labels = {"io.headjack.test": "1", "io.headjack.test.run": run}
    asyncio.run({"plain": plain, "cancelled": cancelled, "unawaited": unawaited}[mode](labels))


if __name__ == "__main__":
    main()
