"""Pools: instances spawned ahead of time, handed out at once, refilled in the background."""

from __future__ import annotations

import os
import time

import pytest

import headjack
from conftest import BASE, containers_of

LABELS = {"io.headjack.test": "1"}


def _wait_ready(pool: headjack.Pool | headjack.AsyncPool, n: int) -> None:
    for _ in range(300):  # up to 30 s on a loaded machine
        if pool.ready == n:
            return
        time.sleep(0.1)
    assert pool.ready == n


def test_sync_pool_take_refill_close(client: headjack.Client) -> None:
    case = f"pool-{os.getpid()}-{time.time_ns()}"
    with client.pool(BASE, size=2, labels={**LABELS, "case": case}) as pool:
        assert pool.ready == 2
        a = pool.take()
        b = pool.take()
        c = pool.take()  # empty: spawned on demand
        with a, b, c:
            assert len({a.id, b.id, c.id}) == 3
            assert a.exec(["echo", "ok"]).stdout == b"ok\n"
        _wait_ready(pool, 2)
        waiting = [i.id for i in client.list() if i.labels.get("case") == case]
        assert len(waiting) == 2  # the refilled ones (the taken ones were closed above)
    # Closing removed the waiting instances; the taken ones were closed by their `with`.
    for iid in [a.id, b.id, c.id, *waiting]:
        assert containers_of(iid) == []
    pool.close()  # idempotent
    with pytest.raises(headjack.NotFoundError, match="closed"):
        pool.take()
    assert pool.ready == 0


def test_pool_bad_input(client: headjack.Client) -> None:
    with pytest.raises(headjack.InvalidArgumentError, match="size"):
        client.pool(BASE, size=0)
    with pytest.raises(TypeError):
        client.pool(BASE, size="two")  # type: ignore[arg-type]
    with pytest.raises(headjack.InvalidBaseError):
        client.pool("Not/Valid:Ref", size=1)


async def test_async_pool() -> None:
    async with headjack.AsyncClient() as hj:
        async with await hj.pool(BASE, size=1, labels=LABELS) as pool:
            env = await pool.take()
            async with env:
                r = await env.exec(["echo", "async"])
                assert r.stdout == b"async\n"
            assert containers_of(env.id) == []


def test_take_with_a_claim(client: headjack.Client) -> None:
    with client.pool(BASE, size=1, labels=LABELS, env={"FROM_SPEC": "spec"}) as pool:
        _wait_ready(pool, 1)
        pooled = {i.id for i in client.list()}
        with pool.take(env={"TASK": "t1", "FROM_SPEC": "claim"}, workdir="/work", user="nobody",
                       files={"/work/task.json": b"{}", "/work/note.txt": "hi"},
                       labels={"task": "t1"}) as env:
            assert env.id in pooled  # the running instance, not a new one
            r = env.exec(["sh", "-c", "echo $TASK $FROM_SPEC; pwd; id -u; cat task.json note.txt"])
            assert r.stdout == b"t1 claim\n/work\n65534\n{}hi"
            assert env.claim_labels() == {"task": "t1"}
            assert "task" not in env.inspect().labels  # engines cannot relabel
        # What needs a new container is refused before anything is taken.
        _wait_ready(pool, 1)
        for option, value in [("memory", 1 << 30), ("base", "alpine"), ("mounts", [])]:
            with pytest.raises(headjack.InvalidArgumentError, match=f"`{option}`.*new container"):
                pool.take(**{option: value})  # type: ignore[arg-type]
        with pytest.raises(headjack.InvalidArgumentError, match="absolute"):
            pool.take(workdir="relative")
        with pytest.raises(TypeError, match="files"):
            pool.take(files=["/x"])  # type: ignore[arg-type]
        assert pool.ready == 1
        with pool.take() as plain:
            assert plain.claim_labels() == {}
            assert plain.exec(["sh", "-c", "echo ${TASK:-none}"]).stdout == b"none\n"


async def test_async_take_with_a_claim() -> None:
    async with headjack.AsyncClient() as hj:
        async with await hj.pool(BASE, size=1, labels=LABELS) as pool:
            async with await pool.take(env={"TASK": "a1"}, labels={"k": "v"}) as env:
                assert (await env.exec(["sh", "-c", "echo $TASK"])).stdout == b"a1\n"
                assert env.claim_labels() == {"k": "v"}
