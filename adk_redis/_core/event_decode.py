"""Fast decoding of stored ADK events, indistinguishable from ``Event.model_validate_json``.

:func:`fast_decode_event` parses the body with pydantic-core's ``from_json`` (the
parser validation itself uses; :mod:`json` for what it refuses) and builds the
pydantic objects directly with per-class builders, generated once (see
:data:`_BUILDER`) from plans compiled from the models' own field definitions.
A plan only exists for shapes whose validation result is known exactly: plain
models (no validators other than the audited no-op ones in
:data:`_AUDITED_VALIDATORS`, no custom ``__init__`` except genai's ``Part``,
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
import re
import types as pytypes
import typing
from collections.abc import Callable
from typing import Any, Literal, Union

from google.adk.events.event import Event
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined, from_json

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
# A converter takes a non-``null`` JSON value and returns the validated value, or raises
# _Fallback.  Converters in :data:`_CHECK_ONLY` return their input unchanged when it has
# the given type (and raise otherwise), so a builder only compares the value's type.


def _identity(value: Any) -> Any:
    return value


def _reject(value: Any) -> Any:
    """A field without a plan."""
    raise _Fallback


def _present(value: Any) -> Any:
    """An ``Any`` field: every JSON value except ``null`` (``null`` always falls back)."""
    if value is None:
        raise _Fallback
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


def _any_list(value: Any) -> Any:
    if type(value) is not list:
        raise _Fallback
    return value


def _any_dict(value: Any) -> Any:
    if type(value) is not dict:
        raise _Fallback
    return value


_CHECK_ONLY: dict[_Conv, type] = {_str: str, _bool: bool, _int: int, _any_list: list, _any_dict: dict}


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
        return _any_list
    kind = _CHECK_ONLY.get(item)
    if kind is not None:

        def conv_checked(value: Any) -> Any:  # the JSON list itself, once its items are checked
            if type(value) is not list:
                raise _Fallback
            for v in value:
                if type(v) is not kind:
                    raise _Fallback
            return value

        return conv_checked

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
        return _any_dict
    kind = _CHECK_ONLY.get(item)

    def conv(value: Any) -> Any:  # the JSON dict itself, its values checked or converted in place
        if type(value) is not dict:
            raise _Fallback
        if kind is None:
            for k, v in value.items():
                value[k] = item(v)
        else:
            for v in value.values():
                if type(v) is not kind:
                    raise _Fallback
        return value

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
        inner = _converter(_non_null(annotation), bytes_ok) if len(args) == 2 else None
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
            return _model_plan(annotation).converter()
    return None


def _non_null(annotation: Any) -> Any:
    """``X`` for ``Optional[X]``; ``annotation`` itself for anything else."""
    origin = typing.get_origin(annotation)
    if origin is Union or origin is pytypes.UnionType:
        args = typing.get_args(annotation)
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            return rest[0]
    return annotation


# -- model plans ----------------------------------------------------------------------------


class _AlwaysConvert:
    """No JSON value has this type: a field expecting it always goes through its converter."""


# The builder generated for each planned class.  ``fields`` becomes the instance's
# ``__dict__``: the template copy has every field in declaration order with its default,
# ``update`` puts the JSON values in their places (a key that is no field name makes it
# longer).  A value whose type is the field's ``expect`` type is valid as it is (checked
# strings, booleans, ints, ``dict[str, Any]``...); any other goes through the field's
# converter, which returns the validated value or raises _Fallback (``null``, a wrong
# type, a field without a plan).  Then the default factories of absent fields, the
# required keys, and the four slots validation sets, as pydantic-core sets them.
_BUILDER = """\
def build(data, /):
    if type(data) is not dict:
        raise _Fallback
    fields = copy_template()
    fields.update(data)
    if len(fields) != n_fields:
        raise _Fallback
    for key, value in data.items():
        if type(value) is not expect[key]:
            fields[key] = convert[key](value)
{factories}{required}    obj = new(cls)
    set_dict(obj, fields)
    set_fields_set(obj, set(data))
    set_extra(obj, None)
    set_private(obj, None)
{post_init}    return obj
"""
_FACTORY = "    if {name!r} not in data:\n        fields[{name!r}] = factories[{name!r}]()\n"
_REQUIRED = "    if not required <= data.keys():\n        raise _Fallback\n"
_POST_INIT = "    post_init(obj, None)\n"


def _slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    """The ``__set__`` of the data descriptor ``object.__setattr__(obj, name, v)`` uses."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return typing.cast(Callable[[Any, Any], None], vars(klass)[name].__set__)
    raise AttributeError(name)


class _ModelPlan:
    """How to build one model class from a JSON object of its field names."""

    def __init__(self, cls: type[BaseModel]) -> None:
        self.cls = cls
        self.ok = False
        self.convs: dict[str, _Conv] = {}
        self.unplanned: list[str] = []
        self.template: dict[str, Any] = {}
        self.factories: dict[str, Callable[[], Any]] = {}
        self.required: frozenset[str] = frozenset()
        self.post_init: Callable[[Any, Any], None] | None = None
        self.build: _Conv = _reject  # the generated builder, once compiled
        self.source = ""
        self.compiling = False

    def converter(self) -> _Conv:
        """The builder; a trampoline to it while the plan compiles (a recursive model)."""
        if self.compiling:
            return lambda data: self.build(data)
        return self.build

    def compile(self) -> None:
        self.compiling = True
        try:
            self._plan()
            if self.ok:
                self._generate()
        finally:
            self.compiling = False

    def _plan(self) -> None:
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
        if cls.__pydantic_post_init__:
            post_init = cls.model_post_init
            if not isinstance(post_init, pytypes.FunctionType):
                return
            self.post_init = post_init
        by_name = bool(config.get("populate_by_name") or config.get("validate_by_name"))
        bytes_ok = config.get("val_json_bytes") == "base64"
        for name, info in cls.model_fields.items():
            if not self._default(name, info):
                return
            conv = self._field(name, info, by_name, bytes_ok)
            if conv is None:
                self.unplanned.append(name)
                self.convs[name] = _reject
            elif name in empty_only:
                self.convs[name] = _empty_dict
            else:
                self.convs[name] = _present if conv is _identity else conv
        self.ok = True

    def _generate(self) -> None:
        cls = self.cls
        self.source = _BUILDER.format(
            factories="".join(_FACTORY.format(name=name) for name in self.factories),
            required=_REQUIRED if self.required else "",
            post_init=_POST_INIT if self.post_init else "",
        )
        namespace: dict[str, Any] = {
            "_Fallback": _Fallback,
            "copy_template": self.template.copy,
            "n_fields": len(self.template),
            "expect": {name: _CHECK_ONLY.get(conv, _AlwaysConvert) for name, conv in self.convs.items()},
            "convert": dict(self.convs),
            "factories": dict(self.factories),
            "required": self.required,
            "new": cls.__new__,
            "cls": cls,
            "set_dict": _slot_setter(cls, "__dict__"),
            "set_fields_set": _slot_setter(cls, "__pydantic_fields_set__"),
            "set_extra": _slot_setter(cls, "__pydantic_extra__"),
            "set_private": _slot_setter(cls, "__pydantic_private__"),
            "post_init": self.post_init,
        }
        exec(compile(self.source, f"<builder {_qualified(cls)}>", "exec"), namespace)  # noqa: S102
        self.build = namespace["build"]

    def _default(self, name: str, info: FieldInfo) -> bool:
        if info.default_factory is not None:
            if info.default_factory_takes_validated_data:
                return False
            self.template[name] = None
            self.factories[name] = typing.cast(Callable[[], Any], info.default_factory)
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
        """The converter of a present, non-``null`` value (``null`` falls back before it)."""
        if info.metadata or info.discriminator is not None:
            return None
        if not by_name and (info.alias not in (None, name) or info.validation_alias not in (None, name)):
            return None
        return _converter(_non_null(info.annotation), bytes_ok)


_PLANS: dict[type[BaseModel], _ModelPlan] = {}


def _model_plan(cls: type[BaseModel]) -> _ModelPlan:
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _ModelPlan(cls)  # registered first: recursive models reuse it
        plan.compile()
    return plan


_EVENT_BUILD = _model_plan(Event).build


def _reject_constant(token: str) -> Any:
    raise _Fallback


# The second parser, for what pydantic's own (``from_json``, the jiter parser validation
# uses) refuses: nesting deeper than its limit of 200 (the validating path re-parses such
# bodies with json too).  NaN/Infinity: validate instead.  ``scan_once`` is what
# ``decode`` runs after skipping whitespace (a body with some validates instead).
_SCAN: Callable[[str, int], tuple[Any, int]]
_SCAN = json.JSONDecoder(parse_constant=_reject_constant).scan_once  # type: ignore[attr-defined]

# A ``\uD800``-``\uDFFF`` escape; not ``\\uD800`` (an escaped backslash, then ``uD800``).
_SURROGATE_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u[dD][89a-fA-F]")


def fast_decode_event(body: str | bytes) -> Event | None:
    """The Event ``Event.model_validate_json(body)`` gives, or None: validate it instead.

    ``None`` also covers every malformed body, so errors always come from the
    validating path.
    """
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        # Escaped surrogates: pydantic's parser rejects lone ones (the caller then re-parses).
        if "\\u" in text and _SURROGATE_ESCAPE.search(text):
            return None
        try:
            data = from_json(text, allow_inf_nan=False)
        except ValueError:
            data, end = _SCAN(text, 0)
            if end != len(text):
                return None
        event = _EVENT_BUILD(data)
    except (_Fallback, ValueError, TypeError, RecursionError, OverflowError, StopIteration):
        return None
    return typing.cast(Event, event)


def plan_coverage() -> dict[str, tuple[bool, list[str]]]:
    """For each model class reached so far: (has a plan, fields without one)."""
    return {_qualified(cls): (plan.ok, list(plan.unplanned)) for cls, plan in _PLANS.items()}
