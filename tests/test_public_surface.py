"""The public surface (issue 18): every public method of the classes in ``adk_redis.__all__`` has a
docstring and keyword-only parameters, and an unknown keyword argument is a ``TypeError`` naming the
accepted ones (never a silently ignored setting).

Positional parameters are allowed only where the test says why: an override of an ADK (or pydantic)
method keeps its base's signature, and the few listed below.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest
from google.adk.sessions.in_memory_session_service import InMemorySessionService
from pydantic import BaseModel

import adk_redis
from adk_redis import (
    CrossSessionMemory,
    FallbackMemoryService,
    FallbackSessionService,
    HashingEmbedder,
    RedisMemoryService,
    RedisSessionService,
    RedisSettings,
    SessionStoreConfig,
    create_memory_service,
    create_session_service,
    create_session_store,
)
from adk_redis.store import SessionStore

POSITIONAL_OK: dict[str, set[str]] = {
    # the subject a constructor wraps: the URL, the services, the client
    "RedisSessionService.__init__": {"uri"},
    "RedisMemoryService.__init__": {"uri"},
    "FallbackSessionService.__init__": {"redis", "memory"},
    "FallbackMemoryService.__init__": {"redis", "memory"},
    "CrossSessionMemory.__init__": {"client", "keys", "settings", "app_name"},
    "KeySchema.__init__": {"prefix"},
    "HashingEmbedder.__init__": {"dim", "synonyms"},
    "GenAIEmbedder.__init__": {"model"},
    "SentenceTransformerEmbedder.__init__": {"model"},
    # the Embedder protocol user embedders implement: embed(texts)
    "HashingEmbedder.embed": {"texts"},
    "GenAIEmbedder.embed": {"texts"},
    "SentenceTransformerEmbedder.embed": {"texts"},
    # one accessor argument (documented as memory.cross_session("travel"))
    "RedisMemoryService.cross_session": {"app_name"},
    # the session object a method acts on, as ADK's own append_event(session, event)
    "RedisSessionService.restore_session": {"session"},
    # one timeout, as asyncio.Event.wait / Thread.join(timeout): wait_closed(10)
    "_Fallback.wait_closed": {"timeout"},
}
# CrossSessionMemory mirrors the design document's module functions, which its examples call
# positionally (store_user_context(user_id, "prefs", {...})); KeySchema's builders take the parts of a
# key in key order (keys.session(app, user, sid)), in every module of the package.
POSITIONAL_CLASSES = {"CrossSessionMemory", "KeySchema"}


def _public_classes() -> list[type]:
    out = []
    for name in adk_redis.__all__:
        obj = getattr(adk_redis, name)
        if (
            inspect.isclass(obj)
            and not issubclass(obj, BaseException)
            and not getattr(obj, "_is_protocol", False)
        ):
            out.append(obj)
    return out


def _members(cls: type) -> list[tuple[str, type, Any]]:
    """(name, defining class, raw attribute) of every public method/property adk_redis defines."""
    out = []
    for name in sorted(dir(cls)):
        if name.startswith("_") and name != "__init__":
            continue
        owner = next((k for k in cls.__mro__ if name in vars(k)), None)
        if owner is None or not owner.__module__.startswith("adk_redis"):
            continue
        raw = vars(owner)[name]
        if isinstance(raw, (staticmethod, classmethod)):
            raw = raw.__func__
        if not (inspect.isfunction(raw) or isinstance(raw, property)):
            continue
        if name == "__init__" and dataclasses.is_dataclass(owner):
            continue  # generated from the documented fields
        out.append((name, owner, raw))
    return out


def _foreign_base_signature(cls: type, name: str) -> inspect.Signature | None:
    """The signature of the non-adk_redis method ``name`` overrides (ADK, pydantic), if any."""
    for base in cls.__mro__[1:]:
        if name in vars(base) and not base.__module__.startswith("adk_redis") and base is not object:
            return inspect.signature(getattr(base, name))
    return None


def _positional(sig: inspect.Signature) -> list[str]:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in sig.parameters.values() if p.kind in kinds and p.name not in ("self", "cls")]


CLASSES = _public_classes()


def test_the_walk_covers_the_services() -> None:
    names = {c.__name__ for c in CLASSES}
    assert {
        "RedisSessionService",
        "RedisMemoryService",
        "FallbackSessionService",
        "FallbackMemoryService",
    } <= names
    walked = {f"{c.__name__}.{n}" for c in CLASSES for n, _, _ in _members(c)}
    assert {"RedisSessionService.create_session", "FallbackMemoryService.forget_user"} <= walked
    assert {"RedisMemoryService.cleanup", "FallbackSessionService.wait_closed"} <= walked


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_public_methods_have_docstrings(cls: type) -> None:
    missing = []
    for name, owner, raw in _members(cls):
        if name == "__init__":
            continue  # documented by the class docstring's Args
        if is_pydantic_hook(cls, name):
            continue
        if not (raw.__doc__ or "").strip():
            missing.append(f"{owner.__name__}.{name}")
    assert (cls.__doc__ or "").strip(), cls.__name__
    assert missing == []


def is_pydantic_hook(cls: type, name: str) -> bool:
    return issubclass(cls, BaseModel) and name.startswith("model_")


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_public_methods_are_keyword_only(cls: type) -> None:
    offenders = []
    for name, owner, raw in _members(cls):
        if isinstance(raw, property) or owner.__name__ in POSITIONAL_CLASSES and name != "__init__":
            continue
        sig = inspect.signature(raw)
        positional = _positional(sig)
        base = _foreign_base_signature(cls, name)
        if base is not None and name != "__init__":
            allowed = set(_positional(base))  # an ADK/pydantic override keeps its base's signature
        else:
            allowed = POSITIONAL_OK.get(f"{owner.__name__}.{name}", set())
        extra = [p for p in positional if p not in allowed]
        if extra:
            offenders.append(f"{owner.__name__}.{name}({', '.join(extra)})")
    assert offenders == []


def test_the_exemptions_are_real() -> None:
    """Every listed exemption names a positional parameter that exists (no stale entries)."""
    for qual, params in POSITIONAL_OK.items():
        cls_name, method = qual.split(".")
        cls = getattr(adk_redis, cls_name.lstrip("_"), None) or FallbackSessionService
        assert params <= set(_positional(inspect.signature(getattr(cls, method)))), qual


# -- unknown keyword arguments -------------------------------------------------------------------
def _raises_naming(call: Any, wrong: str, right: str) -> str:
    with pytest.raises(TypeError) as info:
        call()
    msg = str(info.value)
    assert repr(wrong) in msg and f"did you mean {right!r}" in msg and "it accepts:" in msg, msg
    return msg


def test_service_constructors_reject_unknown_keywords() -> None:
    msg = _raises_naming(
        lambda: RedisSessionService("redis://127.0.0.1:1", key_prefx="x"), "key_prefx", "key_prefix"
    )
    assert "stale_policy" in msg and "agents_dir" in msg
    _raises_naming(lambda: RedisSessionService(stale_polcy="merge"), "stale_polcy", "stale_policy")
    _raises_naming(lambda: RedisMemoryService(search_limt=3), "search_limt", "search_limit")


async def test_agents_dir_stays_accepted_for_adks_registry() -> None:
    """ADK's service registry passes agents_dir to every factory; it is accepted and ignored."""
    async with RedisSessionService("redis://127.0.0.1:1", agents_dir="/tmp/agents") as svc:
        assert svc.settings.redis_key_prefix
    async with RedisMemoryService("redis://127.0.0.1:1", agents_dir="/tmp/agents", search_limit=3) as mem:
        assert mem.search_limit == 3


async def test_registry_factories_drop_adks_extras() -> None:
    """ADK may pass more than agents_dir (e.g. session_db_kwargs): the registry hook filters them."""
    from adk_redis.registry import memory_factory, session_factory

    svc = session_factory("redis://127.0.0.1:1/0?key_prefix=pfx", agents_dir="/x", session_db_kwargs={})
    mem = memory_factory("redis://127.0.0.1:1/0", agents_dir="/x", other=1)
    try:
        assert svc.keys.prefix == "pfx"
    finally:
        await svc.close()
        await mem.close()


async def test_fallback_services_reject_unknown_keywords() -> None:
    async with RedisSessionService("redis://127.0.0.1:1") as redis_svc:
        _raises_naming(
            lambda: FallbackSessionService(redis_svc, failure_treshold=2),
            "failure_treshold",
            "failure_threshold",
        )
        _raises_naming(
            lambda: FallbackSessionService(redis_svc, InMemorySessionService(), start_opn=True),
            "start_opn",
            "start_open",
        )
    async with RedisMemoryService("redis://127.0.0.1:1") as redis_mem:
        _raises_naming(
            lambda: FallbackMemoryService(redis_mem, health_check_intervall=1.0),
            "health_check_intervall",
            "health_check_interval",
        )


async def test_factories_reject_unknown_keywords() -> None:
    settings = RedisSettings(redis_enabled=False)  # checked before anything is built
    with pytest.raises(
        TypeError, match="'key_prefx' .*did you mean 'key_prefix'.*it accepts:.*failure_threshold"
    ):
        await create_session_service(settings, key_prefx="x")
    with pytest.raises(TypeError, match="'search_limt' .*did you mean 'search_limit'"):
        await create_memory_service(settings, search_limt=3)
    # the accepted ones still work
    assert (
        type(await create_session_service(settings, key_prefix="x", failure_threshold=2))
        is InMemorySessionService
    )


def test_design_api_constructors_reject_unknown_keywords() -> None:
    _raises_naming(lambda: SessionStoreConfig(max_sesions=3), "max_sesions", "max_sessions")
    _raises_naming(lambda: create_session_store(force_memry=True), "force_memry", "force_memory")
    _raises_naming(lambda: RedisSettings(redis_urll="redis://x"), "redis_urll", "redis_url")
    with pytest.raises(TypeError, match="'runer'"):
        SessionStore(runer=None)  # type: ignore[call-arg]
    store = create_session_store(SessionStoreConfig(cleanup_interval_minutes=0), force_memory=True)
    try:
        assert store.store_type == "memory"
    finally:
        store.close()


def test_other_public_constructors_reject_unknown_keywords() -> None:
    _raises_naming(lambda: HashingEmbedder(dims=8), "dims", "dim")
    with pytest.raises(TypeError, match="'ap_name' .*did you mean 'app_name'"):
        CrossSessionMemory(None, None, None, ap_name="x")  # type: ignore[arg-type]


def test_known_keywords_keep_working_positionally_where_documented() -> None:
    """The strict wrapper keeps the signature: ADK's registry and type checkers see the real names."""
    params = inspect.signature(RedisSessionService).parameters
    assert "key_prefix" in params and not any(p.kind is p.VAR_KEYWORD for p in params.values())
    assert HashingEmbedder(8).dim == 8
