"""OpenTelemetry spans/metrics of the services (in-memory SDK) and the Prometheus endpoint."""

from __future__ import annotations

import hashlib
import json
import socket
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.sessions.session import Session
from google.genai import types
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adk_redis import RedisSessionService, telemetry
from adk_redis.memory._service import RedisMemoryService
from adk_redis.resilience._fallback import FallbackSessionService

APP, USER, SID = "app-SECRET", "user-SECRET-42", "sess-SECRET-7"


@pytest.fixture
def otel() -> Iterator[tuple[InMemorySpanExporter, InMemoryMetricReader]]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    telemetry.instrument(tracer_provider, MeterProvider(metric_readers=[reader]))
    yield exporter, reader
    telemetry.instrument()


def _event(text: str) -> Event:
    return Event(author="user", content=types.Content(role="user", parts=[types.Part(text=text)]))


async def _workload(svc: RedisSessionService) -> None:
    s = await svc.create_session(app_name=APP, user_id=USER, session_id=SID, state={"user:k": 1})
    await svc.append_event(s, _event("hello tea"))
    assert await svc.get_session(app_name=APP, user_id=USER, session_id=SID) is not None
    assert await svc.get_session(app_name=APP, user_id=USER, session_id="missing-SECRET") is None
    await svc.list_sessions(app_name=APP, user_id=USER)
    await svc.get_user_state(app_name=APP, user_id=USER)
    ghost = Session(id="ghost-SECRET", app_name=APP, user_id=USER)
    with pytest.raises(SessionNotFoundError):
        await svc.append_event(ghost, _event("x"))
    mem = RedisMemoryService(client=svc.client, settings=svc.settings)
    full = await svc.get_session(app_name=APP, user_id=USER, session_id=SID)
    assert full is not None
    await mem.add_session_to_memory(full)
    await mem.search_memory(app_name=APP, user_id=USER, query="tea")
    await svc.delete_session(app_name=APP, user_id=USER, session_id=SID)


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    out: dict[str, list[Any]] = {}
    assert data is not None
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                out.setdefault(m.name, []).extend(m.data.data_points)
    return out


async def test_spans_and_metrics(
    redis_session_service: RedisSessionService, otel: tuple[InMemorySpanExporter, InMemoryMetricReader]
) -> None:
    exporter, reader = otel
    assert telemetry.enabled()
    fallback = FallbackSessionService(redis_session_service)
    await _workload(redis_session_service)

    spans = exporter.get_finished_spans()
    names = [s.name for s in spans]
    for op in ("create_session", "append_event", "get_session", "list_sessions", "get_user_state"):
        assert f"adk_redis.session.{op}" in names
    assert "adk_redis.memory.add_session_to_memory" in names and "adk_redis.memory.search_memory" in names
    digest = hashlib.sha256(APP.encode()).hexdigest()[:12]
    by_outcome = {(s.name, s.attributes["adk_redis.outcome"]) for s in spans if s.attributes}
    assert ("adk_redis.session.get_session", "not_found") in by_outcome
    assert ("adk_redis.session.append_event", "error") in by_outcome
    failed = next(s for s in spans if s.attributes and s.attributes["adk_redis.outcome"] == "error")
    assert failed.attributes is not None and failed.attributes["error.type"] == "SessionNotFoundError"
    assert not failed.status.is_ok and not failed.events  # no exception event: its message names the session
    assert all(s.attributes and s.attributes["adk_redis.app_hash"] == digest for s in spans)

    points = _points(reader)
    durations = points[telemetry.DURATION]
    ops = {(p.attributes["adk_redis.operation"], p.attributes["adk_redis.outcome"]) for p in durations}
    assert ("session.append_event", "ok") in ops and ("session.append_event", "error") in ops
    assert ("session.get_session", "not_found") in ops and ("memory.search_memory", "ok") in ops
    assert all(p.count >= 1 and p.sum > 0 for p in durations)
    errors = points[telemetry.ERRORS]
    assert [(p.attributes["adk_redis.operation"], p.attributes["error.type"], p.value) for p in errors] == [
        ("session.append_event", "SessionNotFoundError", 1)
    ]
    gauge = [p for p in points[telemetry.FALLBACK_STATE] if p.attributes["adk_redis.breaker"] == "closed"]
    assert gauge and gauge[0].value == 0
    del fallback

    # No id (and no clear-text app name) anywhere in what is exported.
    exported = json.dumps(
        [dict(s.attributes or {}) for s in spans]
        + [[dict(e.attributes or {}) for e in s.events] for s in spans]
        + [dict(p.attributes) for ps in points.values() for p in ps],
        default=str,
    )
    assert "SECRET" not in exported


def test_disabled_without_sdk() -> None:
    """No SDK configured (ADK does not install one in tests): the wrapper only checks and calls."""
    assert not telemetry.enabled()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_prometheus_endpoint(
    redis_session_service: RedisSessionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(telemetry, "_prometheus", None)  # restored afterwards: later tests run unobserved
    port = _free_port()
    server, _thread = telemetry.start_prometheus_server(port, addr="127.0.0.1")
    try:
        await _workload(redis_session_service)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            body = resp.read().decode()
    finally:
        server.shutdown()
    assert 'adk_redis_operation_duration_seconds_count{operation="session.append_event",outcome="ok"}' in body
    assert (
        'adk_redis_operation_errors_total{error_type="SessionNotFoundError",operation="session.append_event"}'
        in body
    )
    assert "adk_redis_fallback_state" in body and "SECRET" not in body
