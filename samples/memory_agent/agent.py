"""An agent that remembers what the user said in earlier sessions.

After every turn ``save_to_memory`` adds the session to the memory service
(``RedisMemoryService`` with ``--memory_service_uri redis://...``).  In a
later session ``load_memory`` (called by the model) and ``preload_memory``
(run before every model call) search that memory.

Try it: session 1 "My favourite colour is teal and I like window seats.";
session 2 "What do you remember about my favourite colour?".
"""

from __future__ import annotations

from _local_model import ToolRule, choose_model
from google.adk.agents import LlmAgent
from google.adk.agents.callback_context import CallbackContext
from google.adk.tools.load_memory_tool import load_memory_tool
from google.adk.tools.preload_memory_tool import preload_memory_tool


async def save_to_memory(callback_context: CallbackContext) -> None:
    """After each turn, store the session in the memory service."""
    await callback_context.add_session_to_memory()


root_agent = LlmAgent(
    name="memory_agent",
    model=choose_model(
        [
            ToolRule(
                tool="load_memory",
                words=("remember", "recall", "do you know", "what is my", "what's my"),
                text_arg="query",
            )
        ],
        ack="Thanks, I will remember that",
    ),
    description="Remembers user preferences across sessions (ADK memory on Redis).",
    instruction=(
        "You are a helpful assistant with long-term memory. When the user tells you about "
        "themselves, acknowledge it briefly. When they ask what you remember or about earlier "
        "conversations, call load_memory with a short query and answer from its results."
    ),
    tools=[load_memory_tool, preload_memory_tool],
    after_agent_callback=save_to_memory,
)
