"""devcontainer.json as a base through the Python API: the base string, hooks, env, user,
warnings (on the instance, in progress events and in resolve) and clear errors."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

import headjack
from conftest import containers_of

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "devcontainer"


def test_spawn_a_devcontainer_folder_by_its_base_string(monkeypatch: pytest.MonkeyPatch) -> None:
    # `headjack.spawn(".devcontainer")` from the project folder just works.
    monkeypatch.chdir(FIXTURES / "hooks")
    events: list[dict[str, Any]] = []
    with headjack.spawn(
        ".devcontainer", labels={"io.headjack.test": "1"}, progress=events.append
    ) as env:
        r = env.exec(["sh", "-c", "cat /tmp/hooks.log; pwd; id -u"])
        out = r.stdout.decode()
        assert out == "onCreate\nupdateContent\npostStart\npostAttach\n/workspaces/hooks\n0\n"
        assert env.warnings == []
    assert containers_of(env.id) == []


def test_remote_user_env_and_warnings_accessor() -> None:
    with headjack.spawn(
        str(FIXTURES / "image-plain"), labels={"io.headjack.test": "1"}
    ) as env:
        assert env.exec(["sh", "-c", "cat /tmp/post-create; echo $EDITOR"]).stdout == b"created\nvi\n"

    events: list[dict[str, Any]] = []
    with headjack.spawn(
        str(FIXTURES / "unsupported"), labels={"io.headjack.test": "1"}, progress=events.append
    ) as env:
        joined = "\n".join(env.warnings)
        assert "dockerComposeFile" in joined and "initializeCommand" in joined, joined
    warnings = [e for e in events if e["kind"] == "warning"]
    assert any("notAKey" in e["message"] for e in warnings), warnings
    resolved = headjack.Client().resolve(str(FIXTURES / "unsupported"))
    assert any("dockerComposeFile" in w for w in resolved.warnings), resolved.warnings


def test_bad_definitions_give_clear_errors() -> None:
    with pytest.raises(headjack.InvalidBaseError, match="devcontainer.json:"):
        headjack.spawn(str(FIXTURES / "bad" / "invalid-jsonc"))
    with pytest.raises(headjack.InvalidBaseError, match="privileged"):
        headjack.spawn(str(FIXTURES / "bad" / "privileged"))
    events: list[dict[str, Any]] = []
    with pytest.raises(headjack.ExecError, match=r"postCreateCommand.*broken") as err:
        headjack.spawn(
            str(FIXTURES / "bad" / "failing-hook"),
            labels={"io.headjack.test": "1"},
            progress=events.append,
        )
    assert "exit code 3" in str(err.value)
    hooks = [e for e in events if e["kind"] == "hook"]
    assert {"kind": "hook", "hook": "onCreateCommand", "entry": None, "line": "before the failure"} in hooks
