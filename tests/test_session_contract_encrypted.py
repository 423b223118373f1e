"""The whole session contract again, with encryption at rest and compression on (fakeredis + real server)."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from typing import Any

import fakeredis
import pytest

from adk_redis import RedisSessionService, load_settings

from .conftest import _drop_prefix
from .test_session_contract import *  # noqa: F403  (re-collect every contract test with the fixture below)

_KEYS = f"k1:{base64.b64encode(os.urandom(32)).decode()},k0:{base64.b64encode(os.urandom(16)).decode()}"


@pytest.fixture(params=["fakeredis-encrypted", "redis-encrypted"])
async def session_service(request: pytest.FixtureRequest, prefix: str, redis_url: str) -> AsyncIterator[Any]:
    """RedisSessionService with REDIS_ENCRYPTION_KEYS and a low REDIS_COMPRESS_MIN_BYTES."""
    settings = load_settings(
        redis_key_prefix=prefix, redis_encryption_keys=_KEYS, redis_compress_min_bytes=32
    )
    if request.param == "fakeredis-encrypted":
        yield RedisSessionService(client=fakeredis.FakeAsyncRedis(), settings=settings)
        return
    svc = RedisSessionService(redis_url, settings=settings)
    assert svc.codec.keyring is not None
    yield svc
    await _drop_prefix(svc.client, prefix)
    await svc.close()
