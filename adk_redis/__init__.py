"""adk_redis: Redis persistence for Google's Agent Development Kit (ADK)."""

from __future__ import annotations

from .config import ConfigurationError, RedisSettings, load_settings
from .errors import AdkRedisError, CorruptedDataError, RedisUnavailableError
from .keys import KeySchema
from .session_service import RedisSessionService

__all__ = [
    "AdkRedisError",
    "ConfigurationError",
    "CorruptedDataError",
    "KeySchema",
    "RedisSessionService",
    "RedisSettings",
    "RedisUnavailableError",
    "load_settings",
]
__version__ = "0.1.0"
