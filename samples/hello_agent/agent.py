"""A greeting agent whose tool keeps visit counters in ADK state.

State written by ``record_visit`` (persisted by RedisSessionService):
``app:total_visits`` (all users), ``user:visits`` (this user, every session)
and ``last_note`` (this session).
"""

from __future__ import annotations

from typing import Any

from _local_model import ToolRule, choose_model
from google.adk.agents import LlmAgent
from google.adk.tools.tool_context import ToolContext


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


root_agent = LlmAgent(
    name="hello_agent",
    model=choose_model([ToolRule(tool="record_visit", words=("hello", "hey", "visit"), text_arg="note")]),
    description="Greets the user and counts their visits in persistent state.",
    instruction=(
        "When the user greets you, call record_visit with what they said, then tell them "
        "their visit number. Otherwise answer briefly."
    ),
    tools=[record_visit],
)
