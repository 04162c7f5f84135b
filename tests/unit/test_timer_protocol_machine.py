"""The lifecycle and the timer protocol as a Hypothesis state machine, with faults injected.

The real engine, worker (EscalationTimerService.handle_timer), reconciler and dispatcher run over
in-memory stand-ins for DynamoDB (conditional commits, the outbox, the due index), SQS (delayed,
at-least-once, visibility timeout) and SNS. Hypothesis interleaves incidents being opened and
acted on (acknowledge, escalate, snooze, resolve, cancel) with timer deliveries that are
duplicated, late or lost, actions that race a worker between its read and its commit, and a crash
at each boundary (before and after the commit, after the publish, at mark-sent, at the timer send),
and the reconciler's ticks. Then the faults stop, the clock runs on with a healthy worker, and:

- no level lost: every outbox row is sent or superseded, nothing armed is overdue, and every level
  due once the faults stopped fired within the reconciler's bound (a tick plus its grace);
- none doubled: each escalation step is executed once, and each page row has one dedup id, the
  only one any repeat of it carries;
- none after a terminal commit: once a resolve or cancel committed, no level fires and no page
  row is created for the incident.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from incident_engine.domain import engine
from incident_engine.domain.errors import Conflict, InvalidTransition
from incident_engine.domain.lifecycle import TERMINAL
from incident_engine.domain.model import Change, Incident, Notification, TimerMessage
from incident_engine.domain.policy import Repeat
from incident_engine.domain.severity import Severity
from incident_engine.usecases.dispatch import Dispatcher
from incident_engine.usecases.escalation import EscalationTimerService, RetryLater
from incident_engine.usecases.ports import PublishResult, ReconcilerRun, VersionConflict
from tests.unit.builders import BASE, T0, policy

GRACE = 20.0  # seconds: the reconciler's RECONCILE_GRACE_SECONDS
TICK = 60.0  # seconds between reconciler runs (EventBridge Scheduler, every minute)
VISIBILITY = 30.0  # seconds before SQS delivers a message that was not deleted again
BOUNDARIES = ("before_commit", "after_commit", "after_publish", "mark_sent", "timer_send")


class Crash(BaseException):
    """The process died here: nothing after this point ran (Exception handlers do not see it)."""


class Faults:
    def __init__(self) -> None:
        self.armed: str | None = None

    def at(self, boundary: str) -> None:
        if self.armed == boundary:
            self.armed = None
            raise Crash(boundary)


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        return self.at


class Store:
    """DynamoDB as the engine uses it: one conditional transaction per change."""

    def __init__(self, clock: Clock, faults: Faults) -> None:
        self.clock, self.faults = clock, faults
        self.incidents: dict[str, Incident] = {}
        self.outbox: dict[str, Notification] = {}
        self.executed: set[tuple[str, int]] = set()
        self.records: dict[tuple[str, int], object] = {}
        self.closed_at: dict[str, datetime] = {}
        self.on_read: Callable[[], None] | None = None  # a racing action, run once after a read
        self.violations: list[str] = []
        self.last_run: ReconcilerRun | None = None

    def get(self, incident_id: str) -> Incident | None:
        found = self.incidents.get(incident_id)
        if self.on_read is not None:
            race, self.on_read = self.on_read, None
            race()
        return found

    def commit(self, change: Change) -> None:
        self.faults.at("before_commit")
        inc = change.incident
        current = self.incidents.get(inc.id)
        if (current.version if current else None) != change.expected_version:
            raise VersionConflict(inc.id)
        if any(row.dedup_id in self.outbox for row in change.outbox):
            raise VersionConflict(inc.id)  # the row's attribute_not_exists condition
        if any(
            self.outbox[r.dedup_id].status != "pending"
            for r in change.superseded
            if r.dedup_id in self.outbox
        ):
            raise VersionConflict(inc.id)  # a row was sent meanwhile: decide again
        # The invariants each commit must keep.
        if inc.id in self.closed_at and (change.outbox and any(n.kind == "page" for n in change.outbox)):
            self.violations.append(f"{inc.id}: a page row created after the terminal commit")
        for record in change.records:
            key = (inc.id, record.seq)
            if record.status == "executed":
                if key in self.executed:
                    self.violations.append(f"{inc.id}: step {record.seq} executed twice")
                if inc.id in self.closed_at:
                    self.violations.append(f"{inc.id}: step {record.seq} fired after the terminal commit")
                self.executed.add(key)
            self.records[key] = record
        self.incidents[inc.id] = inc
        for row in change.outbox:
            self.outbox[row.dedup_id] = row
        for row in change.superseded:
            self.outbox[row.dedup_id] = replace(self.outbox[row.dedup_id], status="superseded")
        if inc.status in TERMINAL and inc.id not in self.closed_at:
            self.closed_at[inc.id] = self.clock.now()
        self.faults.at("after_commit")

    def overdue(self, cutoff: datetime, limit: int) -> list[TimerMessage]:
        # The due index: every incident with an armed timer past the cutoff, as the timer to re-arm.
        due = [i for i in self.incidents.values() if i.token and i.due_at and i.due_at <= cutoff]
        return [TimerMessage(i.id, i.token, i.due_at) for i in due if i.token and i.due_at][:limit]

    def outbox_row(self, incident_id: str, dedup_id: str) -> Notification | None:
        row = self.outbox.get(dedup_id)
        return row if row is not None and row.incident_id == incident_id else None

    def record_reconciler_run(self, run: ReconcilerRun) -> bool:
        self.last_run = run
        return True

    def last_reconciler_run(self) -> ReconcilerRun | None:
        return self.last_run

    def pending_notifications(self, cutoff: datetime, limit: int) -> list[Notification]:
        rows = [n for n in self.outbox.values() if n.status == "pending" and n.created_at <= cutoff]
        return rows[:limit]

    def supersede(self, notifications: list[Notification]) -> None:
        for n in notifications:
            if self.outbox[n.dedup_id].status == "pending":
                self.outbox[n.dedup_id] = replace(self.outbox[n.dedup_id], status="superseded")

    def mark_all_sent(self, notifications: list[Notification], at: datetime) -> None:
        self.faults.at("mark_sent")
        for n in notifications:
            if self.outbox[n.dedup_id].status == "pending":
                self.outbox[n.dedup_id] = replace(self.outbox[n.dedup_id], status="sent", sent_at=at)

    def record_publish_failures(
        self, failures: list[tuple[Notification, str, bool]], at: datetime
    ) -> list[Notification]:
        return []

    def unsent_pages(self, incident_id: str) -> list[Notification]:
        return [
            n
            for n in self.outbox.values()
            if n.incident_id == incident_id and n.kind == "page" and n.status == "pending"
        ]


class Queue:
    """SQS: delayed, at least once, and a message not deleted comes back after its visibility timeout."""

    def __init__(self, clock: Clock, faults: Faults) -> None:
        self.clock, self.faults = clock, faults
        self.messages: list[tuple[datetime, TimerMessage]] = []

    def send(self, message: TimerMessage, delay_seconds: int) -> None:
        self.faults.at("timer_send")
        self.messages.append((self.clock.now() + timedelta(seconds=min(delay_seconds, 900)), message))

    def visible(self) -> list[int]:
        return [n for n, (at, _) in enumerate(self.messages) if at <= self.clock.now()]


class Sns:
    def __init__(self, clock: Clock, faults: Faults) -> None:
        self.clock, self.faults = clock, faults
        self.delivered: list[tuple[datetime, Notification]] = []

    def publish_all(self, notifications: list[Notification]) -> PublishResult:
        self.delivered += [(self.clock.now(), n) for n in notifications]
        self.faults.at("after_publish")
        return PublishResult(list(notifications), [])


class TimerProtocol(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.clock, self.faults = Clock(), Faults()
        self.store = Store(self.clock, self.faults)
        self.queue = Queue(self.clock, self.faults)
        self.sns = Sns(self.clock, self.faults)
        self.dispatcher = Dispatcher(self.store, self.queue, self.sns, self.clock)  # type: ignore[arg-type]
        self.worker = EscalationTimerService(
            self.store, self.dispatcher, self.clock, BASE, grace_seconds=GRACE
        )  # type: ignore[arg-type]
        self.ids: list[str] = []
        self.last_tick = self.clock.now()

    # --- the API side: every action is read, decide, conditional commit, then dispatch ----------

    def _apply(self, incident_id: str, decide: Callable[[Incident, datetime], Change]) -> None:
        for _ in range(3):
            incident = self.store.incidents[incident_id]
            try:
                change = decide(incident, self.clock.now())
            except (InvalidTransition, Conflict):
                return  # the API's 409: nothing changes
            try:
                self.store.commit(change)
            except VersionConflict:
                continue
            self.dispatcher.after_commit(change)
            return

    def _act(self, kind: str, incident_id: str) -> None:
        now_actions: dict[str, Callable[[Incident, datetime], Change]] = {
            "acknowledge": lambda i, now: engine.acknowledge(i, "bob", now),
            "escalate": lambda i, now: engine.escalate(i, "bob", now, None, BASE),
            "snooze": lambda i, now: engine.snooze(i, 1, "bob", now),
            "resolve": lambda i, now: engine.resolve(
                i, "bob", None, now, BASE, self.store.unsent_pages(i.id)
            ),
            "cancel": lambda i, now: engine.cancel(i, "bob", None, now, BASE, self.store.unsent_pages(i.id)),
        }
        # A crash is the API container dying mid-request: what committed stays, the rest is the reconciler's.
        with contextlib.suppress(Crash):
            self._apply(incident_id, now_actions[kind])

    @precondition(lambda self: len(self.ids) < 3)
    @rule(
        delays=st.lists(st.sampled_from([0, 0.5, 1, 2]), min_size=1, max_size=3),
        repeats=st.sampled_from([0, 0, 1]),
        stop_on_ack=st.booleans(),
    )
    def open_incident(self, delays: list[float], repeats: int, stop_on_ack: bool) -> None:
        p = policy(*delays, repeat=Repeat(max_repeats=repeats, interval_minutes=1) if repeats else None)
        p = replace(p, stop_on_ack=stop_on_ack)
        incident_id = f"INC-20261122-{len(self.ids) + 1:03d}"
        change = engine.open_incident(
            incident_id, engine.NewIncident(title="x", severity=Severity.P1), p, self.clock.now(), "api", BASE
        )
        self.ids.append(incident_id)
        try:
            self.store.commit(change)
            self.dispatcher.after_commit(change)
        except Crash:
            if incident_id not in self.store.incidents:
                self.ids.remove(incident_id)  # never opened

    @precondition(lambda self: self.ids)
    @rule(
        kind=st.sampled_from(["acknowledge", "escalate", "snooze", "resolve", "cancel"]),
        which=st.integers(0, 2),
    )
    def act(self, kind: str, which: int) -> None:
        self._act(kind, self.ids[which % len(self.ids)])

    # --- the worker side ------------------------------------------------------------------------

    def _deliver(self, index: int, keep_copy: bool) -> None:
        _, message = self.queue.messages.pop(index)
        if keep_copy:  # SQS delivered it twice: the copy comes back later
            self.queue.messages.append((self.clock.now() + timedelta(seconds=VISIBILITY), message))
        try:
            self.worker.handle_timer(message)
        except (Crash, RetryLater):
            # Not deleted: SQS delivers it again once its visibility timeout ends.
            self.queue.messages.append((self.clock.now() + timedelta(seconds=VISIBILITY), message))

    @precondition(lambda self: self.queue.visible())
    @rule(which=st.integers(0, 20), duplicate=st.booleans())
    def deliver(self, which: int, duplicate: bool) -> None:
        visible = self.queue.visible()
        self._deliver(visible[which % len(visible)], duplicate)

    @precondition(lambda self: self.queue.visible() and self.ids)
    @rule(
        which=st.integers(0, 20),
        kind=st.sampled_from(["acknowledge", "escalate", "snooze", "resolve", "cancel"]),
        whom=st.integers(0, 2),
    )
    def deliver_racing_an_action(self, which: int, kind: str, whom: int) -> None:
        """An action commits between the worker's read and its commit (a concurrent request)."""
        visible = self.queue.visible()
        incident_id = self.ids[whom % len(self.ids)]
        self.store.on_read = lambda: self._act(kind, incident_id)
        self._deliver(visible[which % len(visible)], False)
        self.store.on_read = None

    @precondition(lambda self: self.queue.messages)
    @rule(which=st.integers(0, 20))
    def lose_a_message(self, which: int) -> None:
        self.queue.messages.pop(which % len(self.queue.messages))

    @rule(boundary=st.sampled_from(BOUNDARIES))
    def crash_at_the_next(self, boundary: str) -> None:
        self.faults.armed = boundary

    @rule(seconds=st.sampled_from([1, 5, 20, 45, 60, 90, 200]))
    def time_passes(self, seconds: int) -> None:
        """Time passes (deliveries come late); the reconciler ticks every minute, as scheduled."""
        self.clock.at += timedelta(seconds=seconds)
        while self.clock.now() - self.last_tick >= timedelta(seconds=TICK):
            self.last_tick += timedelta(seconds=TICK)
            with contextlib.suppress(Crash):
                self.worker.reconcile()

    @invariant()
    def nothing_doubled_or_after_closure(self) -> None:
        if not hasattr(self, "store"):
            return
        assert not self.store.violations, self.store.violations

    # --- the end: faults stop, the worker is healthy, time runs on ------------------------------

    def teardown(self) -> None:
        if not hasattr(self, "store"):
            return
        self.faults.armed = None
        settle_from = self.clock.now()
        for _ in range(40):  # 40 minutes, in steps of 5 s, the worker polling as Lambda's would
            for _ in range(12):
                self.clock.at += timedelta(seconds=5)
                while self.queue.visible():
                    self._deliver(self.queue.visible()[0], False)
                if self.clock.now() - self.last_tick >= timedelta(seconds=TICK):
                    self.last_tick = self.clock.now()
                    self.worker.reconcile()
        store = self.store
        assert not store.violations, store.violations
        # No level lost: every row went out or was retired by a closure; nothing armed is overdue.
        assert [n.dedup_id for n in store.outbox.values() if n.status == "pending"] == []
        delivered = {n.dedup_id for _, n in self.sns.delivered}
        assert {d for d, n in store.outbox.items() if n.status == "sent"} <= delivered
        assert [i.id for i in store.incidents.values() if i.due_at and i.due_at <= self.clock.now()] == []
        # Each level due after the faults stopped fired within the reconciler's bound.
        bound = timedelta(seconds=TICK + GRACE + 5)
        for (incident_id, seq), record in store.records.items():
            executed_at = getattr(record, "executed_at", None)
            if getattr(record, "status", None) == "executed" and executed_at and executed_at > settle_from:
                due = max(record.scheduled_at, settle_from)  # type: ignore[attr-defined]
                assert executed_at - due <= bound, (incident_id, seq, executed_at - due)
        # None doubled: every delivery of a row carries that row's one dedup id; no stray ids.
        assert delivered <= set(store.outbox)
        # None after a terminal commit: no page row was created after the incident closed.
        for dedup_id, row in store.outbox.items():
            closed = store.closed_at.get(row.incident_id)
            if row.kind == "page" and closed is not None:
                assert row.created_at <= closed, dedup_id


TimerProtocol.TestCase.settings = settings(
    max_examples=500,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_timer_protocol_under_faults = TimerProtocol.TestCase
