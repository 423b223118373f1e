"""Deprecated import path: moved to :mod:`adk_redis.sessions`.

Kept for one release: importing it warns once (DeprecationWarning).
"""

import warnings
from typing import Any

from adk_redis.sessions import _service as _target

warnings.warn(
    "adk_redis.session_service moved to adk_redis.sessions",
    DeprecationWarning,
    stacklevel=2,
)


def __getattr__(name: str) -> Any:
    return getattr(_target, name)


def __dir__() -> list[str]:
    return dir(_target)
