"""Heartbeats: a job pings every ``interval_minutes``; a missed interval opens an incident on its
service and the next ping resolves it.

Pure state changes, like ``engine.py`` for incidents. A heartbeat carries a fencing ``token`` and
the ``due_at`` of the one timer that may act on it (the timer protocol of DESIGN.md): every ping,
edit or disable replaces the token, so a timer armed before it is stale and does nothing.

A heartbeat's incident side (open on a miss, resolved on recovery) goes through alert ingest, a
separate transaction. So the heartbeat records what the incident side must become (``status`` and
``outage_since``) and ``synced`` says whether that was carried out; until it is, ``due_at`` stays
near, and the reconciler's due index brings the work back after a crash. Carrying it out is
idempotent (``needs_incident``): an outage has its incident once, whoever does the work.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from incident_engine.domain.alerts import Alert, AlertAction, Integration

MIN_INTERVAL_MINUTES = 1  # the reconciler ticks every minute; a shorter interval could not be kept
MAX_INTERVAL_MINUTES = 7 * 24 * 60  # a weekly job; longer is a calendar, not a heartbeat
# Incidents are stamped by other functions' clocks: an incident created this much before the
# outage was recorded still counts as its incident, so a small clock skew never opens a second.
CLOCK_SKEW = timedelta(seconds=2)


class HeartbeatStatus(StrEnum):
    UP = "up"  # pinged within its interval (or not yet due)
    DOWN = "down"  # missed its deadline; an incident is open (or being opened) for it


def new_token() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True)
class HeartbeatTimer:
    """The timer message of a heartbeat: fires at its deadline, or to finish unsynced work."""

    heartbeat_id: str
    token: str
    due_at: datetime


@dataclass(frozen=True)
class Heartbeat:
    id: str
    name: str
    service_id: str
    interval_minutes: int
    enabled: bool
    created_at: datetime
    updated_at: datetime
    version: int
    status: HeartbeatStatus = HeartbeatStatus.UP
    deadline: datetime | None = None  # the next ping is expected before this (None when disabled)
    token: str | None = None
    due_at: datetime | None = None  # the armed timer's due time; in the sparse due index while set
    last_ping_at: datetime | None = None
    missed_at: datetime | None = None  # the deadline the current (or last) outage missed
    outage_since: datetime | None = None  # when the open outage was recorded; None once recovered
    synced: bool = True  # the incident side matches status/outage_since
    recovered_at: datetime | None = None  # the ping that ended the outage being synced
    incident_id: str | None = None  # the last incident a miss opened

    @property
    def interval(self) -> timedelta:
        return timedelta(minutes=self.interval_minutes)

    @property
    def dedup_key(self) -> str:
        """One incident per outage of this heartbeat: the same path as any alert's dedup key."""
        return dedup_key(self.id)

    def timer(self) -> HeartbeatTimer | None:
        if self.token is None or self.due_at is None:
            return None
        return HeartbeatTimer(self.id, self.token, self.due_at)


def dedup_key(heartbeat_id: str) -> str:
    return f"heartbeat/{heartbeat_id}"


def _bump(hb: Heartbeat, now: datetime, **fields: Any) -> Heartbeat:
    return replace(hb, updated_at=now, version=hb.version + 1, **fields)


def _armed(hb: Heartbeat, now: datetime, **fields: Any) -> Heartbeat:
    """A new token, due at the deadline, or at once while the incident side is behind."""
    changed = replace(hb, **fields)
    due = (changed.deadline if changed.synced else now) if changed.enabled else None
    if changed.status is HeartbeatStatus.DOWN and changed.synced:
        due = None  # down and recorded: only a ping moves it now
    return _bump(changed, now, token=new_token(), due_at=due)


def create(hb_id: str, name: str, service_id: str, interval_minutes: int, now: datetime) -> Heartbeat:
    """Armed at once: a job that never pings is caught one interval after it was declared."""
    hb = Heartbeat(hb_id, name, service_id, interval_minutes, True, now, now, 0)
    return _armed(hb, now, deadline=now + hb.interval)


def edit(hb: Heartbeat, name: str, interval_minutes: int, now: datetime) -> Heartbeat:
    """A new interval counts from the last ping (or creation); the old timer becomes stale."""
    since = hb.last_ping_at or hb.created_at
    deadline = since + timedelta(minutes=interval_minutes)
    return _armed(hb, now, name=name, interval_minutes=interval_minutes, deadline=deadline)


def disable(hb: Heartbeat, now: datetime) -> Heartbeat:
    """Never erased: disabled, its timer made stale and out of the due index."""
    return _bump(hb, now, enabled=False, token=new_token(), due_at=None, deadline=None)


def ping(hb: Heartbeat, now: datetime) -> Heartbeat:
    """A ping re-arms the deadline with a new token. It ends an outage; one whose deadline passed
    with no timer having recorded it yet (a late timer) is recorded now, then ended: never lost."""
    outage_since, missed_at, synced = hb.outage_since, hb.missed_at, hb.synced
    if hb.status is HeartbeatStatus.UP and outage_since is None and hb.deadline and hb.deadline <= now:
        outage_since, missed_at = now, hb.deadline
    if outage_since is not None:
        synced = False
    return _armed(
        hb,
        now,
        status=HeartbeatStatus.UP,
        deadline=now + hb.interval,
        last_ping_at=now,
        outage_since=outage_since,
        missed_at=missed_at,
        recovered_at=now if outage_since is not None else hb.recovered_at,
        synced=synced,
    )


class TimerVerdict(StrEnum):
    STALE = "stale"  # its token was replaced, or the heartbeat is disabled: do nothing
    EARLY = "early"  # not due yet: hop
    MISSED = "missed"  # the deadline passed without a ping: record the outage
    SYNC = "sync"  # work on the incident side is due (a crash left it unfinished)


def judge_timer(hb: Heartbeat | None, timer: HeartbeatTimer, now: datetime) -> TimerVerdict:
    if hb is None or not hb.enabled or hb.token != timer.token or hb.due_at is None:
        return TimerVerdict.STALE
    if hb.due_at > now or timer.due_at > now:
        return TimerVerdict.EARLY
    if not hb.synced:
        return TimerVerdict.SYNC
    if hb.status is HeartbeatStatus.UP and hb.deadline is not None and hb.deadline <= now:
        return TimerVerdict.MISSED
    return TimerVerdict.STALE


def miss(hb: Heartbeat, now: datetime) -> Heartbeat:
    """Record the outage (conditional on the version read); the incident is opened after."""
    return _armed(hb, now, status=HeartbeatStatus.DOWN, missed_at=hb.deadline, outage_since=now, synced=False)


def needs_incident(hb: Heartbeat, last_incident_created_at: datetime | None) -> bool:
    """Whether the outage still lacks its incident: none was opened for this key since it began."""
    if hb.outage_since is None:
        return False
    return last_incident_created_at is None or last_incident_created_at < hb.outage_since - CLOCK_SKEW


def synced(hb: Heartbeat, incident_id: str | None, now: datetime) -> Heartbeat:
    """The incident side was made to match: a recovered outage is closed, the deadline re-armed."""
    outage_since = hb.outage_since if hb.status is HeartbeatStatus.DOWN else None
    return _armed(hb, now, synced=True, outage_since=outage_since, incident_id=incident_id or hb.incident_id)


def miss_alert(hb: Heartbeat, service_name: str) -> Alert:
    """The alert a missed interval sends through ingest (routing rules, dedup, maintenance)."""
    assert hb.missed_at is not None
    last = hb.last_ping_at.isoformat() if hb.last_ping_at else None
    details: dict[str, Any] = {
        "heartbeat_id": hb.id,
        "heartbeat_name": hb.name,
        "interval_minutes": hb.interval_minutes,
        "missed_at": hb.missed_at.isoformat(),
        "last_ping_at": last,
    }
    return Alert(
        integration=Integration.HEARTBEAT,
        action=AlertAction.TRIGGER,
        dedup_key=hb.dedup_key,
        summary=f"Heartbeat {hb.name!r} missed: no ping within {hb.interval_minutes} min",
        source=f"heartbeat {hb.name}",
        service=service_name,
        description=(
            f"Expected a ping before {hb.missed_at.isoformat()}; "
            f"last ping {last or 'never (since it was created)'}."
        ),
        labels={"heartbeat": hb.id},
        custom_details=details,
        timestamp=hb.missed_at,
        raw=details,
    )


def recovery_alert(hb: Heartbeat, service_name: str) -> Alert:
    details: dict[str, Any] = {
        "heartbeat_id": hb.id,
        "heartbeat_name": hb.name,
        "missed_at": hb.missed_at.isoformat() if hb.missed_at else None,
        "pinged_at": hb.recovered_at.isoformat() if hb.recovered_at else None,
    }
    return Alert(
        integration=Integration.HEARTBEAT,
        action=AlertAction.RESOLVE,
        dedup_key=hb.dedup_key,
        summary=f"Heartbeat {hb.name!r} recovered",
        source=f"heartbeat {hb.name}",
        service=service_name,
        custom_details=details,
        timestamp=hb.recovered_at,
        raw=details,
    )
