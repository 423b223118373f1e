"""Offline testing: a scripted, deterministic model for running your agents with our services.

:class:`ScriptedModel` is an ADK ``BaseLlm`` that needs no network and no API
key, built on ADK's public API only.  Give it to your agent instead of a
Gemini model name and run turns through ``Runner`` with
:class:`~adk_redis.RedisSessionService` / :class:`~adk_redis.RedisMemoryService`
(or fakeredis): tool calls, state deltas, events and memory all go through the
real code paths::

    from google.adk.agents import LlmAgent
    from adk_redis.testing import ScriptedModel, ToolRule

    model = ScriptedModel(
        script=["Hello!", {"call": "remember", "args": {"fact": "likes tea"}}],  # first two replies
        rules=[ToolRule(tool="load_memory", words=("remember", "recall"), text_arg="query")],
    )
    agent = LlmAgent(name="assistant", model=model, tools=[remember, load_memory])
    ...
    assert model.requests[-1].contents[-1].parts[0].text == "what do I like?"

Each model call is answered, in this order:

1. the next entry of ``script``, if any is left: a ``str`` (a text reply), a
   ``{"call": tool, "args": {...}}`` dict (a function call), or a
   ``google.genai.types.Content``;
2. when the request ends with function responses: a text answer built from
   them (``load_memory`` results are quoted back: ``From our earlier
   conversations I remember: ...``; a response with a ``message`` string is
   said as it is);
3. the first :class:`ToolRule` whose trigger word occurs in the user's last
   text (case-insensitive) and whose tool the agent has: a call of that tool,
   the user's text passed as ``text_arg`` when set;
4. otherwise ``"<ack>: <the user's text>"``.

Every request is kept in :attr:`ScriptedModel.requests`.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any

from google.adk.models import BaseLlm, LlmCapabilities
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.genai import types
from pydantic import BaseModel, Field, PrivateAttr

__all__ = ["FactReplayModel", "ScriptedModel", "ToolRule"]

_TRANSIENT = "<PAST_CONVERSATIONS>"  # preload_memory's block, not the user's words


class ToolRule(BaseModel):
    """Call ``tool`` when the user's text contains one of ``words`` (case-insensitive)."""

    tool: str
    words: tuple[str, ...]
    text_arg: str | None = None


class ScriptedModel(BaseLlm):
    """A deterministic, offline ``BaseLlm``: scripted replies, keyword tool calls, tool-result answers."""

    model: str = "adk-redis-scripted"
    script: list[Any] = Field(default_factory=list)
    rules: list[ToolRule] = Field(default_factory=list)
    ack: str = "Noted"
    _requests: list[LlmRequest] = PrivateAttr(default_factory=list)
    _next: int = PrivateAttr(default=0)

    @property
    def capabilities(self) -> LlmCapabilities:
        return LlmCapabilities(output_schema_and_tools=False)

    @property
    def requests(self) -> list[LlmRequest]:
        """Every request this model answered, oldest first."""
        return self._requests

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        self._requests.append(llm_request)
        content = self.reply(llm_request)
        prompt = sum(len((p.text or "").split()) for c in llm_request.contents for p in c.parts or [])
        answer = sum(len((p.text or "").split()) for p in content.parts or []) or 1
        usage = types.GenerateContentResponseUsageMetadata(
            prompt_token_count=prompt, candidates_token_count=answer, total_token_count=prompt + answer
        )
        yield LlmResponse(content=content, usage_metadata=usage, turn_complete=True)

    def reply(self, request: LlmRequest) -> types.Content:
        """The reply to ``request`` (see the module docstring for the order of the rules)."""
        if self._next < len(self.script):
            entry = self.script[self._next]
            self._next += 1
            return _scripted(entry)
        for content in reversed(request.contents):
            parts = content.parts or []
            responses = [p.function_response for p in parts if p.function_response]
            if responses:
                return _text(" ".join(_describe(r.name or "", r.response or {}) for r in responses))
            said = " ".join(p.text for p in parts if p.text and not p.thought).strip()
            if content.role == "user" and said and _TRANSIENT not in said:
                return self._answer(said, request)
        return _text(f"{self.ack}.")

    def _answer(self, said: str, request: LlmRequest) -> types.Content:
        lowered = said.lower()
        for rule in self.rules:
            if rule.tool in request.tools_dict and any(w.lower() in lowered for w in rule.words):
                args = {rule.text_arg: said} if rule.text_arg else {}
                return _call(rule.tool, args)
        return _text(f"{self.ack}: {said}")


def _text(value: str) -> types.Content:
    return types.Content(role="model", parts=[types.Part.from_text(text=value)])


def _call(name: str, args: dict[str, Any]) -> types.Content:
    return types.Content(
        role="model", parts=[types.Part(function_call=types.FunctionCall(name=name, args=args))]
    )


def _scripted(entry: Any) -> types.Content:
    if isinstance(entry, types.Content):
        return entry
    if isinstance(entry, str):
        return _text(entry)
    if isinstance(entry, dict) and isinstance(entry.get("call"), str):
        return _call(entry["call"], dict(entry.get("args") or {}))
    raise TypeError(
        f"a script entry is a str, a {{'call': name, 'args': {{...}}}} dict or a Content, got {entry!r}"
    )


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
        if isinstance(result, BaseModel):
            memories = getattr(result, "memories", None)
        else:
            memories = result.get("memories")
        texts = _memory_texts(list(memories or []))
        if not texts:
            return "I don't remember anything about that yet."
        return "From our earlier conversations I remember: " + " | ".join(texts)
    if isinstance(response.get("message"), str):
        return str(response["message"])
    return f"{name} returned {json.dumps(response, sort_keys=True, default=str)}"


_EVENT_LINE = re.compile(r"^\[([^\]]+)\] \((?:[^()]|\([^()]*\))*\) ([^:]*): (.*)$")


class FactReplayModel(BaseLlm):
    """A deterministic, offline model for :class:`adk_redis.memory.MemoryGenerator`.

    Extraction requests are answered with the recorded facts of the new events the prompt names
    (``facts``: event id -> ``[(text, topic), ...]``, e.g. LoCoMo's ``observation`` field); an
    event without recorded facts yields ``"<author> said: <text>"`` when ``echo`` is set.
    ``match`` adds facts by content: an event of ``match_authors`` whose text contains a key
    (case-insensitive) yields its facts (for event ids not known in advance, e.g. a Runner's).
    Consolidation requests are answered CREATE for every new fact (NONE when its text equals a
    shown memory's), or as ``decide`` says: new fact text -> (``UPDATE``/``DELETE``/``NONE``, the
    text of the shown memory it acts on); UPDATE uses the new fact's text.
    ``delay`` seconds are slept before each answer (to kill a worker mid-job).
    """

    model: str = "adk-redis-fact-replay"
    facts: dict[str, list[tuple[str, str]]] = Field(default_factory=dict)
    echo: bool = True
    topic: str = "key_conversation_details"
    delay: float = 0.0
    match: dict[str, list[tuple[str, str]]] = Field(default_factory=dict)
    decide: dict[str, tuple[str, str]] = Field(default_factory=dict)
    match_authors: tuple[str, ...] = ("user",)
    _calls: int = PrivateAttr(default=0)

    @classmethod
    def from_records(cls, records: Mapping[str, Sequence[tuple[str, str]]], **kw: Any) -> FactReplayModel:
        return cls(facts={k: [tuple(v) for v in vs] for k, vs in records.items()}, **kw)  # type: ignore[misc]

    @property
    def calls(self) -> int:
        return self._calls

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        self._calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        prompt = "\n".join(p.text or "" for c in llm_request.contents for p in c.parts or [])
        schema = getattr(llm_request.config.response_schema, "__name__", "")
        answer = self._consolidate(prompt) if schema == "ConsolidationAnswer" else self._extract(prompt)
        yield LlmResponse(content=_text(json.dumps(answer)), turn_complete=True)

    def _extract(self, prompt: str) -> dict[str, Any]:
        facts: list[dict[str, Any]] = []
        new = prompt.split("New events:", 1)[-1]
        for line in new.splitlines():
            m = _EVENT_LINE.match(line.strip())
            if not m:
                continue
            eid, author, said = m.group(1), m.group(2), m.group(3)
            recorded = list(self.facts.get(eid) or [])
            if author in self.match_authors:
                recorded += [f for key, fs in self.match.items() if key.lower() in said.lower() for f in fs]
            if not recorded and self.echo and said.strip():
                recorded = [(f"{author} said: {said}", self.topic)]
            for t, p in recorded or []:
                facts.append({"text": t, "topic": p or self.topic, "source_event_ids": [eid]})
        return {"facts": facts}

    def _consolidate(self, prompt: str) -> dict[str, Any]:
        existing_part, _, new_part = prompt.partition("NEW facts:")
        shown: dict[str, int] = {}
        for line in existing_part.splitlines():
            m = re.match(r"^(\d+)\. (.*) \(topic: [^)]*\)$", line)
            if m:
                shown[m.group(2)] = int(m.group(1))
        decisions: list[dict[str, Any]] = []
        for line in new_part.splitlines():
            m = re.match(r"^(\d+)\. (.*) \(topic: [^)]*\)$", line)
            if m:
                same = shown.get(m.group(2))
                rule = self.decide.get(m.group(2))
                if rule is not None and rule[1] in shown:
                    action, target = rule[0], shown[rule[1]]
                    decision = {"new_fact": int(m.group(1)), "action": action, "existing": target}
                    decisions.append({**decision, "text": m.group(2)})
                elif same is not None:
                    decisions.append({"new_fact": int(m.group(1)), "action": "NONE", "existing": same})
                else:
                    decisions.append({"new_fact": int(m.group(1)), "action": "CREATE"})
        return {"decisions": decisions}
