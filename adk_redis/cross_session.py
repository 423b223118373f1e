"""Deprecated import path: moved to :mod:`adk_redis.memory`.

Kept for one release: importing it warns once (DeprecationWarning).
"""

import warnings
from typing import Any

from adk_redis.memory import _cross_session as _target

warnings.warn(
    "adk_redis.cross_session moved to adk_redis.memory",
    DeprecationWarning,
    stacklevel=2,
)


def __getattr__(name: str) -> Any:
    return getattr(_target, name)


def __dir__() -> list[str]:
    return dir(_target)
