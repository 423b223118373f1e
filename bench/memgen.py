"""Memory generation on LoCoMo with recorded extractions (``bench/memory.py --facts observations``).

No hosted model is reachable here, so the generator's model is a replay: LoCoMo ships, for every
session, facts an LLM extracted from it with the dia_ids of the turns they came from (the
``observation`` field).  :class:`LoCoMoReplay` answers each extraction request with the facts of
the new turns the prompt names, and consolidation with CREATE, so prompting, parsing,
consolidation, storage and search all run (never the model's judgement).

Retrieval (categories 1-4): ``turns`` = today's index (a separate prefix, no generator), ``facts``
= the facts only, ``both`` = facts and turns ranked together.  A fact counts for the turns it came
from: recall@10 = |evidence turns covered by the top 10 memories| / |evidence turns|, MRR@10 =
1 / rank of the first memory covering an evidence turn.  Words per query: words of the 10 memories
returned.

Throughput: the conversations' sessions replicated under distinct users up to ``--gen-sessions``
jobs, queued first, then ``adk-redis memory worker`` processes (replay model, ``--model-factory
memgen:replay_factory``) drain the queue; jobs/s = (jobs - 1) / (time of the last job done - time
of the first), so process start-up is not counted.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.sessions.session import Session
from google.genai import types

from adk_redis.memory import MemoryGenerator, RedisMemoryService
from adk_redis.testing import FactReplayModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
import locomo as lc  # noqa: E402

APP = "bench"
# an extraction prompt's event line: [id] (time) author: text
_EVENT = re.compile(r"^\[([^\]]+)\] \((?:[^()]|\([^()]*\))*\) [^:]*: (.*)$")


def _key(dia_id: str, text: str) -> str:
    return dia_id + "|" + " ".join(text.split())[:200]


def observations(path: str | os.PathLike[str]) -> dict[str, list[tuple[str, list[str]]]]:
    """(first source dia_id, that turn's text) key -> [(fact text, all source dia_ids)] from each
    sample's ``observation`` (dia_ids repeat across conversations; the turn text tells them apart)."""
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    out: dict[str, list[tuple[str, list[str]]]] = {}
    for sample in data:
        conv = sample["conversation"]
        said = {
            t["dia_id"]: t.get("text", "")
            for k, v in conv.items()
            if k.startswith("session_") and isinstance(v, list)
            for t in v
        }
        for _, speakers in sorted((sample.get("observation") or {}).items()):
            for _, obs in speakers.items():
                for item in obs:
                    text, src = item[0], item[1]
                    ids = sorted(lc.evidence_ids(src if isinstance(src, list) else [src]))
                    ids = [i for i in ids if i in said]
                    if text and ids:
                        out.setdefault(_key(ids[0], said[ids[0]]), []).append((str(text), ids))
    return out


class LoCoMoReplay(FactReplayModel):
    """Extraction answered with LoCoMo's recorded observations of the new turns; CREATE otherwise."""

    recorded: dict[str, list[tuple[str, list[str]]]] = {}

    async def generate_content_async(  # type: ignore[override]
        self, llm_request: LlmRequest, stream: bool = False
    ) -> Any:
        schema = getattr(llm_request.config.response_schema, "__name__", "")
        if schema == "ConsolidationAnswer":
            async for r in super().generate_content_async(llm_request, stream):
                yield r
            return
        prompt = "\n".join(p.text or "" for c in llm_request.contents for p in c.parts or [])
        new = prompt.split("New events:", 1)[-1]
        sent: dict[str, str] = {}
        for line in new.splitlines():
            m = _EVENT.match(line)
            if m:
                sent[m.group(1)] = m.group(2)
        facts = [
            {
                "text": t,
                "topic": "key_conversation_details",
                "source_event_ids": [i for i in ids if i in sent],
            }
            for eid, said in sent.items()
            for t, ids in self.recorded.get(_key(eid, said), [])
        ]
        body = json.dumps({"facts": facts})
        yield LlmResponse(
            content=types.Content(role="model", parts=[types.Part(text=body)]), turn_complete=True
        )


def replay_generator(path: str, **kw: Any) -> MemoryGenerator:
    model = LoCoMoReplay(echo=False)
    model.recorded = observations(path)
    return MemoryGenerator(model, max_facts_per_job=200, max_events_per_job=200, backoff=0.1, **kw)


def replay_factory() -> MemoryGenerator:
    """For ``adk-redis memory worker --model-factory memgen:replay_factory`` (LOCOMO_DEV = the file)."""
    return replay_generator(os.environ["LOCOMO_DEV"])


def _ids(memory: Any) -> list[str]:
    meta = memory.custom_metadata or {}
    if meta.get("kind") == "fact":
        return [str(i) for i in meta.get("event_ids") or []]
    return [str(meta.get("event_id") or memory.id)]


def _words(memory: Any) -> int:
    return sum(len((p.text or "").split()) for p in (memory.content.parts or [])) if memory.content else 0


def score(memories: Sequence[Any], evidence: frozenset[str]) -> tuple[float, float]:
    covered: set[str] = set()
    first = 0.0
    for rank, m in enumerate(memories[:10], 1):
        hit = evidence.intersection(_ids(m))
        if hit and not first:
            first = 1.0 / rank
        covered |= hit
    return len(covered) / len(evidence), first


async def _drain(svc: RedisMemoryService, timeout: float = 600) -> None:
    assert svc._generation is not None
    worker = svc._generation.worker
    deadline = time.monotonic() + timeout
    while (await svc.generation_stats())["queued_now"]:
        await worker.step(block_ms=50)
        if time.monotonic() > deadline:
            raise TimeoutError("generation jobs did not finish")


async def retrieval(path: str, url: str) -> dict[str, Any]:
    convs = lc.load(path, APP)
    prefix = f"benchgen{uuid.uuid4().hex[:8]}"
    gen = RedisMemoryService(url, key_prefix=prefix, generator=replay_generator(path), generator_worker=False)
    turns_only = RedisMemoryService(client=gen.client, key_prefix=prefix + "t")
    views = {
        "turns": turns_only,
        "facts": RedisMemoryService(client=gen.client, key_prefix=prefix, search_kinds="facts"),
        "both": RedisMemoryService(client=gen.client, key_prefix=prefix, search_kinds="all"),
    }
    try:
        t0 = time.perf_counter()
        for convo in convs:
            for session in convo.sessions:
                await gen.add_session_to_memory(session)
                await turns_only.add_session_to_memory(session)
        await _drain(gen)
        ingest = time.perf_counter() - t0
        stats = await gen.generation_stats()
        out: dict[str, Any] = {}
        lat_of: dict[str, list[float]] = {k: [] for k in views}
        words: dict[str, list[int]] = {k: [] for k in views}
        r10: dict[str, list[float]] = {k: [] for k in views}
        mrr: dict[str, list[float]] = {k: [] for k in views}
        names = list(views)
        n = 0
        for convo in convs:
            for q in convo.questions:
                n += 1
                for name in names[n % 3 :] + names[: n % 3]:  # interleaved, rotating order
                    t = time.perf_counter()
                    res = await views[name].search_memory(app_name=APP, user_id=q.user, query=q.text)
                    lat_of[name].append((time.perf_counter() - t) * 1000)
                    r, m = score(res.memories, q.evidence)
                    r10[name].append(r)
                    mrr[name].append(m)
                    words[name].append(sum(_words(x) for x in res.memories[:10]))
        for name in names:
            out[name] = {
                "r10": round(statistics.mean(r10[name]), 4),
                "mrr10": round(statistics.mean(mrr[name]), 4),
            }
        out["query_p50_ms"] = round(statistics.median(lat_of["both"]), 3)
        out["query_p50_ms_by_view"] = {k: round(statistics.median(v), 3) for k, v in lat_of.items()}
        out["words_per_query"] = {k: round(statistics.mean(v), 1) for k, v in words.items()}
        out["questions"] = sum(len(c.questions) for c in convs)
        out["facts_created"] = stats.get("facts_created", 0)
        out["jobs"] = stats.get("jobs_done", 0)
        out["model_calls"] = stats.get("model_calls", 0)
        out["ingest_s"] = round(ingest, 2)
        return out
    finally:
        for p in (prefix, prefix + "t"):
            keys = [k async for k in gen.client.scan_iter(match=f"{p}:*", count=1000)]
            for i in range(0, len(keys), 500):
                await gen.client.delete(*keys[i : i + 500])
        await gen.close()


def _replicated(convs: Sequence[lc.Conversation], n: int) -> list[Session]:
    """``n`` sessions: the conversations copied under new users, users interleaved in queue order."""
    per_user: list[list[Session]] = []
    copy = 0
    while sum(len(u) for u in per_user) < n:
        for convo in convs:
            user = f"{convo.user}-{copy}"
            per_user.append(
                [Session(id=s.id, app_name=APP, user_id=user, events=s.events) for s in convo.sessions]
            )
        copy += 1
    out: list[Session] = []
    for k in range(max(len(u) for u in per_user)):
        out += [u[k] for u in per_user if k < len(u)]
    return out[:n]


async def throughput(path: str, url: str, sessions: int, workers: Sequence[int]) -> dict[str, Any]:
    convs = lc.load(path, APP)
    out: dict[str, Any] = {"sessions": sessions}
    root = Path(__file__).resolve().parent
    for n in workers:
        prefix = f"benchgen{uuid.uuid4().hex[:8]}"
        svc = RedisMemoryService(
            url, key_prefix=prefix, generator=replay_generator(path), generator_worker=False
        )
        try:
            for s in _replicated(convs, sessions):
                await svc.add_session_to_memory(s)
            env = dict(os.environ, LOCOMO_DEV=str(path), PYTHONPATH=os.pathsep.join([str(root), *sys.path]))
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "adk_redis.admin.cli",
                        "memory",
                        "worker",
                        "--url",
                        url,
                        "--prefix",
                        prefix,
                        "--model-factory",
                        "memgen:replay_factory",
                        "--idle-exit",
                        "3",
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for _ in range(n)
            ]
            first = last = None
            done = 0
            deadline = time.monotonic() + 900
            while done < sessions and time.monotonic() < deadline:
                st = await svc.generation_stats()
                done = int(st.get("jobs_done", 0)) + int(st.get("jobs_dead", 0))
                now = time.perf_counter()
                if done and first is None:
                    first = (now, done)
                if done >= sessions:
                    last = now
                await asyncio.sleep(0.01)
            for p in procs:
                p.wait(60)
            assert first is not None and last is not None, "workers did not finish"
            out[f"jobs_per_s_{n}_workers"] = round((sessions - first[1]) / max(last - first[0], 1e-9), 1)
        finally:
            keys = [k async for k in svc.client.scan_iter(match=f"{prefix}:*", count=1000)]
            for i in range(0, len(keys), 500):
                await svc.client.delete(*keys[i : i + 500])
            await svc.close()
    return out
