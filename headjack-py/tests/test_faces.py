"""One definition, several faces: the spawn options are defined once (headjack/_options.py) and
the native module applies exactly those; the sync and asyncio classes offer the same methods
with the same signatures; the stubs say the same, with `async def` on the asyncio side."""

from __future__ import annotations

import ast
import inspect
import pathlib
from typing import Any

import pytest

import headjack
from headjack import _headjack, _options

PACKAGE = pathlib.Path(headjack.__file__).parent
README = pathlib.Path(__file__).resolve().parents[1] / "README.md"

PAIRS = [
    (headjack.Instance, headjack.AsyncInstance),
    (headjack.ExecStream, headjack.AsyncExecStream),
    (headjack.LogStream, headjack.AsyncLogStream),
    (headjack.StatsStream, headjack.AsyncStatsStream),
    (headjack.Pool, headjack.AsyncPool),
    (headjack.Client, headjack.AsyncClient),
    (headjack.Process, headjack.AsyncProcess),
]
SYNC_PROTOCOL = {"__iter__", "__next__", "__enter__", "__exit__"}
ASYNC_PROTOCOL = {"__aiter__", "__anext__", "__aenter__", "__aexit__"}
ASYNC_ONLY = {"connect"}  # AsyncClient connects on first use; Client() connects at once
# Methods that return at once on both faces (no engine call).
NOT_ASYNC = {"keep", "logs_stream", "stats_stream", "process", "claim_labels"}


def methods(cls: type) -> set[str]:
    return {n for n in vars(cls) if not n.startswith("_") or n in SYNC_PROTOCOL | ASYNC_PROTOCOL}


def option_docs() -> list[str]:
    """The SpawnOptions fields followed by a docstring, in order."""
    tree = ast.parse((PACKAGE / "_options.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "SpawnOptions")
    return [
        a.target.id
        for a, b in zip(cls.body, cls.body[1:])
        if isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name)
        and isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant)
        and isinstance(b.value.value, str)
    ]


def test_spawn_options_are_defined_once() -> None:
    defined = list(_options.SpawnOptions.__annotations__)
    assert list(_headjack._SPAWN_OPTIONS) == defined  # the native module applies exactly these
    assert option_docs() == defined, "every option has a docstring"
    assert headjack.SpawnOptions is _options.SpawnOptions
    readme = README.read_text()
    assert [o for o in defined if f"`{o}`" not in readme] == [], "README lists every option"


@pytest.mark.parametrize(("sync", "asyncio"), PAIRS, ids=lambda c: c.__name__)
def test_sync_and_async_faces_agree(sync: type, asyncio: type) -> None:
    s, a = methods(sync), methods(asyncio)
    assert s - SYNC_PROTOCOL == a - ASYNC_PROTOCOL - ASYNC_ONLY
    for name in s - SYNC_PROTOCOL:
        left, right = getattr(sync, name), getattr(asyncio, name)
        if isinstance(left, property) or inspect.isdatadescriptor(left):
            assert inspect.isdatadescriptor(right), name
            continue
        assert inspect.signature(left) == inspect.signature(right), name
        assert (left.__doc__ or "").strip() and left.__doc__ == right.__doc__, name


def stub_classes() -> dict[str, dict[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    tree = ast.parse((PACKAGE / "_headjack.pyi").read_text())
    out: dict[str, dict[str, ast.FunctionDef | ast.AsyncFunctionDef]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            out[node.name] = {
                f.name: f for f in node.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
            }
    return out


def params(f: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    return ast.dump(f.args)


@pytest.mark.parametrize(("sync", "asyncio"), PAIRS, ids=lambda c: c.__name__)
def test_stubs_agree_with_both_faces(sync: type, asyncio: type) -> None:
    stubs = stub_classes()
    s, a = stubs[sync.__name__], stubs[asyncio.__name__]
    shared = set(s) - SYNC_PROTOCOL - {"__new__"}
    assert shared == set(a) - ASYNC_PROTOCOL - ASYNC_ONLY - {"__new__"}
    for name in shared:
        assert params(s[name]) == params(a[name]), name
        assert isinstance(s[name], ast.FunctionDef), f"{sync.__name__}.{name} is async in the stub"
        is_property = any(isinstance(d, ast.Name) and d.id == "property" for d in a[name].decorator_list)
        want_async = not is_property and name not in NOT_ASYNC
        got_async = isinstance(a[name], ast.AsyncFunctionDef)
        assert got_async == want_async, f"{asyncio.__name__}.{name}: async in the stub is {got_async}"


def test_spawn_like_stubs_take_the_options() -> None:
    tree = ast.parse((PACKAGE / "_headjack.pyi").read_text())
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in (
            "spawn", "pool", "resolve"
        ):
            kw = node.args.kwarg
            assert kw is not None and kw.annotation is not None, node.name
            assert ast.unparse(kw.annotation) == "Unpack[SpawnOptions]", node.name
            found.append(node.name)
    # Client and AsyncClient (3 each) and the module-level spawn.
    assert sorted(found) == sorted(["spawn", "pool", "resolve"] * 2 + ["spawn"])
    sig: Any = inspect.signature(headjack.spawn)
    assert list(sig.parameters) == ["base", "kwargs"]
