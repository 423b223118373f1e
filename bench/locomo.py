"""LoCoMo reader and turn-level retrieval metrics (used by ``bench/memory.py --locomo`` and the tests).

LoCoMo (Maharana et al., ACL 2024; CC BY-NC 4.0) is never copied into this repository: it is read
from where it lies (``shared/data/locomo-dev/locomo-dev.json`` for the development half, see
:func:`dev_path`).  Format: a list of samples, each with ``conversation`` (``speaker_a``,
``speaker_b``, ``session_N`` lists of turns ``{speaker, dia_id, text}``, ``session_N_date_time``)
and ``qa`` (``question``, ``evidence`` = list of dia_ids, ``category`` 1 multi-hop, 2 temporal,
3 open-domain, 4 single-hop, 5 adversarial).

Ingestion as ADK sees a conversation: one :class:`Session` per LoCoMo session (id ``session_N``,
user = the sample id), one event per turn authored by its speaker, event id = the turn's dia_id,
timestamps = the session's date plus one second per turn.  Only the turn's ``text`` is ingested
(image captions, where a turn shared a photo, are not).

Metrics, per question (categories 1-4, questions with at least one evidence turn), over the
memories :meth:`search_memory` returns, mapped back to dia_ids (event id):

* ``recall@k`` = |evidence turns among the top k| / |evidence turns|, averaged over questions;
* ``MRR@10`` = 1 / rank of the first evidence turn in the top 10 (0 if none), averaged.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from google.adk.events.event import Event
from google.adk.sessions.session import Session
from google.genai import types

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
KS = (1, 5, 10)
_DIA_RE = re.compile(r"D\d+:\d+")
_DATE_FORMATS = ("%I:%M %p on %d %B, %Y", "%I:%M %p on %d %b, %Y", "%H:%M on %d %B, %Y")


@dataclass(frozen=True)
class Question:
    user: str  # the conversation (sample id): questions search only their own conversation
    text: str
    evidence: frozenset[str]  # dia_ids
    category: int


@dataclass
class Conversation:
    user: str
    speakers: tuple[str, str]
    sessions: list[Session] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)


def dev_path(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The development half: ``$LOCOMO_DEV``, else ``shared/data/locomo-dev/locomo-dev.json`` in a
    folder above ``start`` (default: this file), else ``/work/shared/...``; None if none exists."""
    env = os.environ.get("LOCOMO_DEV")
    if env:
        return Path(env)
    rel = Path("shared/data/locomo-dev/locomo-dev.json")
    here = Path(start or __file__).resolve()
    for folder in [here, *here.parents]:
        if (folder / rel).is_file():
            return folder / rel
    fixed = Path("/work") / rel
    return fixed if fixed.is_file() else None


def parse_date(value: str) -> float:
    """``"1:56 pm on 8 May, 2023"`` -> POSIX seconds (UTC)."""
    value = " ".join(value.split())
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            continue
    raise ValueError(f"unrecognised LoCoMo date {value!r}")


def evidence_ids(raw: Iterable[Any]) -> frozenset[str]:
    """dia_ids of an evidence list (some entries hold several, e.g. ``"D8:6; D9:17"``)."""
    out: set[str] = set()
    for item in raw:
        if isinstance(item, str):
            out.update(_DIA_RE.findall(item))
    return frozenset(out)


def turn_event(dia_id: str, speaker: str, text: str, ts: float) -> Event:
    return Event(
        id=dia_id,
        author=speaker,
        invocation_id=dia_id,
        timestamp=ts,
        content=types.Content(role="user", parts=[types.Part(text=text)]),
    )


def conversations(data: Sequence[dict[str, Any]], app: str) -> list[Conversation]:
    """LoCoMo samples -> conversations of ADK sessions and questions (categories 1-4)."""
    out: list[Conversation] = []
    for n, sample in enumerate(data):
        user = str(sample.get("sample_id", f"sample{n}"))
        conv = sample["conversation"]
        convo = Conversation(user, (str(conv.get("speaker_a", "")), str(conv.get("speaker_b", ""))))
        keys = sorted(
            (k for k in conv if re.fullmatch(r"session_\d+", k) and isinstance(conv[k], list)),
            key=lambda k: int(k.split("_")[1]),
        )
        for key in keys:
            t0 = parse_date(conv[f"{key}_date_time"])
            events = [
                turn_event(turn["dia_id"], turn["speaker"], turn["text"], t0 + i)
                for i, turn in enumerate(conv[key])
                if turn.get("text")
            ]
            convo.sessions.append(
                Session(id=key, app_name=app, user_id=user, events=events, last_update_time=t0 + len(events))
            )
        for qa in sample.get("qa", []):
            evidence = evidence_ids(qa.get("evidence") or [])
            category = int(qa.get("category", 0))
            if category in CATEGORIES and evidence:
                convo.questions.append(Question(user, str(qa["question"]), evidence, category))
        out.append(convo)
    return out


def load(path: str | os.PathLike[str], app: str = "locomo") -> list[Conversation]:
    with open(path, encoding="utf-8") as fh:
        return conversations(json.load(fh), app)


def scores(ranked: Sequence[str], evidence: frozenset[str]) -> dict[str, float]:
    """One question's ``r@1``, ``r@5``, ``r@10`` and ``mrr`` for the dia_ids ``ranked`` (best first)."""
    out = {f"r@{k}": len(evidence.intersection(ranked[:k])) / len(evidence) for k in KS}
    first = next((i + 1 for i, d in enumerate(ranked[:10]) if d in evidence), None)
    out["mrr"] = 0.0 if first is None else 1.0 / first
    return out


def summarize(per_question: Sequence[tuple[int, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Averages per category (names of :data:`CATEGORIES`) and ``overall``; each with ``n``."""
    groups: dict[str, list[dict[str, float]]] = {"overall": []}
    for category, s in per_question:
        groups.setdefault(CATEGORIES.get(category, str(category)), []).append(s)
        groups["overall"].append(s)
    out: dict[str, dict[str, float]] = {}
    for name, rows in groups.items():
        avg = {m: sum(r[m] for r in rows) / len(rows) for m in rows[0]} if rows else {}
        avg["n"] = float(len(rows))
        out[name] = avg
    return out


@dataclass
class Result:
    """One service's figures: :func:`summarize` output plus search latencies (ms) and ingest time (s)."""

    name: str
    summary: dict[str, dict[str, float]]
    latencies_ms: list[float]
    ingest_s: float

    def percentile(self, q: float) -> float:
        s = sorted(self.latencies_ms)
        return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else float("nan")


def entry_dia_id(memory: Any) -> str:
    """The dia_id a returned MemoryEntry stands for (``custom_metadata["event_id"]``, else its id)."""
    return str((memory.custom_metadata or {}).get("event_id") or memory.id)


async def run(name: str, service: Any, convs: Sequence[Conversation], app: str = "locomo") -> Result:
    """Ingest every session through ``add_session_to_memory`` and ask every question through
    ``search_memory`` (as ADK's ``load_memory`` tool does: the question text as the query)."""
    import time

    t0 = time.perf_counter()
    for convo in convs:
        for session in convo.sessions:
            await service.add_session_to_memory(session)
    ingest = time.perf_counter() - t0
    rows: list[tuple[int, dict[str, float]]] = []
    lat: list[float] = []
    for convo in convs:
        for q in convo.questions:
            t = time.perf_counter()
            res = await service.search_memory(app_name=app, user_id=q.user, query=q.text)
            lat.append((time.perf_counter() - t) * 1000)
            rows.append((q.category, scores([entry_dia_id(m) for m in res.memories[:10]], q.evidence)))
    return Result(name, summarize(rows), lat, ingest)


def table(results: Sequence[Result]) -> str:
    """Markdown: per service, overall then each category; latency on the overall row."""
    out = [
        "| service | questions | recall@1 | recall@5 | recall@10 | MRR@10 | search p50 ms | search p95 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    order = ["overall", *CATEGORIES.values()]
    for r in results:
        for group in order:
            s = r.summary.get(group)
            if not s:
                continue
            label = f"**{r.name}**" if group == "overall" else f"{r.name}: {group}"
            lat = f"{r.percentile(0.5):.2f} | {r.percentile(0.95):.2f}" if group == "overall" else " | "
            out.append(
                f"| {label} | {int(s['n'])} | {s['r@1']:.3f} | {s['r@5']:.3f} | {s['r@10']:.3f} "
                f"| {s['mrr']:.3f} | {lat} |"
            )
    return "\n".join(out)
