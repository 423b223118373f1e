"""Deprecated import path: moved to :mod:`adk_redis.admin.cli`.

Kept for one release: importing it warns once (DeprecationWarning).
"""

import os
import sys
import warnings
from typing import Any

from adk_redis.admin import cli as _target

# An ``adk-redis`` console script installed before the move imports this path: it is not the
# user's code, so it does not warn (reinstalling the package points it at adk_redis.admin.cli).
if os.path.basename(getattr(sys.modules.get("__main__"), "__file__", None) or "") != "adk-redis":
    warnings.warn(
        "adk_redis.cli moved to adk_redis.admin.cli",
        DeprecationWarning,
        stacklevel=2,
    )


def __getattr__(name: str) -> Any:
    return getattr(_target, name)


def __dir__() -> list[str]:
    return dir(_target)


if __name__ == "__main__":
    sys.exit(_target.main())
