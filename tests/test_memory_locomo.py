"""LoCoMo: the reader and the metrics (hand-computed), and the full-text regression on the dev half.

LoCoMo is CC BY-NC: nothing of it is in this repository.  The regression test reads the development
half from where it lies (``$LOCOMO_DEV``, else ``shared/data/locomo-dev/locomo-dev.json`` in a folder
above the repository, else ``/work/shared/...``); under ``CI=true`` a missing file fails the test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adk_redis import RedisMemoryService
from bench import locomo
from tests.memory_helpers import LOCOMO_APP, drop_prefix, locomo_dev_file

APP = LOCOMO_APP

# Targets of issue 12 on the development half (categories 1-4).
RECALL_AT_10 = 0.65
MRR_AT_10 = 0.50

# A tiny conversation in LoCoMo's format (made up here, not taken from the dataset).
TINY: list[dict[str, Any]] = [
    {
        "sample_id": "conv-x",
        "conversation": {
            "speaker_a": "Ann",
            "speaker_b": "Bob",
            "session_1_date_time": "1:56 pm on 8 May, 2023",
            "session_1": [
                {"speaker": "Ann", "dia_id": "D1:1", "text": "I adopted a kitten called Pixel."},
                {"speaker": "Bob", "dia_id": "D1:2", "text": "Lovely! What colour is she?"},
                {"speaker": "Ann", "dia_id": "D1:3", "text": "Grey with white paws."},
            ],
            "session_2_date_time": "10:37 am on 27 June, 2023",
            "session_2": [
                {"speaker": "Bob", "dia_id": "D2:1", "text": "I started rowing on the river."},
                {"speaker": "Ann", "dia_id": "D2:2", "text": "", "img_url": ["x"]},
                {"speaker": "Ann", "dia_id": "D2:3", "text": "Pixel loves watching boats."},
            ],
        },
        "qa": [
            {"question": "What is the kitten's name?", "evidence": ["D1:1"], "category": 4},
            {"question": "What colour is Pixel?", "evidence": ["D1:1; D1:3"], "category": 1},
            {"question": "Is Bob a pilot?", "evidence": ["D2:1"], "category": 5},  # adversarial: out
            {"question": "When did Bob start rowing?", "evidence": [], "category": 2},  # no evidence: out
            {"question": "What does Bob do on the river?", "evidence": ["D2:1"], "category": 2},
        ],
    }
]


def test_reader_builds_adk_sessions_and_questions() -> None:
    (conv,) = locomo.conversations(TINY, APP)
    assert conv.user == "conv-x" and conv.speakers == ("Ann", "Bob")
    assert [s.id for s in conv.sessions] == ["session_1", "session_2"]
    s1, s2 = conv.sessions
    assert [(e.id, e.author) for e in s1.events] == [("D1:1", "Ann"), ("D1:2", "Bob"), ("D1:3", "Ann")]
    assert [e.id for e in s2.events] == ["D2:1", "D2:3"]  # a turn without text is not an event
    # 8 May 2023 13:56 UTC, one second per turn
    assert [e.timestamp for e in s1.events] == [1683554160.0, 1683554161.0, 1683554162.0]
    assert s1.events[0].content is not None and s1.events[0].content.parts
    assert s1.events[0].content.parts[0].text == "I adopted a kitten called Pixel."
    assert all(s.app_name == APP and s.user_id == "conv-x" for s in conv.sessions)
    assert [(q.category, sorted(q.evidence)) for q in conv.questions] == [
        (4, ["D1:1"]),
        (1, ["D1:1", "D1:3"]),
        (2, ["D2:1"]),
    ]


def test_metrics_by_hand() -> None:
    ev = frozenset({"D1:1", "D1:3"})
    # evidence at ranks 2 and 7: recall@1 0, @5 1/2, @10 2/2, MRR 1/2
    ranked = ["D9:9", "D1:1", "a", "b", "c", "d", "D1:3", "e", "f", "g", "h"]
    assert locomo.scores(ranked, ev) == {"r@1": 0.0, "r@5": 0.5, "r@10": 1.0, "mrr": 0.5}
    # evidence at rank 11 only: nothing
    assert locomo.scores([*"abcdefghij", "D1:1"], ev) == {"r@1": 0.0, "r@5": 0.0, "r@10": 0.0, "mrr": 0.0}
    single = locomo.scores(["D2:1"], frozenset({"D2:1"}))
    assert single == {"r@1": 1.0, "r@5": 1.0, "r@10": 1.0, "mrr": 1.0}
    summary = locomo.summarize([(1, locomo.scores(ranked, ev)), (4, single), (4, locomo.scores([], ev))])
    assert summary["multi-hop"]["r@10"] == 1.0 and summary["multi-hop"]["n"] == 1
    assert summary["single-hop"]["mrr"] == 0.5 and summary["single-hop"]["r@5"] == 0.5
    assert summary["overall"]["r@10"] == pytest.approx(2 / 3)
    assert summary["overall"]["mrr"] == pytest.approx(0.5)
    assert summary["overall"]["r@1"] == pytest.approx(1 / 3)


def test_evidence_lists_with_several_ids_per_entry() -> None:
    assert locomo.evidence_ids(["D8:6; D9:17", "D1:2", 3, "D:11:26"]) == {"D8:6", "D9:17", "D1:2"}


async def test_tiny_conversation_through_our_service(redis_memory: RedisMemoryService) -> None:
    convs = locomo.conversations(TINY, APP)
    result = await locomo.run("ours", redis_memory, convs, APP)
    # every question finds its evidence in the top 10 of a 5-turn conversation, except D1:3 ("Grey with
    # white paws.") for "What colour is Pixel?": it shares no word with the question, and a hit must
    # contain a query term of its own (issue 19), so that question has recall 1/2
    assert result.summary["overall"]["r@10"] == pytest.approx(5 / 6)
    hits = await redis_memory.search_memory(app_name=APP, user_id="conv-x", query="kitten name")
    assert locomo.entry_dia_id(hits.memories[0]) == "D1:1"  # entries map back to dia_ids


def _dev_file() -> Path:
    return locomo_dev_file()


def test_dev_file_as_described() -> None:
    convs = locomo.load(_dev_file(), APP)
    assert len(convs) == 5
    assert sum(len(c.questions) for c in convs) == 760  # 762 in categories 1-4, 2 without evidence
    dia = {e.id for c in convs for s in c.sessions for e in s.events}
    assert all(q.evidence <= dia | q.evidence for c in convs for q in c.questions)
    found = sum(len(q.evidence & dia) for c in convs for q in c.questions)
    assert found / sum(len(q.evidence) for c in convs for q in c.questions) > 0.99


async def test_full_text_recall_on_the_dev_half(redis_url: str, prefix: str) -> None:
    convs = locomo.load(_dev_file(), APP)
    async with RedisMemoryService(redis_url, key_prefix=prefix) as svc:
        try:
            result = await locomo.run("full text", svc, convs, APP)
        finally:
            await drop_prefix(svc.client, prefix)
    overall = result.summary["overall"]
    assert overall["r@10"] >= RECALL_AT_10, result.summary
    assert overall["mrr"] >= MRR_AT_10, result.summary
