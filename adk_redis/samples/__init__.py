"""Sample agents shipped in the wheel: an ``adk web`` agents directory (``services.py`` + ``hello_agent``).

``adk-redis demo`` runs one turn of :mod:`adk_redis.samples.hello_agent`; ``adk-redis demo
--agents-dir`` prints this folder, so ``adk web "$(adk-redis demo --agents-dir)" --session_service_uri
redis://...`` serves the same agent without a source checkout.  The agents use
:class:`adk_redis.testing.ScriptedModel` (offline, no API key).
"""

from __future__ import annotations

from pathlib import Path

#: The agents directory (``adk web AGENTS_DIR``).
AGENTS_DIR = Path(__file__).resolve().parent

__all__ = ["AGENTS_DIR"]
