"""Serialization: JSON with a format version, never pickle.

Events are stored as ``"1:" + <Event JSON>`` (pydantic, lossless: bytes travel
as base64).  State values are stored one JSON document per key, coerced to
JSON-safe values exactly like ADK's DatabaseSessionService does.

With compression or encryption configured (:class:`PayloadCodec`) a payload may
instead be the envelope ``"2:<flags>:<kid>:" + base64url(body)`` where flags is
``z`` (zlib), ``e`` (AES-GCM, key id ``kid``, see :mod:`adk_redis._core.crypto`) or
``ze``.  Readers accept every format (a plain JSON value never starts with
``2:``), so old and new records mix freely.  State *field names* (the state keys)
are never encrypted: only values are.
"""

from __future__ import annotations

import base64
import binascii
import gc
import json
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from google.adk.events.event import Event
from google.adk.sessions import _session_util
from pydantic import ValidationError

from ..errors import CorruptedDataError, InvalidInputError
from .event_decode import fast_decode_event

if TYPE_CHECKING:
    from ..config import RedisSettings
    from .crypto import Keyring

FORMAT_VERSION = 1
_GC_PAUSE_MIN = 64  # events per batch from which decode_events pauses the cyclic GC
_EVENT_TAG = f"{FORMAT_VERSION}:"


def text(value: bytes | str) -> str:
    """Decode a Redis reply element to str (clients may or may not decode)."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


def encode_event(event: Event) -> str:
    """Serialize an event for storage."""
    return _EVENT_TAG + _event_json(event)


def _event_json(event: Event) -> str:
    """The event's JSON; InvalidInputError when it cannot be stored (lone surrogates, too deep, ...)."""
    try:
        return event.model_dump_json(exclude_none=True)
    except (ValueError, TypeError, RecursionError) as exc:
        raise InvalidInputError(f"event {event.id!r} cannot be stored: {_why(exc)}") from None


def decode_event(payload: bytes | str, *, where: str) -> Event:
    """Deserialize a stored event; raise CorruptedDataError naming ``where``."""
    try:
        raw = text(payload)
    except UnicodeDecodeError:
        raise CorruptedDataError(f"{where}: stored event is not text") from None
    version, sep, body = raw.partition(":")
    if not sep or version != str(FORMAT_VERSION):
        raise CorruptedDataError(f"{where}: unknown event format {version[:16]!r}")
    return _parse_event(body, where)


def _parse_event(body: str | bytes, where: str) -> Event:
    # Common shapes are built directly (same result, several times faster); anything else,
    # malformed bodies included, is validated by pydantic.
    event = fast_decode_event(body)
    if event is not None:
        return event
    try:
        return Event.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.error_count()
    # pydantic's JSON parser stops at nesting depth ~200 while its serializer writes deeper
    # values (e.g. nested lists in a state delta): parse with the json module and validate.
    try:
        return Event.model_validate(json.loads(body))
    except (ValueError, TypeError, RecursionError):  # ValidationError is a ValueError
        raise CorruptedDataError(f"{where}: stored event is not valid ({errors} errors)") from None


def json_safe(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Split a state dict into app/user/session deltas, coerced to JSON-safe values.

    Raises:
      TypeError: a state key is not a str.
    """
    for key in state:
        if not isinstance(key, str):
            raise TypeError(f"state keys must be str, got {type(key).__name__}")
    try:
        return _session_util.extract_json_safe_state_delta(state)
    except (ValueError, TypeError, RecursionError) as exc:  # bytes that are not UTF-8, too deep, ...
        raise InvalidInputError(f"the state cannot be stored as JSON: {_why(exc)}") from None


def _why(exc: BaseException) -> str:
    """A short reason without the offending data (it may be huge or binary)."""
    if isinstance(exc, RecursionError):
        return "it is nested too deeply"
    return f"{type(exc).__name__}: {str(exc)[:120]}"


def _checked(field: str, encoded: str) -> None:
    """InvalidInputError unless the field name and its encoded value are valid Unicode (no lone
    surrogates, which cannot be sent as UTF-8)."""
    for what, value in (("state key", field), ("value of state key", encoded)):
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                name = field.encode("utf-8", "backslashreplace").decode()[:80]
                raise InvalidInputError(
                    f"the {what} {name!r} contains a lone surrogate: it is not valid Unicode text"
                ) from None


def _encode_field(field: str, value: Any, encode: Any) -> str:
    try:
        encoded: str = encode(value)
    except (ValueError, TypeError, RecursionError) as exc:
        name = field.encode("utf-8", "backslashreplace").decode()[:80]
        raise InvalidInputError(f"the value of state key {name!r} cannot be stored: {_why(exc)}") from None
    if not (encoded.isascii() and field.isascii()):
        _checked(field, encoded)
    return encoded


# What json.dumps(value, ensure_ascii=False, separators=(",", ":")) builds on every call.
_VALUE_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode_value(value: Any) -> str:
    """Encode one (already JSON-safe) state value."""
    return _VALUE_ENCODER.encode(value)


def decode_value(payload: bytes | str, *, where: str) -> Any:
    """Decode one stored state value."""
    try:
        return json.loads(payload)
    except (ValueError, TypeError):
        raise CorruptedDataError(f"{where}: stored state value is not JSON") from None


def flatten(mapping: dict[str, Any], field_prefix: str = "") -> list[str]:
    """``{k: v}`` -> ``[prefix+k, json(v), ...]`` for HSET-style arguments."""
    out: list[str] = []
    for key, value in mapping.items():
        field = field_prefix + key
        out.append(field)
        out.append(_encode_field(field, value, encode_value))
    return out


def decode_hash(pairs: dict[Any, Any] | list[Any], *, where: str) -> dict[str, Any]:
    """Decode a HGETALL reply (dict, or flat list from Lua) of JSON values."""
    items = pairs.items() if isinstance(pairs, dict) else zip(pairs[::2], pairs[1::2])
    return {text(k): decode_value(v, where=where) for k, v in items}


ENVELOPE_VERSION = 2
_ENVELOPE = f"{ENVELOPE_VERSION}:"
_EVENT_AAD = b"event|"
_VALUE_AAD = b"value|"


class PayloadCodec:
    """Event and state-value codec with optional compression and encryption.

    Without a keyring and without ``compress_min_bytes`` it writes exactly the
    plain formats above.  It always reads every format, but an encrypted
    record needs its key id in the keyring.

    Args:
      keyring: AES-GCM keys (``None``: write plaintext; encrypted records cannot be read).
      compress_min_bytes: zlib-compress payloads whose JSON is at least this
        many bytes (kept only when smaller); ``None`` disables compression.
    """

    def __init__(self, keyring: Keyring | None = None, compress_min_bytes: int | None = None) -> None:
        self.keyring = keyring
        self.compress_min_bytes = compress_min_bytes
        self.plain = keyring is None and compress_min_bytes is None

    @classmethod
    def from_settings(cls, settings: RedisSettings) -> PayloadCodec:
        """The codec ``REDIS_ENCRYPTION_KEYS`` / ``REDIS_COMPRESS_MIN_BYTES`` ask for."""
        keyring = None
        if settings.redis_encryption_keys is not None:
            from .crypto import Keyring, parse_keyring

            keyring = Keyring(parse_keyring(settings.redis_encryption_keys.get_secret_value()))
        return cls(keyring, settings.redis_compress_min_bytes)

    # -- envelope ----------------------------------------------------------------
    def _seal(self, data: bytes, kind: bytes) -> str | None:
        flags, kid = "", ""
        limit = self.compress_min_bytes
        if limit is not None and len(data) >= limit:
            packed = zlib.compress(data, 6)
            if len(packed) < len(data):
                data, flags = packed, "z"
        if self.keyring is not None:
            flags, kid = flags + "e", self.keyring.current
        if not flags:
            return None  # caller stores the plain format
        header = f"{_ENVELOPE}{flags}:{kid}:"
        if self.keyring is not None:
            # The header is authenticated (AAD) with the record kind: flags and key id cannot be
            # altered and an event cannot be passed off as a state value.
            data = self.keyring.encrypt(data, kind + header.encode())
        return header + base64.urlsafe_b64encode(data).decode("ascii")

    def _open(self, raw: str, kind: bytes, where: str) -> bytes:
        parts = raw.split(":", 3)
        if len(parts) != 4 or parts[1] not in ("z", "e", "ze"):
            raise CorruptedDataError(f"{where}: malformed envelope header {raw[:24]!r}")
        _, flags, kid, body = parts
        try:
            data = base64.b64decode(body.encode("ascii"), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise CorruptedDataError(f"{where}: envelope body is not base64") from None
        if "e" in flags:
            if self.keyring is None:
                raise CorruptedDataError(
                    f"{where}: stored record is encrypted (key id {kid[:32]!r}) but REDIS_ENCRYPTION_KEYS "
                    "is not configured"
                )
            header = f"{_ENVELOPE}{flags}:{kid}:"
            data = self.keyring.decrypt(kid, data, kind + header.encode(), where=where)
        if "z" in flags:
            try:
                data = zlib.decompress(data)
            except zlib.error:
                raise CorruptedDataError(f"{where}: compressed record is corrupt") from None
        return data

    # -- events ----------------------------------------------------------------------
    def encode_event(self, event: Event) -> str:
        """Serialize an event for storage (deterministic: equal events give equal payloads)."""
        body = _event_json(event)
        if self.plain:
            return _EVENT_TAG + body
        sealed = self._seal(body.encode("utf-8"), _EVENT_AAD)
        return _EVENT_TAG + body if sealed is None else sealed

    def decode_events(self, payloads: Sequence[bytes | str | None], *, where: str) -> list[Event]:
        """Decode a session's stored events in order; CorruptedDataError for a missing or bad one.

        A long batch runs with Python's cyclic garbage collector paused (events are
        acyclic, so nothing it could free piles up): decoding 1,000 events otherwise
        spends about a third of its time in collections triggered by the new objects.
        """
        pause = len(payloads) >= _GC_PAUSE_MIN and gc.isenabled()
        if pause:
            gc.disable()
        try:
            events = []
            for payload in payloads:
                if payload is None:
                    raise CorruptedDataError(f"{where}: an event record is missing")
                events.append(self.decode_event(payload, where=where))
            return events
        finally:
            if pause:
                gc.enable()

    def decode_event(self, payload: bytes | str, *, where: str) -> Event:
        """Deserialize a stored event of any format; CorruptedDataError naming ``where``."""
        if not _is_envelope(payload):
            return decode_event(payload, where=where)
        try:
            raw = text(payload)
        except UnicodeDecodeError:
            raise CorruptedDataError(f"{where}: stored event is not text") from None
        return _parse_event(self._open(raw, _EVENT_AAD, where), where)

    # -- state values --------------------------------------------------------------------
    def encode_value(self, value: Any) -> str:
        """Encode one (already JSON-safe) state value."""
        body = _VALUE_ENCODER.encode(value)
        if self.plain:
            return body
        sealed = self._seal(body.encode("utf-8"), _VALUE_AAD)
        return body if sealed is None else sealed

    def decode_value(self, payload: bytes | str, *, where: str) -> Any:
        """Decode one stored state value of any format."""
        if not _is_envelope(payload):
            return decode_value(payload, where=where)
        try:
            raw = text(payload)
        except UnicodeDecodeError:
            raise CorruptedDataError(f"{where}: stored state value is not text") from None
        return decode_value(self._open(raw, _VALUE_AAD, where), where=where)

    def flatten(self, mapping: dict[str, Any], field_prefix: str = "") -> list[str]:
        """``{k: v}`` -> ``[prefix+k, encoded(v), ...]`` (field names stay plaintext)."""
        if self.plain:
            return flatten(mapping, field_prefix)
        out: list[str] = []
        for key, value in mapping.items():
            field = field_prefix + key
            out.append(field)
            out.append(_encode_field(field, value, self.encode_value))
        return out

    def decode_hash(self, pairs: dict[Any, Any] | Sequence[Any], *, where: str) -> dict[str, Any]:
        """Decode a HGETALL reply (dict, or flat list from Lua) of encoded values."""
        items = pairs.items() if isinstance(pairs, dict) else zip(pairs[::2], pairs[1::2])
        return {text(k): self.decode_value(v, where=where) for k, v in items}


def _is_envelope(payload: bytes | str) -> bool:
    if isinstance(payload, bytes):
        return payload[:2] == b"2:"
    return isinstance(payload, str) and payload[:2] == "2:"


#: The plain codec (no compression, no encryption).
PLAIN = PayloadCodec()
