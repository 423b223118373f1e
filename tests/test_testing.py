"""adk_redis.testing.ScriptedModel: an agent runs offline through Runner with our services."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

import fakeredis
from google.adk.agents.llm_agent import LlmAgent
from google.adk.runners import Runner
from google.adk.tools.load_memory_tool import load_memory
from google.adk.tools.tool_context import ToolContext
from google.genai import types

import adk_redis
from adk_redis import RedisMemoryService, RedisSessionService
from adk_redis.testing import ScriptedModel, ToolRule


def remember(fact: str, tool_context: ToolContext) -> dict[str, Any]:
    """Stores a fact about the user."""
    tool_context.state["user:fact"] = fact
    return {"message": f"I will remember that {fact}"}


def _user(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


async def _turn(runner: Runner, session_id: str, text: str) -> list[str]:
    said: list[str] = []
    async for event in runner.run_async(user_id="ann", session_id=session_id, new_message=_user(text)):
        for part in (event.content.parts or []) if event.content else []:
            if part.text:
                said.append(part.text)
    return said


async def test_scripted_replies_rules_and_memory_through_runner() -> None:
    server = fakeredis.FakeServer()
    sessions = RedisSessionService(client=fakeredis.FakeAsyncRedis(server=server), key_prefix="t")
    memory = RedisMemoryService(client=fakeredis.FakeAsyncRedis(server=server), key_prefix="t")
    model = ScriptedModel(
        script=["Hello Ann!", {"call": "remember", "args": {"fact": "tea over coffee"}}],
        rules=[ToolRule(tool="load_memory", words=("what do i",), text_arg="query")],
    )
    agent = LlmAgent(name="assistant", model=model, tools=[remember, load_memory])
    runner = Runner(app_name="app", agent=agent, session_service=sessions, memory_service=memory)

    first = await sessions.create_session(app_name="app", user_id="ann")
    assert await _turn(runner, first.id, "hi") == ["Hello Ann!"]
    said = await _turn(runner, first.id, "I like tea")  # scripted tool call, then an answer from its result
    assert said == ["I will remember that tea over coffee"]
    stored = await sessions.get_session(app_name="app", user_id="ann", session_id=first.id)
    assert stored is not None and stored.state["user:fact"] == "tea over coffee"
    await memory.add_session_to_memory(stored)

    second = await sessions.create_session(app_name="app", user_id="ann")
    said = await _turn(runner, second.id, "What do I like? tea?")  # rule: load_memory, then quoted back
    assert (
        said
        and said[-1].startswith("From our earlier conversations I remember:")
        and "I like tea" in said[-1]
    )
    assert await _turn(runner, second.id, "thanks") == ["Noted: thanks"]
    assert model.requests[0].contents[-1].parts[0].text == "hi"
    assert len(model.requests) == 6  # hi; call + answer; call + answer; thanks


def test_only_public_adk_modules() -> None:
    source = Path(adk_redis.testing.__file__).read_text()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("google"):
            assert not any(part.startswith("_") for part in node.module.split(".")), node.module
            assert not any(alias.name.startswith("_") for alias in node.names), node.module


def test_embedders_importable_without_their_libraries() -> None:
    code = (
        "import sys; sys.modules['sentence_transformers'] = None; "
        "import adk_redis; "
        "from adk_redis import SentenceTransformerEmbedder, GenAIEmbedder, HashingEmbedder; "
        "SentenceTransformerEmbedder('m'); GenAIEmbedder(client=object()); "
        "assert 'sentence_transformers' not in [m for m in sys.modules if sys.modules[m] is not None]"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_the_dev_install_puts_no_redis_binaries_on_the_path() -> None:
    """The Redis 6.2 of the compatibility tests comes from a cache directory, not the environment's bin."""
    from tests.servers import redis62_binary

    bin_dir = Path(sys.prefix) / "bin"
    assert not (bin_dir / "redis-server").exists() and not (bin_dir / "redis-cli").exists()
    binary = Path(redis62_binary())
    assert bin_dir not in binary.parents
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30).stdout
    assert "v=6.2." in version
