"""Every ```python block of README.md and docs/**/*.md runs against the test run's Redis.

One test per block, in page order: the blocks of a page share one namespace and
one event loop, so a page can build on its earlier blocks (a block run alone
first runs the blocks before it).  A block may use top-level ``await``.  Each
page gets its own key prefix, passed the way a user would (``REDIS_KEY_PREFIX``,
next to ``REDIS_URL``); its keys are deleted afterwards.
Blocks that cannot run here (Gemini, ``adk web``, shell) are fenced ``text`` or
``bash`` in the pages, never ``python``.
"""

from __future__ import annotations

import ast
import asyncio
import re
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").rglob("*.md") if "_hooks" not in p.parts)]
_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[^\s`]*)[^\n]*$")
BLOCK_TIMEOUT = 120.0


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    index: int
    source: str


def _blocks(path: Path) -> list[Block]:
    """The ```python blocks of one Markdown file (dedented; list-indented blocks included)."""
    rel = path.relative_to(ROOT).as_posix()
    out: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        indent, lang, start = m["indent"], m["lang"], i
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1
        if lang == "python":
            out.append(Block(rel, start + 1, len(out), textwrap.dedent("\n".join(body)) + "\n"))
    return out


BLOCKS = {p.relative_to(ROOT).as_posix(): _blocks(p) for p in PAGES}
ALL = [b for blocks in BLOCKS.values() for b in blocks]


@dataclass
class Page:
    prefix: str
    workdir: Path
    namespace: dict[str, Any] = field(default_factory=lambda: {"__name__": "__docs__"})
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    done: int = 0


@pytest.fixture(scope="module")
def pages(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Page]]:
    opened: dict[str, Page] = {}
    yield opened
    import adk_redis

    asyncio.run(adk_redis.shutdown_session_store())
    client = redis.Redis.from_url(redis_url)
    for page in opened.values():
        page.loop.run_until_complete(page.loop.shutdown_asyncgens())
        page.loop.close()
        keys = list(client.scan_iter(match=f"{page.prefix}:*", count=1000))  # test cleanup only
        if keys:
            client.delete(*keys)
    client.close()


def _run(block: Block, page: Page) -> None:
    code = compile(block.source, f"{block.page}:{block.line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, page.namespace)  # noqa: S307 - the documentation's own examples
    if asyncio.iscoroutine(result):
        page.loop.run_until_complete(asyncio.wait_for(result, BLOCK_TIMEOUT))


def _env(redis_url: str, prefix: str) -> dict[str, str]:
    return {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix}


@pytest.mark.parametrize("block", ALL, ids=[f"{b.page}:{b.line}" for b in ALL])
def test_doc_block_runs(
    block: Block,
    pages: dict[str, Page],
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    page = pages.get(block.page)
    if page is None:
        page = pages[block.page] = Page(
            prefix=f"docs{uuid.uuid4().hex[:10]}", workdir=tmp_path_factory.mktemp("docs")
        )
        import adk_redis

        # the application store API keeps one store per process: a fresh one for each page's prefix
        asyncio.run(adk_redis.shutdown_session_store())
    for name, value in _env(redis_url, page.prefix).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.chdir(page.workdir)
    for earlier in BLOCKS[block.page][page.done : block.index]:  # a block run alone: its page's blocks first
        _run(earlier, page)
    page.done = max(page.done, block.index)
    _run(block, page)
    page.done = block.index + 1


def test_docs_have_python_blocks() -> None:
    """The collection above really finds the examples (a changed fence syntax would silently test nothing)."""
    assert len(BLOCKS["README.md"]) >= 2
    assert sum(len(v) for k, v in BLOCKS.items() if k.startswith("docs/")) >= 20


def test_readme_is_short_and_keeps_the_ci_commands() -> None:
    """README under 10 KB; it keeps the two development commands `.ci/run` runs literally."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.encode()) < 10 * 1024
    assert "pip install -e '.[dev]'" in text
    assert re.search(r"^pytest$", text, re.M)
    assert "pip install adk-redis-store" in text
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "pip install -e '.[dev]'" in ci and "mkdocs build --strict" in ci


def test_every_setting_is_documented() -> None:
    """The configuration reference names every RedisSettings field by its environment variable."""
    from adk_redis import RedisSettings

    page = (ROOT / "docs" / "reference" / "configuration.md").read_text(encoding="utf-8")
    missing = [name.upper() for name in RedisSettings.model_fields if f"`{name.upper()}`" not in page]
    assert missing == []


def test_no_python_block_needs_a_network_model() -> None:
    """A block that names Gemini would call Google: such examples must be fenced as text."""
    offenders = [f"{b.page}:{b.line}" for b in ALL if re.search(r"model=\"gemini|GOOGLE_API_KEY", b.source)]
    assert offenders == []
