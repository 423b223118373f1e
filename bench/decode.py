"""Event decode micro-benchmark: pydantic validation vs the fast path, and ADK's deep copy.

Run: ``.venv/bin/python bench/decode.py [--rounds N]``

For each event: median over ``rounds`` of (time of ``batch`` decodes) / batch, all
methods interleaved in the same run (the machine may be noisy: compare within one run).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, "bench")
sys.path.insert(0, "tests")
sys.path.insert(0, ".")

from google.adk.events.event import Event  # noqa: E402
from google.adk.utils import _model_copy  # noqa: E402
from sessions import make_event  # type: ignore[import-not-found]  # noqa: E402

from adk_redis.event_decode import fast_decode_event  # noqa: E402


def _per_call_us(fn: Callable[[], Any], batch: int) -> float:
    t0 = time.perf_counter_ns()
    for _ in range(batch):
        fn()
    return (time.perf_counter_ns() - t0) / batch / 1000


def bench(name: str, event: Event, rounds: int, batch: int) -> dict[str, float]:
    body = event.model_dump_json(exclude_none=True)
    fast = fast_decode_event(body)
    assert fast is None or fast == Event.model_validate_json(body), name
    methods: dict[str, Callable[[], Any]] = {
        "slow": lambda: Event.model_validate_json(body),
        "fast": lambda: fast_decode_event(body),
        "adk_copy": lambda: _model_copy.deep_copy_model(event),
    }
    samples: dict[str, list[float]] = {k: [] for k in methods}
    for _ in range(rounds):
        for key, fn in methods.items():
            samples[key].append(_per_call_us(fn, batch))
    med = {k: statistics.median(v) for k, v in samples.items()}
    fast_path = fast is not None
    print(
        f"{name:<28} {len(body):>6} B  slow {med['slow']:7.2f}  fast {med['fast']:7.2f}"
        f"  x{med['slow'] / med['fast']:5.1f}  adk deep copy {med['adk_copy']:7.2f}"
        f"{'' if fast_path else '  (fallback)'}"
    )
    return med


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    from test_event_decode import CORPUS, FALLBACK_CORPUS  # type: ignore[import-not-found]

    cases: list[tuple[str, Event]] = [
        ("bench user text", make_event(0)),
        ("bench model+state", make_event(1)),
    ]
    cases += [(f"corpus[{i}]", ev) for i, ev in enumerate(CORPUS)]
    cases += [(f"fallback[{i}]", ev) for i, ev in enumerate(FALLBACK_CORPUS)]
    gc.disable()
    print(f"µs per event, median of {args.rounds} rounds x {args.batch} calls")
    results = [bench(name, ev, args.rounds, args.batch) for name, ev in cases]
    gc.enable()
    bench_slow = sum(r["slow"] for r in results[:2]) / 2
    bench_fast = sum(r["fast"] for r in results[:2]) / 2
    bench_copy = sum(r["adk_copy"] for r in results[:2]) / 2
    corpus = results[2 : 2 + len(CORPUS)]
    print(
        f"\nbench/sessions.py events (mean of the two): slow {bench_slow:.2f}  fast {bench_fast:.2f}"
        f"  x{bench_slow / bench_fast:.1f}  ADK deep copy {bench_copy:.2f}"
    )
    print(
        "corpus medians: slow {:.2f}  fast {:.2f}  x{:.1f}".format(
            statistics.median(r["slow"] for r in corpus),
            statistics.median(r["fast"] for r in corpus),
            statistics.median(r["slow"] / r["fast"] for r in corpus),
        )
    )


if __name__ == "__main__":
    main()
