"""Benchmark of the Python API: median exec round trip of `true`, and spawn -> first exec.

    .venv/bin/python headjack-py/bench.py [--execs N] [--spawns N] [--base IMAGE]

Prints medians in milliseconds (also as one JSON line, for the benchmark report). Compare with
the Rust benchmark run on the same machine in the same session.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import headjack


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--execs", type=int, default=50)
    ap.add_argument("--spawns", type=int, default=10)
    ap.add_argument("--base", default="localhost/headjack-test/busybox:latest")
    args = ap.parse_args()

    client = headjack.Client()
    exec_ms: list[float] = []
    spawn_ms: list[float] = []
    with client.spawn(args.base) as env:
        env.exec(["true"])  # warm up
        for _ in range(args.execs):
            t = time.perf_counter()
            env.exec(["true"])
            exec_ms.append((time.perf_counter() - t) * 1000)
    for _ in range(args.spawns):
        t = time.perf_counter()
        with client.spawn(args.base) as env:
            env.exec(["true"])
            spawn_ms.append((time.perf_counter() - t) * 1000)
    result = {
        "python_exec_true_median_ms": round(statistics.median(exec_ms), 2),
        "python_spawn_first_exec_median_ms": round(statistics.median(spawn_ms), 2),
        "execs": args.execs,
        "spawns": args.spawns,
    }
    print(f"exec `true` round trip, median of {args.execs}: {result['python_exec_true_median_ms']} ms")
    print(f"spawn -> first exec, median of {args.spawns}: {result['python_spawn_first_exec_median_ms']} ms")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
