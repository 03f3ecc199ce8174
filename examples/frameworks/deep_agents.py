"""A deepagents agent whose ``execute`` and file tools run in a headjack instance.

    python examples/frameworks/deep_agents.py [BASE]

(Named deep_agents.py so that it does not shadow the deepagents package.)

BASE must have ``python3`` (deepagents' file tools run small Python scripts in the sandbox);
default ``python:3.12-slim``. With ``ANTHROPIC_API_KEY`` set the agent runs on Claude through
``langchain-anthropic`` (install it); without it, on langchain's fake chat model, which plays
back two tool calls, so the example runs anywhere an engine does.

The one line that differs from running deepagents on the host is ``backend=``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from deepagents.graph import create_deep_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from headjack.adapters.deepagents import HeadjackSandbox


class ScriptedChat(GenericFakeChatModel):
    """Plays back its messages; ignores the tools it is given."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self


def model() -> Any:
    if os.environ.get("ANTHROPIC_API_KEY"):
        return "anthropic:claude-sonnet-4-5"
    return ScriptedChat(messages=iter([
        AIMessage(content="", tool_calls=[{"name": "execute", "args": {"command": "uname -a; python3 --version"}, "id": "c1"}]),
        AIMessage(content="", tool_calls=[{"name": "write_file", "args": {"file_path": "/tmp/answer.py", "content": "print(6*7)\n"}, "id": "c2"}]),
        AIMessage(content="I checked the sandbox and wrote /tmp/answer.py."),
    ]))


def main(base: str) -> None:
    with HeadjackSandbox(base=base) as sandbox:  # was: LocalShellBackend(root_dir=".")
        agent = create_deep_agent(model=model(), backend=sandbox)
        state = agent.invoke({"messages": [{"role": "user", "content": "Write answer.py printing 6*7."}]})
        for message in state["messages"]:
            print(f"--- {message.type}\n{message.content}")
        print("--- running the agent's file in the sandbox")
        print(sandbox.execute("python3 /tmp/answer.py").output)
    # The instance is removed here.


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "python:3.12-slim")
