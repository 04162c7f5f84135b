"""HMAC-SHA256 signing under one random key kept in the config table, and signed list cursors.

Why a stored random key rather than a deploy parameter: nothing secret goes into the template or
samconfig, and it works the same on AWS, on the local stack and in tests. The first process that
needs the key creates it with a put-if-absent; every other process (and the loser of that race)
reads the winner's. Each process caches it, so signing costs one GetItem per cold start. The key is
encrypted at rest by the table's SSE and never logged. Rotating it (delete the item) invalidates
outstanding cursors, which clients recover from by starting the list again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError

from incident_engine.domain.errors import InvalidInput
from incident_engine.store.models import SIGNING_KEY_PK, SIGNING_KEY_SK, SigningKeyItem
from incident_engine.usecases.ports import Signer


class ConfigTableSigner:
    """A `Signer` whose key lives in the config table (see the module docstring for why)."""

    def __init__(self) -> None:
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def sign(self, purpose: str, payload: bytes) -> bytes:
        # The purpose is length-prefixed so no (purpose, payload) pair can pose as another.
        message = len(purpose).to_bytes(2, "big") + purpose.encode() + payload
        return hmac.new(self._secret(), message, hashlib.sha256).digest()

    def verify(self, purpose: str, payload: bytes, signature: bytes) -> bool:
        return hmac.compare_digest(self.sign(purpose, payload), signature)

    def _secret(self) -> bytes:
        if self._key is None:
            with self._lock:
                if self._key is None:
                    self._key = self._load_or_create()
        return self._key

    @staticmethod
    def _load_or_create() -> bytes:
        try:
            return bytes.fromhex(
                SigningKeyItem.get(SIGNING_KEY_PK, SIGNING_KEY_SK, consistent_read=True).secret
            )
        except DoesNotExist:
            pass
        item = SigningKeyItem(SIGNING_KEY_PK, SIGNING_KEY_SK, secret=secrets.token_hex(32))
        try:
            item.save(condition=SigningKeyItem.pk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            # Another process created it between our read and our write: use theirs.
            item = SigningKeyItem.get(SIGNING_KEY_PK, SIGNING_KEY_SK, consistent_read=True)
        return bytes.fromhex(item.secret)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    """Opaque list cursors: a position (string fields only) as base64 JSON plus its HMAC.

    Each list signs under its own purpose (e.g. one incident's timeline), so a cursor is only
    accepted by the list that issued it; a forged, tampered or transplanted one is bad input
    naming `cursor`, never a 500.
    """

    def __init__(self, signer: Signer) -> None:
        self._signer = signer

    def encode(self, purpose: str, position: dict[str, str] | None) -> str | None:
        if not position:
            return None
        payload = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
        return f"{_b64(payload)}.{_b64(self._signer.sign('cursor:' + purpose, payload))}"

    def decode(self, purpose: str, cursor: str | None, fields: frozenset[str]) -> dict[str, str] | None:
        if not cursor:
            return None
        try:
            body, mac = cursor.split(".")
            payload, signature = _unb64(body), _unb64(mac)
        except (ValueError, binascii.Error) as exc:
            raise _rejected() from exc
        if not self._signer.verify("cursor:" + purpose, payload, signature):
            raise _rejected()
        try:
            position: Any = json.loads(payload)
        except ValueError as exc:  # cannot happen for a cursor we signed; kept as a guard
            raise _rejected() from exc
        if (
            not isinstance(position, dict)
            or set(position) != fields
            or not all(isinstance(v, str) for v in position.values())
        ):
            raise _rejected()
        return position


def _rejected() -> InvalidInput:
    return InvalidInput("cursor", "cursor is not one this list returned")
