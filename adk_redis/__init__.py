"""adk_redis: Redis persistence for Google's Agent Development Kit (ADK)."""

from __future__ import annotations

from .config import ConfigurationError, RedisSettings, load_settings
from .errors import AdkRedisError, CorruptedDataError, RedisUnavailableError
from .keys import KeySchema
from .registry import register
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
    "register",
]
__version__ = "0.1.0"
