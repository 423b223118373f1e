"""Optional embeddings for hybrid (BM25 + vector) memory search.

:class:`Embedder` is the protocol the memory service needs.  Two real
implementations import their libraries lazily (neither is a dependency):
:class:`GenAIEmbedder` (google-genai ``embed_content``) and
:class:`SentenceTransformerEmbedder`.  :class:`HashingEmbedder` is a tiny
deterministic bag-of-words embedder for tests and benchmarks (no network).
"""

from __future__ import annotations

import array
import asyncio
import hashlib
import math
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

from .._core.kwargs import strict
from ._tokenizer import tokenize

__all__ = [
    "Embedder",
    "GenAIEmbedder",
    "HashingEmbedder",
    "QueryVectors",
    "SentenceTransformerEmbedder",
    "cosine",
    "fuse",
    "pack",
    "rrf",
    "unpack",
]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into fixed-size float vectors."""

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, same order."""
        ...


def pack(vector: Sequence[float]) -> bytes:
    """float32 little-endian bytes (the stored form)."""
    arr = array.array("f", vector)
    return arr.tobytes()


def unpack(raw: bytes) -> list[float]:
    arr = array.array("f")
    arr.frombytes(raw)
    return arr.tolist()


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return 0.0 if na == 0 or nb == 0 else dot / (na * nb)


K = TypeVar("K", bound=Hashable)


def fuse(
    lexical: Sequence[tuple[K, float]], semantic: Sequence[tuple[K, float]], weight: float
) -> list[tuple[K, float]]:
    """Score fusion of a BM25 and a cosine ranking (each best first) over the union of both.

    ``(1 - weight) * bm25 / max bm25 + weight * cosine / max cosine`` (each normalised by the
    query's best).  A candidate only BM25 found gets the lowest cosine the semantic list returned
    (it is at most that), one only the vectors found gets BM25 0.  Equal scores keep the BM25
    order, then the semantic order.  With no BM25 match the ranking is the cosine ranking; with no
    vectors, the BM25 ranking.
    """
    top = max((s for _, s in lexical), default=0.0)
    best = max((c for _, c in semantic), default=0.0)
    floor = min((c for _, c in semantic), default=0.0)

    def norm_cos(c: float) -> float:
        return c / best if best > 0 else 0.0

    cos = dict(semantic)
    fused: dict[K, float] = {}
    for key, score in lexical:
        fused[key] = (1 - weight) * (score / top if top > 0 else 0.0) + weight * norm_cos(cos.get(key, floor))
    for key, c in semantic:
        if key not in fused:
            fused[key] = weight * norm_cos(c)
    order = {key: n for n, key in enumerate(fused)}
    return sorted(fused.items(), key=lambda kv: (-kv[1], order[kv[0]]))


class QueryVectors:
    """Query embeddings, cached (LRU) and batched: queries asked in the same event-loop tick (e.g.
    concurrent searches) are embedded in one :meth:`Embedder.embed` call."""

    def __init__(self, embedder: Embedder, size: int = 1024) -> None:
        self.embedder = embedder
        self.size = size
        self._cache: OrderedDict[str, list[float]] = OrderedDict()
        self._pending: dict[str, asyncio.Future[list[float]]] = {}
        self._batch: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.embed_calls = 0

    async def get(self, text: str) -> list[float]:
        cached = self._cache.get(text)
        if cached is not None:
            self._cache.move_to_end(text)
            return cached
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # another event loop: nothing pending there is ours to await
            self._loop, self._pending, self._batch = loop, {}, []
        fut = self._pending.get(text)
        if fut is None:
            fut = loop.create_future()
            self._pending[text] = fut
            self._batch.append(text)
            if len(self._batch) == 1:
                loop.call_soon(lambda: loop.create_task(self._flush()))
        return await asyncio.shield(fut)

    async def _flush(self) -> None:
        batch, self._batch = self._batch, []
        pending = {t: self._pending.pop(t) for t in batch if t in self._pending}
        self.embed_calls += 1
        try:
            vectors = await self.embedder.embed(batch)
            if len(vectors) != len(batch):
                raise ValueError(f"embedder returned {len(vectors)} vectors for {len(batch)} texts")
        except Exception as exc:  # every waiter gets the embedder's error
            for fut in pending.values():
                if not fut.done():
                    fut.set_exception(exc)
            return
        for t, v in zip(batch, vectors):
            self._cache[t] = v
            waiter = pending.get(t)
            if waiter is not None and not waiter.done():
                waiter.set_result(v)
        while len(self._cache) > self.size:
            self._cache.popitem(last=False)


def rrf(rankings: Sequence[Sequence[str]], k: int = 60) -> list[str]:
    """Reciprocal rank fusion of several rankings (best first); no longer used by the memory
    service (see :func:`fuse`), kept for callers."""
    score: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking):
            score[item] = score.get(item, 0.0) + 1.0 / (k + rank + 1)
    return sorted(score, key=lambda item: (-score[item], item))


class HashingEmbedder:
    """Deterministic hashed bag-of-stemmed-words vectors (tests/benchmarks only).

    ``synonyms`` maps words to a canonical word, so tests can model what a real
    embedding model does for paraphrases.
    """

    @strict
    def __init__(self, dim: int = 256, synonyms: dict[str, str] | None = None) -> None:
        self.dim = dim
        self.synonyms = {tokenize(k)[0]: tokenize(v)[0] for k, v in (synonyms or {}).items() if tokenize(k)}

    def _vector(self, text: str) -> list[float]:
        vec = [0.0] * self.dim
        for term in tokenize(text):
            term = self.synonyms.get(term, term)
            h = int.from_bytes(hashlib.blake2b(term.encode(), digest_size=8).digest(), "little")
            vec[h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
        norm = math.sqrt(sum(x * x for x in vec)) or 1.0
        return [x / norm for x in vec]

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One unit-length hashed vector per text."""
        return [self._vector(t) for t in texts]


class GenAIEmbedder:
    """google-genai embeddings (``gemini-embedding-001`` by default); needs API credentials."""

    @strict
    def __init__(
        self, model: str = "gemini-embedding-001", *, client: Any = None, dim: int | None = 768
    ) -> None:
        self.model = model
        self.dim = dim
        self._client = client

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text from the Gemini API (one request)."""
        from google import genai
        from google.genai import types

        if self._client is None:
            self._client = genai.Client()
        config = types.EmbedContentConfig(output_dimensionality=self.dim) if self.dim else None
        resp = await self._client.aio.models.embed_content(model=self.model, contents=texts, config=config)
        return [list(e.values or []) for e in (resp.embeddings or [])]


class SentenceTransformerEmbedder:
    """Local sentence-transformers model (``pip install sentence-transformers``)."""

    @strict
    def __init__(self, model: str = "all-MiniLM-L6-v2", *, num_threads: int | None = None) -> None:
        """``num_threads``: torch's intra-op threads, set when the model loads (process-wide).  On
        a busy small machine 1 is fastest for short queries (see docs/benchmarks.md, LoCoMo)."""
        self.model_name = model
        self.num_threads = num_threads
        self._model: Any = None

    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One normalised vector per text (the model loads on first use; encoding runs in a thread)."""
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            if self.num_threads:
                import torch

                torch.set_num_threads(self.num_threads)
            self._model = SentenceTransformer(self.model_name)
        vectors = await asyncio.to_thread(self._model.encode, texts, normalize_embeddings=True)
        return [list(map(float, v)) for v in vectors]
