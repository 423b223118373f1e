"""An ADK Runner with a scripted model persists through RedisSessionService."""

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

from adk_redis import RedisSessionService


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


async def test_runner_persists_through_redis(redis_url: str, prefix: str, real_client: Any) -> None:
    svc = RedisSessionService(redis_url, key_prefix=prefix)
    runner = Runner(app_name="memo_app", agent=make_agent(), session_service=svc)
    session = await svc.create_session(app_name="memo_app", user_id="alice")
    events = await run_turn(runner, "alice", session.id, "the sky is blue")
    events += await run_turn(runner, "alice", session.id, "grass is green")
    assert events[-1].content.parts[0].text == "stored 2 facts"
    await svc.close()

    fresh = RedisSessionService(redis_url, key_prefix=prefix)  # new connection, new process state
    got = await fresh.get_session(app_name="memo_app", user_id="alice", session_id=session.id)
    assert got is not None
    assert got.state["user:facts"] == ["the sky is blue", "grass is green"]
    assert got.state["turns"] == 2
    kinds = [
        "call" if e.get_function_calls() else "resp" if e.get_function_responses() else e.author
        for e in got.events
    ]
    assert kinds == ["user", "call", "resp", "memo"] * 2
    assert [e.id for e in got.events] == [e.id for e in (await svc_events(fresh, session.id))]
    # a new session of the same user sees the user state; the runner continues on the reloaded service
    runner2 = Runner(app_name="memo_app", agent=make_agent(), session_service=fresh)
    s2 = await fresh.create_session(app_name="memo_app", user_id="alice")
    assert s2.state["user:facts"] == ["the sky is blue", "grass is green"]
    await run_turn(runner2, "alice", session.id, "water is wet")
    again = await fresh.get_session(app_name="memo_app", user_id="alice", session_id=session.id)
    assert again is not None and len(again.events) == 12
    await fresh.close()


async def svc_events(svc: RedisSessionService, session_id: str) -> list[Any]:
    got = await svc.get_session(app_name="memo_app", user_id="alice", session_id=session_id)
    assert got is not None
    return list(got.events)
