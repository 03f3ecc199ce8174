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
