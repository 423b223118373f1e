"""Fast decoding of stored ADK events, indistinguishable from ``Event.model_validate_json``.

:func:`fast_decode_event` parses the body with :func:`json.loads` and builds the
pydantic objects directly from per-class plans compiled once from the models'
own field definitions.  A plan only exists for shapes whose validation result
is known exactly: plain models (no validators other than the audited no-op ones
in :data:`_AUDITED_VALIDATORS`, no custom ``__init__`` except genai's ``Part``,
a config limited to :data:`_PLAIN_CONFIG_KEYS`) whose fields are ``str``,
``bool``, ``int``, ``float``, base64 ``bytes``, enums, literals, ``Any``, and
``list``/``set``/``dict[str, ...]``/``Optional`` of those or of planned models.
Primitive values are checked strictly (no coercion a payload written by
``model_dump_json`` would not need).  Anything else -- an unknown or aliased
key, ``null`` for a model field, an unplanned type, a non-canonical value --
makes the function return ``None`` so the caller takes the validating path.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import math
import types as pytypes
import typing
from collections.abc import Callable
from typing import Any, Literal, Union

from google.adk.events.event import Event
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

__all__ = ["fast_decode_event", "plan_coverage"]


class _Fallback(Exception):
    """The payload has a shape without a verified plan."""


_Conv = Callable[[Any], Any]

# Validators whose effect on the input a plan accepts is audited to be nil:
#  * genai ``BaseModel._check_field_type_mismatches`` (before): only logs when a value is
#    already a BaseModel instance, which JSON input never is; returns the input unchanged.
#  * ADK ``Event._accept_convenience_kwargs`` (before): copies the dict and routes the
#    ``message``/``state``/``route``/``node_path`` keys, which are not Event fields, so a
#    plan rejects them; with only field keys it is the identity.
#  * ADK ``EventActions._parse_auth_configs`` (after, ``requested_auth_configs``): returns an
#    empty dict unchanged; the plan for that field accepts only ``{}``.
_AUDITED_VALIDATORS: dict[str, frozenset[str]] = {
    "google.genai._common.BaseModel._check_field_type_mismatches": frozenset(),
    "google.adk.events.event.Event._accept_convenience_kwargs": frozenset(),
    "google.adk.events.event_actions.EventActions._parse_auth_configs": frozenset({"requested_auth_configs"}),
}

# Classes whose custom ``__init__`` is audited: genai ``Part.__init__(value=None, **kw)``
# drops ``None`` keyword values and re-validates the rest in python mode.  With a dict of
# field-name keys and no ``null`` values (a plan rejects ``null``), it validates exactly
# the given keys, and python mode gives the same values as JSON mode for the strictly
# typed values a plan accepts (base64 bytes included, as ``val_json_bytes`` applies).
_AUDITED_INITS = frozenset({"google.genai.types.Part"})

# Config keys that do not change how a strictly typed value validates.
_PLAIN_CONFIG_KEYS = frozenset(
    {
        "alias_generator",
        "populate_by_name",
        "validate_by_name",
        "validate_by_alias",
        "serialize_by_alias",
        "from_attributes",
        "protected_namespaces",
        "extra",
        "arbitrary_types_allowed",
        "ser_json_bytes",
        "val_json_bytes",
        "ignored_types",
        "defer_build",
        "title",
        "json_schema_extra",
    }
)

_IMMUTABLE_DEFAULTS = (type(None), str, int, float, bool, bytes, enum.Enum)
_MAX_EXACT_INT = 2**53


def _qualified(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


# -- primitive converters ----------------------------------------------------------------


def _identity(value: Any) -> Any:
    return value


def _str(value: Any) -> Any:
    if type(value) is not str:
        raise _Fallback
    return value


def _bool(value: Any) -> Any:
    if value is not True and value is not False:
        raise _Fallback
    return value


def _int(value: Any) -> Any:
    if type(value) is not int:
        raise _Fallback
    return value


def _float(value: Any) -> Any:
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):
            raise _Fallback
        return value
    if kind is int and -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT:
        return float(value)
    raise _Fallback


def _base64_bytes(value: Any) -> Any:
    """URL-safe base64 with padding, exactly as ``ser_json_bytes='base64'`` writes it."""
    if type(value) is not str:
        raise _Fallback
    try:
        raw = value.encode("ascii")
        data = base64.urlsafe_b64decode(raw)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise _Fallback from None
    if base64.urlsafe_b64encode(data) != raw:
        raise _Fallback
    return data


def _enum(cls: type[enum.Enum]) -> _Conv | None:
    members: dict[str, enum.Enum] = {}
    for member in cls:
        if type(member.value) is not str:
            return None
        members[member.value] = member

    def conv(value: Any) -> Any:
        if type(value) is not str:
            raise _Fallback
        try:
            return members[value]
        except KeyError:
            raise _Fallback from None

    return conv


def _literal(options: tuple[Any, ...]) -> _Conv | None:
    if not all(type(o) is str for o in options):
        return None
    allowed = frozenset(options)

    def conv(value: Any) -> Any:
        if type(value) is not str or value not in allowed:
            raise _Fallback
        return value

    return conv


def _optional(inner: _Conv) -> _Conv:
    def conv(value: Any) -> Any:
        return None if value is None else inner(value)

    return conv


def _list(item: _Conv) -> _Conv:
    if item is _identity:

        def conv_any(value: Any) -> Any:
            if type(value) is not list:
                raise _Fallback
            return value

        return conv_any

    def conv(value: Any) -> Any:
        if type(value) is not list:
            raise _Fallback
        return [item(v) for v in value]

    return conv


def _set(item: _Conv) -> _Conv:
    def conv(value: Any) -> Any:
        if type(value) is not list:
            raise _Fallback
        return {item(v) for v in value}

    return conv


def _dict(item: _Conv) -> _Conv:
    if item is _identity:

        def conv_any(value: Any) -> Any:
            if type(value) is not dict:
                raise _Fallback
            return value

        return conv_any

    def conv(value: Any) -> Any:
        if type(value) is not dict:
            raise _Fallback
        return {k: item(v) for k, v in value.items()}

    return conv


def _empty_dict(value: Any) -> Any:
    if type(value) is not dict or value:
        raise _Fallback
    return value


_PRIMITIVES: dict[Any, _Conv] = {
    Any: _identity,
    object: _identity,
    str: _str,
    bool: _bool,
    int: _int,
    float: _float,
}


def _converter(annotation: Any, bytes_ok: bool) -> _Conv | None:
    """The converter for a field annotation, or None when it has no plan."""
    prim = _PRIMITIVES.get(annotation)
    if prim is not None:
        return prim
    if annotation is bytes:
        return _base64_bytes if bytes_ok else None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Union or origin is pytypes.UnionType:
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1 or len(args) != 2:
            return None
        inner = _converter(rest[0], bytes_ok)
        return None if inner is None else (_identity if inner is _identity else _optional(inner))
    if origin is list and len(args) == 1:
        item = _converter(args[0], bytes_ok)
        return None if item is None else _list(item)
    if origin is set and len(args) == 1:
        item = _converter(args[0], bytes_ok)
        return None if item is None or args[0] not in (str, int) else _set(item)
    if origin is dict and len(args) == 2 and args[0] is str:
        item = _converter(args[1], bytes_ok)
        return None if item is None else _dict(item)
    if origin is Literal:
        return _literal(args)
    if isinstance(annotation, type):
        if issubclass(annotation, enum.Enum):
            return _enum(annotation)
        if issubclass(annotation, BaseModel):
            return _model_plan(annotation).build
    return None


# -- model plans ----------------------------------------------------------------------------


class _ModelPlan:
    """How to build one model class from a JSON object of its field names."""

    def __init__(self, cls: type[BaseModel]) -> None:
        self.cls = cls
        self.ok = False
        self.convs: dict[str, _Conv] = {}
        self.unplanned: list[str] = []
        self.template: dict[str, Any] = {}
        self.factories: list[tuple[str, Callable[[], Any]]] = []
        self.required: frozenset[str] = frozenset()
        self.post_init = False

    def compile(self) -> None:
        cls = self.cls
        config = cls.model_config
        if not set(config) <= _PLAIN_CONFIG_KEYS or config.get("extra") not in (None, "ignore", "forbid"):
            return
        if cls.__pydantic_root_model__ or (cls.__private_attributes__ and not cls.__pydantic_post_init__):
            return
        if cls.__init__ is not BaseModel.__init__ and _qualified(cls) not in _AUDITED_INITS:
            return
        if getattr(cls.__get_pydantic_core_schema__, "__func__", None) is not getattr(
            BaseModel.__get_pydantic_core_schema__, "__func__", None
        ):
            return
        decorators = cls.__pydantic_decorators__
        if decorators.validators or decorators.root_validators:
            return
        empty_only: set[str] = set()
        funcs = [d.func for d in decorators.model_validators.values()]
        funcs += [d.func for d in decorators.field_validators.values()]
        for func in funcs:
            audited = _AUDITED_VALIDATORS.get(_qualified(func))
            if audited is None:
                return
            empty_only |= audited
        by_name = bool(config.get("populate_by_name") or config.get("validate_by_name"))
        bytes_ok = config.get("val_json_bytes") == "base64"
        for name, info in cls.model_fields.items():
            if not self._default(name, info):
                return
            conv = self._field(name, info, by_name, bytes_ok)
            if conv is None:
                self.unplanned.append(name)
            elif name in empty_only:
                self.convs[name] = _empty_dict
            else:
                self.convs[name] = conv
        self.post_init = cls.__pydantic_post_init__ is not None
        self.ok = True

    def _default(self, name: str, info: FieldInfo) -> bool:
        if info.default_factory is not None:
            if info.default_factory_takes_validated_data:
                return False
            self.template[name] = None
            self.factories.append((name, typing.cast(Callable[[], Any], info.default_factory)))
            return True
        if info.default is PydanticUndefined:
            self.template[name] = None  # required: build checks the key is present
            self.required |= {name}
            return True
        if not isinstance(info.default, _IMMUTABLE_DEFAULTS) or info.validate_default:
            return False
        self.template[name] = info.default
        return True

    @staticmethod
    def _field(name: str, info: FieldInfo, by_name: bool, bytes_ok: bool) -> _Conv | None:
        if info.metadata or info.discriminator is not None:
            return None
        if not by_name and (info.alias not in (None, name) or info.validation_alias not in (None, name)):
            return None
        return _converter(info.annotation, bytes_ok)

    def build(self, data: Any) -> Any:
        """The model instance validation would give for ``data``; _Fallback otherwise."""
        if not self.ok or type(data) is not dict:
            raise _Fallback
        convs = self.convs
        fields = self.template.copy()  # every field, in declaration order
        for key, raw in data.items():
            conv = convs.get(key)
            if conv is None or raw is None:
                raise _Fallback
            fields[key] = raw if conv is _identity else conv(raw)
        for name, factory in self.factories:
            if name not in data:
                fields[name] = factory()
        if self.required and not self.required <= data.keys():
            raise _Fallback
        cls = self.cls
        obj = cls.__new__(cls)
        _setattr(obj, "__dict__", fields)
        _setattr(obj, "__pydantic_extra__", None)
        _setattr(obj, "__pydantic_fields_set__", set(data))
        _setattr(obj, "__pydantic_private__", None)
        if self.post_init:
            obj.model_post_init(None)
        return obj


_setattr = object.__setattr__
_PLANS: dict[type[BaseModel], _ModelPlan] = {}


def _model_plan(cls: type[BaseModel]) -> _ModelPlan:
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _ModelPlan(cls)  # registered first: recursive models reuse it
        plan.compile()
    return plan


_EVENT_PLAN = _model_plan(Event)


def _reject_constant(token: str) -> Any:
    raise _Fallback


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # NaN/Infinity: validate instead


def fast_decode_event(body: str | bytes) -> Event | None:
    """The Event ``Event.model_validate_json(body)`` gives, or None: validate it instead.

    ``None`` also covers every malformed body, so errors always come from the
    validating path.
    """
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        # Escaped surrogates: pydantic's parser rejects lone ones (the caller then re-parses).
        if "\\ud" in text or "\\uD" in text:
            return None
        data = _DECODER.decode(text)
        event = _EVENT_PLAN.build(data)
    except (_Fallback, ValueError, TypeError, RecursionError, OverflowError):
        return None
    return typing.cast(Event, event)


def plan_coverage() -> dict[str, tuple[bool, list[str]]]:
    """For each model class reached so far: (has a plan, fields without one)."""
    return {_qualified(cls): (plan.ok, list(plan.unplanned)) for cls, plan in _PLANS.items()}
