"""One way to write and read times: ISO 8601 in UTC with a trailing Z."""

from __future__ import annotations

from datetime import UTC, datetime


def to_iso(at: datetime) -> str:
    """Millisecond precision: what the API shows."""
    return (
        at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.astimezone(UTC).microsecond // 1000:03d}Z"
    )


def to_key(at: datetime) -> str:
    """Microsecond precision, fixed width, so strings sort as times do (sort keys, GSI keys)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
