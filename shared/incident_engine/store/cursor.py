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


def decode_cursor(cursor: str | None, partition: str, after_sk: str | None = None) -> dict[str, Any] | None:
    """The key to resume after. A cursor from another list (another partition), or outside the
    query's sort-key range (``> after_sk``), is refused: DynamoDB would answer it with an error."""
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
        or len(key["sk"]["S"].encode()) > 1024  # DynamoDB's limit for a sort key
        or (after_sk is not None and key["sk"]["S"] <= after_sk)
    ):
        raise InvalidInput("cursor", "cursor is not one this API returned")
    return key
