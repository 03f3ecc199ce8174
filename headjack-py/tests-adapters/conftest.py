"""Shared fixtures of the framework adapter tests: the engine, the fixture images, and a
per-test label so that "nothing left" checks look at this test's containers only.

These tests live outside ``headjack-py/tests`` because they need the frameworks installed;
``headjack-py/run-adapter-tests.sh`` makes a venv with them and runs this directory.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest

HOST = os.environ.get("HEADJACK_TEST_HOST", "unix:///var/run/docker.sock")
BUSYBOX = os.environ.get("HEADJACK_TEST_BUSYBOX", "localhost/headjack-test/busybox:latest")
DEBIAN = os.environ.get("HEADJACK_TEST_DEBIAN", "docker.io/library/debian:bookworm-slim")


def docker(*args: str) -> str:
    out = subprocess.run(
        ["docker", *args], env={**os.environ, "DOCKER_HOST": HOST}, capture_output=True, text=True
    )
    return out.stdout


class Labels:
    """The labels a test puts on its instances, and what is left of them on the engine."""

    def __init__(self) -> None:
        self.nonce = uuid.uuid4().hex[:12]
        self.labels = {"io.headjack.test": "1", "io.headjack.adapter-test": self.nonce}

    def containers(self) -> list[str]:
        return docker(
            "ps", "-aq", "--filter", "label=io.headjack.managed=true",
            "--filter", f"label=io.headjack.adapter-test={self.nonce}",
        ).split()


@pytest.fixture
def labels() -> Iterator[Labels]:
    lb = Labels()
    yield lb
    left = lb.containers()
    for c in left:
        docker("rm", "-f", c)
    assert left == [], f"the test left {len(left)} container(s) behind"
