"""The fast event decoder gives exactly what ``Event.model_validate_json`` gives."""

from __future__ import annotations

import enum
import json
import typing
from typing import Any, Literal, Union

import pytest
from google.adk.events.event import Event, NodeInfo
from google.adk.events.event_actions import EventActions
from google.adk.tools.tool_confirmation import ToolConfirmation
from google.genai import types
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from adk_redis._core import codec
from adk_redis._core.codec import PayloadCodec
from adk_redis._core.event_decode import fast_decode_event, plan_coverage
from adk_redis.errors import CorruptedDataError
from tests.event_corpus import CORPUS, FALLBACK_CORPUS


def _slow(body: str | bytes) -> Event:
    """The decoder before the fast path (codec._parse_event as it was)."""
    try:
        return Event.model_validate_json(body)
    except ValidationError:
        pass
    try:
        return Event.model_validate(json.loads(body))
    except (ValueError, TypeError, RecursionError):
        raise CorruptedDataError("slow: invalid") from None


def _assert_same(fast: Any, slow: Any, path: str = "event") -> None:
    """Same types, values, fields_set, private/extra and __dict__ order at every level."""
    assert type(fast) is type(slow), path
    if isinstance(slow, BaseModel):
        assert fast.model_fields_set == slow.model_fields_set, path
        assert fast.__pydantic_private__ == slow.__pydantic_private__, path
        assert fast.__pydantic_extra__ == slow.__pydantic_extra__, path
        assert list(fast.__dict__) == list(slow.__dict__), path
        for name in slow.__dict__:
            _assert_same(fast.__dict__[name], slow.__dict__[name], f"{path}.{name}")
    elif isinstance(slow, dict):
        assert list(fast) == list(slow), path
        for key in slow:
            _assert_same(fast[key], slow[key], f"{path}[{key!r}]")
    elif isinstance(slow, list):
        assert len(fast) == len(slow), path
        for i, (a, b) in enumerate(zip(fast, slow)):
            _assert_same(a, b, f"{path}[{i}]")
    else:
        assert fast == slow or (fast != fast and slow != slow), path  # NaN equals NaN here
        assert repr(fast) == repr(slow), path


def _check(body: str, *, fast_expected: bool = True) -> Event:
    slow = _slow(body)
    fast = fast_decode_event(body)
    if fast_expected:
        assert fast is not None, body[:300]
    if fast is None:
        fast = codec.decode_event("1:" + body, where="t")
    _assert_same(fast, slow)
    assert fast == slow
    assert fast.model_dump() == slow.model_dump()
    assert fast.model_dump_json(exclude_none=True) == slow.model_dump_json(exclude_none=True)
    assert fast.model_dump_json() == slow.model_dump_json()
    assert repr(fast) == repr(slow)
    return fast


def _body(event: Event) -> str:
    return event.model_dump_json(exclude_none=True)


@pytest.mark.parametrize("index", range(len(CORPUS)))
def test_corpus_fast_equals_slow(index: int) -> None:
    _check(_body(CORPUS[index]))


@pytest.mark.parametrize("index", range(len(FALLBACK_CORPUS)))
def test_fallback_shapes_still_identical(index: int) -> None:
    body = _body(FALLBACK_CORPUS[index])
    assert fast_decode_event(body) is None
    _check(body, fast_expected=False)


def test_bench_events_take_fast_path() -> None:
    import sys

    sys.path.insert(0, "bench")
    from sessions import make_event  # type: ignore[import-not-found]

    for i in range(4):
        _check(_body(make_event(i)))


def test_long_running_tool_ids_is_a_set() -> None:
    ev = _check(_body(CORPUS[2]))
    assert isinstance(ev.long_running_tool_ids, set)
    assert ev.long_running_tool_ids == {"c1", "c2", "c3"}


def test_bytes_decoded() -> None:
    ev = _check(_body(CORPUS[4]))
    assert ev.content is not None and ev.content.parts is not None
    blob = ev.content.parts[0].inline_data
    assert blob is not None and blob.data == bytes(range(256))


def test_missing_or_empty_id_gets_fresh_id_like_validation() -> None:
    for body in ('{"author":"a"}', '{"author":"a","id":""}', "{}"):
        fast, slow = fast_decode_event(body), Event.model_validate_json(body)
        assert fast is not None
        assert fast.id and fast.id != slow.id
        assert fast.model_fields_set == slow.model_fields_set
        assert fast.model_copy(update={"id": "x", "timestamp": 0.0}) == slow.model_copy(
            update={"id": "x", "timestamp": 0.0}
        )


def test_int_timestamp_becomes_float() -> None:
    ev = _check('{"id":"e","timestamp":5}')
    assert type(ev.timestamp) is float


def test_mutation_is_isolated() -> None:
    body = _body(CORPUS[5])
    a, b = fast_decode_event(body), fast_decode_event(body)
    assert a is not None and b is not None
    a.actions.state_delta["x"] = 1
    a.actions.state_delta["nested"]["a"].append("z")
    a.actions.artifact_delta["y"] = 1
    a.actions.requested_auth_configs["k"] = None  # type: ignore[assignment]
    a.node_info.path = "changed"
    assert b == Event.model_validate_json(body)
    # Defaults (factories) are fresh per instance.
    c, d = fast_decode_event('{"id":"1"}'), fast_decode_event('{"id":"2"}')
    assert c is not None and d is not None
    c.actions.state_delta["x"] = 1
    c.node_info.path = "p"
    assert d.actions.state_delta == {} and d.node_info.path == ""
    assert Event(id="3").actions.state_delta == {} and EventActions().state_delta == {}
    body = _body(CORPUS[0])
    e, f = fast_decode_event(body), fast_decode_event(body)
    assert e is not None and f is not None and e.content is not None and e.content.parts is not None
    e.content.parts.append(types.Part(text="more"))
    e.content.parts[0].text = "changed"
    assert f == Event.model_validate_json(body)


def test_generated_builders() -> None:
    from adk_redis._core import event_decode

    for cls in (Event, EventActions, types.Content, types.Part, NodeInfo):
        plan = event_decode._PLANS[cls]
        assert plan.ok and plan.source, cls
        assert plan.build.__code__.co_filename == f"<builder {cls.__module__}.{cls.__qualname__}>"
    assert "post_init" in event_decode._PLANS[Event].source
    assert "post_init" not in event_decode._PLANS[EventActions].source


def test_mutation_never_leaks_between_decodes() -> None:
    import sys

    sys.path.insert(0, "bench")
    from sessions import make_event

    body = _body(make_event(1))  # type: ignore[no-untyped-call,unused-ignore]
    a, b = fast_decode_event(body), fast_decode_event(body)
    assert a is not None and b is not None and a.content is not None and a.content.parts is not None
    a.content.parts[0].text = "changed"
    a.content.parts.append(types.Part(text="more"))
    a.content.role = "user"
    a.actions.state_delta["turn"] = -1
    a.actions.artifact_delta["f"] = 1
    a.actions.requested_tool_confirmations["c"] = ToolConfirmation()
    a.actions.requested_auth_configs["k"] = None  # type: ignore[assignment]
    a.node_info.output_for = ["x"]
    a.model_fields_set.add("branch")
    a.content.model_fields_set.add("x")
    a.author = "someone"
    assert b == Event.model_validate_json(body)
    assert b.model_fields_set == Event.model_validate_json(body).model_fields_set
    assert b.content is not None and b.content.model_fields_set == {"parts", "role"}


def test_plans_cover_common_classes() -> None:
    fast_decode_event(_body(CORPUS[0]))
    coverage = plan_coverage()
    for name in (
        "google.adk.events.event.Event",
        "google.adk.events.event.NodeInfo",
        "google.adk.events.event_actions.EventActions",
        "google.genai.types.Content",
        "google.genai.types.Part",
        "google.genai.types.FunctionCall",
        "google.genai.types.FunctionResponse",
        "google.genai.types.Blob",
        "google.genai.types.GenerateContentResponseUsageMetadata",
        "google.genai.types.GroundingMetadata",
    ):
        assert coverage[name][0], name


def test_deep_nesting_matches_json_fallback() -> None:
    deep: Any = "leaf"
    for _ in range(230):  # pydantic's parser gives up at ~200; the codec re-parses with json
        deep = [deep]
    body = json.dumps({"id": "d", "timestamp": 1.5, "author": "a", "actions": {"state_delta": {"k": deep}}})
    _check(body)


# -- malformed payloads ---------------------------------------------------------------------

_GOOD = _body(CORPUS[2])
MALFORMED = [
    '{"id":"e","content":{"parts":[{"text":5}]}}',
    '{"id":"e","timestamp":"x"}',
    '{"id":"e","timestamp":"5"}',
    '{"id":"e","timestamp":true}',
    '{"id":"e","timestamp":1e400}',
    '{"id":"e","timestamp":NaN}',
    '{"id":"e","timestamp":123456789012345678901234567890}',
    '{"id":"e","author":null}',
    '{"id":"e","author":5}',
    '{"id":"e","partial":1}',
    '{"id":"e","partial":"true"}',
    '{"id":"e","content":null}',
    '{"id":"e","content":{"parts":[{"text":null}]}}',
    '{"id":"e","content":{"parts":[{"text":"a","thought":null}]}}',
    '{"id":"e","content":{"parts":[{"bogus":1}]}}',
    '{"id":"e","content":{"parts":[{"inline_data":{"data":"not base64!"}}]}}',
    '{"id":"e","content":{"parts":[{"inline_data":{"data":"/w=="}}]}}',
    '{"id":"e","content":{"parts":[{"inline_data":{"data":"_w"}}]}}',
    '{"id":"e","content":{"parts":[{"function_call":{"args":[1]}}]}}',
    '{"id":"e","content":{"parts":"x"}}',
    '{"id":"e","content":{"role":"model","parts":[{"text":"a"}],"extra":1}}',
    '{"id":"e","actions":{"unknown":1}}',
    '{"id":"e","actions":{"artifact_delta":{"f":1.5}}}',
    '{"id":"e","actions":{"artifact_delta":{"f":true}}}',
    '{"id":"e","actions":{"requested_auth_configs":{"c":{}}}}',
    '{"id":"e","long_running_tool_ids":["a",1]}',
    '{"id":"e","long_running_tool_ids":"a"}',
    '{"id":"e","finish_reason":"NOT_A_REASON"}',
    '{"id":"e","finish_reason":"stop"}',
    '{"id":"e","unknown_key":1}',
    '{"id":"e","invocationId":"camel"}',
    '{"id":"e","message":"hello"}',
    '{"id":"e","state":{"a":1}}',
    '{"id":"e","node_path":"a/b"}',
    '{"id":"e","output":"\\ud800"}',
    '{"id":"e","output":NaN}',
    '{"id":"e","output":Infinity}',
    '{"id":"e","id":"twice"}',
    '\ufeff{"id":"e"}',
    "[]",
    "null",
    '"string"',
    "",
    "{",
    _GOOD[: len(_GOOD) // 2],
    _GOOD + "x",
    _GOOD.replace('"author"', '"author" ', 1),
    "  " + _GOOD + "\n",
]


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return "ok", call()
    except CorruptedDataError:
        return "error", None


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_same_as_slow(body: str) -> None:
    kind, slow = _outcome(lambda: _slow(body))
    got_kind, got = _outcome(lambda: codec.decode_event("1:" + body, where="t"))
    assert got_kind == kind
    if kind == "ok" and body.count("NaN") == 0:
        same = {"id": "x", "timestamp": 1.0}  # generated by validation when missing
        _assert_same(got.model_copy(update=same), slow.model_copy(update=same))
        assert got.model_copy(update=same).model_dump() == slow.model_copy(update=same).model_dump()


def test_non_utf8_payloads() -> None:
    with pytest.raises(CorruptedDataError):
        codec.decode_event(b"1:\xff\xfe{}", where="t")
    assert fast_decode_event(b'{"id":"\xff"}') is None
    body = _body(CORPUS[1]).encode("utf-8")
    _assert_same(codec.decode_event(b"1:" + body, where="t"), Event.model_validate_json(body))


def test_payload_codec_compressed() -> None:
    pc = PayloadCodec(compress_min_bytes=1)
    for event in [*CORPUS, *FALLBACK_CORPUS]:
        stored = pc.encode_event(event)
        assert stored.startswith("2:z:")
        got = pc.decode_event(stored, where="t")
        _assert_same(got, Event.model_validate_json(_body(event)))
        got_bytes = pc.decode_event(stored.encode(), where="t")
        assert got_bytes == got
    for bad in ("2:z::AAAA", "2:z::!!", "2:q::AAAA", "2:z:"):
        with pytest.raises(CorruptedDataError):
            pc.decode_event(bad, where="t")
    import base64
    import zlib

    for body in MALFORMED:
        stored = "2:z::" + base64.urlsafe_b64encode(zlib.compress(body.encode("utf-8"))).decode()
        kind, _ = _outcome(lambda b=body: _slow(b.encode("utf-8")))  # json.loads(bytes) skips a BOM
        got_kind, _ = _outcome(lambda s=stored: pc.decode_event(s, where="t"))
        assert got_kind == kind, body


# -- property tests -------------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
_SKIP_FIELDS = {"requested_auth_configs"}


def _for_annotation(annotation: Any, depth: int) -> st.SearchStrategy[Any] | None:
    """A strategy for python values of ``annotation`` (None: no generator)."""
    simple: dict[Any, st.SearchStrategy[Any]] = {
        Any: _JSON,
        str: st.text(max_size=10),
        bool: st.booleans(),
        int: st.integers(min_value=-(2**40), max_value=2**40),
        float: st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**40), 2**40),
        bytes: st.binary(max_size=12),
    }
    if annotation in simple:
        return simple[annotation]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Union or str(origin) == "<class 'types.UnionType'>":
        options = [
            s for a in args if a is not type(None) for s in [_for_annotation(a, depth)] if s is not None
        ]
        return st.one_of(*options) if options else None
    if origin in (list, set) and args:
        item = _for_annotation(args[0], depth)
        return None if item is None else st.lists(item, max_size=2).map(origin)
    if origin is dict and args and args[0] is str:
        item = _for_annotation(args[1], depth)
        return None if item is None else st.dictionaries(st.text(max_size=5), item, max_size=2)
    if origin is Literal:
        return st.sampled_from(args)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return st.sampled_from(list(annotation))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _model_dict(annotation, depth + 1)
    return None


def _model_dict(cls: type[BaseModel], depth: int) -> st.SearchStrategy[Any]:
    if depth > 4:
        return st.just({})
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for name, info in cls.model_fields.items():
        if name in _SKIP_FIELDS or not info.is_required() and depth > 3:
            continue
        strat = _for_annotation(info.annotation, depth)
        if strat is not None:
            optional[name] = strat
    return st.fixed_dictionaries({}, optional=optional)


_TEXT_EVENTS = st.builds(
    lambda author, text, delta, role: Event(
        invocation_id="inv",
        author=author,
        content=types.Content(role=role, parts=[types.Part(text=t) for t in text]),
        actions=EventActions(state_delta=delta),
    ),
    st.text(max_size=8),
    st.lists(st.text(), max_size=3),
    st.dictionaries(
        st.sampled_from(["a", "app:a", "user:b", "temp:c"]) | st.text(max_size=5), _JSON, max_size=4
    ),
    st.sampled_from(["user", "model"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_TEXT_EVENTS)
def test_property_text_events(event: Event) -> None:
    _check(_body(event))


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
@given(_model_dict(Event, 0))
def test_property_any_event_shape(data: dict[str, Any]) -> None:
    try:
        event = Event.model_validate(data)
        body = _body(event)
    except (ValidationError, ValueError, TypeError):
        reject()
    fast = fast_decode_event(body)
    slow = _slow(body)
    got = fast if fast is not None else codec.decode_event("1:" + body, where="t")
    _assert_same(got, slow)
    assert got.model_dump_json(exclude_none=True) == slow.model_dump_json(exclude_none=True)


def test_decode_events_batch_restores_the_garbage_collector() -> None:
    """A long batch pauses the cyclic GC and always restores it (also on a bad record)."""
    import gc

    from adk_redis._core.codec import PLAIN

    body = PLAIN.encode_event(Event(id="e", author="user", timestamp=1.0))
    assert gc.isenabled()
    events = PLAIN.decode_events([body] * 100, where="batch")
    assert len(events) == 100 and events[0] == events[99] and events[0] is not events[99]
    assert gc.isenabled()
    with pytest.raises(CorruptedDataError, match="missing"):
        PLAIN.decode_events([body] * 70 + [None], where="batch")
    assert gc.isenabled()
    with pytest.raises(CorruptedDataError):
        PLAIN.decode_events([body] * 70 + ["1:{broken"], where="batch")
    assert gc.isenabled()
    gc.disable()
    try:
        PLAIN.decode_events([body] * 100, where="batch")
        assert not gc.isenabled()  # a caller that disabled it keeps it disabled
    finally:
        gc.enable()
