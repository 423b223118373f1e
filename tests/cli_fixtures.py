"""The ``cli`` fixture shared by the CLI, maintenance and migration tests (loaded from conftest)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import fakeredis
import pytest
import redis

from adk_redis import RedisSessionService
from adk_redis.admin.cli import main


@dataclass
class Cli:
    """Runs ``adk-redis`` in-process against one backend and key prefix."""

    kind: str
    url: str
    prefix: str
    make_client: Callable[[], Any] | None
    capsys: pytest.CaptureFixture[str]

    def __call__(self, *argv: str, prefix: str | None = None) -> tuple[int, str, str]:
        args = ["--prefix", prefix or self.prefix, *argv]
        if self.make_client is None:
            code = main(["--url", self.url, *args])
        else:
            code = main(args, client=self.make_client())
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *argv: str, prefix: str | None = None) -> tuple[int, Any]:
        code, out, _ = self("--json", *argv, prefix=prefix)
        return code, json.loads(out)

    def service(self, prefix: str | None = None) -> RedisSessionService:
        p = prefix or self.prefix
        if self.make_client is None:
            return RedisSessionService(self.url, key_prefix=p)
        return RedisSessionService(client=self.make_client(), key_prefix=p)

    def run(self, coro_fn: Callable[[RedisSessionService], Any], prefix: str | None = None) -> Any:
        async def go() -> Any:
            svc = self.service(prefix)
            try:
                return await coro_fn(svc)
            finally:
                await svc.close()

        return asyncio.run(go())


def _drop(url: str, *prefixes: str) -> None:
    with redis.Redis.from_url(url) as r:
        for p in prefixes:
            keys = list(r.scan_iter(match=f"{p}:*", count=1000))
            if keys:
                r.delete(*keys)


@pytest.fixture(params=["fakeredis", "redis"])
def cli(
    request: pytest.FixtureRequest,
    redis_url: str,
    prefix: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Cli]:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("REDIS_KEY_PREFIX", raising=False)
    if request.param == "fakeredis":
        server = fakeredis.FakeServer()
        yield Cli(
            "fakeredis", "redis://fake", prefix, lambda: fakeredis.FakeAsyncRedis(server=server), capsys
        )
        return
    yield Cli("redis", redis_url, prefix, None, capsys)
    _drop(redis_url, prefix, prefix + "-copy")
