"""Event decode micro-benchmark: pydantic validation vs the fast path, and ADK's deep copy.

Run: ``.venv/bin/python bench/decode.py [--rounds N] [--prev FILE]``

``--prev`` times another version of ``adk_redis/event_decode.py`` in the same run, e.g.
``git show 38f1c89:adk_redis/event_decode.py > /tmp/prev_decode.py``.

For each event: median over ``rounds`` of (time of ``batch`` decodes) / batch, all
methods interleaved in the same run (the machine may be noisy: compare within one run).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
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

from adk_redis._core.event_decode import fast_decode_event  # noqa: E402


def _per_call_us(fn: Callable[[], Any], batch: int) -> float:
    t0 = time.perf_counter_ns()
    for _ in range(batch):
        fn()
    return (time.perf_counter_ns() - t0) / batch / 1000


_PREV: Callable[[str], Any] | None = None


def _load_prev(path: str) -> Callable[[str], Any]:
    spec = importlib.util.spec_from_file_location("prev_event_decode", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fast_decode_event  # type: ignore[no-any-return]


def bench(name: str, event: Event, rounds: int, batch: int) -> dict[str, float]:
    body = event.model_dump_json(exclude_none=True)
    fast = fast_decode_event(body)
    assert fast is None or fast == Event.model_validate_json(body), name
    methods: dict[str, Callable[[], Any]] = {
        "slow": lambda: Event.model_validate_json(body),
        "fast": lambda: fast_decode_event(body),
        "adk_copy": lambda: _model_copy.deep_copy_model(event),
    }
    prev_decode = _PREV
    if prev_decode is not None:
        methods["prev"] = lambda: prev_decode(body)
    samples: dict[str, list[float]] = {k: [] for k in methods}
    for _ in range(rounds):
        for key, fn in methods.items():
            samples[key].append(_per_call_us(fn, batch))
    med = {k: statistics.median(v) for k, v in samples.items()}
    fast_path = fast is not None
    print(
        f"{name:<28} {len(body):>6} B  slow {med['slow']:7.2f}"
        + (f"  prev {med['prev']:7.2f}" if "prev" in med else "")
        + f"  fast {med['fast']:7.2f}"
        f"  x{med['slow'] / med['fast']:5.1f}  adk deep copy {med['adk_copy']:7.2f}"
        f"{'' if fast_path else '  (fallback)'}"
    )
    return med


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--prev", help="another event_decode.py to time as 'prev'")
    args = parser.parse_args()
    global _PREV
    if args.prev:
        _PREV = _load_prev(args.prev)
    from tests.event_corpus import CORPUS, FALLBACK_CORPUS

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
    prev = ""
    if _PREV is not None:
        bench_prev = sum(r["prev"] for r in results[:2]) / 2
        prev = f"  prev {bench_prev:.2f} (fast x{bench_prev / bench_fast:.2f})"
    print(
        f"\nbench/sessions.py events (mean of the two): slow {bench_slow:.2f}{prev}  fast {bench_fast:.2f}"
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
