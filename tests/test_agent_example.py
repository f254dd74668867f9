"""The agent-framework example runs: pydantic-ai drives `cutout-mcp --sandbox` over stdio, and the session's
credit cap reaches the agent as a failed tool call it acts on (its own test model, no network)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("pydantic_ai.mcp", reason="pydantic-ai-slim[mcp] missing: pip install -e '.[test]'")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "agent_session_cap.py"

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("agent_session_cap", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


async def test_the_third_edit_is_refused_by_the_session_cap_and_the_agent_stops_on_it() -> None:
    example = load_example()
    outcome = await example.run(example.scripted_model(), session_credits=10)

    assert [part.outcome for part in outcome.tool_returns] == ["success", "success", "failed"]
    assert outcome.edits_charged == 2, "the refused edit never reached the sandbox"
    refusal = outcome.tool_returns[-1].model_response_str(wrap_if_error=False)
    assert "the session cap of 10 credits" in refusal, "the refusal names the limit"
    assert "costs 4 credits" in refusal
    assert "8 used in this session" in refusal
    assert refusal in outcome.output, "the agent read the refusal and reported it instead of calling again"
