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
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from .tokenizer import tokenize

__all__ = [
    "Embedder",
    "GenAIEmbedder",
    "HashingEmbedder",
    "SentenceTransformerEmbedder",
    "cosine",
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


def rrf(rankings: Sequence[Sequence[str]], k: int = 60) -> list[str]:
    """Reciprocal rank fusion of several rankings (best first)."""
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
        return [self._vector(t) for t in texts]


class GenAIEmbedder:
    """google-genai embeddings (``gemini-embedding-001`` by default); needs API credentials."""

    def __init__(
        self, model: str = "gemini-embedding-001", *, client: Any = None, dim: int | None = 768
    ) -> None:
        self.model = model
        self.dim = dim
        self._client = client

    async def embed(self, texts: list[str]) -> list[list[float]]:
        from google import genai
        from google.genai import types

        if self._client is None:
            self._client = genai.Client()
        config = types.EmbedContentConfig(output_dimensionality=self.dim) if self.dim else None
        resp = await self._client.aio.models.embed_content(model=self.model, contents=texts, config=config)
        return [list(e.values or []) for e in (resp.embeddings or [])]


class SentenceTransformerEmbedder:
    """Local sentence-transformers model (``pip install sentence-transformers``)."""

    def __init__(self, model: str = "all-MiniLM-L6-v2") -> None:
        self.model_name = model
        self._model: Any = None

    async def embed(self, texts: list[str]) -> list[list[float]]:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(self.model_name)
        vectors = await asyncio.to_thread(self._model.encode, texts, normalize_embeddings=True)
        return [list(map(float, v)) for v in vectors]
