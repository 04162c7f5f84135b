"""Opaque list cursors for config partitions: a DynamoDB key, base64url JSON, checked on the way in."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from incident_engine.domain.errors import InvalidInput


def encode_cursor(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, partition: str) -> dict[str, Any] | None:
    """The key to resume after; a cursor from another list (another partition) is refused."""
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("cursor", "cursor is not one this API returned") from exc
    if (
        not isinstance(key, dict)
        or set(key) != {"pk", "sk"}
        or not all(isinstance(v, dict) and isinstance(v.get("S"), str) for v in key.values())
        or key["pk"]["S"] != partition
    ):
        raise InvalidInput("cursor", "cursor is not one this API returned")
    return key
