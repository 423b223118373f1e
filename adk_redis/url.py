"""Deprecated import path: moved to :mod:`adk_redis._core.url`.

Kept for one release: importing it warns once (DeprecationWarning).
"""

import warnings
from typing import Any

from adk_redis._core import url as _target

warnings.warn(
    "adk_redis.url moved to adk_redis._core.url",
    DeprecationWarning,
    stacklevel=2,
)


def __getattr__(name: str) -> Any:
    return getattr(_target, name)


def __dir__() -> list[str]:
    return dir(_target)
