"""Users and teams: who can be paged, and how each of them wants to be reached."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

ContactType = Literal["email", "sms", "webhook", "slack"]


@dataclass(frozen=True)
class ContactMethod:
    type: ContactType
    address: str
    delay_minutes: float = 0  # a personal rule: reach this method this long after the page


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
