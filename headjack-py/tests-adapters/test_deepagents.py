"""The deepagents adapter against the real engine: the backend protocol's own methods called
directly (``execute``, uploads and downloads, and the file tools ``BaseSandbox`` builds on
them), then a deep agent driven by langchain's fake chat model (no LLM)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import BUSYBOX, HOST, Labels
from deepagents.graph import create_deep_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, ToolMessage

import headjack
from headjack.adapters.deepagents import HeadjackSandbox

PYTHON_IMAGE = headjack.Dockerfile(str(Path(__file__).parent / "images/python3/Dockerfile"))


@pytest.fixture
def sandbox(labels: Labels) -> Iterator[HeadjackSandbox]:
    """A sandbox on an image with python3 (deepagents' file tools need it)."""
    with HeadjackSandbox(base=PYTHON_IMAGE, client=headjack.Client(HOST), labels=labels.labels, network="none") as sb:
        yield sb


def test_execute_success_failure_timeout_and_output(sandbox: HeadjackSandbox, labels: Labels) -> None:
    assert sandbox.id == sandbox.instance.id and len(labels.containers()) == 1
    r = sandbox.execute("echo hello")
    assert (r.output, r.exit_code, r.truncated) == ("hello\n", 0, False)
    r = sandbox.execute("echo out; echo bad >&2; exit 4")
    assert r.exit_code == 4
    assert r.output == "out\n\n[stderr] bad\n\nExit code: 4"
    assert sandbox.execute("true").output == "<no output>"
    r = sandbox.execute("no-such-command")
    assert r.exit_code == 127 and "not found" in r.output
    assert sandbox.execute("").exit_code == 1

    r = sandbox.execute("sleep 300 & sleep 301", timeout=1)
    assert r.exit_code == 124 and "timed out after 1 seconds" in r.output
    assert "sleep 30" not in sandbox.execute("ps -eo args").output

    small = HeadjackSandbox(sandbox.instance, max_output_bytes=100)
    r = small.execute("yes | head -c 5000")
    assert r.truncated and "truncated at 100 bytes" in r.output
    small.close()  # not its instance: nothing happens
    assert sandbox.execute("true").exit_code == 0

    r = asyncio.run(sandbox.aexecute("echo async"))
    assert r.output == "async\n"


def test_uploads_and_downloads_fail_per_file(sandbox: HeadjackSandbox) -> None:
    up = sandbox.upload_files([("/data/deep/a.bin", bytes(range(256))), ("relative.txt", b"x")])
    assert up[0].error is None
    assert up[1].error == "invalid_path"
    down = sandbox.download_files(["/data/deep/a.bin", "/data/missing", "/data", "relative"])
    assert down[0].content == bytes(range(256)) and down[0].error is None
    assert [d.error for d in down[1:]] == ["file_not_found", "is_directory", "invalid_path"]


def test_the_file_tools_deepagents_builds_on_the_backend(sandbox: HeadjackSandbox) -> None:
    assert sandbox.write("/work/notes.md", "first draft").error is None
    w = sandbox.write("/work/notes.md", "alpha\nbeta\ngamma\n")  # overwrites
    assert (w.error, w.path) == (None, "/work/notes.md")
    r = sandbox.read("/work/notes.md", offset=1, limit=1)
    assert r.error is None and r.file_data is not None and r.file_data["content"].strip().endswith("beta")
    assert sandbox.read("/work/nothing.md").error is not None
    e = sandbox.edit("/work/notes.md", "beta", "BETA")
    assert e.error is None and e.occurrences == 1
    assert sandbox.download_files(["/work/notes.md"])[0].content == b"alpha\nBETA\ngamma\n"
    assert sandbox.edit("/work/notes.md", "delta", "x").error is not None
    ls = sandbox.ls("/work")
    assert ls.entries is not None and [x["path"] for x in ls.entries] == ["/work/notes.md"]
    g = sandbox.grep("gamma", path="/work")
    assert g.matches is not None and [(m["path"], m["line"]) for m in g.matches] == [("/work/notes.md", 3)]
    gl = sandbox.glob("*.md", path="/work")
    assert gl.matches is not None and [m["path"] for m in gl.matches] == ["/work/notes.md"]


class _ScriptedChat(GenericFakeChatModel):
    """langchain's fake chat model; deep agents bind tools, which it can ignore."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self


def test_a_deep_agent_runs_its_tools_in_the_sandbox(sandbox: HeadjackSandbox) -> None:
    model = _ScriptedChat(messages=iter([
        AIMessage(content="", tool_calls=[{
            "name": "execute", "args": {"command": "echo from-the-sandbox > /tmp/x && cat /tmp/x"}, "id": "c1",
        }]),
        AIMessage(content="", tool_calls=[{
            "name": "write_file", "args": {"file_path": "/work/report.txt", "content": "done\n"}, "id": "c2",
        }]),
        AIMessage(content="finished"),
    ]))
    agent = create_deep_agent(model=model, backend=sandbox)
    state = agent.invoke({"messages": [{"role": "user", "content": "go"}]})
    tool_out = {m.tool_call_id: str(m.content) for m in state["messages"] if isinstance(m, ToolMessage)}
    assert "from-the-sandbox" in tool_out["c1"], tool_out
    assert state["messages"][-1].content == "finished"
    assert sandbox.download_files(["/work/report.txt"])[0].content == b"done\n"


def test_close_removes_the_instance_and_bad_arguments_fail_clearly(labels: Labels) -> None:
    sb = HeadjackSandbox(base=BUSYBOX, client=headjack.Client(HOST), labels=labels.labels)
    assert len(labels.containers()) == 1
    with pytest.raises(ValueError, match="not both"):
        HeadjackSandbox(sb.instance, labels=labels.labels)
    with pytest.raises(ValueError, match="positive"):
        HeadjackSandbox(sb.instance, default_timeout=0)
    sb.close()
    sb.close()
    assert labels.containers() == []
    with pytest.raises(headjack.HeadjackError, match="no-such-image"):
        HeadjackSandbox(base="localhost/headjack-test/no-such-image:1", client=headjack.Client(HOST), labels=labels.labels)
