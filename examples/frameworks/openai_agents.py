"""An OpenAI Agents SDK ``SandboxAgent`` whose shell and files live in a headjack instance.

    python examples/frameworks/openai_agents.py [BASE]

BASE is any headjack base (default ``debian:bookworm-slim``). With ``OPENAI_API_KEY`` set the
agent runs on the SDK's default model; without it, on the SDK's ``ScriptedModel``, which plays
back two shell commands, so the example runs anywhere an engine does.

The one line that differs from the SDK's Docker example is the ``client=`` / ``options=`` pair.
"""

from __future__ import annotations

import asyncio
import os
import sys

from agents import RunConfig, Runner
from agents.models.interface import Model
from agents.run_config import SandboxRunConfig
from agents.sandbox import SandboxAgent
from agents.testing import ScriptedModel, assistant_message, function_call

from headjack.adapters.openai_agents import HeadjackSandboxClient, HeadjackSandboxClientOptions


def model() -> Model | None:
    if os.environ.get("OPENAI_API_KEY"):
        return None  # the SDK's default model
    return ScriptedModel([
        [function_call("exec_command", {"cmd": "uname -a && id && pwd"}, call_id="c1")],
        [function_call("exec_command", {"cmd": "echo 'print(6*7)' > answer.py && ls -l"}, call_id="c2")],
        [assistant_message("I looked around the sandbox and left answer.py in the workspace.")],
    ])


async def main(base: str) -> None:
    agent = SandboxAgent(
        name="explorer",
        instructions="Explore the sandbox with the shell, then write answer.py printing 6*7.",
        model=model(),
    )
    run_config = RunConfig(
        sandbox=SandboxRunConfig(
            client=HeadjackSandboxClient(),  # was: DockerSandboxClient(docker.from_env())
            options=HeadjackSandboxClientOptions(base=base),  # was: DockerSandboxClientOptions(image=...)
        ),
        tracing_disabled=True,
    )
    result = await Runner.run(agent, "Go.", run_config=run_config)
    for item in result.new_items:
        output = getattr(item, "output", None)
        if output:
            print(f"--- tool output\n{output}")
    print(f"--- final answer\n{result.final_output}")
    # The runner created the sandbox, so it removed it too.


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "debian:bookworm-slim"))
