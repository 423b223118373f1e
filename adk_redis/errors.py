"""Typed errors raised by adk_redis (ADK's own errors are re-used where they exist)."""

from __future__ import annotations


class AdkRedisError(Exception):
    """Base class of adk_redis errors."""


class CorruptedDataError(AdkRedisError, ValueError):
    """A stored record could not be decoded (truncated JSON, wrong type, unknown format)."""


class RedisUnavailableError(AdkRedisError, ConnectionError):
    """Redis could not be reached and falling back to memory is not allowed."""
