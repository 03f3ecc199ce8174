"""Sandbox features (issue 13) through both Python faces: published ports, named volumes, stats."""

from __future__ import annotations

import socket
import subprocess
import uuid

import pytest

import headjack
from conftest import BASE, docker


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
