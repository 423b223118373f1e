"""The package layout (issue 18): every module imports alone, no import cycles, a strict public surface.

Import cycles are checked on the static graph of module-level imports (``ast``; imports inside
functions and under ``TYPE_CHECKING`` are deliberately lazy and left out).  Importing ``a.b.c``
runs ``a/b/__init__.py`` too, so an import of a module is also an edge to each package above it
(except ``adk_redis`` itself, whose ``__init__`` re-exports the public API by design).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import adk_redis

ROOT = Path(adk_redis.__file__).resolve().parent
PACKAGES = ("_core", "sessions", "memory", "resilience", "store", "admin", "samples")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ("adk_redis", *path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(name: str, path: Path) -> set[str]:
    """The adk_redis modules ``name`` imports when it is first imported (module level only)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and not _is_type_checking(node):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                found.add(module)
                found.update(f"{module}.{a.name}" for a in node.names)  # ``from pkg import module``

    visit(ast.parse(path.read_text()).body)
    edges: set[str] = set()
    for target in found:
        if target not in MODULES:
            continue
        parts = target.split(".")
        edges.update(".".join(parts[:i]) for i in range(2, len(parts) + 1))  # the packages above it too
    # its own packages are initialized (or initializing) before it runs: not an edge
    own = name.split(".")
    edges.difference_update(".".join(own[:i]) for i in range(1, len(own) + 1))
    return edges


GRAPH = {name: _module_level_imports(name, path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in graph:
        if v not in index:
            strong(v)
    return found


def test_the_layout_is_there() -> None:
    for package in PACKAGES:
        assert f"adk_redis.{package}" in MODULES, package
    assert (ROOT / "py.typed").exists()
    flat = {n for n in MODULES if n.count(".") == 1 and n.split(".")[1] not in PACKAGES}
    assert flat == {
        "adk_redis._compat",
        "adk_redis.config",
        "adk_redis.errors",
        "adk_redis.keys",
        "adk_redis.registry",
        "adk_redis.security",
        "adk_redis.telemetry",
        "adk_redis.testing",
    }


def test_no_import_cycles_between_modules() -> None:
    graph = {n: {e for e in edges if e != "adk_redis"} for n, edges in GRAPH.items() if n != "adk_redis"}
    assert _cycles(graph) == []


def test_no_import_cycles_between_packages() -> None:
    """Folder by folder: the concern packages and the top-level modules form a DAG."""

    def unit(module: str) -> str:
        return ".".join(module.split(".")[:2])

    graph: dict[str, set[str]] = {}
    for name, edges in GRAPH.items():
        if name == "adk_redis":
            continue
        graph.setdefault(unit(name), set()).update(unit(e) for e in edges if e != "adk_redis")
    for node, edges in graph.items():
        edges.discard(node)
    # the shared core builds on nothing above it
    assert not graph["adk_redis._core"] & {f"adk_redis.{p}" for p in PACKAGES}
    assert _cycles({k: v - {"adk_redis.config"} for k, v in graph.items()}) == []


def test_every_module_imports_alone() -> None:
    """Each module imported first, in a fresh set of adk_redis modules (one interpreter for all)."""
    names = sorted(MODULES)
    code = (
        "import importlib, sys, warnings\n"
        "warnings.simplefilter('error', DeprecationWarning)\n"
        f"names = {names!r}\n"
        "bad = []\n"
        "for name in names:\n"
        "    for loaded in [m for m in sys.modules if m == 'adk_redis' or m.startswith('adk_redis.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        bad.append(f'{name}: {exc!r}')\n"
        "print('\\n'.join(bad))\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_public_surface_is_exact() -> None:
    assert len(adk_redis.__all__) == len(set(adk_redis.__all__))
    for name in adk_redis.__all__:
        assert getattr(adk_redis, name) is not None
    errors = {
        "AdkRedisError",
        "AccessRefusedError",
        "ConfigurationError",
        "CorruptedDataError",
        "DurabilityError",
        "InvalidCursorError",
        "InvalidInputError",
        "InvalidSessionIdError",
        "MergeConflictError",
        "RedisOutcomeUnknownError",
        "RedisOutOfMemoryError",
        "RedisPermissionError",
        "RedisUnavailableError",
        "SessionAccessError",
        "SessionLimitError",
        "UnknownSessionError",
    }
    from adk_redis import errors as errors_module

    defined = {
        n
        for n, v in vars(errors_module).items()
        if isinstance(v, type)
        and issubclass(v, adk_redis.AdkRedisError)
        and v.__module__ == "adk_redis.errors"
    }
    assert defined == errors <= set(adk_redis.__all__)
    for name in ("RedisSessionService", "RedisMemoryService", "RedisSettings", "load_settings", "register"):
        assert name in adk_redis.__all__
    # the design API: only what the design document's examples import, the rest in adk_redis.store
    assert "SessionStore" not in adk_redis.__all__ and "SessionStore" in adk_redis.store.__all__
    assert {"get_session_store", "store_user_context", "get_config"} <= set(adk_redis.__all__)
    public_modules = {"config", "errors", "keys", "registry", "security", "telemetry", "testing"}
    extra = {
        n
        for n in dir(adk_redis)
        if not n.startswith("__") and n not in adk_redis.__all__ and n not in public_modules
    }
    assert extra <= {*PACKAGES, "_compat"}, extra
    assert "annotations" not in dir(adk_redis)


def test_every_error_lives_in_errors_module() -> None:
    for name, path in MODULES.items():
        if name == "adk_redis.errors":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):  # private adapters stay
                bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
                assert "AdkRedisError" not in bases, f"{name}.{node.name} belongs in adk_redis.errors"


OLD_PATHS = {
    "adk_redis.url": "adk_redis._core.url",
    "adk_redis.fallback": "adk_redis.resilience._fallback",
    "adk_redis.facade": "adk_redis.store._api",
    "adk_redis.cli": "adk_redis.admin.cli",
    "adk_redis.session_service": "adk_redis.sessions._service",
    "adk_redis.memory_service": "adk_redis.memory._service",
    "adk_redis.cross_session": "adk_redis.memory._cross_session",
    "adk_redis.embeddings": "adk_redis.memory.embeddings",
}


def test_old_import_paths_warn_once_and_are_the_new_modules() -> None:
    """Each documented old path is the new module itself (one interpreter, one fresh import each)."""
    code = (
        "import importlib, warnings\n"
        f"for old, new in {OLD_PATHS!r}.items():\n"
        "    with warnings.catch_warnings(record=True) as caught:\n"
        "        warnings.simplefilter('always')\n"
        "        first = importlib.import_module(old)\n"
        "        again = importlib.import_module(old)\n"
        "    module = importlib.import_module(new)\n"
        "    moved = [str(w.message) for w in caught if w.category is DeprecationWarning]\n"
        "    assert first is module and again is module, (old, first, module)\n"
        "    assert module.__spec__.name == new, (old, module.__spec__)\n"
        "    assert len(moved) == 1 and moved[0].startswith(old + ' moved to '), (old, moved)\n"
        "from adk_redis.session_service import RedisSessionService\n"
        "from adk_redis.facade import SessionStore\n"
        "import adk_redis\n"
        "assert RedisSessionService is adk_redis.RedisSessionService\n"
        "assert SessionStore is adk_redis.store.SessionStore\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_old_flat_modules_are_gone() -> None:
    """Only the package's folders and the public modules: the old flat internals are gone (no shim)."""
    from adk_redis import _compat

    for old in ("session_pages", "session_layout", "scripts", "store_backends", "memory_docs", "codec"):
        assert not (ROOT / f"{old}.py").exists() and f"adk_redis.{old}" not in _compat.MOVED
    for old in _compat.MOVED:  # the documented ones are served by the alias finder, not by files
        assert not (ROOT / f"{old.split('.')[1]}.py").exists()


def test_python_m_old_cli_path_runs_the_cli() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "adk_redis.cli", "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and proc.stdout.startswith("usage: adk-redis"), proc.stderr
