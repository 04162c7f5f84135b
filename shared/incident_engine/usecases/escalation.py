"""The timer protocol's worker side (one timer message at a time) and the reconciler."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from incident_engine.domain import engine
from incident_engine.domain.lifecycle import TERMINAL, Status
from incident_engine.domain.links import LinkMaker
from incident_engine.domain.model import Incident, Notification, TimerMessage
from incident_engine.domain.targets import ConfigView
from incident_engine.observability import count, logger
from incident_engine.usecases.dispatch import Dispatcher, back_off
from incident_engine.usecases.paging import PagingConfig, levels_about_to_fire
from incident_engine.usecases.ports import (
    Clock,
    IncidentStore,
    ReconcilerRun,
    TransientConflict,
    VersionConflict,
)

MAX_ATTEMPTS = 3


class TimerOutcome(StrEnum):
    FIRED = "fired"  # a level fired (or a snooze ended) and was committed
    HOPPED = "hopped"  # not due yet: re-sent with the remaining delay
    STALE = "stale"  # its token was replaced or the incident stopped escalating: dropped
    SENT = "sent"  # a delayed contact's page was released and committed
    SUPERSEDED = "superseded"  # a delayed page the incident no longer wanted: retired, not sent


class RetryLater(Exception):
    """The incident kept changing under us; let SQS deliver the message again."""


@dataclass(frozen=True)
class ReconcileReport:
    timers_rearmed: int
    notifications_republished: int


class EscalationTimerService:
    def __init__(
        self,
        store: IncidentStore,
        dispatcher: Dispatcher,
        clock: Clock,
        base_url: str | None,
        grace_seconds: float = 20.0,
        batch: int = 500,
        action_links: LinkMaker | None = None,
        paging: PagingConfig | None = None,
        extra_timers: Callable[[int], int] | None = None,
    ) -> None:
        # Other kinds of timers (heartbeats) re-armed by the same tick; returns how many it re-sent.
        self._extra_timers = extra_timers
        self._action_links = action_links
        self._paging = paging
        self._store = store
        self._dispatcher = dispatcher
        self._clock = clock
        self._base_url = base_url
        self._grace = timedelta(seconds=grace_seconds)
        self._batch = batch

    def handle_timer(self, timer: TimerMessage) -> TimerOutcome:
        if timer.page is not None:
            return self._handle_page_timer(timer, timer.page)
        if timer.due_at > self._clock.now():
            # SQS caps delays at 15 minutes: a longer wait is a chain of hops. A timer whose
            # token was replaced stops here, not after days of hops (one read per 15 minutes).
            incident = self._store.get(timer.incident_id)
            if incident is None or incident.token != timer.token or incident.due_at is None:
                return self._stale(timer)
            if not self._dispatcher.arm(timer):
                raise RetryLater("could not re-send the timer")
            count("TimerHops")
            return TimerOutcome.HOPPED
        for attempt in range(MAX_ATTEMPTS):
            incident = self._store.get(timer.incident_id)
            now = self._clock.now()
            change = (
                engine.on_timer(
                    incident,
                    timer.token,
                    now,
                    self._base_url,
                    self._action_links,
                    self._view(incident, timer.token, now),
                )
                if incident
                else None
            )
            if change is None:
                return self._stale(timer)
            try:
                self._store.commit(change)
            except TransientConflict:
                back_off(attempt)
                continue
            except VersionConflict:
                continue  # another change won; on reload this timer is either stale or still due
            count("LevelsFired")
            self._dispatcher.after_commit(change)
            return TimerOutcome.FIRED
        raise RetryLater(f"incident {timer.incident_id} kept changing")

    def _handle_page_timer(self, timer: TimerMessage, dedup_id: str) -> TimerOutcome:
        """A delayed contact's page: the same protocol as a level's timer. Hops while not due;
        when due, one transaction conditional on the incident's version and on the row still
        being ``scheduled`` sends it (or retires it), so a duplicate or late delivery finds the
        row moved on and does nothing."""
        if timer.due_at > self._clock.now():
            row = self._store.outbox_row(timer.incident_id, dedup_id)
            if row is None or row.status != "scheduled":
                return self._stale(timer)
            if not self._dispatcher.arm(timer):
                raise RetryLater("could not re-send the timer")
            count("TimerHops")
            return TimerOutcome.HOPPED
        for attempt in range(MAX_ATTEMPTS):
            row = self._store.outbox_row(timer.incident_id, dedup_id)
            if row is None or row.status != "scheduled":
                return self._stale(timer)
            incident = self._store.get(timer.incident_id)
            change = engine.on_page_timer(incident, row, self._clock.now()) if incident else None
            if change is None:
                # Acknowledged, snoozed, resolved or cancelled before its time: never sent.
                self._store.supersede([row])
                count("DelayedPagesSuperseded")
                return TimerOutcome.SUPERSEDED
            try:
                self._store.commit(change)
            except TransientConflict:
                back_off(attempt)
                continue
            except VersionConflict:
                continue  # the incident changed: read both again and decide again
            self._dispatcher.after_commit(change)
            if change.released:
                count("DelayedPagesSent")
                return TimerOutcome.SENT
            count("DelayedPagesSuperseded")
            return TimerOutcome.SUPERSEDED
        raise RetryLater(f"incident {timer.incident_id} kept changing")

    def _view(self, incident: Incident, token: str, now: datetime) -> ConfigView | None:
        """The configuration the level about to fire names, as of the fire's own instant (skipped for
        stale timers): read for a later instant, a handoff in between would page nobody."""
        cur = incident.escalation
        if self._paging is None or cur is None or incident.token != token or incident.status in TERMINAL:
            return None
        levels = levels_about_to_fire(cur.policy, cur.next_level, incident.status is Status.SNOOZED)
        return self._paging.view_for(cur.policy, levels, now)

    @staticmethod
    def _stale(timer: TimerMessage) -> TimerOutcome:
        count("StaleTimers")
        logger.info("stale timer dropped", extra={"incident_id": timer.incident_id})
        return TimerOutcome.STALE

    def reconcile(self) -> ReconcileReport:
        """Re-arm overdue timers and republish stuck outbox rows. The safety net, not the path."""
        cutoff = self._clock.now() - self._grace
        rearmed = 0
        # Escalation timers and delayed pages alike, read from the one DueIndex: O(overdue).
        for timer in self._store.overdue(cutoff, self._batch):
            if self._dispatcher.arm(timer):
                rearmed += 1
        if self._extra_timers is not None:
            try:
                rearmed += self._extra_timers(self._batch)
            except Exception:
                # Never let another kind of timer stop the incidents' safety net.
                logger.exception("re-arming other timers failed")
                count("ReconcileFailed")
        # Same dedup ids as the first attempt, so a consumer can drop the repeat.
        republished = self._dispatcher.deliver(
            self._still_wanted(self._store.pending_notifications(cutoff, self._batch))
        )
        count("TimersRearmed", rearmed)
        count("NotificationsRepublished", republished)
        # The heartbeat: a metric every run (ReconcilerHeartbeatAlarm treats its absence as
        # breaching) and the last run on the table, for GET /health?deep=1.
        count("ReconcilerRuns")
        self._store.record_reconciler_run(ReconcilerRun(self._clock.now(), rearmed, republished))
        if rearmed or republished:
            logger.warning(
                "reconciler repaired state",
                extra={"timers_rearmed": rearmed, "notifications_republished": republished},
            )
        return ReconcileReport(rearmed, republished)

    def _still_wanted(self, rows: list[Notification]) -> list[Notification]:
        """Pending pages of incidents closed since are superseded, never sent after the closure.

        The closing transaction supersedes what it can see; this catches any it could not.
        """
        pages_by_incident: dict[str, list[Notification]] = {}
        for n in rows:
            if n.kind == "page":
                pages_by_incident.setdefault(n.incident_id, []).append(n)
        closed: set[str] = set()
        for incident_id, pages in pages_by_incident.items():
            incident = self._store.get(incident_id)
            if incident is None or incident.status in TERMINAL:
                self._store.supersede(pages)
                count("PagesSuperseded", len(pages))
                closed.add(incident_id)
        return [n for n in rows if not (n.kind == "page" and n.incident_id in closed)]


__all__ = ["EscalationTimerService", "ReconcileReport", "RetryLater", "TimerOutcome"]
