"""Models for the memory-generation process tests (``adk-redis memory worker --model-factory``)."""

from __future__ import annotations

from adk_redis.memory import HashingEmbedder, MemoryGenerator
from adk_redis.testing import FactReplayModel


def slow_replay() -> MemoryGenerator:
    """Echo facts, 0.15 s per model call: a worker can be killed in the middle of a job."""
    return MemoryGenerator(FactReplayModel(delay=0.15), timeout=5.0, backoff=0.05)


def hashing_embedder() -> HashingEmbedder:
    return HashingEmbedder()
