"""A child made by os.fork() inherits the parent's handles: closing them there (close(), leaving
`with`, AsyncInstance.close(), Pool.close(), collection) must neither remove the parent's
containers nor raise; anything else raises ForkedError."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import time
import traceback
from collections.abc import Callable

import pytest

import headjack
from conftest import BASE, containers_of

LABELS = {"io.headjack.test": "1"}

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")


def wait_child(pid: int) -> int:
    """The child's exit code (it is killed, and the test fails, if it hangs)."""
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.WIFEXITED(status), f"the forked child died: status {status}"
            return os.WEXITSTATUS(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung")
        time.sleep(0.05)


def in_child(body: Callable[[], None]) -> int:
    """Runs `body` in a forked child; its exit code is 0 when it returned, 1 when it raised."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            body()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    return wait_child(pid)


def test_child_leaving_the_with_block_leaves_the_parents_container() -> None:
    parent = os.getpid()
    try:
        with headjack.spawn(base=BASE, labels=LABELS) as env:
            pid = os.fork()
            if pid != 0:
                assert wait_child(pid) == 0, "leaving the `with` raised in the child"
                assert containers_of(env.id), "the child removed the parent's container"
                assert env.exec(["echo", "alive"]).stdout == b"alive\n"
        # The child leaves the block as well (its `with` ran __exit__ above).
    except BaseException:
        if os.getpid() != parent:
            traceback.print_exc()
            os._exit(1)
        raise
    if os.getpid() != parent:
        os._exit(0 if env.closed else 2)
    assert containers_of(env.id) == []


def test_child_close_and_collection_leave_the_parents_containers(client: headjack.Client) -> None:
    held = [client.spawn(BASE, labels=LABELS)]  # only this list refers to it
    collected_id = held[0].id
    with client.spawn(BASE, labels=LABELS) as env, client.spawn(BASE, labels=LABELS) as other:

        def child() -> None:
            env.close()
            assert env.closed
            env.close()  # idempotent, still nothing removed
            held.clear()  # the child's copy of the handle is collected
            gc.collect()
            with pytest.raises(headjack.ForkedError):
                other.exec(["true"])
            with pytest.raises(headjack.ForkedError):
                other.remove()  # explicit removal is refused, not silently skipped

        assert in_child(child) == 0
        for survivor in (env, other, held[0]):
            assert containers_of(survivor.id)
            assert survivor.exec(["true"]).exit_code == 0
        del survivor
    held.clear()
    gc.collect()
    assert containers_of(collected_id) == []


def test_child_async_close_leaves_the_parents_container() -> None:
    async def spawn() -> headjack.AsyncInstance:
        return await headjack.AsyncClient().spawn(BASE, labels=LABELS)

    env = asyncio.run(spawn())
    try:

        def child() -> None:
            asyncio.run(env.close())  # a coroutine that needs no runtime in the child
            assert env.closed

            async def leave() -> None:
                async with env:
                    pass

            asyncio.run(leave())

        assert in_child(child) == 0
        assert containers_of(env.id)
        assert asyncio.run(env.exec(["true"])).exit_code == 0
    finally:
        asyncio.run(env.close())
    assert containers_of(env.id) == []


def test_child_pool_close_leaves_the_parents_instances(client: headjack.Client) -> None:
    case = {"io.headjack.test": "1", "io.headjack.test.case": f"fork-pool-{os.getpid()}"}
    with client.pool(BASE, size=1, labels=case) as pool:

        def waiting() -> list[str]:
            return [i.id for i in client.list() if i.labels.get("io.headjack.test.case") == case[
                "io.headjack.test.case"]]

        before = waiting()
        assert len(before) == 1

        def child() -> None:
            pool.close()
            pool.close()
            with pool:
                pass

        assert in_child(child) == 0
        assert waiting() == before
        assert pool.ready == 1
    assert waiting() == []
