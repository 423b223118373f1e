"""Memory on Redis: :class:`RedisMemoryService` (ADK's ``BaseMemoryService``), cross-session memory
and the embedders.

- ``_service``: the service
- ``_docs``: document ids, payloads, stored values
- ``_search``: the search index (BM25, one round trip)
- ``_vectors``: vector sets / in-Redis vectors
- ``_tokenizer``: tokenizer of the full-text index
- ``embeddings``: the embedders (public)
- ``_cross_session``: :class:`CrossSessionMemory`
- ``_erase``: erasing one user (:meth:`RedisMemoryService.forget_user`, :class:`ForgetResult`)
- ``_generator``: :class:`MemoryGenerator` (memory generation: prompts, structured output, validation)
- ``_facts``: extracted facts, their revisions, the atomic apply script, :func:`erase_user_facts`
- ``_jobs``: the generation job stream, :class:`GenerationWorker`, stats, dead letters
"""

from ._cross_session import CrossSessionMemory
from ._erase import ForgetResult
from ._facts import erase_user_facts
from ._generator import DEFAULT_TOPICS, GenerationError, MemoryGenerator, Topic
from ._jobs import GenerationWorker, dead_jobs, generation_stats, retry_dead
from ._service import MemoryPage, RedisMemoryService
from .embeddings import Embedder, GenAIEmbedder, HashingEmbedder, SentenceTransformerEmbedder

__all__ = [
    "DEFAULT_TOPICS",
    "CrossSessionMemory",
    "Embedder",
    "ForgetResult",
    "GenAIEmbedder",
    "GenerationError",
    "GenerationWorker",
    "HashingEmbedder",
    "MemoryGenerator",
    "MemoryPage",
    "RedisMemoryService",
    "SentenceTransformerEmbedder",
    "Topic",
    "dead_jobs",
    "erase_user_facts",
    "generation_stats",
    "retry_dead",
]
