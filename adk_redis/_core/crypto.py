"""Encryption at rest: an AES-GCM key ring with key ids (rotation) and deterministic nonces.

``REDIS_ENCRYPTION_KEYS="kid1:<base64 key>,kid0:<base64 old key>"``: the first
key encrypts, every key decrypts (records name their key id).  Keys are 16, 24
or 32 bytes (AES-128/192/256).  The ``cryptography`` package is needed only
when keys are configured (``pip install adk-redis-store[crypto]``).

Nonces are derived, not random: ``nonce = HMAC-SHA256(mac_key, aad || plaintext)[:12]``
with ``mac_key`` derived from the key (SIV-like construction).  Equal plaintexts
under the same key therefore give equal ciphertexts, which the append script's
idempotency check needs (it compares the stored payload of an event id with the
re-delivered one).  A nonce repeats only for an identical (aad, plaintext), where
it re-creates the identical ciphertext and leaks nothing but the equality; for
distinct plaintexts a repeat needs an HMAC collision on 96 bits (birthday bound
~2**48 records per key).  What leaks: which stored payloads are equal.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import CorruptedDataError

_KID_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")
_NONCE_LEN = 12
_MAC_INFO = b"adk_redis/gcm-nonce/v1"


class KeyringError(ValueError):
    """An invalid key specification (the message never contains key material)."""


def parse_keyring(spec: str) -> list[tuple[str, bytes]]:
    """Parse ``"kid:base64key,..."``; raise :class:`KeyringError` (without key material)."""
    out: list[tuple[str, bytes]] = []
    for n, item in enumerate(p.strip() for p in spec.split(",")):
        if not item:
            continue
        kid, sep, b64 = item.partition(":")
        kid = kid.strip()
        if not sep or not _KID_RE.match(kid):
            raise KeyringError(
                f"entry {n + 1}: expected '<key id>:<base64 key>', key id of 1-32 letters, digits, '_.-'"
            )
        b64 = b64.strip()
        try:  # standard or URL-safe alphabet, padding optional
            std = b64.replace("-", "+").replace("_", "/")
            raw = base64.b64decode(std + "=" * (-len(std) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise KeyringError(f"key {kid!r}: not valid base64") from None
        if len(raw) not in (16, 24, 32):
            raise KeyringError(f"key {kid!r}: decodes to {len(raw)} bytes; AES needs 16, 24 or 32")
        if any(k == kid for k, _ in out):
            raise KeyringError(f"key id {kid!r} appears twice")
        out.append((kid, raw))
    if not out:
        raise KeyringError("no keys given")
    return out


@dataclass(frozen=True)
class _Key:
    kid: str
    aead: Any = field(repr=False)
    mac_key: bytes = field(repr=False)


class Keyring:
    """AES-GCM keys by id; ``keys[0]`` encrypts."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise KeyringError("no keys given")
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError:  # pragma: no cover - depends on the installation
            raise ImportError(
                "REDIS_ENCRYPTION_KEYS needs the 'cryptography' package: pip install adk-redis-store[crypto]"
            ) from None
        self._keys = {
            kid: _Key(kid, AESGCM(raw), hmac.new(raw, _MAC_INFO, hashlib.sha256).digest())
            for kid, raw in keys
        }
        self.current = keys[0][0]

    def __repr__(self) -> str:
        return f"Keyring(current={self.current!r}, kids={sorted(self._keys)!r})"

    @property
    def kids(self) -> list[str]:
        """Known key ids."""
        return list(self._keys)

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        """``nonce || ciphertext || tag`` under the current key (deterministic, see module doc)."""
        key = self._keys[self.current]
        nonce = hmac.new(key.mac_key, aad + b"\x00" + plaintext, hashlib.sha256).digest()[:_NONCE_LEN]
        return nonce + bytes(key.aead.encrypt(nonce, plaintext, aad))

    def decrypt(self, kid: str, blob: bytes, aad: bytes, *, where: str) -> bytes:
        """Decrypt a record of key ``kid``; :class:`CorruptedDataError` naming ``where`` on failure."""
        from cryptography.exceptions import InvalidTag

        key = self._keys.get(kid)
        if key is None:
            raise CorruptedDataError(
                f"{where}: stored record is encrypted with key id {kid[:32]!r}, which is not configured "
                "(REDIS_ENCRYPTION_KEYS)"
            )
        if len(blob) < _NONCE_LEN + 16:
            raise CorruptedDataError(f"{where}: encrypted record is truncated")
        try:
            return bytes(key.aead.decrypt(blob[:_NONCE_LEN], blob[_NONCE_LEN:], aad))
        except InvalidTag:
            raise CorruptedDataError(
                f"{where}: cannot decrypt stored record with key id {kid!r} (wrong key or tampered data)"
            ) from None
