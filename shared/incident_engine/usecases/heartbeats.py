"""Heartbeats: declared per service, pinged with the service's integration key, watched by timers.

Every state change of a heartbeat is one conditional write (on its version) that replaces the
fencing token; the timer is sent after the commit (DESIGN.md's timer protocol, hops over 15
minutes included), and a stale timer does nothing. A missed deadline is recorded on the heartbeat
first, then its incident is opened through alert ingest (routing rules, dedup key per heartbeat,
maintenance windows), and the next ping resolves it the same way. The reconciler re-arms lost
timers from the due index, O(due).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from incident_engine.domain import heartbeats as hbd
from incident_engine.domain.errors import Conflict, InvalidInput, NotFound
from incident_engine.domain.heartbeats import Heartbeat, HeartbeatStatus, HeartbeatTimer, TimerVerdict
from incident_engine.domain.keys import dedup_scope
from incident_engine.observability import count, logger
from incident_engine.usecases.alert_incidents import DedupReader
from incident_engine.usecases.ingest import AlertIngest, ServiceConfig
from incident_engine.usecases.ports import Clock, VersionConflict

MAX_ATTEMPTS = 5
HEARTBEAT_ID = re.compile(r"hb_[0-9a-f]{12}")


class HeartbeatStore(Protocol):
    def save(self, hb: Heartbeat, expected_version: int | None) -> None: ...
    def get(self, heartbeat_id: str) -> Heartbeat | None: ...
    def list_all(self) -> list[Heartbeat]: ...
    def due(self, cutoff: datetime, limit: int) -> list[Heartbeat]: ...


class HeartbeatTimers(Protocol):
    def send(self, message: HeartbeatTimer, delay_seconds: int) -> None: ...


class HeartbeatServices(Protocol):
    def by_id(self, service_id: str) -> ServiceConfig | None:
        """The enabled service, or None (unknown or disabled)."""
        ...

    def catch_all(self) -> ServiceConfig: ...


class OutageIncidents(Protocol):
    def last_created_at(self, service_id: str, dedup_key: str) -> datetime | None:
        """When the newest incident of (service, key) was created, active or closed; None if none."""
        ...


class StoreOutages:
    """``OutageIncidents`` over the dedup items: a released key keeps its last incident's id."""

    def __init__(self, store: DedupReader) -> None:
        self._store = store

    def last_created_at(self, service_id: str, dedup_key: str) -> datetime | None:
        _, incident_id = self._store.dedup_record(dedup_scope(service_id, dedup_key))
        incident = self._store.get(incident_id) if incident_id else None
        return incident.created_at if incident else None


class HeartbeatOutcome(StrEnum):
    MISSED = "missed"  # the deadline passed: the outage was recorded and its incident opened
    SYNCED = "synced"  # unfinished incident-side work was finished
    HOPPED = "hopped"
    STALE = "stale"


class RetryLater(Exception):
    """The heartbeat kept changing under us; let SQS deliver the timer again."""


@dataclass(frozen=True)
class HeartbeatFields:
    name: str
    service_id: str
    interval_minutes: int


def _check_interval(minutes: int) -> None:
    if not hbd.MIN_INTERVAL_MINUTES <= minutes <= hbd.MAX_INTERVAL_MINUTES:
        raise InvalidInput(
            "interval_minutes",
            f"must be between {hbd.MIN_INTERVAL_MINUTES} and {hbd.MAX_INTERVAL_MINUTES} minutes",
        )


class HeartbeatService:
    def __init__(
        self,
        store: HeartbeatStore,
        timers: HeartbeatTimers,
        clock: Clock,
        services: HeartbeatServices,
        outages: OutageIncidents,
        ingest: Callable[[], AlertIngest],
        grace_seconds: float = 20.0,
    ) -> None:
        self._store = store
        self._timers = timers
        self._clock = clock
        self._services = services
        self._outages = outages
        self._ingest_factory = ingest  # built only when an incident must be opened or resolved
        self._grace = timedelta(seconds=grace_seconds)

    # --- configuration ---------------------------------------------------------------------------

    def create(self, fields: HeartbeatFields) -> Heartbeat:
        _check_interval(fields.interval_minutes)
        if self._enabled_service(fields.service_id) is None:
            raise InvalidInput("service_id", f"no enabled service has id {fields.service_id}")
        hb = hbd.create(
            f"hb_{secrets.token_hex(6)}",
            fields.name,
            fields.service_id,
            fields.interval_minutes,
            self._clock.now(),
        )
        self._store.save(hb, None)
        self._arm(hb)
        return hb

    def get(self, heartbeat_id: str) -> Heartbeat:
        # Only ids this service hands out reach the store (a path segment may be kilobytes long).
        hb = self._store.get(heartbeat_id) if HEARTBEAT_ID.fullmatch(heartbeat_id) else None
        if hb is None:
            raise NotFound(f"heartbeat {heartbeat_id} not found", id=heartbeat_id)
        return hb

    def list_heartbeats(self, include_disabled: bool) -> list[Heartbeat]:
        found = self._store.list_all()
        return sorted(
            (hb for hb in found if include_disabled or hb.enabled), key=lambda hb: (hb.created_at, hb.id)
        )

    def replace(self, heartbeat_id: str, fields: HeartbeatFields) -> Heartbeat:
        _check_interval(fields.interval_minutes)

        def change(hb: Heartbeat, now: datetime) -> Heartbeat:
            if not hb.enabled:
                raise Conflict("the heartbeat is disabled; create a new one", id=hb.id)
            if fields.service_id != hb.service_id:
                raise InvalidInput("service_id", "cannot change; create a heartbeat on the other service")
            return hbd.edit(hb, fields.name, fields.interval_minutes, now)

        return self._apply(heartbeat_id, change)

    def disable(self, heartbeat_id: str) -> Heartbeat:
        def change(hb: Heartbeat, now: datetime) -> Heartbeat:
            return hb if not hb.enabled else hbd.disable(hb, now)

        return self._apply(heartbeat_id, change)

    # --- pings and timers ------------------------------------------------------------------------

    def ping(self, heartbeat_id: str, key_service_id: str | None) -> Heartbeat:
        """A ping with the integration key of ``key_service_id``; refused for another service's key."""
        hb = self.get(heartbeat_id)
        if key_service_id != hb.service_id:
            raise PermissionError("this integration key belongs to another service")

        def change(current: Heartbeat, now: datetime) -> Heartbeat:
            if not current.enabled:
                raise Conflict("the heartbeat is disabled", id=current.id)
            return hbd.ping(current, now)

        pinged = self._apply(heartbeat_id, change)
        count("HeartbeatPings")
        if not pinged.synced:
            # A recovery (or a miss no timer had seen yet) is carried out now; if that fails, the
            # ping is still recorded and the reconciler finishes the incident side.
            pinged = self._sync_or_leave(pinged)
        return pinged

    def handle_timer(self, timer: HeartbeatTimer) -> HeartbeatOutcome:
        for _ in range(MAX_ATTEMPTS):
            hb = self._store.get(timer.heartbeat_id)
            now = self._clock.now()
            verdict = hbd.judge_timer(hb, timer, now)
            if verdict is TimerVerdict.STALE or hb is None:
                count("StaleTimers")
                return HeartbeatOutcome.STALE
            if verdict is TimerVerdict.EARLY:
                # SQS delays stop at 15 minutes: a longer interval is a chain of hops.
                if not self._send(timer):
                    raise RetryLater("could not re-send the heartbeat timer")
                count("TimerHops")
                return HeartbeatOutcome.HOPPED
            if verdict is TimerVerdict.SYNC:
                self._sync(hb)
                return HeartbeatOutcome.SYNCED
            missed = hbd.miss(hb, now)
            try:
                self._store.save(missed, hb.version)
            except VersionConflict:
                continue  # a ping (or another delivery) got there first: judge again
            count("HeartbeatsMissed")
            logger.warning("heartbeat missed", extra={"heartbeat_id": hb.id, "service_id": hb.service_id})
            self._sync_or_leave(missed)
            return HeartbeatOutcome.MISSED
        raise RetryLater(f"heartbeat {timer.heartbeat_id} kept changing")

    def rearm_due(self, limit: int) -> int:
        """The reconciler's part: re-send the timers of heartbeats overdue by more than the grace."""
        rearmed = 0
        for hb in self._store.due(self._clock.now() - self._grace, limit):
            timer = hb.timer()
            if timer is not None and self._send(timer):
                rearmed += 1
        return rearmed

    # --- internals -------------------------------------------------------------------------------

    def _apply(self, heartbeat_id: str, decide: Callable[[Heartbeat, datetime], Heartbeat]) -> Heartbeat:
        for _ in range(MAX_ATTEMPTS):
            hb = self.get(heartbeat_id)
            changed = decide(hb, self._clock.now())
            if changed is hb:
                return hb
            try:
                self._store.save(changed, hb.version)
            except VersionConflict:
                continue
            self._arm(changed)
            return changed
        raise Conflict("the heartbeat kept changing while this request ran; try again", id=heartbeat_id)

    def _arm(self, hb: Heartbeat) -> None:
        # A heartbeat with incident-side work pending is not armed here: that work runs inline
        # now, and if it dies its due time (now) is in the due index for the reconciler.
        timer = hb.timer()
        if timer is not None and hb.synced:
            self._send(timer)

    def _send(self, timer: HeartbeatTimer) -> bool:
        delay = max(0, int(-(-(timer.due_at - self._clock.now()).total_seconds() // 1)))
        try:
            self._timers.send(timer, delay)
        except Exception:
            logger.exception("heartbeat timer send failed; the reconciler will re-arm")
            count("TimerSendFailed")
            return False
        return True

    def _service(self, hb: Heartbeat) -> ServiceConfig:
        # A heartbeat of a service disabled since still reports its outage, on the catch-all.
        return self._enabled_service(hb.service_id) or self._services.catch_all()

    def _enabled_service(self, service_id: str) -> ServiceConfig | None:
        try:
            return self._services.by_id(service_id)
        except NotFound:
            return None

    def _sync_or_leave(self, hb: Heartbeat) -> Heartbeat:
        """The outage is recorded already; its incident side is due now in the due index."""
        try:
            return self._sync(hb)
        except Exception:
            logger.exception("heartbeat incident work failed; the reconciler will retry", extra={"id": hb.id})
            count("HeartbeatSyncFailed")
            return hb

    def _sync(self, hb: Heartbeat) -> Heartbeat:
        """Make the incident side match the heartbeat: open the outage's incident once, resolve it
        on recovery; then record that, conditional on the version read. If the heartbeat moved
        meanwhile, look again: a trigger that landed after a recovery is resolved, never left open."""
        for _ in range(MAX_ATTEMPTS):
            incident_id, triggered = self._carry_out(hb)
            done = hbd.synced(hb, incident_id, self._clock.now())
            try:
                self._store.save(done, hb.version)
            except VersionConflict:
                fresh = self._store.get(hb.id)
                if fresh is None:
                    raise
                if fresh.synced:
                    if triggered and fresh.status is HeartbeatStatus.UP:
                        self._recover(fresh)  # our trigger may have landed after its recovery
                    return fresh
                hb = fresh
                continue
            self._arm(done)
            return done
        raise RetryLater(f"heartbeat {hb.id} kept changing")

    def _carry_out(self, hb: Heartbeat) -> tuple[str | None, bool]:
        if hb.outage_since is None:
            return None, False
        service = self._service(hb)
        ingest = self._ingest_factory()
        incident_id, triggered = None, False
        if hbd.needs_incident(hb, self._outages.last_created_at(service.id, hb.dedup_key)):
            result = ingest.ingest_alert(hbd.miss_alert(hb, service.name), service)
            incident_id, triggered = (result.incident.id if result.incident else None), True
        if hb.status is HeartbeatStatus.UP:
            ingest.ingest_alert(hbd.recovery_alert(hb, service.name), service)
        return incident_id, triggered

    def _recover(self, hb: Heartbeat) -> None:
        service = self._service(hb)
        self._ingest_factory().ingest_alert(hbd.recovery_alert(hb, service.name), service)
