"""The Python example runs end to end."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

from conftest import docker

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "python" / "agent.py"


def test_agent_example_runs() -> None:
    done = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "report: test_add: PASS" in done.stdout
    assert "first run: exit 1" in done.stdout
    # The example builds its Dockerfile in a fresh temporary directory: remove that image.
    built = re.search(r"instance \S+ runs (\S+)", done.stdout)
    assert built, done.stdout
    docker("rmi", built.group(1))
