"""Every incident state change as a pure function: incident in, ``Change`` out.

The use cases load, call one of these, and commit the ``Change`` in one transaction. Nothing
here reads a clock or touches AWS; ``now`` and the base URL for links are passed in.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from incident_engine.domain.errors import Conflict, InvalidTransition
from incident_engine.domain.keys import key_part
from incident_engine.domain.lifecycle import TERMINAL, Action, Status, ensure_allowed
from incident_engine.domain.links import LinkMaker
from incident_engine.domain.model import (
    Change,
    EscalationCursor,
    EscalationRecord,
    Incident,
    Notification,
    RepeatFold,
    ScheduledPage,
    TimelineEvent,
    TimerMessage,
)
from incident_engine.domain.notifications import render_closure, render_page
from incident_engine.domain.policy import Policy
from incident_engine.domain.severity import DEFAULT_SLAS, Severity
from incident_engine.domain.targets import ConfigView, Recipient, expand_targets
from incident_engine.domain.timefmt import to_iso

SYSTEM = "system"
# Outbox rows one fire may write, with the incident, its events and records, inside one transaction.
MAX_RECIPIENTS_PER_FIRE = 80
MAX_SUPERSEDED = 25
# Delayed pages one incident may have waiting at once, so that an acknowledge retires them all
# in its one transaction.
MAX_SCHEDULED = 40
MAX_NOTIFY = 10  # a routing rule's notify targets paged in the opening transaction


def new_token() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True)
class NewIncident:
    title: str
    severity: Severity
    description: str | None = None
    service: str | None = None
    service_id: str | None = None
    team: str | None = None
    source: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    dedup_key: str | None = None
    # From an alert or from routing rules (issue 9); an API create leaves the defaults.
    alert: dict[str, Any] | None = None  # the alert's payload, bounded by its parser
    previous_incident_id: str | None = None
    suppressed: bool = False
    suppress_reasons: tuple[str, ...] = ()
    assignees: tuple[str, ...] = ()
    runbooks: tuple[dict[str, Any], ...] = ()
    routing_matches: tuple[dict[str, Any], ...] = ()  # each on the timeline, in order
    maintenance: dict[str, Any] | None = None  # the window it opened in: its start and end
    events: tuple[tuple[str, dict[str, Any]], ...] = ()  # the source's own, e.g. heartbeat_missed
    notify: tuple[dict[str, Any], ...] = ()  # a routing rule's extra targets: paged once, on open


def sla_deadlines(incident: Incident) -> dict[str, Any]:
    sla = DEFAULT_SLAS[incident.severity]
    ack_due = incident.created_at + timedelta(minutes=sla.response_minutes) if sla.response_minutes else None
    res_due = (
        incident.created_at + timedelta(minutes=sla.resolution_minutes) if sla.resolution_minutes else None
    )
    return {
        "response_minutes": sla.response_minutes,
        "resolution_minutes": sla.resolution_minutes,
        "ack_due_at": ack_due,
        "resolve_due_at": res_due,
    }


class _Builder:
    """Accumulates one change; the incident is replaced, never mutated."""

    def __init__(
        self,
        incident: Incident,
        expected_version: int | None,
        now: datetime,
        actor: str,
        base_url: str | None,
        action_links: LinkMaker | None = None,
        view: ConfigView | None = None,
    ) -> None:
        self.view = view or ConfigView()
        self.incident = incident
        self.change = Change(incident=incident, expected_version=expected_version)
        self.now = now
        self.actor = actor
        self.base_url = base_url
        self.action_links = action_links

    def set(self, **fields: Any) -> None:
        self.incident = replace(self.incident, **fields)

    def event(self, type_: str, actor: str | None = None, **data: Any) -> None:
        self.change.events.append(TimelineEvent(self.incident.id, self.now, type_, actor or self.actor, data))

    def put_record(self, record: EscalationRecord) -> None:
        # One transaction may not touch an item twice: a record armed and fired in the
        # same change is written once, in its final form.
        self.change.records = [r for r in self.change.records if r.seq != record.seq] + [record]

    def done(self) -> Change:
        if any(e.fold is None for e in self.change.events):
            # Anything else happened: the open run of repeats closes, its event goes on the
            # timeline in this change, and the next repeat starts a new run.
            closed = repeat_event(self.incident)
            if closed is not None:
                self.change.events.append(closed)
            self.set(repeats=None)
        self.change.incident = replace(
            self.incident, updated_at=self.now, version=(self.change.expected_version or 0) + 1
        )
        return self.change

    # --- escalation mechanics -------------------------------------------------------------

    def cursor(self) -> EscalationCursor:
        assert self.incident.escalation is not None
        return self.incident.escalation

    def policy(self) -> Policy:
        return Policy.from_snapshot(self.cursor().policy)

    def pending_record(self, status: str) -> EscalationRecord | None:
        return armed_step(self.incident, status, self.now)

    def arm(self, level: int, loop: int, due: datetime) -> None:
        # The armed step is the cursor itself (next level, loop, due time, record number): its
        # record is written once, when it fires or is cancelled; until then the escalations list
        # shows it from the incident item (see ``armed_step``).
        cur = self.cursor()
        seq = cur.record_seq + 1
        token = new_token()
        self.set(
            escalation=replace(cur, next_level=level, next_loop=loop, record_seq=seq),
            token=token,
            due_at=due,
        )
        self.change.timer = TimerMessage(self.incident.id, token, due)

    def stop(self) -> None:
        """Cancel the armed step (if any) and replace the token, so no timer in flight can fire."""
        record = self.pending_record("cancelled")
        if record is not None:
            self.put_record(record)
            self.set(escalation=replace(self.cursor(), next_level=None))
        self.set(token=new_token(), due_at=None, snoozed_until=None)
        self.change.timer = None

    def start(self, snapshot: dict[str, Any], immediately: bool) -> None:
        previous = self.incident.escalation
        cursor = EscalationCursor(
            policy=snapshot,
            level=None,
            loop=0,
            next_level=None,
            record_seq=previous.record_seq if previous else 0,
        )
        self.set(escalation=cursor, status=Status.ESCALATING)
        self.event(
            "escalation_started",
            SYSTEM,
            policy_id=snapshot["id"],
            policy_name=snapshot["name"],
            policy_version=snapshot.get("version"),
            to="escalating",
        )
        first = self.policy().levels[0]
        due = self.now if immediately else self.now + first.delay
        self.arm(0, 0, due)
        if due <= self.now:
            self.fire()

    def fire(self) -> None:
        """Notify the armed level now, then arm what follows it (or mark the policy exhausted)."""
        cur = self.cursor()
        assert cur.next_level is not None and self.incident.token is not None
        policy = self.policy()
        level, loop, fired_token = cur.next_level, cur.next_loop, self.incident.token
        # Who is paged is decided now, from the configuration read just before this fire: whoever
        # is on call at this instant, the team's members today.
        expansion = expand_targets([t.to_dict() for t in policy.levels[level].targets], self.view, self.now)
        recipients = list(expansion.recipients)
        if expansion.nobody:
            # Never wait out the next delay in silence: say so, page the fallback, move on at once.
            self.event(
                "nobody_on_call",
                SYSTEM,
                level=level,
                loop=loop,
                skipped=[s.to_dict() for s in expansion.skipped],
                fallback=bool(policy.fallback),
            )
            if policy.fallback:
                recipients = list(
                    expand_targets([t.to_dict() for t in policy.fallback], self.view, self.now).recipients
                )
        if len(recipients) > MAX_RECIPIENTS_PER_FIRE:
            # One fire is one transaction (at most 100 items): page the first ones and say so.
            self.event(
                "recipients_truncated",
                SYSTEM,
                level=level,
                paged=MAX_RECIPIENTS_PER_FIRE,
                total=len(recipients),
            )
            recipients = recipients[:MAX_RECIPIENTS_PER_FIRE]
        executed = self.pending_record("executed")
        if executed is not None:
            self.put_record(replace(executed, recipients=tuple(r.to_dict() for r in recipients)))
        now_paged, delayed = self.schedule_delayed(recipients, level, loop, fired_token)
        for recipient in now_paged:
            self.change.outbox.append(
                self.page_row(recipient.channel, recipient.address, level, loop, fired_token)
            )
        paged = list(self.incident.paged)
        for recipient in now_paged:
            if (recipient.channel, recipient.address) not in paged:
                paged.append((recipient.channel, recipient.address))
        self.set(
            escalation=replace(cur, level=level, loop=loop, next_level=None),
            paged=tuple(paged),
        )
        data: dict[str, Any] = {}
        if delayed:
            data["delayed"] = delayed
        self.event(
            "level_fired",
            SYSTEM,
            level=level,
            loop=loop,
            recipients=[r.address for r in now_paged],
            why=[r.why.to_dict() for r in now_paged],
            fencing_token=fired_token,
            **data,
        )
        following = _plan_next(policy, level, loop)
        if following is None:
            self.set(token=new_token(), due_at=None)
            self.change.timer = None
            self.event("escalation_exhausted", SYSTEM, level=level, loop=loop)
        else:
            next_level, next_loop, wait = following
            self.arm(next_level, next_loop, self.now if expansion.nobody else self.now + wait)

    def schedule_delayed(
        self, recipients: list[Recipient], level: int, loop: int, fired_token: str
    ) -> tuple[list[Recipient], list[dict[str, Any]]]:
        """Split a fire's recipients: those paged now, and each delayed contact's page, written
        ``scheduled`` (due ``delay_minutes`` after this fire) with a timer of its own.

        A contact whose page is already scheduled keeps that earlier one (a level firing again,
        a repeat, never doubles it). On an acknowledged incident (a policy that pages on after an
        acknowledge) the delayed contact is not reached: its row says ``superseded``. Past
        MAX_SCHEDULED outstanding pages a delayed contact is paged at once instead (never lost).
        """
        now_paged: list[Recipient] = []
        delayed: list[dict[str, Any]] = []
        scheduled = list(self.incident.scheduled)
        waiting = {(s.channel, s.address) for s in scheduled}
        acknowledged = self.incident.status is Status.ACKNOWLEDGED
        for r in recipients:
            if r.delay_minutes <= 0:
                now_paged.append(r)
                continue
            note: dict[str, Any] = {
                "channel": r.channel,
                "address": r.address,
                "delay_minutes": r.delay_minutes,
                "why": r.why.to_dict(),
            }
            if (r.channel, r.address) in waiting:
                delayed.append({**note, "outcome": "already_scheduled"})
                continue
            if not acknowledged and len(scheduled) >= MAX_SCHEDULED:
                delayed.append({**note, "outcome": "paged_now"})
                now_paged.append(r)
                continue
            due = self.now + timedelta(minutes=r.delay_minutes)
            row = self.page_row(r.channel, r.address, level, loop, fired_token)
            status = "superseded" if acknowledged else "scheduled"
            self.change.outbox.append(replace(row, status=status, due_at=due))
            delayed.append({**note, "outcome": status, "due_at": due, "dedup_id": row.dedup_id})
            if not acknowledged:
                scheduled.append(ScheduledPage(row.dedup_id, r.channel, r.address, due))
                waiting.add((r.channel, r.address))
                self.change.page_timers.append(
                    TimerMessage(self.incident.id, fired_token, due, page=row.dedup_id)
                )
        self.set(scheduled=tuple(scheduled))
        return now_paged, delayed

    def retire_scheduled(self, budget: int) -> int:
        """Stop every delayed page still waiting: none is sent after this change commits.

        Up to ``budget`` rows are marked ``superseded`` in this very transaction; any beyond it
        leave the incident's list all the same, so their timer finds them unlisted and retires
        them then. Returns how many rows this change retires."""
        waiting = self.incident.scheduled
        if not waiting:
            return 0
        retired = [s.dedup_id for s in waiting[: max(0, budget)]]
        self.change.retired.extend(retired)
        self.set(scheduled=())
        self.event("delayed_pages_superseded", SYSTEM, dedup_ids=[s.dedup_id for s in waiting])
        return len(retired)

    def notify_once(self, targets: tuple[dict[str, Any], ...]) -> None:
        """A routing rule's ``notify`` targets, expanded as a level's are and paged once, in the
        opening transaction: the dedup id names the incident, never a token, so no retry or
        duplicate alert can page them twice (a repeat alert appends, it never opens again)."""
        expansion = expand_targets(list(targets), self.view, self.now)
        recipients = list(expansion.recipients)
        if len(recipients) > MAX_NOTIFY:
            # The opening transaction also holds level 0's pages: keep it within 100 items, and say so.
            self.event("recipients_truncated", SYSTEM, notify=True, paged=MAX_NOTIFY, total=len(recipients))
            recipients = recipients[:MAX_NOTIFY]
        paged = list(self.incident.paged)
        for r in recipients:
            ack_url, resolve_url = (
                self.action_links.for_recipient(self.incident.id, r.address, self.now)
                if self.action_links
                else (None, None)
            )
            subject, message = render_page(
                self.incident, 0, 0, 1, self.base_url, ack_url, resolve_url, "notified by a routing rule"
            )
            row = _notification(
                self.incident,
                "page",
                r.channel,
                r.address,
                f"{self.incident.id}/notify/{key_part(r.channel + ':' + r.address)}",
                subject,
                message,
                self.now,
                None,
                None,
            )
            row.attributes["routing"] = "notify"
            if ack_url and resolve_url:
                row.attributes.update(ack_url=ack_url, resolve_url=resolve_url)
            self.change.outbox.append(row)
            if (r.channel, r.address) not in paged:
                paged.append((r.channel, r.address))
        self.set(paged=tuple(paged))
        self.event(
            "routing_notified",
            SYSTEM,
            recipients=[r.address for r in recipients],
            why=[r.why.to_dict() for r in recipients],
            skipped=[s.to_dict() for s in expansion.skipped],
        )

    def page_row(self, channel: str, address: str, level: int, loop: int, fired_token: str) -> Notification:
        # Each recipient's page carries links that act as that recipient, and only them.
        ack_url, resolve_url = (
            self.action_links.for_recipient(self.incident.id, address, self.now)
            if self.action_links
            else (None, None)
        )
        policy = self.policy()
        subject, message = render_page(
            self.incident, level, loop, len(policy.levels), self.base_url, ack_url, resolve_url
        )
        row = _notification(
            self.incident,
            "page",
            channel,
            address,
            f"{self.incident.id}/{fired_token}/{key_part(address)}",
            subject,
            message,
            self.now,
            level,
            loop,
        )
        if ack_url and resolve_url:
            row.attributes.update(ack_url=ack_url, resolve_url=resolve_url)
        return row

    def supersede(self, unsent: list[Notification]) -> None:
        pages = [n for n in unsent if n.kind == "page" and n.status == "pending"]
        # Bounded so the closing transaction stays within DynamoDB's 100 items; the reconciler
        # checks the incident's state before republishing anything left over. Delayed pages
        # retired by the same change count against the same bound.
        pages = pages[: max(0, MAX_SUPERSEDED - self.retire_scheduled(MAX_SUPERSEDED))]
        if pages:
            self.change.superseded = [replace(n, status="superseded") for n in pages]
            self.event("pages_superseded", SYSTEM, dedup_ids=[n.dedup_id for n in pages])

    def notify_closure(self, kind: str) -> None:
        subject, message = render_closure(self.incident, kind, self.now, self.base_url)
        level = self.incident.escalation.level if self.incident.escalation else None
        for channel, recipient in self.incident.paged:
            self.change.outbox.append(
                _notification(
                    self.incident,
                    kind,
                    channel,
                    recipient,
                    f"{self.incident.id}/{kind}/{key_part(recipient)}",
                    subject,
                    message,
                    self.now,
                    level,
                    None,
                )
            )


def _plan_next(policy: Policy, level: int, loop: int) -> tuple[int, int, timedelta] | None:
    """The automatic successor of a fired level, honouring repeat.

    A manual escalation may page past the policy's last loop; nothing automatic follows it.
    """
    max_loop = policy.repeat.max_repeats if policy.repeat else 0
    if loop > max_loop:
        return None
    if level + 1 < len(policy.levels):
        return level + 1, loop, policy.levels[level + 1].delay
    if loop < max_loop:
        assert policy.repeat is not None
        return 0, loop + 1, timedelta(minutes=policy.repeat.interval_minutes)
    return None


def _following(policy: Policy, level: int | None, loop: int) -> tuple[int, int]:
    """The level a manual escalation moves to: the next one, wrapping to a new loop."""
    if level is None:
        return 0, loop
    if level + 1 < len(policy.levels):
        return level + 1, loop
    return 0, loop + 1


def _notification(
    incident: Incident,
    kind: str,
    channel: str,
    recipient: str,
    dedup_id: str,
    subject: str,
    message: str,
    now: datetime,
    level: int | None,
    loop: int | None,
) -> Notification:
    attributes = {
        "incident_id": incident.id,
        "severity": incident.severity.value,
        "level": "-" if level is None else str(level),
        "recipient": recipient,
        "channel": channel,
        "dedup_id": dedup_id,
        "kind": kind,
    }
    return Notification(
        incident.id, dedup_id, kind, recipient, channel, subject, message, attributes, now, level, loop
    )


# --- public operations ----------------------------------------------------------------------


def open_incident(
    incident_id: str,
    new: NewIncident,
    policy: Policy | None,
    now: datetime,
    actor: str,
    base_url: str | None,
    dedup_claim: str | None = None,
    action_links: LinkMaker | None = None,
    view: ConfigView | None = None,
) -> Change:
    """``dedup_claim`` is the nonce under which this request claimed ``new.dedup_key``."""
    incident = Incident(
        id=incident_id,
        title=new.title,
        severity=new.severity,
        status=Status.OPEN,
        created_at=now,
        updated_at=now,
        description=new.description,
        service=new.service,
        service_id=new.service_id,
        team=new.team,
        source=new.source,
        labels=dict(new.labels),
        dedup_key=new.dedup_key,
        token=new_token(),
        version=0,
        alert_count=1 if new.alert is not None else 0,
        last_seen_at=now if new.alert is not None else None,
        latest_alert=new.alert,
        previous_incident_id=new.previous_incident_id,
        suppressed=new.suppressed,
        assignees=new.assignees,
        runbooks=new.runbooks,
    )
    b = _Builder(incident, None, now, actor, base_url, action_links, view)
    b.event(
        "created",
        to="open",
        severity=new.severity.value,
        title=new.title,
        source=new.source,
        dedup_key=new.dedup_key,
        previous_incident_id=new.previous_incident_id,
    )
    for type_, data in new.events:
        b.event(type_, SYSTEM, **data)
    for match in new.routing_matches:
        b.event("routing_rule_matched", SYSTEM, **match)
    if new.maintenance is not None:
        b.event("maintenance_window", SYSTEM, **new.maintenance)
    if new.suppressed:
        # Recorded so nothing disappears, but no policy starts: nobody is paged.
        b.event("suppressed", SYSTEM, reasons=list(new.suppress_reasons))
    else:
        if new.notify:
            b.notify_once(new.notify)
        if policy is not None:
            b.start(policy.snapshot(), immediately=False)
    b.change.dedup_claim = dedup_claim if new.dedup_key is not None else None
    return b.done()


def on_timer(
    incident: Incident,
    token: str,
    now: datetime,
    base_url: str | None,
    action_links: LinkMaker | None = None,
    view: ConfigView | None = None,
) -> Change | None:
    """A timer came due. None means it is stale: its token was replaced, or nothing is armed."""
    if incident.token != token or incident.due_at is None or incident.status in TERMINAL:
        return None
    b = _Builder(incident, incident.version, now, SYSTEM, base_url, action_links, view)
    paging = incident.status is Status.ESCALATING or (
        incident.status is Status.ACKNOWLEDGED and _pages_after_ack(incident)
    )
    if paging and incident.escalation and incident.escalation.next_level is not None:
        b.fire()
        return b.done()
    if incident.status is Status.SNOOZED:
        # Waking re-pages from the first level, as an unacknowledged incident would.
        b.stop()
        # Paging again means nobody holds it any more: an earlier ack no longer applies.
        b.set(acknowledged_at=None, acknowledged_by=None)
        to = Status.ESCALATING if incident.escalation is not None else Status.OPEN
        b.event("snooze_ended", SYSTEM, **{"from": "snoozed", "to": to.value})
        if incident.escalation is not None:
            b.start(incident.escalation.policy, immediately=True)
        else:
            b.set(status=Status.OPEN)
        return b.done()
    return None


def on_page_timer(incident: Incident, row: Notification, now: datetime) -> Change | None:
    """A delayed page's timer came due. None means there is nothing to send any more: the row
    left ``scheduled`` already (a duplicate or late delivery), or the incident no longer lists it
    (an acknowledge, snooze, resolve or cancel retired it), and the caller retires the row.

    Otherwise one change, conditional on the incident's version like a level fire: the page
    leaves the incident's list and its row turns ``pending`` (published after the commit, then
    ``sent``), or ``superseded`` should the incident have stopped paging meanwhile.
    """
    if row.status != "scheduled" or incident.status in TERMINAL:
        return None
    entry = next((s for s in incident.scheduled if s.dedup_id == row.dedup_id), None)
    if entry is None:
        return None
    b = _Builder(incident, incident.version, now, SYSTEM, None)
    b.set(scheduled=tuple(s for s in incident.scheduled if s.dedup_id != row.dedup_id))
    data: dict[str, Any] = {
        "level": row.level,
        "loop": row.loop,
        "channel": row.channel,
        "recipient": row.recipient,
        "due_at": entry.due_at,
        "dedup_id": row.dedup_id,
    }
    if incident.status is Status.ESCALATING:
        b.change.released.append(replace(row, status="pending", due_at=entry.due_at))
        if (row.channel, row.recipient) not in incident.paged:
            b.set(paged=(*incident.paged, (row.channel, row.recipient)))
        b.event("delayed_page_sent", **data)
    else:
        b.change.retired.append(row.dedup_id)
        b.event("delayed_page_superseded", **data, status=incident.status.value)
    return b.done()


def append_alert(incident: Incident, alert: dict[str, Any], summary: str, by: str, now: datetime) -> Change:
    """A repeat alert on an active incident: counted, its payload kept as the latest, on the
    timeline. Conditional on the incident's version like every change."""
    if incident.status in TERMINAL:
        # The use case decides again: the key is free, so the alert opens a new incident.
        raise InvalidTransition(
            "the incident is closed; a new alert opens a new one", status=incident.status.value
        )
    b = _Builder(incident, incident.version, now, by, None)
    total = max(incident.alert_count, 1) + 1
    run = incident.repeats
    # Folded (see RepeatFold): the open run is counted on the incident item, no event appended.
    run = RepeatFold(now, incident.version + 1, 1, by) if run is None else replace(run, count=run.count + 1)
    b.set(alert_count=total, last_seen_at=now, latest_alert=alert, repeats=run)
    return b.done()


def armed_step(
    incident: Incident, status: str = "pending", now: datetime | None = None
) -> EscalationRecord | None:
    """The escalation step armed on the incident, as its record would be with ``status``: pending
    while it waits (not stored: the incident's cursor is its record), executed or cancelled ``now``."""
    cur = incident.escalation
    if cur is None or cur.pending_seq is None or cur.next_level is None or incident.due_at is None:
        return None
    level = Policy.from_snapshot(cur.policy).levels[cur.next_level]
    return EscalationRecord(
        incident_id=incident.id,
        seq=cur.pending_seq,
        level=cur.next_level,
        loop=cur.next_loop,
        status=status,
        scheduled_at=incident.due_at,
        targets=tuple(t.to_dict() for t in level.targets),
        executed_at=now if status == "executed" else None,
        cancelled_at=now if status == "cancelled" else None,
    )


def repeat_event(incident: Incident) -> TimelineEvent | None:
    """The open run of repeated alerts as its one timeline event, from the incident item alone:
    how many, first and last time, the latest alert. None when no run is open."""
    run = incident.repeats
    if run is None:
        return None
    alert = incident.latest_alert or {}
    data = {
        "count": run.count,
        "alert_count": incident.alert_count,
        "first_at": to_iso(run.first_at),  # as the API shows times (the event's own `at` is first_at)
        "last_at": to_iso(incident.last_seen_at or run.first_at),
        "summary": alert.get("summary"),
        **{k: alert.get(k) for k in ("integration", "action", "source_severity")},
    }
    return TimelineEvent(incident.id, run.first_at, "alert_repeated", run.actor, data, fold=run)


def acknowledge(incident: Incident, by: str, now: datetime) -> Change:
    ensure_allowed(incident.status, Action.ACKNOWLEDGE)
    b = _Builder(incident, incident.version, now, by, None)
    keeps_paging = _pages_after_ack(incident) and incident.status is Status.ESCALATING
    if not keeps_paging:
        b.stop()
    # A delayed contact is reached only if nobody acknowledged before its time.
    b.retire_scheduled(MAX_SCHEDULED)
    b.set(status=Status.ACKNOWLEDGED, acknowledged_at=now, acknowledged_by=by)
    data: dict[str, Any] = {"from": incident.status.value, "to": "acknowledged"}
    if keeps_paging:
        data["escalation_continues"] = True
    b.event("acknowledged", **data)
    return b.done()


def _pages_after_ack(incident: Incident) -> bool:
    """The policy says to keep paging the remaining levels after an acknowledge (stop_on_ack false)."""
    cur = incident.escalation
    return cur is not None and cur.next_level is not None and cur.policy.get("stop_on_ack") is False


def snooze(incident: Incident, minutes: int, by: str, now: datetime) -> Change:
    ensure_allowed(incident.status, Action.SNOOZE)
    b = _Builder(incident, incident.version, now, by, None)
    b.stop()
    b.retire_scheduled(MAX_SCHEDULED)
    until = now + timedelta(minutes=minutes)
    token = new_token()
    b.set(status=Status.SNOOZED, snoozed_until=until, token=token, due_at=until)
    b.change.timer = TimerMessage(incident.id, token, until)
    data: dict[str, Any] = {
        "from": incident.status.value,
        "to": "snoozed",
        "minutes": minutes,
        "until": until,
    }
    b.event("snoozed", **data)
    return b.done()


def escalate(
    incident: Incident,
    by: str,
    now: datetime,
    policy: Policy | None,
    base_url: str | None,
    action_links: LinkMaker | None = None,
    view: ConfigView | None = None,
) -> Change:
    """Fire the next level now. ``policy`` is used only when the incident has none yet."""
    ensure_allowed(incident.status, Action.ESCALATE)
    b = _Builder(incident, incident.version, now, by, base_url, action_links, view)
    b.event("escalated", **{"from": incident.status.value, "to": "escalating"})
    cur = incident.escalation
    if cur is None:
        if policy is None:
            raise Conflict(
                "no escalation policy applies to this incident; create a default policy first",
                status=incident.status.value,
            )
        b.stop()
        b.start(policy.snapshot(), immediately=True)
        return b.done()
    if incident.status is Status.ESCALATING and cur.next_level is not None:
        b.fire()
        return b.done()
    level, loop = _following(b.policy(), cur.level, cur.loop)
    b.stop()
    b.set(status=Status.ESCALATING, acknowledged_at=None, acknowledged_by=None)
    b.arm(level, loop, now)
    b.fire()
    return b.done()


def resolve(
    incident: Incident,
    by: str,
    note: str | None,
    now: datetime,
    base_url: str | None,
    unsent: list[Notification] | None = None,
    events: tuple[tuple[str, dict[str, Any]], ...] = (),
) -> Change:
    """``unsent``: page rows still pending (a crash left them); they are superseded, never sent.
    ``events``: the source's own account of the recovery (e.g. heartbeat_recovered), same commit."""
    ensure_allowed(incident.status, Action.RESOLVE)
    b = _Builder(incident, incident.version, now, by, base_url)
    for type_, data in events:
        b.event(type_, **data)
    b.stop()
    b.supersede(unsent or [])
    b.set(status=Status.RESOLVED, resolved_at=now, resolved_by=by, resolution_note=note)
    b.event("resolved", **{"from": incident.status.value, "to": "resolved", "note": note})
    b.notify_closure("resolution")
    b.change.release_dedup_key = incident.dedup_key is not None
    return b.done()


def cancel(
    incident: Incident,
    by: str,
    reason: str | None,
    now: datetime,
    base_url: str | None,
    unsent: list[Notification] | None = None,
) -> Change:
    ensure_allowed(incident.status, Action.CANCEL)
    b = _Builder(incident, incident.version, now, by, base_url)
    b.stop()
    b.supersede(unsent or [])
    b.set(status=Status.CANCELLED, cancelled_at=now, cancel_reason=reason)
    b.event("cancelled", **{"from": incident.status.value, "to": "cancelled", "reason": reason})
    b.notify_closure("cancellation")
    b.change.release_dedup_key = incident.dedup_key is not None
    return b.done()


def add_note(incident: Incident, text: str, by: str, now: datetime) -> TimelineEvent:
    """Notes only append to the timeline; they never touch the incident item or its version."""
    return TimelineEvent(incident.id, now, "note", by, {"text": text})
