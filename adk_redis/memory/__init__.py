"""Memory on Redis: :class:`RedisMemoryService` (ADK's ``BaseMemoryService``), cross-session memory
and the embedders.

- ``_service``: the service
- ``_docs``: document ids, payloads, stored values
- ``_search``: the search index (BM25, one round trip)
- ``_vectors``: vector sets / in-Redis vectors
- ``_tokenizer``: tokenizer of the full-text index
- ``embeddings``: the embedders (public)
- ``_cross_session``: :class:`CrossSessionMemory`
"""

from ._cross_session import CrossSessionMemory
from ._service import RedisMemoryService
from .embeddings import Embedder, GenAIEmbedder, HashingEmbedder, SentenceTransformerEmbedder

__all__ = [
    "CrossSessionMemory",
    "Embedder",
    "GenAIEmbedder",
    "HashingEmbedder",
    "RedisMemoryService",
    "SentenceTransformerEmbedder",
]
