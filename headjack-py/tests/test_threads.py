"""The GIL is released around engine calls; Ctrl-C interrupts a sync exec and kills it; a forked
child gets a clear error instead of hanging."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

import headjack
from conftest import BASE

PS = ["sh", "-c", "cat /proc/[0-9]*/cmdline | tr '\\0' ' '"]


def test_two_threads_exec_in_parallel(env: headjack.Instance) -> None:
    intervals: list[tuple[float, float]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            barrier.wait()
            start = time.monotonic()
            r = env.exec(["sleep", "1"])
            end = time.monotonic()
            assert r.exit_code == 0
            intervals.append((start, end))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    (s1, e1), (s2, e2) = intervals
    # Both calls were in flight at the same moment: the intervals overlap. With the GIL held
    # during the wait, the second call could only start after the first returned.
    assert max(s1, s2) < min(e1, e2)


def test_python_thread_runs_during_exec(env: headjack.Instance) -> None:
    counter = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal counter
        while not stop.is_set():
            counter += 1
            time.sleep(0.001)

    t = threading.Thread(target=spin)
    t.start()
    try:
        before = counter
        env.exec(["sleep", "0.5"])
        during = counter - before
    finally:
        stop.set()
        t.join()
    assert during > 0


def test_keyboard_interrupt_kills_exec(env: headjack.Instance) -> None:
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            env.exec(["sleep", "35"])
    finally:
        timer.cancel()
    listing = b"sleep 35"
    for _ in range(100):  # the kill runs in the background: poll until it is done
        listing = env.exec(PS).stdout
        if b"sleep 35" not in listing:
            break
        time.sleep(0.1)
    assert b"sleep 35" not in listing


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_forked_child_gets_clear_error(env: headjack.Instance, client: headjack.Client) -> None:
    client.list()  # the runtime is running in the parent
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            client.list()
        except headjack.ForkedError as e:
            code = 0 if "fork()" in str(e) and "forkserver" in str(e) else 2
        except BaseException:
            code = 3
        try:
            env.exec(["true"])
            code = 4
        except headjack.ForkedError:
            pass
        except BaseException:
            code = 5
        os._exit(code)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung calling headjack")
        time.sleep(0.05)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    # The parent is unaffected, and its instance still exists.
    assert env.exec(["true"]).exit_code == 0


def test_threads_spawn_concurrently(client: headjack.Client) -> None:
    out: list[headjack.Instance] = []
    lock = threading.Lock()

    def go() -> None:
        inst = client.spawn(BASE, labels={"io.headjack.test": "1"})
        with lock:
            out.append(inst)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert len({i.id for i in out}) == 4
    finally:
        for i in out:
            i.close()


def test_reader_blocked_on_output_does_not_block_writer_resize_or_close(
    env: headjack.Instance,
) -> None:
    # A conversation: the command answers each line. The reader thread waits on output while
    # this thread writes the input the command waits for, resizes, and finally closes.
    s = env.exec_stream(["sh", "-c", "while read l; do echo got-$l; stty size; done"],
                        tty=True, interactive=True)
    seen = bytearray()
    lines = threading.Event()

    def read() -> None:
        for chunk in s:
            seen.extend(chunk.data)
            if b"got-two" in seen and b"40 120" in seen:
                lines.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(0.3)  # let the reader block on output that only our input produces
    done = threading.Event()

    def converse() -> None:
        s.write(b"one\n")
        s.resize(40, 120)
        s.write(b"two\n")
        done.set()

    writer = threading.Thread(target=converse, daemon=True)
    writer.start()
    assert done.wait(30), "writing/resizing blocked while another thread read the output"
    assert lines.wait(30), bytes(seen)
    s.close()  # while the reader blocks again: it ends, and the command is killed
    reader.join(30)
    assert not reader.is_alive(), "close() did not end a reader blocked on output"
