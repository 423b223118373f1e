"""The import paths of before the move into folders (issue 18), kept for one release.

``adk_redis.url``, ``adk_redis.fallback``, ``adk_redis.facade``, ``adk_redis.cli``,
``adk_redis.session_service``, ``adk_redis.memory_service``, ``adk_redis.cross_session`` and
``adk_redis.embeddings`` still import: a finder on ``sys.meta_path`` serves each old name as the
module that now holds the code (the same module object, so attributes, ``isinstance`` and
monkeypatching act on the real thing), and warns once per process with a ``DeprecationWarning``
naming the new path.  ``python -m adk_redis.cli`` runs the CLI.  No file sits at the old paths.
Type checkers do not see these names: import from the new paths.
"""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

# old path -> (module holding the code now, the path to name in the warning)
MOVED: dict[str, tuple[str, str]] = {
    "adk_redis.url": ("adk_redis._core.url", "adk_redis.config"),
    "adk_redis.fallback": ("adk_redis.resilience._fallback", "adk_redis.resilience"),
    "adk_redis.facade": ("adk_redis.store._api", "adk_redis.store"),
    "adk_redis.cli": ("adk_redis.admin.cli", "adk_redis.admin.cli"),
    "adk_redis.session_service": ("adk_redis.sessions._service", "adk_redis.sessions"),
    "adk_redis.memory_service": ("adk_redis.memory._service", "adk_redis.memory"),
    "adk_redis.cross_session": ("adk_redis.memory._cross_session", "adk_redis.memory"),
    "adk_redis.embeddings": ("adk_redis.memory.embeddings", "adk_redis.memory.embeddings"),
}


def _from_stale_console_script() -> bool:
    # An ``adk-redis`` script installed before the move imports ``adk_redis.cli``: not the user's
    # code, so no warning (reinstalling the package points the script at adk_redis.admin.cli).
    main = sys.modules.get("__main__")
    return os.path.basename(getattr(main, "__file__", None) or "") == "adk-redis"


class _AliasLoader(importlib.abc.InspectLoader):
    def __init__(self, old: str, target: str, public: str) -> None:
        self.old, self.target, self.public = old, target, public
        self.real_spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.target)
        self.real_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self.real_spec  # the import system set the alias spec on the shared module
        if not (self.old == "adk_redis.cli" and _from_stale_console_script()):
            warnings.warn(f"{self.old} moved to {self.public}", DeprecationWarning, stacklevel=2)

    def get_source(self, fullname: str) -> str:
        # ``python -m adk_redis.cli``: run the module that holds the code as ``__main__``
        return f"import runpy\nrunpy.run_module({self.target!r}, run_name='__main__', alter_sys=True)\n"


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        moved = MOVED.get(fullname)
        if moved is None:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(fullname, *moved))


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _AliasFinder())  # before path finders: no stale file is found first
