"""An agent-style loop with headjack: build an environment from a Dockerfile, run the project's
tests inside it, apply a fix, run them again while streaming the output, and read the report.

    python examples/python/agent.py

HEADJACK_EXAMPLE_FROM names the image the Dockerfile starts FROM (default: the tiny busybox
image the test environment builds; any image with /bin/sh works, e.g. debian:bookworm-slim).
"""

from __future__ import annotations

import os
import pathlib
import sys
import tempfile

import headjack

FROM = os.environ.get("HEADJACK_EXAMPLE_FROM", "localhost/headjack-test/busybox:latest")

RUN_TESTS = """#!/bin/sh
# A tiny test runner: checks src/add.sh and writes a report.
cd /workspace
got=$(sh src/add.sh 2 3)
if [ "$got" = "5" ]; then result=PASS; else result="FAIL (add 2 3 gave $got)"; fi
echo "test_add: $result"
echo "test_add: $result" > report.txt
[ "$result" = PASS ]
"""

BUGGY = 'echo $(( $1 - $2 ))\n'
FIXED = 'echo $(( $1 + $2 ))\n'


def make_project(root: pathlib.Path) -> pathlib.Path:
    """A project with a Dockerfile that installs its test runner, and a bug."""
    (root / "src").mkdir()
    (root / "src" / "add.sh").write_text(BUGGY)
    (root / "run-tests").write_text(RUN_TESTS)
    (root / "Dockerfile").write_text(
        f"FROM {FROM}\nCOPY run-tests /usr/local/bin/run-tests\nRUN chmod +x /usr/local/bin/run-tests\n"
    )
    return root / "Dockerfile"


def on_progress(event: dict[str, object]) -> None:
    if event.get("kind") == "build":
        print(f"  [build] {event['line']}")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        project = pathlib.Path(tmp)
        dockerfile = make_project(project)
        print(f"spawning from {dockerfile} ...")
        with headjack.spawn(
            base=str(dockerfile),
            workspace=project,
            network="none",
            env={"CI": "1"},
            progress=on_progress,
        ) as env:
            print(f"instance {env.id} runs {env.image}")

            first = env.exec(["run-tests"], timeout=60)
            print(f"first run: exit {first.exit_code}: {first.stdout_text.strip()}")
            if first.exit_code == 0:
                print("expected the first run to fail")
                return 1

            # The "agent" writes its fix into the environment.
            env.write_file("/workspace/src/add.sh", FIXED)

            print("second run (streamed):")
            stream = env.exec_stream(["run-tests"], timeout=60)
            for chunk in stream:
                sys.stdout.write(f"  [{chunk.stream}] {chunk.data.decode(errors='replace')}")
            status = stream.wait()

            report = env.read_file("/workspace/report.txt").decode()
            print(f"report: {report.strip()}")
            return 0 if status.success and report.startswith("test_add: PASS") else 1
        # The container is removed here, also if anything above raised.


if __name__ == "__main__":
    sys.exit(main())
