"""Bad input gives TypeError/ValueError with a useful message; core errors map to one class per kind."""

from __future__ import annotations

import builtins
import json
import pathlib
import socketserver
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import headjack
from conftest import BASE, containers_of, docker, unique

KINDS = {
    headjack.EngineUnavailableError: "engine_unavailable",
    headjack.InvalidBaseError: "invalid_base",
    headjack.ImageNotFoundError: "image_not_found",
    headjack.PullError: "pull_failed",
    headjack.BuildError: "build_failed",
    headjack.NotFoundError: "not_found",
    headjack.ConflictError: "conflict",
    headjack.HeadjackTimeoutError: "timeout",
    headjack.ExecError: "exec_failed",
    headjack.LocalIOError: "io",
    headjack.InvalidArgumentError: "invalid_argument",
    headjack.InternalError: "internal",
    headjack.ForkedError: "forked",
    headjack.UnsupportedError: "unsupported",
}


def test_hierarchy() -> None:
    assert issubclass(headjack.HeadjackError, Exception)
    for cls, kind in KINDS.items():
        assert issubclass(cls, headjack.HeadjackError), cls
        assert cls.kind == kind
        assert cls.__module__ == "headjack" and cls.__doc__
    assert headjack.ExecTimeoutError is headjack.HeadjackTimeoutError
    assert issubclass(headjack.HeadjackTimeoutError, builtins.TimeoutError)
    assert issubclass(headjack.InvalidArgumentError, ValueError)
    assert issubclass(headjack.InvalidBaseError, ValueError)
    assert issubclass(headjack.LocalIOError, OSError)
    assert issubclass(headjack.ForkedError, RuntimeError)
    assert len(set(KINDS.values())) == len(KINDS)


def test_engine_unavailable() -> None:
    with pytest.raises(headjack.EngineUnavailableError) as e:
        headjack.Client("unix:///nonexistent/headjack.sock")
    assert e.value.kind == "engine_unavailable" and e.value.message


async def test_engine_unavailable_async() -> None:
    with pytest.raises(headjack.EngineUnavailableError):
        await headjack.AsyncClient("unix:///nonexistent/headjack.sock").info()


def test_invalid_base(client: headjack.Client) -> None:
    with pytest.raises(headjack.InvalidBaseError, match="Bad Ref"):
        client.spawn("Bad Ref")
    with pytest.raises(headjack.InvalidBaseError, match="does not exist"):
        client.spawn("./no/such/Dockerfile")


def test_image_not_found(client: headjack.Client) -> None:
    with pytest.raises(headjack.ImageNotFoundError):
        client.spawn("localhost/headjack-pytest/absent:nope", pull="never")


def test_pull_failed(client: headjack.Client) -> None:
    # Nothing listens on port 1: the pull itself fails.
    with pytest.raises(headjack.PullError):
        client.resolve("127.0.0.1:1/headjack/absent:1", pull="always")


def test_build_failed_has_step_and_log(tmp_path: pathlib.Path, client: headjack.Client) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {BASE}\nRUN echo about-to-fail && exit 3\n")
    with pytest.raises(headjack.BuildError) as e:
        client.resolve(str(tmp_path / "Dockerfile"))
    assert e.value.step is not None and "exit 3" in e.value.step
    assert any("about-to-fail" in line for line in e.value.log_tail)


def test_not_found(client: headjack.Client, env: headjack.Instance) -> None:
    with pytest.raises(headjack.NotFoundError):
        client.attach(unique("absent"))
    with pytest.raises(headjack.NotFoundError):
        env.read_file("/no/such/file")


def test_conflict_name_in_use(client: headjack.Client) -> None:
    name = unique()
    try:
        with client.spawn(BASE, name=name, labels={"io.headjack.test": "1"}):
            with pytest.raises(headjack.ConflictError):
                client.spawn(BASE, name=name, labels={"io.headjack.test": "1"})
    finally:
        docker("rm", "-f", name)


def test_readiness_timeout(client: headjack.Client) -> None:
    with pytest.raises(headjack.HeadjackTimeoutError) as e:
        client.spawn(BASE, readiness=["false"], readiness_timeout=0.5, readiness_interval=0.1,
                     labels={"io.headjack.test": "1"})
    assert "ready" in str(e.value)


def test_invalid_argument_from_core(client: headjack.Client, env: headjack.Instance) -> None:
    with pytest.raises(headjack.InvalidArgumentError, match="reserved"):
        client.spawn(BASE, labels={"io.headjack.managed": "x"})
    with pytest.raises(ValueError, match="empty"):
        env.exec([])
    with pytest.raises(headjack.InvalidArgumentError):
        env.commit("localhost/x@sha256:" + "a" * 64)


def test_local_io_error(env: headjack.Instance, tmp_path: pathlib.Path) -> None:
    with pytest.raises(headjack.HeadjackError) as e:
        env.copy_in(tmp_path / "missing", "/tmp")
    assert isinstance(e.value, (headjack.LocalIOError, headjack.InvalidArgumentError, headjack.NotFoundError))


BAD_SPAWN: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"base": 42}, TypeError, "base must be"),
    ({"env": ["A=b"]}, TypeError, "env must be a dict"),
    ({"env": {"A": 1}}, TypeError, "env"),
    ({"labels": {1: "x"}}, TypeError, "labels keys"),
    ({"memory": "1g"}, TypeError, "memory must be an int"),
    ({"memory": -5}, ValueError, "memory must be >= 0"),
    ({"cpus": "two"}, TypeError, "cpus"),
    ({"cpus": True}, TypeError, "cpus"),
    ({"expires_after": -1}, ValueError, "non-negative"),
    ({"expires_after": float("nan")}, ValueError, "finite"),
    ({"expires_after": 1e19}, ValueError, "100 years"),
    ({"expires_after": 1e30}, ValueError, r"at most 1\.845e19\), got 1e\+30"),
    ({"readiness": ["true"], "readiness_timeout": float("inf")}, ValueError, "readiness_timeout"),
    ({"memory": 10**30}, ValueError, "memory must be from 0 to"),
    ({"pull": "sometimes"}, ValueError, "sometimes"),
    ({"pull": 3}, TypeError, "pull must be a str"),
    ({"workspace": 3}, TypeError, "workspace"),
    ({"workspace_read_only": True}, ValueError, "without a workspace"),
    ({"workspace_target": "/w"}, ValueError, "without a workspace"),
    ({"hardened": "yes"}, TypeError, "hardened must be a bool"),
    ({"init": "sleep infinity"}, TypeError, "not a single str"),
    ({"readiness": [1]}, TypeError, r"readiness\[0\]"),
    ({"progress": 5}, TypeError, "progress must be a callable"),
    ({"mounts": ["/a:/b"]}, TypeError, r"mounts\[0\] must be a headjack.Mount"),
    ({"colour": "blue"}, TypeError, "unexpected keyword argument 'colour'"),
]


@pytest.mark.parametrize(("kwargs", "exc", "msg"), BAD_SPAWN)
def test_bad_spawn_arguments(client: headjack.Client, kwargs: dict[str, Any], exc: type[Exception], msg: str) -> None:
    before = {i.id for i in client.list()}
    with pytest.raises(exc, match=msg):
        client.spawn(**kwargs)
    with pytest.raises(exc, match=msg):
        headjack.spawn(**kwargs)
    assert {i.id for i in client.list()} <= before


async def test_bad_async_spawn_arguments() -> None:
    hj = headjack.AsyncClient()
    with pytest.raises(TypeError, match="env must be a dict"):
        await hj.spawn(BASE, env="A=b")  # type: ignore[arg-type]


BAD_EXEC: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"argv": "ls -l"}, TypeError, "not a single str"),
    ({"argv": None}, TypeError, "argv must be a list"),
    ({"argv": ["ls", 3]}, TypeError, r"argv\[1\] must be a str"),
    ({"argv": ["true"], "timeout": "5"}, TypeError, "timeout must be a number"),
    ({"argv": ["true"], "timeout": -1}, ValueError, "non-negative"),
    ({"argv": ["true"], "timeout": 1e30}, ValueError, r"timeout must be .*\(at most 1\.845e19\), got 1e\+30"),
    ({"argv": ["true"], "timeout": 10**400}, ValueError, "timeout must be"),
    ({"argv": ["true"], "max_output": 2**64}, ValueError, "max_output must be from 0 to"),
    ({"argv": ["true"], "env": {"A": None}}, TypeError, "env"),
    ({"argv": ["true"], "stdin": 5}, TypeError, "stdin must be bytes or str"),
    ({"argv": ["true"], "check": "yes"}, TypeError, "check must be a bool"),
    ({"argv": ["true"], "max_output": -1}, ValueError, "max_output must be >= 0"),
    ({"argv": ["true"], "user": 0}, TypeError, "user must be a str"),
    ({"argv": ["true"], "bogus": 1}, TypeError, "bogus"),
]


@pytest.mark.parametrize(("kwargs", "exc", "msg"), BAD_EXEC)
def test_bad_exec_arguments(env: headjack.Instance, kwargs: dict[str, Any], exc: type[Exception], msg: str) -> None:
    with pytest.raises(exc, match=msg):
        env.exec(**kwargs)


def test_other_bad_arguments(env: headjack.Instance, client: headjack.Client) -> None:
    with pytest.raises(TypeError, match="data must be bytes or str"):
        env.write_file("/tmp/x", 123)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode"):
        env.write_file("/tmp/x", b"", mode=0o777777)
    with pytest.raises(TypeError, match="path must be a str"):
        env.read_file(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="interactive"):
        env.exec_stream(["cat"], stdin=b"x", interactive=True)
    with pytest.raises(ValueError, match="grace"):
        env.stop(grace=-3)
    with pytest.raises(TypeError, match="keep_last must be an int"):
        client.prune_images("all")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="reference must be a str"):
        client.remove_image(3)  # type: ignore[arg-type]
    with pytest.raises(headjack.InvalidArgumentError, match="remove_image"):
        client.remove_image("  ")
    client.remove_image("localhost/headjack-test/never-existed:1")  # absent: counts as removed
    with pytest.raises(TypeError, match="host must be a str"):
        headjack.Client(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="path must be a str or os.PathLike"):
        headjack.Dockerfile(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="read_only must be a bool"):
        headjack.Mount.bind("/a", "/b", read_only="no")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="absolute"):
        client.spawn(BASE, mounts=[headjack.Mount.tmpfs("relative")])
    s = env.exec_stream(["true"])
    with pytest.raises(ValueError, match="rows"):
        s.resize(0, 10)
    s.close()


def test_huge_durations_saturate_or_are_refused(env: headjack.Instance, client: headjack.Client) -> None:
    # A timeout too long to represent as a deadline is no timeout: the command runs normally.
    assert env.exec(["echo", "ok"], timeout=1e19).stdout == b"ok\n"
    s = env.exec_stream(["true"], timeout=1e19)
    assert s.wait().success
    with client.spawn(BASE, readiness=["true"], readiness_timeout=1e19, readiness_interval=1e19,
                      labels={"io.headjack.test": "1"}) as ready:
        assert ready.exec(["true"]).exit_code == 0
    with pytest.raises(ValueError, match="grace"):
        env.stop(grace=float("inf"))


def test_pool_sizes_are_bounded(client: headjack.Client) -> None:
    with pytest.raises(headjack.InvalidArgumentError, match="between 1 and 1024"):
        client.pool(BASE, size=10**12)
    with pytest.raises(ValueError, match="size must be from 0 to"):
        client.pool(BASE, size=10**30)
    with pytest.raises(ValueError, match="size must be >= 0"):
        client.pool(BASE, size=-1)


class FrozenEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """An engine that answers the version handshake, then never answers again (as a frozen
    dockerd does): only the client's call bound can end a call to it."""

    daemon_threads = True
    VERSION = json.dumps({
        "Version": "20.10.24", "ApiVersion": "1.41", "MinAPIVersion": "1.12", "Os": "linux",
        "Arch": "amd64", "Components": [{"Name": "Engine", "Version": "20.10.24"}],
    }).encode()

    def __init__(self, path: str) -> None:
        self.thawed = threading.Event()
        super().__init__(path, FrozenHandler)


class FrozenHandler(socketserver.StreamRequestHandler):
    server: FrozenEngine

    def handle(self) -> None:
        while True:
            line = self.rfile.readline()
            if not line:
                return
            path = line.split()[1].decode() if len(line.split()) > 1 else ""
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # the request's headers
            if not path.endswith("/version"):
                self.server.thawed.wait()  # frozen
                return
            body = FrozenEngine.VERSION
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Api-Version: 1.41\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


@pytest.fixture
def frozen_engine(tmp_path: pathlib.Path) -> Iterator[str]:
    path = str(tmp_path / "frozen.sock")
    server = FrozenEngine(path)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"unix://{path}"
    finally:
        server.thawed.set()
        server.shutdown()
        server.server_close()


def test_client_timeout_bounds_engine_calls(frozen_engine: str) -> None:
    assert isinstance(headjack.Client(timeout=30).list(), list)
    frozen = headjack.Client(frozen_engine, timeout=0.5)
    assert frozen.info().version == "20.10.24"  # known from the handshake: no call
    with pytest.raises(headjack.HeadjackTimeoutError, match="did not answer within 500ms"):
        frozen.list()
    with pytest.raises(ValueError, match="positive"):
        headjack.Client(timeout=0)
    with pytest.raises(TypeError, match="timeout must be a number"):
        headjack.Client(timeout="5")  # type: ignore[arg-type]


async def test_async_client_timeout(frozen_engine: str) -> None:
    frozen = headjack.AsyncClient(frozen_engine, timeout=0.5)
    with pytest.raises(headjack.HeadjackTimeoutError, match="did not answer"):
        await frozen.list()
    assert isinstance(await headjack.AsyncClient(timeout=30).list(), list)


def test_exceptions_are_catchable_by_builtin(env: headjack.Instance) -> None:
    try:
        env.exec(["sleep", "5"], timeout=0.2, check=True)
    except TimeoutError as e:
        assert isinstance(e, headjack.HeadjackError)
    else:
        pytest.fail("no TimeoutError")
    assert containers_of(env.id)
