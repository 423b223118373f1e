"""``adk-redis memory worker`` / ``adk-redis memory jobs``: memory-generation workers and the job queue."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
from datetime import datetime, timezone
from typing import Any

from ..memory._generator import MemoryGenerator
from ..memory._jobs import GenerationWorker, dead_jobs, generation_stats, retry_dead
from .common import EXIT_PROBLEM, CliError, Result


def _generator(args: argparse.Namespace) -> MemoryGenerator:
    if bool(args.model) == bool(args.model_factory):
        raise CliError("give exactly one of --model NAME or --model-factory MODULE:CALLABLE")
    if args.model:
        model: Any = args.model
    else:
        module, _, attr = str(args.model_factory).partition(":")
        if not module or not attr:
            raise CliError("--model-factory takes MODULE:CALLABLE")
        try:
            model = getattr(importlib.import_module(module), attr)()
        except (ImportError, AttributeError) as exc:
            raise CliError(f"--model-factory {args.model_factory}: {exc}") from None
        if isinstance(model, MemoryGenerator):
            return model
    try:
        return MemoryGenerator(model, timeout=args.model_timeout, max_attempts=args.attempts)
    except (TypeError, ValueError) as exc:
        raise CliError(f"cannot use model {args.model or args.model_factory}: {exc}") from None


def _embedder(args: argparse.Namespace) -> Any:
    if not args.embedder_factory:
        return None
    module, _, attr = str(args.embedder_factory).partition(":")
    try:
        return getattr(importlib.import_module(module), attr)()
    except (ImportError, AttributeError, ValueError) as exc:
        raise CliError(f"--embedder-factory {args.embedder_factory}: {exc}") from None


async def cmd_worker(svc: Any, args: argparse.Namespace) -> Result:
    """Run generation workers until interrupted (or --max-jobs / --idle-exit)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    gen = _generator(args)
    embedder = _embedder(args)
    workers = [
        GenerationWorker(
            client=svc.client,
            keys=svc.keys,
            generator=gen,
            visibility_timeout=args.visibility_timeout,
            ttl_hours=svc.settings.history_ttl_hours,
            consumer=f"{args.consumer}-{n}" if args.consumer else None,
            lock_ttl=args.lock_ttl,
            embedder=embedder,
        )
        for n in range(args.concurrency)
    ]
    counts = await asyncio.gather(
        *(w.run(block_ms=500, max_jobs=args.max_jobs, idle_exit=args.idle_exit) for w in workers)
    )
    for w in workers:
        await w.leave()
    total = sum(counts)
    return Result({"jobs": total, "consumers": [w.consumer for w in workers]}, [f"{total} jobs handled"])


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if ms else "-"


async def cmd_jobs(svc: Any, args: argparse.Namespace) -> Result:
    """Queue counters and dead-lettered jobs; ``--retry`` moves dead jobs back onto the queue."""
    if args.retry is not None:
        moved = await retry_dead(svc.client, svc.keys, args.retry or None)
        return Result({"retried": moved}, [f"{moved} dead job(s) queued again"])
    stats = await generation_stats(svc.client, svc.keys)
    dead = await dead_jobs(svc.client, svc.keys, count=args.limit)
    lines = [
        "jobs: "
        + ", ".join(
            f"{k.removeprefix('jobs_')} {stats.get(k, 0)}"
            for k in ("jobs_queued", "jobs_done", "jobs_duplicate", "jobs_retried", "jobs_dead")
        ),
        f"queue: {stats['queued_now']} in the stream, {stats['pending']} being worked, "
        f"{stats['dead_now']} dead",
        "facts: "
        + ", ".join(
            f"{k.removeprefix('facts_')} {stats.get(k, 0)}"
            for k in ("facts_created", "facts_updated", "facts_deleted")
        ),
        f"model: {stats.get('model_calls', 0)} calls, {float(stats.get('model_ms', 0)):.0f} ms, "
        f"{stats.get('prompt_tokens', 0)} prompt / {stats.get('output_tokens', 0)} output tokens",
    ]
    for d in dead:
        lines.append(
            f"dead {d['entry']}: job {d['job']} app {d['app']} user {d['user']} after {d['attempts']} "
            f"attempt(s) at {_when(d['failed_at'])}: {d['error']}"
        )
    if dead:
        lines.append("retry with: adk-redis memory jobs --retry [ENTRY ...]")
    return Result({"stats": stats, "dead": dead}, lines, EXIT_PROBLEM if dead else 0)


def add_parsers(msub: Any, common: argparse.ArgumentParser) -> None:
    """``adk-redis memory worker`` and ``adk-redis memory jobs`` (memory generation)."""
    p = msub.add_parser(
        "worker",
        parents=[common],
        help="run memory-generation workers (extract and consolidate facts) until interrupted",
        description="Consumes the generation jobs RedisMemoryService(generator=...) queues, on any "
        "number of machines. A job whose worker died is taken over after --visibility-timeout.",
    )
    p.add_argument("--model", help="a model name ADK resolves (e.g. gemini-2.5-flash)")
    p.add_argument(
        "--model-factory",
        metavar="MODULE:CALLABLE",
        help="a callable returning an ADK BaseLlm or a MemoryGenerator",
    )
    p.add_argument(
        "--embedder-factory",
        metavar="MODULE:CALLABLE",
        help="a callable returning the Embedder the memory services use (facts get vectors)",
    )
    p.add_argument("--concurrency", type=int, default=1, help="worker tasks in this process (default 1)")
    p.add_argument(
        "--visibility-timeout",
        type=float,
        default=60.0,
        help="seconds before a job left by a dead worker is reclaimed (default 60)",
    )
    p.add_argument("--model-timeout", type=float, default=60.0, help="seconds per model call (default 60)")
    p.add_argument("--attempts", type=int, default=3, help="attempts before a job is dead-lettered")
    p.add_argument(
        "--lock-ttl",
        type=float,
        help="seconds a per-user lock outlives a dead worker (default: model timeout + 30)",
    )
    p.add_argument("--consumer", help="consumer name prefix (default: host-pid-random)")
    p.add_argument("--max-jobs", type=int, help="exit after handling this many jobs (per task)")
    p.add_argument("--idle-exit", type=float, help="exit after this many seconds without a job")
    p = msub.add_parser("jobs", parents=[common], help="generation counters and dead-lettered jobs")
    p.add_argument("--limit", type=int, default=50, help="dead jobs listed (default 50)")
    p.add_argument(
        "--retry",
        nargs="*",
        metavar="ENTRY",
        help="queue dead jobs again: these entry ids, or all without ids",
    )
