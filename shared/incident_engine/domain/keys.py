"""Client-supplied values inside DynamoDB keys, bounded whatever a client sends.

A sort key holds at most 1,024 bytes and a partition key 2,048, while a recipient address or a
dedup key can be long, multibyte or odd. Short printable values stay readable in the key; any
other becomes a stable hash of itself, so the same value always maps to the same key.
"""

from __future__ import annotations

import hashlib

MAX_READABLE_BYTES = 200  # leaves room for the prefix and suffixes around a part in every key


def key_part(value: str) -> str:
    raw = value.encode("utf-8", "surrogatepass")
    if len(raw) <= MAX_READABLE_BYTES and value.isprintable():
        return value
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def dedup_scope(service_id: str | None, dedup_key: str) -> str:
    """At most one active incident per (service, dedup key): the key as its service sees it.

    The separator is a control character, which no accepted dedup key contains, so two scopes
    can never spell the same string."""
    return f"{service_id}\x1f{dedup_key}" if service_id else dedup_key
