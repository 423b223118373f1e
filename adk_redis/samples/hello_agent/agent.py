"""A greeting agent whose tool keeps visit counters in ADK state (the demo's and the samples' agent).

State written by :func:`record_visit` (persisted by ``RedisSessionService``):
``app:total_visits`` (all users), ``user:visits`` (this user, every session)
and ``last_note`` (this session).  ``root_agent`` answers with the offline
:class:`~adk_redis.testing.ScriptedModel`: a greeting calls ``record_visit``.
"""

from __future__ import annotations

from typing import Any

from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.tools.tool_context import ToolContext

from adk_redis.testing import ScriptedModel, ToolRule

__all__ = ["GREETING", "build_agent", "record_visit", "root_agent"]

#: The offline model's rule: these words call ``record_visit`` with the user's text as ``note``.
GREETING = ToolRule(tool="record_visit", words=("hello", "hey", "visit"), text_arg="note")


def record_visit(note: str, tool_context: ToolContext) -> dict[str, Any]:
    """Record that the user said hello and count their visits.

    Args:
      note: what the user said.
    """
    visits = int(tool_context.state.get("user:visits", 0)) + 1
    total = int(tool_context.state.get("app:total_visits", 0)) + 1
    tool_context.state["user:visits"] = visits
    tool_context.state["app:total_visits"] = total
    tool_context.state["last_note"] = note
    return {
        "visits": visits,
        "total_visits": total,
        "message": f"Hello! This is your visit number {visits} ({total} for everyone).",
    }


def build_agent(model: BaseLlm | str | None = None) -> LlmAgent:
    """The hello agent with ``model`` (default: the offline scripted model)."""
    return LlmAgent(
        name="hello_agent",
        model=model if model is not None else ScriptedModel(rules=[GREETING]),
        description="Greets the user and counts their visits in persistent state.",
        instruction=(
            "When the user greets you, call record_visit with what they said, then tell them "
            "their visit number. Otherwise answer briefly."
        ),
        tools=[record_visit],
    )


root_agent = build_agent()
