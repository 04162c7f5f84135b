"""Strict reading of untrusted JSON, shared by the source parsers.

Every getter checks the type it was asked for and raises ``Invalid`` naming the field's path;
parsers catch ``Invalid`` at their edge and answer ``Rejected``. Nothing here trusts a size, a
depth or a character it has not checked.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from incident_engine.domain.alerts import (
    MAX_DEPTH,
    MAX_DESCRIPTION,
    MAX_DETAILS_BYTES,
    MAX_LABEL_KEY,
    MAX_LABEL_VALUE,
    MAX_LABELS,
    MAX_LINK_TEXT,
    MAX_LINKS,
    MAX_RAW_BYTES,
    MAX_URL,
    RAW_HEAD_BYTES,
    Link,
    Rejected,
    clean_line,
    clean_text,
    has_control,
)

MAX_INT = 10**38  # DynamoDB's numbers hold 38 digits; larger ones are no alert's business


class Invalid(Exception):
    """One bad field. Internal to the parsers: they turn it into ``Rejected``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def rejected(self) -> Rejected:
        return Rejected.of(self.field, self.message)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to infinity
        raise ValueError(f"{text} is out of range")
    return value


def loads(text: str) -> Any:
    """json.loads with NaN, Infinity and overflowing numbers refused."""
    return json.loads(text, parse_constant=_reject_constant, parse_float=_finite)


def decode_body(body: str | bytes | None, max_bytes: int, field: str = "body") -> object:
    """A request body as JSON: bounded in bytes and depth, NaN/Infinity refused."""
    if body is None:
        raise Invalid(field, "is missing")
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    if len(raw) > max_bytes:
        raise Invalid(field, f"is too large (maximum is {max_bytes // 1024} KB)")
    try:
        text = raw.decode("utf-8")
        value = loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Invalid(field, "is not valid JSON") from None
    check_depth(value, field)
    return value


def check_depth(value: object, field: str, max_depth: int = MAX_DEPTH) -> None:
    """Iterative, so a hostile depth cannot exhaust the stack of the check itself."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= max_depth:
                raise Invalid(field, f"is nested too deeply (maximum depth is {max_depth})")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def sanitize_json(value: object, field: str) -> Any:
    """A copy safe to store and re-encode: lone surrogates replaced, non-finite numbers refused."""
    check_depth(value, field)
    return _sanitize(value, field)


def _sanitize(value: object, field: str) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if abs(value) >= MAX_INT:
            raise Invalid(field, "contains a number too large to store")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Invalid(field, "contains a number that is not finite")
        return value
    if isinstance(value, dict):
        return {_sanitize(str(k), field): _sanitize(v, f"{field}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_sanitize(v, f"{field}[{i}]") for i, v in enumerate(value)]
    raise Invalid(field, "is not JSON")


def bounded_raw(value: object) -> dict[str, Any]:
    """The source payload to keep: itself (sanitized) when small, else its head as text, marked."""
    try:
        clean = sanitize_json(value, "raw")
    except Invalid:
        return {"_unserializable": True}
    return _bounded(clean, MAX_RAW_BYTES)


def bounded_details(details: dict[str, Any], field: str) -> dict[str, Any]:
    """Custom details: sanitized (``Invalid`` if they cannot be), and cut to their head when large."""
    return _bounded(sanitize_json(details, field), MAX_DETAILS_BYTES)


def _bounded(clean: Any, limit: int) -> dict[str, Any]:
    encoded = json.dumps(clean, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    if len(encoded) <= limit and isinstance(clean, dict):
        return clean
    head = encoded[:RAW_HEAD_BYTES].decode("utf-8", "ignore")  # "ignore": a character cut in two
    return {"_truncated": True, "_bytes": len(encoded), "_head": head}


class Obj:
    """A JSON object found at ``path``; getters check types and name ``path.key`` when wrong."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, dict):
            raise Invalid(path or "body", "must be a JSON object")
        self.data: dict[str, Any] = data
        self.path = path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def string(self, key: str, limit: int, *, required: bool = False) -> str | None:
        """A string, or None when absent or null (JSON null means absent for optional fields)."""
        value = self.data.get(key)
        if value is None:
            if required:
                raise Invalid(self.at(key), "is missing")
            return None
        if not isinstance(value, str):
            raise Invalid(self.at(key), "must be a string")
        if len(value) > limit:
            raise Invalid(self.at(key), f"is too long (maximum is {limit} characters)")
        return value

    def text(self, key: str, limit: int) -> str:
        """A required, non-blank string."""
        value = self.string(key, limit, required=True)
        assert value is not None
        if not value.strip():
            raise Invalid(self.at(key), "is blank")
        return value

    def identity(self, key: str, limit: int, *, required: bool = False) -> str | None:
        """An identity string (a key, an ARN): printable as it is, never blank."""
        value = self.string(key, limit, required=required)
        if value is None:
            return None
        if not value.strip():
            raise Invalid(self.at(key), "is blank")
        if has_control(value):
            raise Invalid(self.at(key), "must not contain control characters or line breaks")
        return value

    def child(self, key: str, *, required: bool = False) -> Obj | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise Invalid(self.at(key), "is missing")
            return None
        return Obj(value, self.at(key))

    def array(self, key: str, limit: int, *, required: bool = False) -> list[Any]:
        value = self.data.get(key)
        if value is None:
            if required:
                raise Invalid(self.at(key), "is missing")
            return []
        if not isinstance(value, list):
            raise Invalid(self.at(key), "must be an array")
        if len(value) > limit:
            raise Invalid(self.at(key), f"has too many items (maximum is {limit})")
        return value

    def number(self, key: str) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Invalid(self.at(key), "must be a number")
        if isinstance(value, int) and abs(value) >= MAX_INT:
            raise Invalid(self.at(key), "is too large")
        return float(value)

    def mapping(self, key: str, *, required: bool = False, prose: bool = False) -> dict[str, str]:
        """Labels, annotations, tags: string keys to string values, bounded; values cleaned."""
        node = self.child(key, required=required)
        return {} if node is None else string_map(node.data, node.path, prose=prose)

    def timestamp(self, key: str) -> datetime | None:
        return parse_time(self.string(key, 64), self.at(key))


def string_map(
    data: Mapping[str, Any], path: str, limit: int = MAX_LABELS, *, prose: bool = False
) -> dict[str, str]:
    """Label values become one line; prose values (annotations) keep their line breaks."""
    if len(data) > limit:
        raise Invalid(path, f"has too many entries (maximum is {limit})")
    out: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_LABEL_KEY or has_control(key):
            shown = clean_line(str(key), 64)
            raise Invalid(
                f"{path}.{shown}", f"is not a valid key (1 to {MAX_LABEL_KEY} printable characters)"
            )
        if not isinstance(value, str):
            raise Invalid(f"{path}.{key}", "must be a string")
        out[key] = clean_text(value, MAX_DESCRIPTION) if prose else clean_line(value, MAX_LABEL_VALUE)
    return out


def parse_time(text: str | None, field: str) -> datetime | None:
    """ISO 8601 / RFC 3339 as senders write it (``Z``, ``+0000``, nanoseconds), in UTC."""
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text.strip())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise Invalid(field, "is not an ISO 8601 timestamp") from None


def link(href: str | None, text: str | None) -> Link | None:
    """A link only when its href is an http(s) URL of sane length; anything else is dropped."""
    if href is None or len(href) > MAX_URL or has_control(href):
        return None
    if not href.lower().startswith(("https://", "http://")):
        return None
    return Link(href, clean_line(text, MAX_LINK_TEXT) if text else None)


def links(*candidates: Link | None) -> tuple[Link, ...]:
    seen: dict[str, Link] = {}
    for candidate in candidates:
        if candidate is not None and candidate.href not in seen:
            seen[candidate.href] = candidate
    return tuple(seen.values())[:MAX_LINKS]
