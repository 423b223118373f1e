"""An agent with Memory-Bank-style memories: facts a model extracts and keeps up to date.

The memory service is a ``RedisMemoryService`` with a ``MemoryGenerator``: after every turn
``save_to_memory`` adds the session, a background worker extracts facts ("Ann is vegetarian")
and consolidates them with the facts already known (a later "I moved to Paris" updates "Ann lives
in Berlin").  ``preload_memory`` puts the facts relevant to the user's message into every prompt.

With ``adk web``: ``--memory_service_uri "redis://localhost:6379?generator_model=gemini-2.5-flash&search_kinds=facts"``.
Offline (no ``GOOGLE_API_KEY``) both the agent and the generator use adk_redis' offline models:
run ``python samples/memory_bank_agent/main.py``.
"""

from __future__ import annotations

import os

from _local_model import ToolRule, choose_model
from google.adk.agents import LlmAgent
from google.adk.agents.callback_context import CallbackContext
from google.adk.models.base_llm import BaseLlm
from google.adk.tools.preload_memory_tool import preload_memory_tool

from adk_redis.memory import MemoryGenerator
from adk_redis.testing import FactReplayModel

GENERATOR_DEFAULT = "gemini-2.5-flash"


def generator_model() -> BaseLlm | str:
    """Gemini with ``GOOGLE_API_KEY``; offline: a model answering with what an LLM would extract."""
    if os.environ.get("GOOGLE_API_KEY") and os.environ.get("ADK_REDIS_LOCAL_MODEL", "") in ("", "0"):
        return os.environ.get("ADK_SAMPLE_GENERATOR_MODEL", GENERATOR_DEFAULT)
    return FactReplayModel(
        echo=False,
        match={
            "berlin": [("Ann lives in Berlin.", "personal_info")],
            "vegetarian": [("Ann is vegetarian.", "user_preferences")],
            "moved to paris": [("Ann lives in Paris.", "personal_info")],
        },
        decide={"Ann lives in Paris.": ("UPDATE", "Ann lives in Berlin.")},
    )


def make_generator() -> MemoryGenerator:
    return MemoryGenerator(generator_model())


async def save_to_memory(callback_context: CallbackContext) -> None:
    """After each turn, store the session in the memory service (facts are generated from it)."""
    await callback_context.add_session_to_memory()


root_agent = LlmAgent(
    name="memory_bank_agent",
    model=choose_model([ToolRule(tool="none", words=())], ack="Noted"),
    description="Remembers facts about the user across sessions, kept up to date.",
    instruction=(
        "You are a helpful assistant with long-term memory. Facts you know about the user are "
        "given to you under PAST_CONVERSATIONS; use them, and prefer them over your assumptions."
    ),
    tools=[preload_memory_tool],
    after_agent_callback=save_to_memory,
)
