"""An agent with a credit cap for its run: pydantic-ai drives cutout-mcp over stdio, and the cap stops it.

    pip install '.[examples]'                                 # from a checkout (released: 'cutout-mcp[examples]')
    python examples/agent_session_cap.py                      # a scripted model: no API key, no network
    python examples/agent_session_cap.py openai:gpt-5-mini    # or any pydantic-ai model (it needs its own key)

It starts `cutout-mcp --sandbox` (the local cutout.pro stand-in: no key, no credits) with
`CUTOUT_SESSION_CREDITS=10`: one MCP session, this agent's run, may spend at most 10 credits. The agent
is asked for four colour variants of the sandbox's sample photo with `edit_image` (4 credits each), so
two edits fit and the third is refused before anything is sent to cutout.pro. The refusal reaches the
agent as a failed tool call whose text names the session cap, the limit, what is used and the call's
price, and the agent stops and says so instead of looping. Without the cap, an unattended loop keeps
paying until someone looks.

The toolset uses `tool_error_behavior="failed"`: a refused call is final, so the model sees the error as
the tool's result rather than a prompt to retry. Against the real service, drop `--sandbox`, set
`CUTOUT_API_KEY`, and pick the cap that suits a run (see docs/spending.md).
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass

import anyio
import httpx
from fastmcp.client.transports import StdioTransport
from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models import Model
from pydantic_ai.models.function import AgentInfo, FunctionModel

SESSION_CREDITS = 10
"""What this run may spend: two 4-credit edits."""
COLOURS = ("blue", "red", "green", "golden")
EDIT_MODEL = "gpt-image-1"
INSTRUCTIONS = (
    "You edit images with the cutout tools. Every edit costs credits. If a tool call is refused or fails, "
    "do not call it again: stop, and tell the user what the error said."
)


@dataclass(frozen=True)
class Outcome:
    output: str
    """What the agent answered in the end."""
    tool_returns: list[ToolReturnPart]
    """Every tool result the agent saw, in order (a refusal is one with `outcome == "failed"`)."""
    edits_charged: int
    """Edits the sandbox charged for: what actually reached cutout.pro's stand-in."""


def cutout_toolset(session_credits: int = SESSION_CREDITS) -> MCPToolset[None]:
    """`cutout-mcp --sandbox` over stdio, its session capped at `session_credits`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CUTOUT_")}
    env.update(CUTOUT_SESSION_CREDITS=str(session_credits), CUTOUT_LOG_LEVEL="WARNING")
    server = StdioTransport(sys.executable, ["-m", "cutout_mcp", "--sandbox"], env=env)
    return MCPToolset(server, tool_error_behavior="failed")


def scripted_model() -> FunctionModel:
    """Stands in for an LLM: one `edit_image` call per colour, until a call fails; then it stops and says why."""

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        parts = [part for message in messages if isinstance(message, ModelRequest) for part in message.parts]
        returns = [part for part in parts if isinstance(part, ToolReturnPart)]
        refused = [part for part in returns if part.outcome == "failed"]
        if refused:
            reason = refused[-1].model_response_str(wrap_if_error=False)
            return ModelResponse(parts=[TextPart(f"I stopped after {len(returns) - 1} edits. {reason}")])
        if len(returns) == len(COLOURS):
            return ModelResponse(parts=[TextPart(f"All {len(COLOURS)} variants are made.")])
        asked = next(str(part.content) for part in parts if isinstance(part, UserPromptPart))
        image = re.search(r"https?://\S+?\.(?:jpg|jpeg|png)", asked)
        assert image is not None, "the prompt names the image"
        arguments = {"prompt": f"make it {COLOURS[len(returns)]}", "image_urls": [image[0]], "model": EDIT_MODEL}
        return ModelResponse(parts=[ToolCallPart("edit_image", arguments)])

    return FunctionModel(respond)


async def run(model: Model | str, session_credits: int = SESSION_CREDITS) -> Outcome:
    """Start the capped server, let the agent work, and count what the sandbox charged."""
    toolset = cutout_toolset(session_credits)
    async with toolset:
        sandbox = json.loads(str(await toolset.read_resource("cutout://sandbox")))
        agent = Agent(model, toolsets=[toolset], instructions=INSTRUCTIONS)
        result = await agent.run(
            f"Make {len(COLOURS)} colour variants of {sandbox['sample_image_url']} with edit_image and the "
            f"{EDIT_MODEL} model, one per colour: {', '.join(COLOURS)}."
        )
        async with httpx.AsyncClient() as http:
            stats = (await http.get(sandbox["stats_url"])).json()
    messages = result.all_messages()
    returns = [p for m in messages if isinstance(m, ModelRequest) for p in m.parts if isinstance(p, ToolReturnPart)]
    return Outcome(str(result.output), returns, int(stats["charges"]))


def main() -> int:
    model: Model | str = sys.argv[1] if len(sys.argv) > 1 else scripted_model()
    outcome = anyio.run(run, model)
    for part in outcome.tool_returns:
        text = part.model_response_str(wrap_if_error=False)
        print(f"{part.tool_name}: {part.outcome}: {text[:160]}{'…' if len(text) > 160 else ''}")
    print(f"agent: {outcome.output}")
    print(f"edits charged by the sandbox: {outcome.edits_charged} (cap: {SESSION_CREDITS} credits)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
