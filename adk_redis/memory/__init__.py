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
"""

from ._cross_session import CrossSessionMemory
from ._erase import ForgetResult
from ._service import MemoryPage, RedisMemoryService
from .embeddings import Embedder, GenAIEmbedder, HashingEmbedder, SentenceTransformerEmbedder

__all__ = [
    "CrossSessionMemory",
    "Embedder",
    "ForgetResult",
    "GenAIEmbedder",
    "HashingEmbedder",
    "MemoryPage",
    "RedisMemoryService",
    "SentenceTransformerEmbedder",
]
