"""A scripted agent (no model calls) for Runner tests: it calls ``remember`` on the first turn of a
request, then answers with text (test_runner.py, scale_out_worker.py)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from google.adk.agents.llm_agent import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.adk.tools.tool_context import ToolContext
from google.genai import types


class ScriptedModel(BaseLlm):
    """Calls `remember` on the first turn of a request, then answers with text."""

    model: str = "scripted"

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        last = llm_request.contents[-1]
        if any(p.function_response for p in last.parts or []):
            resp = last.parts[0].function_response
            text = f"stored {resp.response.get('result') if resp and resp.response else None}"
            yield LlmResponse(content=types.Content(role="model", parts=[types.Part(text=text)]))
            return
        said = "".join(p.text or "" for p in last.parts or [])
        yield LlmResponse(
            content=types.Content(
                role="model",
                parts=[types.Part(function_call=types.FunctionCall(name="remember", args={"fact": said}))],
            )
        )


def remember(fact: str, tool_context: ToolContext) -> str:
    """Remember a fact in user state."""
    facts = list(tool_context.state.get("user:facts", []))
    facts.append(fact)
    tool_context.state["user:facts"] = facts
    tool_context.state["turns"] = tool_context.state.get("turns", 0) + 1
    return f"{len(facts)} facts"


def make_agent() -> LlmAgent:
    return LlmAgent(name="memo", model=ScriptedModel(), instruction="Remember facts.", tools=[remember])


async def run_turn(runner: Runner, user_id: str, session_id: str, text: str) -> list[Any]:
    msg = types.Content(role="user", parts=[types.Part(text=text)])
    return [e async for e in runner.run_async(user_id=user_id, session_id=session_id, new_message=msg)]
