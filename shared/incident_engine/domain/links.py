"""One-click action links in pages: signed, bound to one incident, one recipient, one action.

A person woken at 3 AM has a phone, not an API token. Each page carries a link to acknowledge and
one to resolve; following one shows a confirmation page (mail scanners follow links, so a GET never
acts), and confirming it acts as that recipient. Pure: the signature comes from a callable.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

ACTIONS = {"ack": "acknowledge", "res": "resolve"}
PURPOSE = "action-link"
DEFAULT_TTL = timedelta(hours=24)


@dataclass(frozen=True)
class ActionLink:
    incident_id: str
    recipient: str
    action: str  # "acknowledge" | "resolve"
    expires_at: datetime


class LinkRefused(Exception):
    """Why a link cannot act: ``reason`` is "tampered" or "expired"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(link: ActionLink, sign: Callable[[bytes], bytes]) -> str:
    short = {v: k for k, v in ACTIONS.items()}[link.action]
    payload = json.dumps(
        {"i": link.incident_id, "r": link.recipient, "a": short, "e": int(link.expires_at.timestamp())},
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    return f"{_b64(payload)}.{_b64(sign(payload))}"


def decode(token: str, verify: Callable[[bytes, bytes], bool], now: datetime) -> ActionLink:
    if len(token) > 2_048:
        raise LinkRefused("tampered")
    try:
        body, mac = token.split(".")
        payload, signature = _unb64(body), _unb64(mac)
    except (ValueError, binascii.Error):
        raise LinkRefused("tampered") from None
    if not verify(payload, signature):
        raise LinkRefused("tampered")
    data = json.loads(payload)  # ours: we signed it
    link = ActionLink(
        incident_id=str(data["i"]),
        recipient=str(data["r"]),
        action=ACTIONS[data["a"]],
        expires_at=datetime.fromtimestamp(int(data["e"]), tz=UTC),
    )
    if now >= link.expires_at:
        raise LinkRefused("expired")
    return link


@dataclass(frozen=True)
class LinkMaker:
    """What the engine asks for each recipient of a page: (acknowledge URL, resolve URL)."""

    base_url: str
    sign: Callable[[bytes], bytes]
    ttl: timedelta = DEFAULT_TTL

    def for_recipient(self, incident_id: str, recipient: str, now: datetime) -> tuple[str, str]:
        expires = now + self.ttl
        base = self.base_url.rstrip("/")
        return tuple(  # type: ignore[return-value]
            f"{base}/a/{encode(ActionLink(incident_id, recipient, action, expires), self.sign)}"
            for action in ("acknowledge", "resolve")
        )
