"""Two ADK Runners in two OS processes serve a message for the same session at the same time
("double texting"): under stale_policy="merge" both turns are stored, interleaved; under
"reject" one of them fails, as with DatabaseSessionService."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
from collections.abc import AsyncGenerator
from typing import Any

import pytest
from google.adk.agents.llm_agent import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.genai import types

from adk_redis import RedisSessionService


class SlowEcho(BaseLlm):
    """Answers "echo: <last user text>" after a pause, so the two turns overlap."""

    model: str = "slow-echo"

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        said = "".join(p.text or "" for p in llm_request.contents[-1].parts or [])
        await asyncio.sleep(0.4)
        yield LlmResponse(content=types.Content(role="model", parts=[types.Part(text=f"echo: {said}")]))


def serve(url: str, prefix: str, policy: str, session_id: str, text: str, start_at: float) -> str:
    async def main() -> str:
        svc = RedisSessionService(url, key_prefix=prefix, stale_policy=policy)  # type: ignore[arg-type]
        agent = LlmAgent(name="echo", model=SlowEcho(), instruction="Echo.")
        runner = Runner(app_name="app", agent=agent, session_service=svc)
        await svc.ping()
        await asyncio.sleep(max(0.0, start_at - time.time()))
        msg = types.Content(role="user", parts=[types.Part(text=text)])
        try:
            async for _ in runner.run_async(user_id="u", session_id=session_id, new_message=msg):
                pass
            return "ok"
        except Exception as exc:  # noqa: BLE001 - reported to the test
            return type(exc).__name__
        finally:
            await svc.close()

    return asyncio.run(main())


@pytest.mark.parametrize("policy", ["merge", "reject"])
async def test_two_runners_one_session(policy: str, redis_url: str, prefix: str, real_client: Any) -> None:
    svc = RedisSessionService(redis_url, key_prefix=prefix)
    s = await svc.create_session(app_name="app", user_id="u")
    start = time.time() + 4
    with mp.get_context("spawn").Pool(2) as pool:
        results = pool.starmap(serve, [(redis_url, prefix, policy, s.id, t, start) for t in ("one", "two")])
    got = await svc.get_session(app_name="app", user_id="u", session_id=s.id)
    assert got is not None
    texts = [e.content.parts[0].text for e in got.events if e.content and e.content.parts]
    if policy == "merge":
        assert results == ["ok", "ok"]
        assert sorted(texts) == sorted(["one", "two", "echo: one", "echo: two"])
        # interleaved: both user messages were stored before either answer
        assert {texts[0], texts[1]} == {"one", "two"}
    else:
        assert sorted(results) == ["StaleSessionError", "ok"]
        assert len([t for t in texts if t.startswith("echo")]) == 1
    await svc.close()
