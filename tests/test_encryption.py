"""Encryption at rest (AES-GCM key ring with rotation) and compression of event/state payloads."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from typing import Any

import fakeredis
import pytest
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.genai import types

from adk_redis import ConfigurationError, CorruptedDataError, RedisSessionService, load_settings
from adk_redis._core.codec import PayloadCodec
from adk_redis._core.crypto import Keyring, KeyringError, parse_keyring

from .helpers import drop_prefix as _drop_prefix

APP = "app"
SECRET = "the launch code is 0000"


def b64key(n: int = 32) -> str:
    return base64.b64encode(os.urandom(n)).decode()


K_OLD, K_NEW, K_OTHER = b64key(), b64key(16), b64key()


def ev(text: str = SECRET, **delta: Any) -> Event:
    return Event(
        author="user",
        invocation_id="inv",
        content=types.Content(role="user", parts=[types.Part(text=text)]),
        actions=EventActions(state_delta=delta),
    )


@pytest.fixture(params=["fakeredis", "redis"])
def backend(request: pytest.FixtureRequest, redis_url: str) -> str:
    return str(request.param)


class Services:
    """Builds services sharing one store (one fakeredis server, or the real one) under one prefix."""

    def __init__(self, kind: str, redis_url: str, prefix: str) -> None:
        self.kind, self.url, self.prefix = kind, redis_url, prefix
        self.server = fakeredis.FakeServer()
        self.made: list[RedisSessionService] = []

    def make(self, keys: str | None = None, compress: int | None = None) -> RedisSessionService:
        settings = load_settings(
            redis_key_prefix=self.prefix, redis_encryption_keys=keys, redis_compress_min_bytes=compress
        )
        if self.kind == "fakeredis":
            svc = RedisSessionService(client=fakeredis.FakeAsyncRedis(server=self.server), settings=settings)
        else:
            svc = RedisSessionService(self.url, settings=settings)
        self.made.append(svc)
        return svc

    async def raw_values(self, svc: RedisSessionService) -> list[bytes]:
        out: list[bytes] = []
        async for key in svc.client.scan_iter(match=f"{self.prefix}:*"):
            kind = await svc.client.type(key)
            if kind == b"hash":
                out += [v for v in (await svc.client.hgetall(key)).values()]
            elif kind == b"list":
                out += await svc.client.lrange(key, 0, -1)
        return out

    async def close(self) -> None:
        if self.made and self.kind == "redis":
            await _drop_prefix(self.made[0].client, self.prefix)
        for svc in self.made:
            await svc.close()


@pytest.fixture
async def services(backend: str, redis_url: str, prefix: str) -> AsyncIterator[Services]:
    s = Services(backend, redis_url, prefix)
    yield s
    await s.close()


async def test_round_trip_encrypted_at_rest(services: Services) -> None:
    svc = services.make(f"k1:{K_OLD}")
    s = await svc.create_session(
        app_name=APP, user_id="u", state={"note": SECRET, "app:a": SECRET, "user:b": [SECRET, 1]}
    )
    e = await svc.append_event(s, ev(turn=SECRET, **{"user:c": {"x": SECRET}}))
    got = await svc.get_session(app_name=APP, user_id="u", session_id=s.id)
    assert got is not None
    assert got.events[0].id == e.id and got.events[0].content == e.content
    assert got.state == {"note": SECRET, "app:a": SECRET, "user:b": [SECRET, 1], "turn": SECRET,
                         "user:c": {"x": SECRET}}  # fmt: skip
    assert await svc.get_user_state(app_name=APP, user_id="u") == {"b": [SECRET, 1], "c": {"x": SECRET}}
    listed = await svc.list_sessions(app_name=APP, user_id="u")
    assert listed.sessions[0].state["note"] == SECRET
    raw = await services.raw_values(svc)
    assert raw and not any(b"launch" in v for v in raw)
    assert any(v.startswith(b"2:e:k1:") for v in raw)


async def test_key_rotation(services: Services) -> None:
    old = services.make(f"k0:{K_OLD}")
    s = await old.create_session(app_name=APP, user_id="u", state={"a": 1})
    await old.append_event(s, ev("old", b=2))
    rotated = services.make(f"k1:{K_NEW},k0:{K_OLD}")
    got = await rotated.get_session(app_name=APP, user_id="u", session_id=s.id)
    assert got is not None and [e.content.parts[0].text for e in got.events if e.content] == ["old"]
    await rotated.append_event(got, ev("new", a=3))
    again = await rotated.get_session(app_name=APP, user_id="u", session_id=s.id)
    assert again is not None
    assert [e.content.parts[0].text for e in again.events if e.content] == ["old", "new"]
    assert again.state == {"a": 3, "b": 2}
    raw = await services.raw_values(rotated)
    assert any(v.startswith(b"2:e:k0:") for v in raw) and any(v.startswith(b"2:e:k1:") for v in raw)
    # A reader that only has the old key cannot read the new records (clear error, no key material).
    with pytest.raises(CorruptedDataError) as info:
        await old.get_session(app_name=APP, user_id="u", session_id=s.id)
    assert "'k1'" in str(info.value) and s.id in str(info.value)
    assert K_NEW not in str(info.value) and K_OLD not in str(info.value)


async def test_wrong_key_and_plain_reader(services: Services) -> None:
    writer = services.make(f"k1:{K_OLD}")
    s = await writer.create_session(app_name=APP, user_id="u", session_id="sess-42", state={"a": 1})
    await writer.append_event(s, ev())
    wrong = services.make(f"k1:{K_OTHER}")
    with pytest.raises(CorruptedDataError) as info:
        await wrong.get_session(app_name=APP, user_id="u", session_id="sess-42")
    msg = str(info.value)
    assert "sess-42" in msg and "wrong key or tampered" in msg and K_OTHER not in msg and K_OLD not in msg
    plain = services.make()
    with pytest.raises(CorruptedDataError, match="REDIS_ENCRYPTION_KEYS is not configured"):
        await plain.get_session(app_name=APP, user_id="u", session_id="sess-42")


async def test_tampered_ciphertext(services: Services) -> None:
    svc = services.make(f"k1:{K_OLD}")
    s = await svc.create_session(app_name=APP, user_id="u", session_id="t", state={"a": 1})
    await svc.append_event(s, ev())
    sk = svc.keys.session(APP, "u", "t")
    payload = (await svc.client.lindex(sk.log, 0)).decode()
    head, body = payload.rsplit(":", 1)
    blob = bytearray(base64.urlsafe_b64decode(body))
    blob[20] ^= 1
    await svc.client.lset(sk.log, 0, f"{head}:{base64.urlsafe_b64encode(bytes(blob)).decode()}")
    with pytest.raises(CorruptedDataError, match="'t'.*tampered"):
        await svc.get_session(app_name=APP, user_id="u", session_id="t")
    # a header edit (claiming "not encrypted") is caught too; so is a state value swapped in as an event
    await svc.client.lset(sk.log, 0, payload.replace("2:e:k1:", "2:z::", 1))
    with pytest.raises(CorruptedDataError):
        await svc.get_session(app_name=APP, user_id="u", session_id="t")
    await svc.client.lset(sk.log, 0, await svc.client.hget(sk.meta, "s.a"))
    with pytest.raises(CorruptedDataError, match="tampered"):
        await svc.get_session(app_name=APP, user_id="u", session_id="t")
    await svc.client.lset(sk.log, 0, "2:e:k1:@@@")
    with pytest.raises(CorruptedDataError, match="base64"):
        await svc.get_session(app_name=APP, user_id="u", session_id="t")


async def test_compression_threshold(services: Services) -> None:
    svc = services.make(compress=512)
    s = await svc.create_session(
        app_name=APP, user_id="u", session_id="c", state={"small": 1, "big": "x" * 4000}
    )
    await svc.append_event(s, ev("short"))
    await svc.append_event(s, ev("long " * 2000))
    sk = svc.keys.session(APP, "u", "c")
    events = await svc.client.lrange(sk.log, 0, -1)
    assert events[0].startswith(b"1:{") and events[1].startswith(b"2:z::")
    assert len(events[1]) < 2000
    meta = await svc.client.hgetall(sk.meta)
    assert meta[b"s.small"] == b"1" and meta[b"s.big"].startswith(b"2:z::")
    got = await svc.get_session(app_name=APP, user_id="u", session_id="c")
    assert got is not None and got.state["big"] == "x" * 4000
    assert got.events[1].content is not None and got.events[1].content.parts[0].text == "long " * 2000
    # compression + encryption, and a reader configured with neither still reads compressed-only records
    both = services.make(f"k1:{K_OLD}", compress=512)
    await both.append_event(got, ev("zz " * 1000))
    assert (await svc.client.lindex(sk.log, 2)).startswith(b"2:ze:k1:")
    assert (await both.get_session(app_name=APP, user_id="u", session_id="c")) is not None
    meta_reader = services.make(compress=None)
    assert (await meta_reader.list_sessions(app_name=APP, user_id="u")).sessions[0].state["big"] == "x" * 4000


async def test_mixed_old_and_new_records(services: Services) -> None:
    plain = services.make()
    s = await plain.create_session(app_name=APP, user_id="u", state={"a": 1, "user:p": "plain"})
    await plain.append_event(s, ev("plain event", b=1))
    enc = services.make(f"k1:{K_OLD}", compress=64)
    got = await enc.get_session(app_name=APP, user_id="u", session_id=s.id)
    assert got is not None
    await enc.append_event(got, ev("encrypted event " * 20, b=2, **{"user:p": "enc"}))
    final = await enc.get_session(app_name=APP, user_id="u", session_id=s.id)
    assert final is not None
    assert [e.content.parts[0].text[:5] for e in final.events if e.content] == ["plain", "encry"]
    assert final.state == {"a": 1, "b": 2, "user:p": "enc"}
    raw = await services.raw_values(enc)
    assert any(v.startswith(b"1:{") for v in raw) and any(v.startswith(b"2:ze:k1:") for v in raw)


async def test_idempotent_redelivery_encrypted(services: Services) -> None:
    svc = services.make(f"k1:{K_OLD}", compress=64)
    s = await svc.create_session(app_name=APP, user_id="u", state={"n": 0})
    event = ev("hello " * 50, n=1)
    await svc.append_event(s, event)
    # another process re-delivers the identical event (its own session copy is stale)
    other = services.make(f"k1:{K_OLD}", compress=64)
    stale = await other.get_session(app_name=APP, user_id="u", session_id=s.id)
    assert stale is not None
    again = stale.model_copy(deep=True)
    again.events = []
    again._storage_update_marker = "0"
    await other.append_event(again, event.model_copy(deep=True))
    got = await svc.get_session(app_name=APP, user_id="u", session_id=s.id)
    assert got is not None and [e.id for e in got.events] == [event.id]
    # our own retry after a lost reply finishes locally
    copy = s.model_copy(deep=True)
    copy.events = []
    copy._storage_update_marker = "0"
    await svc.append_event(copy, event.model_copy(deep=True))
    assert [e.id for e in copy.events] == [event.id]
    got = await svc.get_session(app_name=APP, user_id="u", session_id=s.id)
    assert got is not None and len(got.events) == 1


def test_codec_is_deterministic_and_binds_kind() -> None:
    ring = Keyring(parse_keyring(f"k1:{K_OLD}"))
    codec = PayloadCodec(ring, compress_min_bytes=16)
    e = ev()
    assert codec.encode_event(e) == codec.encode_event(e.model_copy(deep=True))
    assert codec.encode_value({"a": SECRET}) == codec.encode_value({"a": SECRET})
    assert codec.encode_value("x") != codec.encode_value("y")
    with pytest.raises(CorruptedDataError):
        codec.decode_event(codec.encode_value({"a": 1}), where="w")
    assert codec.decode_value(codec.encode_value(1.5), where="w") == 1.5
    assert "K_OLD" not in repr(ring) and K_OLD not in repr(ring)


def test_keyring_config_errors_never_show_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    short = base64.b64encode(b"0123456789").decode()
    for spec, msg in [
        (f"k1:{short}", "10 bytes"),
        ("k1:not-base64!!", "not valid base64"),
        (f"k1:{K_OLD},k1:{K_NEW}", "twice"),
        (K_OLD, "expected"),
        (f"bad kid:{K_OLD}", "expected"),
    ]:
        with pytest.raises(KeyringError, match=msg):
            parse_keyring(spec)
        with pytest.raises(ConfigurationError) as info:
            load_settings(redis_encryption_keys=spec)
        assert "REDIS_ENCRYPTION_KEYS" in str(info.value)
        assert K_OLD not in str(info.value) and short not in str(info.value)
    urlsafe = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    monkeypatch.setenv("REDIS_ENCRYPTION_KEYS", f" k2:{urlsafe} , k1:{K_OLD} ")
    monkeypatch.setenv("REDIS_COMPRESS_MIN_BYTES", "1024")
    settings = load_settings()
    assert K_OLD not in repr(settings)
    codec = PayloadCodec.from_settings(settings)
    assert (
        codec.keyring is not None and codec.keyring.kids == ["k2", "k1"] and codec.compress_min_bytes == 1024
    )
    monkeypatch.setenv("REDIS_ENCRYPTION_KEYS", "")
    monkeypatch.setenv("REDIS_COMPRESS_MIN_BYTES", "0")
    assert PayloadCodec.from_settings(load_settings()).plain
