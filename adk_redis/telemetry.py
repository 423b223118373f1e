"""OpenTelemetry spans and metrics for the session and memory services (optional Prometheus).

Every public service operation is wrapped by :func:`traced`:

* a span ``adk_redis.<service>.<operation>`` (kind CLIENT, ``db.system.name=redis``);
* the histogram ``adk_redis.operation.duration`` (seconds);
* the counter ``adk_redis.operation.errors`` on exceptions;
* the observable gauge ``adk_redis.fallback.state`` (0 closed, 1 half-open, 2 open)
  of every live :class:`~adk_redis.resilience.FallbackSessionService`.

Attributes are ``adk_redis.operation``, ``adk_redis.outcome`` (``ok``,
``not_found``, ``error``), ``error.type`` (exception class) and
``adk_redis.app_hash`` (first 12 hex digits of SHA-256 of the app name).  No
user, session, event or memory id and no exception message is ever recorded.

Cost: while neither an OpenTelemetry SDK (a non-default global tracer/meter
provider), :func:`instrument` nor :func:`start_prometheus_server` is in
effect, a wrapped call costs two global reads and a type check on top of the
call itself.  ``prometheus_client`` is optional (extra ``prometheus``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any, ParamSpec, TypeVar

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.metrics import _internal as _metrics_api
from opentelemetry.trace import SpanKind, Status, StatusCode

P = ParamSpec("P")
R = TypeVar("R")

SCOPE = "adk_redis"
DURATION = "adk_redis.operation.duration"
ERRORS = "adk_redis.operation.errors"
FALLBACK_STATE = "adk_redis.fallback.state"
_STATE_VALUE = {"closed": 0, "half_open": 1, "open": 2}

_fallbacks: weakref.WeakSet[Any] = weakref.WeakSet()


@functools.lru_cache(maxsize=1024)
def app_hash(app_name: str) -> str:
    """The app attribute: a short SHA-256 digest (app names may be customer names)."""
    return hashlib.sha256(app_name.encode("utf-8", "surrogatepass")).hexdigest()[:12]  # never raises


def _observe_fallbacks(options: CallbackOptions) -> Iterable[Observation]:
    for svc in list(_fallbacks):
        state = getattr(svc.state, "value", str(svc.state))
        yield Observation(_STATE_VALUE.get(str(state), -1), {"adk_redis.breaker": str(state)})


class _Instruments:
    """The tracer and instruments currently in use (rebuilt by :func:`instrument`)."""

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None,
        meter_provider: metrics.MeterProvider | None,
        spans: bool = True,
    ) -> None:
        self.explicit = tracer_provider is not None or meter_provider is not None
        self.spans = spans
        self.tracer = trace.get_tracer(SCOPE, tracer_provider=tracer_provider)
        meter = metrics.get_meter(SCOPE, meter_provider=meter_provider)
        self.meter = meter  # for other instruments of the same provider (memory generation)
        self.duration = meter.create_histogram(
            DURATION, unit="s", description="Duration of adk_redis session/memory service operations"
        )
        self.errors = meter.create_counter(
            ERRORS, unit="{error}", description="adk_redis service operations that raised"
        )
        meter.create_observable_gauge(
            FALLBACK_STATE,
            callbacks=[_observe_fallbacks],
            description="Circuit breaker of FallbackSessionService: 0 closed, 1 half-open, 2 open",
        )


_inst = _Instruments(None, None)
_prometheus: tuple[Any, Any] | None = None
_DEFAULT_PROVIDERS = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)


def instrument(
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
    *,
    spans: bool = True,
) -> None:
    """Use explicit providers (e.g. an in-memory SDK in tests); no providers: the global ones.

    ``spans=False`` records metrics only: an SDK span costs ~10-15 us per
    operation, the histogram ~3 us.
    """
    global _inst
    _inst = _Instruments(tracer_provider, meter_provider, spans)


# The API's globals hold None until a provider is set: reading them is far cheaper than
# get_tracer_provider()/get_meter_provider(), which consult os.environ on every call.
_FAST_CHECK = hasattr(trace, "_TRACER_PROVIDER") and hasattr(_metrics_api, "_METER_PROVIDER")
_ENV_PROVIDERS = any(v in os.environ for v in ("OTEL_PYTHON_TRACER_PROVIDER", "OTEL_PYTHON_METER_PROVIDER"))


def _sdk_configured() -> bool:
    if _inst.explicit or _ENV_PROVIDERS:
        return True
    if _FAST_CHECK:
        return trace._TRACER_PROVIDER is not None or _metrics_api._METER_PROVIDER is not None
    if not isinstance(trace.get_tracer_provider(), _DEFAULT_PROVIDERS):
        return True
    meter_provider = metrics.get_meter_provider()
    return type(meter_provider).__name__ not in ("_ProxyMeterProvider", "NoOpMeterProvider")


def enabled() -> bool:
    """True when operations are recorded (an SDK or Prometheus is configured)."""
    return _prometheus is not None or _sdk_configured()


def watch_fallback(service: Any) -> None:
    """Report ``service.state`` (a FallbackSessionService) in the ``adk_redis.fallback.state`` gauge."""
    _fallbacks.add(service)


def _app_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    app = kwargs.get("app_name")
    if app is None and args:
        app = getattr(args[0], "app_name", None)  # append_event(session, ...), add_session_to_memory(session)
    return app if isinstance(app, str) else None


_NO_SPAN: AbstractContextManager[trace.Span] = contextlib.nullcontext(trace.INVALID_SPAN)


async def _record(
    name: str, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    inst = _inst
    attrs: dict[str, str] = {"adk_redis.operation": name}
    app = _app_of(args[1:], kwargs)
    if app is not None:
        attrs["adk_redis.app_hash"] = app_hash(app)
    start = time.perf_counter()
    span_cm: AbstractContextManager[trace.Span] = _NO_SPAN
    if inst.spans:
        span_cm = inst.tracer.start_as_current_span(
            f"adk_redis.{name}",
            kind=SpanKind.CLIENT,
            attributes={"db.system.name": "redis", **attrs},
            record_exception=False,  # messages may carry ids
            set_status_on_exception=False,
        )
    with span_cm as span:
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            attrs["adk_redis.outcome"] = "error"
            attrs["error.type"] = type(exc).__name__
            span.set_attributes({"adk_redis.outcome": "error", "error.type": type(exc).__name__})
            span.set_status(Status(StatusCode.ERROR))
            inst.errors.add(1, attrs)
            raise
        else:
            outcome = "not_found" if result is None and name.endswith("get_session") else "ok"
            attrs["adk_redis.outcome"] = outcome
            span.set_attribute("adk_redis.outcome", outcome)
            return result
        finally:
            elapsed = time.perf_counter() - start
            inst.duration.record(elapsed, attrs)
            if _prometheus is not None:
                hist, counter = _prometheus
                hist.labels(name, attrs["adk_redis.outcome"]).observe(elapsed)
                if attrs["adk_redis.outcome"] == "error":
                    counter.labels(name, attrs["error.type"]).inc()


def traced(name: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Wrap an async service method as operation ``name`` (e.g. ``session.append_event``)."""

    def wrap(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if _prometheus is None and not _sdk_configured():
                return await fn(*args, **kwargs)
            result: R = await _record(name, fn, args, kwargs)
            return result

        return wrapper

    return wrap


def start_prometheus_server(port: int, addr: str = "0.0.0.0") -> Any:
    """Serve ``/metrics`` for Prometheus (needs ``pip install adk-redis-store[prometheus]``).

    Exposes ``adk_redis_operation_duration_seconds`` (histogram, labels
    operation and outcome), ``adk_redis_operation_errors_total`` (labels
    operation and error_type) and ``adk_redis_fallback_state``.  Returns what
    ``prometheus_client.start_http_server`` returns (server, thread).
    """
    global _prometheus
    try:
        import prometheus_client as prom
    except ImportError:
        raise ImportError(
            "start_prometheus_server needs prometheus_client: pip install 'adk-redis-store[prometheus]'"
        ) from None
    if _prometheus is None:
        _prometheus = _prometheus_metrics(prom)
    return prom.start_http_server(port, addr=addr)


@functools.lru_cache(maxsize=1)
def _prometheus_metrics(prom: Any) -> tuple[Any, Any]:
    """Register the Prometheus metrics once per process (the default registry refuses duplicates)."""
    hist = prom.Histogram(
        "adk_redis_operation_duration_seconds",
        "Duration of adk_redis session/memory service operations",
        ["operation", "outcome"],
        buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5),
    )
    counter = prom.Counter(
        "adk_redis_operation_errors",
        "adk_redis service operations that raised",
        ["operation", "error_type"],
    )
    gauge = prom.Gauge(
        "adk_redis_fallback_state", "Worst circuit breaker state: 0 closed, 1 half-open, 2 open"
    )

    def worst() -> float:
        values = [_STATE_VALUE.get(str(getattr(s.state, "value", s.state)), -1) for s in list(_fallbacks)]
        return float(max(values, default=0))

    gauge.set_function(worst)
    return hist, counter


def traced_methods(cls: type[Any], service: str, names: Iterable[str]) -> None:
    """Wrap ``cls``'s async methods ``names`` with :func:`traced` (operation ``<service>.<name>``)."""
    for name in names:
        setattr(cls, name, traced(f"{service}.{name}")(getattr(cls, name)))
