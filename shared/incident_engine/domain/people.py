"""Users and teams: who can be paged, and how each of them wants to be reached."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

ContactType = Literal["email", "sms", "webhook", "slack"]
# The channels SNS delivers itself, through a subscription per contact method.
SUBSCRIBED_CHANNELS: frozenset[str] = frozenset({"email", "sms"})


@dataclass(frozen=True)
class ContactMethod:
    type: ContactType
    address: str
    delay_minutes: float = 0  # a personal rule: reach this method this long after the page
    # E-mail and SMS: the method's subscription to the notifications topic, and its state
    # (pending_confirmation | confirmed | unsubscribed | unknown).
    subscription_arn: str | None = None
    subscription_status: str | None = None


@dataclass(frozen=True)
class User:
    id: str
    name: str
    email: str
    time_zone: str
    contact_methods: tuple[ContactMethod, ...] = ()
    enabled: bool = True
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = 1


@dataclass(frozen=True)
class Team:
    id: str
    name: str
    members: tuple[str, ...]  # user ids, in the order given
    enabled: bool = True
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = 1


@dataclass(frozen=True)
class Reference:
    """Where a piece of configuration is named by another (why it may not be disabled yet)."""

    kind: Literal["team", "schedule", "override", "policy"]
    id: str
    name: str
    field: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "id": self.id, "name": self.name, "field": self.field}
