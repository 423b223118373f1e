"""Deprecated import path: moved to :mod:`adk_redis.resilience`.

Kept for one release: importing it warns once (DeprecationWarning).
"""

import warnings
from typing import Any

from adk_redis.resilience import _fallback as _target

warnings.warn(
    "adk_redis.fallback moved to adk_redis.resilience",
    DeprecationWarning,
    stacklevel=2,
)


def __getattr__(name: str) -> Any:
    return getattr(_target, name)


def __dir__() -> list[str]:
    return dir(_target)
