"""Interpreter exit with asyncio work in flight (issue 9 item 3): each scenario of
exit_scenario.py runs 30 times as a subprocess; none may crash (SIGABRT "PyGILState_Release …
finalizing", SIGSEGV) or leave a container behind."""

from __future__ import annotations

import concurrent.futures
import pathlib
import subprocess
import sys

import pytest

from conftest import docker, unique

SCENARIO = pathlib.Path(__file__).with_name("exit_scenario.py")
RUNS = 30


def run(mode: str, label: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCENARIO), mode, label], capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("mode", ["plain", "cancelled", "unawaited"])
def test_asyncio_exit_never_crashes_nor_leaks(mode: str) -> None:
    label = unique(f"exit-{mode}")
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
            done = list(pool.map(lambda _: run(mode, label), range(RUNS)))
    finally:
        left = docker("ps", "-aq", "--filter", f"label=io.headjack.test.run={label}").stdout.split()
        for c in left:
            docker("rm", "-f", c)
    want = 1 if mode == "unawaited" else 0
    failed = [d for d in done if d.returncode != want]
    assert not failed, f"{len(failed)} of {RUNS} runs exited otherwise than {want}; the first: " \
        f"{failed[0].returncode}\n{failed[0].stderr}"
    for d in done:
        assert "Fatal Python error" not in d.stderr, d.stderr
        assert "Exception ignored" not in d.stderr, d.stderr
        if mode == "unawaited":
            assert d.stderr.count("Traceback") == 1 and "RuntimeError: main raised" in d.stderr, d.stderr
        else:
            assert "Traceback" not in d.stderr, d.stderr
    assert left == [], f"{len(left)} containers left behind by {RUNS} runs"
