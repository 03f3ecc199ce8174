"""Shared fixtures: every test drives the real engine (no mocks) and removes what it creates."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest

import headjack

BASE = os.environ.get("HEADJACK_TEST_BASE", "localhost/headjack-test/busybox:latest")


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    """Runs the docker CLI (used only to observe the engine independently of headjack)."""
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False)


def containers_of(instance_id: str) -> list[str]:
    """IDs of all containers (any state) labelled with this headjack instance ID."""
    out = docker("ps", "-aq", "--filter", f"label=io.headjack.instance={instance_id}")
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def unique(prefix: str = "pytest") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session", autouse=True)
def engine_ready() -> None:
    """Fails (never skips) with a clear message when the engine or the fixture image is missing."""
    try:
        info = headjack.Client().info()
    except headjack.EngineUnavailableError as e:
        pytest.fail(f"no container engine answered; start dockerd (tests/env/up.sh): {e}", pytrace=False)
    assert info.kind in ("docker", "podman")
    found = docker("image", "inspect", BASE)
    if found.returncode != 0:
        pytest.fail(
            f"fixture image {BASE} is missing; build it with tests/env/up.sh", pytrace=False
        )
    json.loads(found.stdout)


@pytest.fixture(scope="session")
def client() -> headjack.Client:
    return headjack.Client()


@pytest.fixture(scope="module")
def env() -> Iterator[headjack.Instance]:
    """One instance shared by the read-mostly tests of a module (removed at module end)."""
    with headjack.spawn(base=BASE, labels={"io.headjack.test": "1"}) as inst:
        yield inst
    assert containers_of(inst.id) == []
