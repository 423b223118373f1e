"""Deprecated import path: moved to :mod:`adk_redis.store`.

Kept for one release: importing it warns once (DeprecationWarning).
"""

import warnings
from typing import Any

from adk_redis.store import _api as _target

warnings.warn(
    "adk_redis.facade moved to adk_redis.store",
    DeprecationWarning,
    stacklevel=2,
)


def __getattr__(name: str) -> Any:
    return getattr(_target, name)


def __dir__() -> list[str]:
    return dir(_target)
