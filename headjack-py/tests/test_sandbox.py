"""Sandbox features (issue 13) through both Python faces: published ports, named volumes, stats."""

from __future__ import annotations

import socket
import subprocess
import time
import uuid

import pytest

import headjack
from conftest import BASE, containers_of, docker


def web(port: int) -> dict[str, object]:
    return {
        "init": ["sh", "-c", f"mkdir -p /www && echo hi-from-py > /www/index.html && exec httpd -f -p {port} -h /www"],
        "readiness": ["wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{port}/"],
        "labels": {"io.headjack.test": "1"},
    }


def http_get(host: str, port: int) -> str:
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        chunks = []
        while data := s.recv(4096):
            chunks.append(data)
    return b"".join(chunks).decode()


def test_publish_port_volumes_and_stats_sync() -> None:
    client = headjack.Client()
    with client.spawn(BASE, publish=[8080], memory=64 << 20, **web(8080)) as env:  # type: ignore[arg-type]
        host, port = env.port(8080)
        assert host == "127.0.0.1" and port > 0
        assert "hi-from-py" in http_get(host, port)
        with pytest.raises(headjack.NotFoundError, match="not published"):
            env.port(9999)
        stats = env.stats()
        assert stats["memory_limit_bytes"] == 64 << 20
        assert (stats["pids"] or 0) >= 1 and (stats["cpu_time_ns"] or 0) > 0
    with pytest.raises(ValueError, match="port 0"):
        client.spawn(BASE, publish=[0])
    vol = f"headjack-test-py-{uuid.uuid4().hex[:8]}"
    try:
        with client.spawn(BASE, volumes={vol: "/data"}, labels={"io.headjack.test": "1"}) as a:
            a.exec(["sh", "-c", "echo kept > /data/f"], check=True)
        with client.spawn(BASE, volumes={vol: "/data:ro"}, labels={"io.headjack.test": "1"}) as b:
            assert b.exec(["cat", "/data/f"]).stdout == b"kept\n"
            assert b.exec(["sh", "-c", "echo x > /data/g"]).exit_code != 0
        with pytest.raises(ValueError, match="invalid volume name"):
            client.spawn(BASE, volumes={"bad/name": "/data"})
    finally:
        docker("volume", "rm", "-f", vol)


async def test_publish_port_and_stats_async() -> None:
    client = headjack.AsyncClient()
    async with await client.spawn(BASE, publish=["0:8081"], **web(8081)) as env:  # type: ignore[arg-type]
        host, port = await env.port(8081)
        assert "hi-from-py" in http_get(host, port)
        stats = await env.stats()
        assert (stats["memory_bytes"] or 0) > 0


# --- fork, volumes, checkpoints, limits, exit reasons, stats streams (issue 13) -------------

TEST = {"io.headjack.test": "1"}


def image_exists(reference: str) -> bool:
    return docker("image", "inspect", reference).returncode == 0


def fork_snapshots_of(instance_id: str) -> list[str]:
    """The snapshot images of forks of `instance_id` (by reference: Podman 4.3 does not filter
    images by label)."""
    out = docker("images", "--format", "{{.Repository}}:{{.Tag}}")
    assert out.returncode == 0, out.stderr
    prefix = f"localhost/headjack/fork:{instance_id}-"
    return [r for r in out.stdout.split() if r.startswith(prefix)]


def container_named(name: str) -> bool:
    out = docker("ps", "-aq", "--filter", f"name=^{name}$")
    assert out.returncode == 0, out.stderr
    return bool(out.stdout.split())


def test_fork_copies_files_then_diverges_sync() -> None:
    client = headjack.Client()
    with client.spawn(BASE, memory=64 << 20, labels=TEST) as parent:
        parent.exec(["sh", "-c", "echo parent > /f"], check=True)
        assert parent.fork_snapshot is None
        with parent.fork() as fork:
            assert isinstance(fork, headjack.Instance)
            assert fork.id != parent.id and not fork.kept
            snapshot = fork.fork_snapshot
            assert snapshot is not None and image_exists(snapshot)
            assert fork.read_file("/f") == b"parent\n"
            assert fork.stats()["memory_limit_bytes"] == 64 << 20, "the same spec"
            fork.exec(["sh", "-c", "echo fork > /g"], check=True)
            assert parent.exec(["test", "-e", "/g"]).exit_code == 1, "the parent does not see it"
            fork_id = fork.id
        # Closing the fork removes its container and its snapshot.
        assert containers_of(fork_id) == []
        assert not image_exists(snapshot)

        kept = parent.fork(keep_snapshot=True)
        try:
            assert kept.fork_snapshot is None
            assert kept.read_file("/f") == b"parent\n"
        finally:
            kept.close()
        assert containers_of(kept.id) == []
        left = fork_snapshots_of(parent.id)
        assert len(left) == 1, "keep_snapshot=True keeps the snapshot image"
        client.remove_image(left[0], force=True)

        with pytest.raises(TypeError, match="keep_snapshot must be a bool"):
            parent.fork(keep_snapshot="yes")  # type: ignore[arg-type]
        parent.remove()
        with pytest.raises(headjack.NotFoundError):
            parent.fork()
    # A closed handle cannot be forked either.
    with pytest.raises(headjack.NotFoundError, match="closed"):
        parent.fork()
    assert fork_snapshots_of(parent.id) == []


async def test_fork_async() -> None:
    client = headjack.AsyncClient()
    async with await client.spawn(BASE, labels=TEST) as parent:
        await parent.write_file("/f", b"parent")
        fork = await parent.fork()
        async with fork:
            assert isinstance(fork, headjack.AsyncInstance)
            assert await fork.read_file("/f") == b"parent"
            await fork.write_file("/f", b"changed")
            assert await parent.read_file("/f") == b"parent"
            snapshot = fork.fork_snapshot
            assert snapshot is not None
        assert containers_of(fork.id) == []
        assert not image_exists(snapshot)
    with pytest.raises(headjack.NotFoundError):
        await parent.fork()
    assert fork_snapshots_of(parent.id) == []


def test_volumes_list_keep_data_and_remove_sync() -> None:
    client = headjack.Client()
    vol = f"headjack-test-py-{uuid.uuid4().hex[:8]}"
    foreign = f"headjack-test-py-foreign-{uuid.uuid4().hex[:8]}"
    try:
        assert vol not in [v.name for v in client.volumes()]
        with client.spawn(BASE, volumes={vol: "/data"}, labels=TEST) as a:
            a.exec(["sh", "-c", "echo kept > /data/note && sync"], check=True)
        info = next(v for v in client.volumes() if v.name == vol)
        assert isinstance(info, headjack.VolumeInfo)
        assert info.labels["io.headjack.volume"] == "true"
        assert info.expires is None and info.driver == "local" and info.created_at
        with client.spawn(BASE, volumes={vol: "/data"}, labels=TEST) as b:
            assert b.read_file("/data/note") == b"kept\n"
            # Mounted: refused, and kept.
            with pytest.raises(headjack.ConflictError, match=vol):
                client.remove_volume(vol)
        assert vol in [v.name for v in client.volumes()]
        client.remove_volume(vol)
        assert vol not in [v.name for v in client.volumes()]
        assert docker("volume", "inspect", vol).returncode != 0
        client.remove_volume(vol)  # removing it again is fine

        for bad in ["", "a", "sp ace", "../x"]:
            with pytest.raises(headjack.InvalidArgumentError):
                client.remove_volume(bad)
            with pytest.raises(headjack.InvalidArgumentError):
                client.create_volume(bad)
        with pytest.raises(TypeError, match="name must be a str"):
            client.remove_volume(3)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="expires_after"):
            client.create_volume(vol, expires_after=-1)

        # A volume headjack did not create is never removed by it.
        assert docker("volume", "create", foreign).returncode == 0
        with pytest.raises(headjack.InvalidArgumentError, match="not created by headjack"):
            client.remove_volume(foreign)
        assert docker("volume", "inspect", foreign).returncode == 0
    finally:
        docker("volume", "rm", "-f", vol)
        docker("volume", "rm", "-f", foreign)


async def test_volumes_async() -> None:
    client = headjack.AsyncClient()
    vol = f"headjack-test-py-{uuid.uuid4().hex[:8]}"
    try:
        info = await client.create_volume(vol, expires_after=3600)
        assert info.name == vol and info.expires is not None
        assert vol in [v.name for v in await client.volumes()]
        async with await client.spawn(BASE, volumes={vol: "/data"}, labels=TEST) as env:
            await env.write_file("/data/x", b"1")
            with pytest.raises(headjack.ConflictError):
                await client.remove_volume(vol)
        await client.remove_volume(vol)
        assert vol not in [v.name for v in await client.volumes()]
        with pytest.raises(headjack.InvalidArgumentError):
            await client.remove_volume("bad/name")
    finally:
        docker("volume", "rm", "-f", vol)


COUNTER = [
    "sh",
    "-c",
    "i=0; while true; do i=$((i+1)); echo $i > /tmp/c.new; mv /tmp/c.new /tmp/count; usleep 50000; done",
]


def test_checkpoint_where_the_engine_cannot_is_a_clear_unsupported_error_sync() -> None:
    client = headjack.Client()
    needs = "CRIU" if client.info().kind == "podman" else "experimental"
    with client.spawn(BASE, init=COUNTER, labels=TEST) as env:
        with pytest.raises(headjack.InvalidArgumentError):
            env.checkpoint("bad name")
        with pytest.raises(TypeError, match="name must be a str"):
            env.checkpoint(1)  # type: ignore[arg-type]
        with pytest.raises(headjack.UnsupportedError, match=needs) as e:
            env.checkpoint("c1")
        assert e.value.kind == "unsupported" and "checkpoint" in e.value.message
        assert env.status() == "running", "the refusal does not harm the instance"
        with pytest.raises(headjack.ConflictError, match="stop it first"):
            client.restore(env.id, "c1")
        with pytest.raises(headjack.InvalidArgumentError):
            client.restore(env.id, "bad name")
        assert env.status() == "running"
        env.stop(grace=1)
        with pytest.raises(headjack.UnsupportedError):
            client.restore(env.id, "c1")
    with pytest.raises(headjack.NotFoundError):
        client.restore(env.id, "c1")
    with pytest.raises(headjack.NotFoundError):
        env.checkpoint("c1")


async def test_checkpoint_async() -> None:
    client = headjack.AsyncClient()
    needs = "CRIU" if (await client.info()).kind == "podman" else "experimental"
    async with await client.spawn(BASE, init=COUNTER, labels=TEST) as env:
        with pytest.raises(headjack.InvalidArgumentError):
            await env.checkpoint("../c")
        with pytest.raises(headjack.UnsupportedError, match=needs):
            await env.checkpoint("c1")
        with pytest.raises(headjack.ConflictError):
            await client.restore(env.id, "c1")
        await env.stop(grace=1)
        with pytest.raises(headjack.UnsupportedError):
            await client.restore(env.id, "c1")


def test_ulimits_take_effect_and_disk_is_clear_where_unsupported() -> None:
    client = headjack.Client()
    with client.spawn(BASE, ulimits={"nofile": (100, 200), "core": 0}, labels=TEST) as env:
        out = env.exec(["sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c"], check=True)
        assert out.stdout_text == "100\n200\n0\n"

    bad: list[tuple[object, type[BaseException], str]] = [
        ({"nofile": (200, 100)}, headjack.InvalidArgumentError, "soft"),
        ({"nofile": (-2, 5)}, headjack.InvalidArgumentError, "soft"),
        ({"files": 1}, headjack.InvalidArgumentError, "unknown ulimit"),
        ({"nofile": (1, 2, 3)}, ValueError, "soft, hard"),
        ({"nofile": (1 << 70, 1)}, ValueError, "unlimited"),
        ({"nofile": "100"}, TypeError, "an int"),
        ({"nofile": (True, 1)}, TypeError, "an int"),
        ({1: 1}, TypeError, "keys must be a str"),
        ([("nofile", 1)], TypeError, "ulimits must be a dict"),
    ]
    for value, exc, match in bad:
        with pytest.raises(exc, match=match):
            client.spawn(BASE, ulimits=value, labels=TEST)  # type: ignore[arg-type]

    driver = docker("info", "-f", "{{.Driver}}").stdout.strip()
    assert driver
    name = f"headjack-test-py-disk-{uuid.uuid4().hex[:8]}"
    with pytest.raises(headjack.UnsupportedError) as e:
        client.spawn(BASE, name=name, disk=100 << 20, labels=TEST)
    assert driver in e.value.message and "100 MiB" in e.value.message, e.value.message
    assert not container_named(name), "nothing left behind"
    with pytest.raises(headjack.InvalidArgumentError, match="disk size"):
        client.spawn(BASE, disk=10, labels=TEST)
    with pytest.raises(ValueError, match="disk must be >= 0"):
        client.spawn(BASE, disk=-1, labels=TEST)
    with pytest.raises(TypeError, match="disk must be an int"):
        client.spawn(BASE, disk="1G", labels=TEST)  # type: ignore[arg-type]


async def test_ulimits_async() -> None:
    client = headjack.AsyncClient()
    async with await client.spawn(BASE, ulimits={"nofile": (64, 64)}, labels=TEST) as env:
        out = await env.exec(["sh", "-c", "ulimit -n; ulimit -Hn"], check=True)
        assert out.stdout_text == "64\n64\n"


OOM = ["sh", "-c", "head -c 200000000 /dev/zero | tail -c 100000000 > /dev/null"]


def test_exit_reason_of_commands_and_instances_sync() -> None:
    client = headjack.Client()
    with client.spawn(BASE, memory=32 << 20, labels=TEST) as env:
        out = env.exec(OOM)
        assert out.oom_killed, out
        assert out.exit_reason == "killed: out of memory"
        out = env.exec(["sh", "-c", "exit 3"])
        assert out.exit_reason == "exited with code 3"
        assert env.exec(["true"]).exit_reason == "exited with code 0"
        assert env.exec(["sleep", "5"], timeout=0.2).exit_reason == "timed out"
        assert env.inspect().exit_reason is None, "still running"
    # Docker reports any OOM kill in the container as the container's: a fresh one for a kill.
    with client.spawn(BASE, labels=TEST) as env:
        env.kill()
        deadline = time.monotonic() + 30
        while (info := env.inspect()).status != "exited":
            assert time.monotonic() < deadline, info.status
            time.sleep(0.1)
        assert info.exit_reason == "killed by signal 9"


async def test_exit_reason_async() -> None:
    client = headjack.AsyncClient()
    async with await client.spawn(BASE, memory=32 << 20, labels=TEST) as env:
        out = await env.exec(OOM)
        assert out.oom_killed and out.exit_reason == "killed: out of memory"
        out = await env.exec(["sh", "-c", "exit 3"])
        assert out.exit_reason == "exited with code 3"
        assert (await env.inspect()).exit_reason is None


def test_stats_stream_ends_when_the_instance_stops_sync() -> None:
    client = headjack.Client()
    with client.spawn(BASE, memory=64 << 20, labels=TEST) as env:
        stream = env.stats_stream(0.2)
        assert isinstance(stream, headjack.StatsStream) and iter(stream) is stream
        started = time.monotonic()
        samples = [next(stream), next(stream)]
        assert time.monotonic() - started >= 0.2, "paced by the interval"
        for s in samples:
            assert s["memory_limit_bytes"] == 64 << 20 and (s["pids"] or 0) >= 1
        env.stop(grace=1)
        assert list(stream) == [], "the iteration ends when the instance stops"
        assert list(stream) == []

        env.start()
        closing = env.stats_stream()
        assert next(closing)["memory_bytes"]
        closing.close()
        assert list(closing) == [], "close() ends it"

        with pytest.raises(ValueError, match="interval must be a positive"):
            env.stats_stream(0)
        with pytest.raises(ValueError, match="interval"):
            env.stats_stream(-1)
        with pytest.raises(TypeError, match="interval must be a number"):
            env.stats_stream("1")  # type: ignore[arg-type]
        removed = env.stats_stream(0.05)
        env.remove()
        assert list(removed) == [], "it ends when the instance is removed"
    with pytest.raises(headjack.NotFoundError, match="closed"):
        env.stats_stream()


async def test_stats_stream_async() -> None:
    client = headjack.AsyncClient()
    async with await client.spawn(BASE, labels=TEST) as env:
        stream = env.stats_stream(interval=0.1)
        assert isinstance(stream, headjack.AsyncStatsStream)
        samples = []
        async for s in stream:
            samples.append(s)
            if len(samples) == 2:
                break
        assert all((s["memory_bytes"] or 0) > 0 for s in samples)
        await env.stop(grace=1)
        assert [s async for s in stream] == []
        with pytest.raises(StopAsyncIteration):
            await stream.__anext__()
        await stream.close()
