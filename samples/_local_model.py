"""A small deterministic stand-in for Gemini so the samples run offline.

``choose_model()`` returns a Gemini model name when ``GOOGLE_API_KEY`` is set
(override the name with ``ADK_SAMPLE_MODEL``) and a :class:`LocalModel`
otherwise.  ``ADK_REDIS_LOCAL_MODEL=1`` forces the local model.

The local model follows fixed rules:

* the last request content holds function responses -> it answers in text
  using them (``load_memory`` results are quoted back);
* the user's text contains a rule's trigger word and the agent has the rule's
  tool -> it calls that tool (the user's text goes to ``text_arg``);
* otherwise -> it acknowledges the message.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncGenerator
from typing import Any

from google.adk.models._capabilities import LlmCapabilities
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.genai import types
from pydantic import BaseModel

GEMINI_DEFAULT = "gemini-3.5-flash"
_TRANSIENT = "<PAST_CONVERSATIONS>"  # preload_memory's block, not the user's words


class ToolRule(BaseModel):
    """Call ``tool`` when the user's text contains one of ``words`` (case-insensitive)."""

    tool: str
    words: tuple[str, ...]
    text_arg: str | None = None


class LocalModel(BaseLlm):
    """Deterministic, offline LLM: tool calls by keyword, answers from tool results."""

    model: str = "adk-redis-local"
    rules: list[ToolRule] = []
    ack: str = "Noted"

    @property
    def capabilities(self) -> LlmCapabilities:
        return LlmCapabilities(output_schema_and_tools=False)

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        content = self._reply(llm_request)
        prompt = sum(len((p.text or "").split()) for c in llm_request.contents for p in c.parts or [])
        answer = sum(len((p.text or "").split()) for p in content.parts or []) or 1
        usage = types.GenerateContentResponseUsageMetadata(
            prompt_token_count=prompt, candidates_token_count=answer, total_token_count=prompt + answer
        )
        yield LlmResponse(content=content, usage_metadata=usage, turn_complete=True)

    # -- rules -----------------------------------------------------------------
    def _reply(self, request: LlmRequest) -> types.Content:
        for content in reversed(request.contents):
            parts = content.parts or []
            responses = [p.function_response for p in parts if p.function_response]
            if responses:
                return _text(" ".join(_describe(r.name or "", r.response or {}) for r in responses))
            text = " ".join(p.text for p in parts if p.text and not p.thought).strip()
            if content.role == "user" and text and _TRANSIENT not in text:
                return self._answer(text, request)
        return _text(f"{self.ack}.")

    def _answer(self, text: str, request: LlmRequest) -> types.Content:
        lowered = text.lower()
        for rule in self.rules:
            if rule.tool in request.tools_dict and any(w in lowered for w in rule.words):
                args = {rule.text_arg: text} if rule.text_arg else {}
                call = types.FunctionCall(name=rule.tool, args=args)
                return types.Content(role="model", parts=[types.Part(function_call=call)])
        return _text(f"{self.ack}: {text}")


def _text(text: str) -> types.Content:
    return types.Content(role="model", parts=[types.Part.from_text(text=text)])


def _memory_texts(memories: list[Any]) -> list[str]:
    """User-authored texts of load_memory results (dicts or MemoryEntry models)."""
    out: list[str] = []
    for memory in memories:
        entry = memory.model_dump() if isinstance(memory, BaseModel) else memory
        if not isinstance(entry, dict) or entry.get("author") not in (None, "user"):
            continue
        for part in (entry.get("content") or {}).get("parts") or []:
            if part.get("text") and part["text"] not in out:
                out.append(part["text"])
    return out


def _describe(name: str, response: dict[str, Any]) -> str:
    if name == "load_memory":
        result = response.get("result", response)
        memories = result.memories if isinstance(result, BaseModel) else result.get("memories", [])
        texts = _memory_texts(list(memories or []))
        if not texts:
            return "I don't remember anything about that yet."
        return "From our earlier conversations I remember: " + " | ".join(texts)
    if isinstance(response.get("message"), str):
        return str(response["message"])
    return f"{name} returned {json.dumps(response, sort_keys=True, default=str)}"


def choose_model(rules: list[ToolRule], ack: str = "Noted") -> BaseLlm | str:
    """Gemini when GOOGLE_API_KEY is set (and ADK_REDIS_LOCAL_MODEL is not), else LocalModel."""
    if os.environ.get("GOOGLE_API_KEY") and os.environ.get("ADK_REDIS_LOCAL_MODEL", "") in ("", "0"):
        return os.environ.get("ADK_SAMPLE_MODEL", GEMINI_DEFAULT)
    return LocalModel(rules=rules, ack=ack)
