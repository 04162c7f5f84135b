"""IncidentRepository: incidents, their timeline, escalation records and outbox, in one table."""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import zlib
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.transactions import TransactWrite

from incident_engine.domain.engine import armed_step, repeat_event
from incident_engine.domain.errors import InvalidInput
from incident_engine.domain.keys import dedup_scope, key_part
from incident_engine.domain.lifecycle import TERMINAL, Status
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
from incident_engine.domain.severity import Severity
from incident_engine.domain.timefmt import parse_iso, to_key
from incident_engine.store.models import (
    SHARDS,
    CounterItem,
    DedupItem,
    EscalationRecordItem,
    IdempotencyItem,
    IncidentItem,
    OutboxItem,
    ReconcilerRunItem,
    TimelineItem,
    shard_of,
)
from incident_engine.store.signing import CursorCodec
from incident_engine.usecases.ports import (
    ACTIVE,
    DedupHolder,
    DedupKeyTaken,
    IdempotencyKeyTaken,
    IdempotencyRecord,
    IncidentFilter,
    Page,
    ReconcilerRun,
    Signer,
    TransientConflict,
    VersionConflict,
)

META = "META"
# A row SNS refuses as malformed is parked after a few tries; one that fails for SNS's own
# reasons (throttling, an outage) keeps its place for about an hour of reconciler ticks first.
PARK_AFTER_PERMANENT = 3
# Up to this many rows are marked sent one conditional update each: a transaction bills each row
# twice, and a few more calls cost less than the write units they save (bench/calls.py).
MARK_ONE_BY_ONE = 4
PARK_AFTER_TRANSIENT = 60
# DynamoDB cancels or refuses a transaction for these without any condition having failed:
# another transaction held one of the items, or the table was throttled. Deciding again is safe.
TRANSIENT_REASONS = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
)
TRANSIENT_ERRORS = frozenset(
    {
        "TransactionConflictException",
        "TransactionInProgressException",
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
    }
)
_LIFECYCLE_TIMES = ("acknowledged_at", "resolved_at", "cancelled_at", "snoozed_until")
_LIFECYCLE_TEXT = ("acknowledged_by", "resolved_by", "resolution_note", "cancel_reason")


def incident_pk(incident_id: str) -> str:
    return f"INC#{incident_id}"


def _request_token(change: Change) -> str:
    """ClientRequestToken (at most 36 characters): the same for every retry of one change."""
    incident = change.incident
    seed = (
        f"{incident.id}/{incident.version}/{incident.token}/{to_key(incident.updated_at)}"
        f"/{change.nonce}/{change.attempt}"
    )
    return hashlib.sha256(seed.encode()).hexdigest()[:36]


def _opt_time(text: str | None) -> datetime | None:
    return parse_iso(text) if text else None


def _opt_key(at: datetime | None) -> str | None:
    return to_key(at) if at else None


# A filtered list evaluates at most this many index entries per shard and request (besides the
# page itself), so a rare combination of filters costs a bounded read and may answer a short page
# with a next_cursor instead of walking the whole history.
FILTER_SCAN_PER_SHARD = 50
_POSITION = frozenset({"k"})  # incident lists: the created_key of the last entry passed
_SUB_POSITION = frozenset({"sk"})  # an incident's escalations, notifications
_EVENT_POSITION = frozenset({"sk", "i"})  # the timeline: an item, and the next event's place in it

T = TypeVar("T")


def _partition(prefix: str, shard: int) -> str:
    return f"{prefix}#{shard}"


class _IndexKeys(NamedTuple):
    """An incident's partition in each list index; None leaves it out of a sparse one."""

    list_pk: str
    status_pk: str
    severity_pk: str
    service_pk: str | None
    team_pk: str | None
    active_pk: str | None

    @staticmethod
    def of(incident: Incident) -> _IndexKeys:
        shard = shard_of(incident.id)
        return _IndexKeys(
            list_pk=_partition("ALL", shard),
            status_pk=_partition(f"STATUS#{incident.status.value}", shard),
            severity_pk=_partition(f"SEVERITY#{incident.severity.value}", shard),
            service_pk=_partition(f"SERVICE#{incident.service}", shard) if incident.service else None,
            team_pk=_partition(f"TEAM#{incident.team}", shard) if incident.team else None,
            active_pk=None if incident.status in TERMINAL else _partition("ACTIVE", shard),
        )


def _plan(flt: IncidentFilter) -> tuple[str, str, Condition | None]:
    """(index, partition prefix, filter on the rest). The index is the facet likely to be the most
    selective: a status (active incidents are few; a terminal status must lead anyway, as status is
    not projected), then service, team, severity. The rest are projected, so the Query filters."""
    rest = {"severity": flt.severity, "service": flt.service, "team": flt.team}
    if flt.status == ACTIVE:
        index, prefix = "ActiveIndex", "ACTIVE"
    elif flt.status is not None:
        index, prefix = "StatusIndex", f"STATUS#{flt.status}"
    elif flt.service is not None:
        index, prefix = "ServiceIndex", f"SERVICE#{rest.pop('service')}"
    elif flt.team is not None:
        index, prefix = "TeamIndex", f"TEAM#{rest.pop('team')}"
    elif flt.severity is not None:
        index, prefix = "SeverityIndex", f"SEVERITY#{rest.pop('severity')}"
    else:
        index, prefix = "ListIndex", "ALL"
    condition: Condition | None = None
    for name, value in rest.items():
        if value is not None:
            clause = getattr(IncidentItem, name) == value
            condition = clause if condition is None else condition & clause
    if flt.teams is not None:  # team is projected into every list index
        clause = IncidentItem.team.is_in(*sorted(flt.teams))
        condition = clause if condition is None else condition & clause
    return index, prefix, condition


def _matches(incident: Incident, flt: IncidentFilter) -> bool:
    """Indexes are eventually consistent: recheck what the item itself says now."""
    if flt.status == ACTIVE:
        status_ok = incident.status not in TERMINAL
    else:
        status_ok = flt.status is None or incident.status.value == flt.status
    return (
        status_ok
        and (flt.severity is None or incident.severity.value == flt.severity)
        and (flt.service is None or incident.service == flt.service)
        and (flt.team is None or incident.team == flt.team)
        and (flt.teams is None or incident.team in flt.teams)
    )


class IncidentRepository:
    def __init__(self, region: str, host: str | None, signer: Signer) -> None:
        self._connection = Connection(region=region, host=host)
        self._cursors = CursorCodec(signer)

    def open_client(self) -> None:
        """Create the transactions' DynamoDB client now rather than on the first commit."""
        _ = self._connection.client

    # --- incidents ---------------------------------------------------------------------------

    def allocate_id(self, now: datetime) -> str:
        day = now.strftime("%Y%m%d")
        counter = CounterItem(f"COUNTER#{day}", "COUNTER")
        counter.update(actions=[CounterItem.value.add(1)])
        return f"INC-{day}-{int(counter.value):03d}"

    def get(self, incident_id: str) -> Incident | None:
        try:
            item = IncidentItem.get(incident_pk(incident_id), META, consistent_read=True)
        except DoesNotExist:
            return None
        return self._to_incident(item)

    def commit(self, change: Change) -> None:
        """One conditional transaction. Raises VersionConflict (reload and decide again),
        TransientConflict (the same, after DynamoDB cancelled for contention or throttling),
        DedupKeyTaken or IdempotencyKeyTaken."""
        incident = change.incident
        roles: list[str] = []  # what each transaction item is, to read cancellation reasons
        if change.expected_version is None:
            condition: Condition = IncidentItem.pk.does_not_exist()
        else:
            condition = IncidentItem.version == change.expected_version
        # A deterministic token: botocore's own retry of a transaction that already committed
        # is then answered as a success by DynamoDB, not as a failed condition.
        request_token = _request_token(change)
        if self._incident_only(change):
            self._put_incident(change, condition)
            return
        try:
            with TransactWrite(connection=self._connection, client_request_token=request_token) as tx:
                tx.save(self._to_item(incident, change.nonce), condition=condition)
                roles.append("incident")
                if change.dedup_claim and incident.dedup_key:
                    tx.update(
                        self._dedup_key(dedup_scope(incident.service_id, incident.dedup_key)),
                        actions=[
                            DedupItem.incident_id.set(incident.id),
                            DedupItem.claimed_at.set(to_key(incident.updated_at)),
                        ],
                        condition=DedupItem.nonce == change.dedup_claim,
                    )
                    roles.append("dedup")
                if change.idempotency is not None:
                    key_hash, nonce, status_code = change.idempotency
                    tx.update(
                        IdempotencyItem(f"IDEM#{key_hash}", "IDEM"),
                        actions=[
                            IdempotencyItem.incident_id.set(incident.id),
                            IdempotencyItem.status_code.set(status_code),
                        ],
                        condition=IdempotencyItem.nonce == nonce,
                    )
                    roles.append("idempotency")
                plain = [e for e in change.events if e.fold is None]
                if plain:
                    # The change's events, in order, as one append-only item.
                    tx.save(
                        self._change_item(plain, incident.version), condition=TimelineItem.pk.does_not_exist()
                    )
                    roles.append("event")
                for event in change.events:
                    if event.fold is not None:
                        # A closed run of repeats, written once by the change that closed it (see
                        # RepeatFold); unconditional, so that a run an earlier version stored at
                        # this key, rewritten on every repeat, gets its final count in place.
                        tx.save(self._fold_item(event, event.fold))
                        roles.append("event")
                for record in change.records:
                    tx.save(self._record_item(record))
                    roles.append("record")
                for notification in change.outbox:
                    tx.save(self._outbox_item(notification), condition=OutboxItem.pk.does_not_exist())
                    roles.append("outbox")
                for row in change.superseded:
                    tx.update(
                        self._outbox_key(row),
                        actions=[
                            OutboxItem.status.set("superseded"),
                            OutboxItem.pending_pk.remove(),
                            OutboxItem.pending_key.remove(),
                        ],
                        condition=OutboxItem.status == "pending",
                    )
                    roles.append("superseded")
                for dedup_id in change.retired:
                    tx.update(
                        OutboxItem(incident_pk(incident.id), f"OUT#{dedup_id}"),
                        actions=[
                            OutboxItem.status.set("superseded"),
                            OutboxItem.due_pk.remove(),
                            OutboxItem.due_key.remove(),
                        ],
                        condition=OutboxItem.status == "scheduled",
                    )
                    roles.append("superseded")
                for row in change.released:
                    tx.update(
                        self._outbox_key(row),
                        actions=[
                            OutboxItem.status.set("pending"),
                            OutboxItem.due_pk.remove(),
                            OutboxItem.due_key.remove(),
                            # From now on a crash before the publish is the reconciler's to repair.
                            OutboxItem.pending_pk.set(_partition("PENDING", shard_of(row.incident_id))),
                            OutboxItem.pending_key.set(f"{to_key(incident.updated_at)}#{row.dedup_id}"),
                        ],
                        condition=OutboxItem.status == "scheduled",
                    )
                    roles.append("superseded")
                if change.release_dedup_key and incident.dedup_key:
                    tx.update(
                        self._dedup_key(dedup_scope(incident.service_id, incident.dedup_key)),
                        actions=[DedupItem.active.set(False)],
                        condition=DedupItem.incident_id == incident.id,
                    )
                    roles.append("release")
        except TransactWriteError as exc:
            self._raise_commit_error(exc, change, roles)

    @staticmethod
    def _incident_only(change: Change) -> bool:
        """A change that writes the incident item and nothing else (a repeated alert)."""
        incident = change.incident
        return not (
            change.events
            or change.records
            or change.outbox
            or change.superseded
            or change.retired
            or change.released
            or (change.dedup_claim and incident.dedup_key)
            or change.idempotency is not None
            or (change.release_dedup_key and incident.dedup_key)
        )

    def _put_incident(self, change: Change, condition: Condition) -> None:
        """One conditional put: the same guarantee as a one-item transaction, billed once, not twice."""
        try:
            self._to_item(change.incident, change.nonce).save(condition=condition)
        except PutError as exc:
            code = exc.cause_response_code
            if code == "ConditionalCheckFailedException":
                if self._committed(change):
                    return  # a retry of this very put found its own write
                raise VersionConflict(change.incident.id) from exc
            if code in TRANSIENT_ERRORS:
                raise TransientConflict(change.incident.id) from exc
            raise

    def _raise_commit_error(self, exc: TransactWriteError, change: Change, roles: list[str]) -> None:
        incident = change.incident
        codes = [r.code if r else None for r in exc.cancellation_reasons]
        failed = {
            roles[i] for i, code in enumerate(codes) if code == "ConditionalCheckFailed" and i < len(roles)
        }
        if exc.cause_response_code in TRANSIENT_ERRORS or any(c in TRANSIENT_REASONS for c in codes):
            if exc.cause_response_code == "TransactionInProgressException" and self._committed(change):
                return  # the same request is being applied: it is ours
            raise TransientConflict(incident.id) from exc
        if "incident" in failed:
            if self._committed(change):
                return  # an earlier attempt of this very transaction committed (a retry saw it)
            raise VersionConflict(incident.id) from exc
        if "dedup" in failed:
            raise DedupKeyTaken(incident.dedup_key) from exc
        if "idempotency" in failed:
            raise IdempotencyKeyTaken(incident.id) from exc
        if "superseded" in failed:
            raise VersionConflict(incident.id) from exc  # a row was sent meanwhile: decide again
        raise exc

    def _committed(self, change: Change) -> bool:
        try:
            item = IncidentItem.get(incident_pk(change.incident.id), META, consistent_read=True)
        except DoesNotExist:
            return False
        if item.change_nonce is not None:
            # Two changes from one version in one microsecond agree on all else: the nonce decides.
            return item.change_nonce == change.nonce and int(item.version) == change.incident.version
        stored = self._to_incident(item)
        return (
            stored is not None
            and stored.version == change.incident.version
            and stored.token == change.incident.token
            and stored.updated_at == change.incident.updated_at
        )

    @staticmethod
    def _dedup_key(dedup_key: str) -> DedupItem:
        return DedupItem(f"DEDUP#{key_part(dedup_key)}", "DEDUP")

    def claim_dedup_key(self, dedup_key: str, nonce: str, now: datetime, stale_after: timedelta) -> None:
        """Claim a dedup key before drawing an incident number; DedupKeyTaken if someone holds it.

        A claim whose incident never got committed (its writer died) is taken over once stale.
        """
        item = DedupItem(
            f"DEDUP#{key_part(dedup_key)}",
            "DEDUP",
            active=True,
            claimed_at=to_key(now),
            nonce=nonce,
            dedup_key=dedup_key,
        )
        free = DedupItem.pk.does_not_exist() | (DedupItem.active == False)  # noqa: E712
        abandoned = DedupItem.incident_id.does_not_exist() & (
            DedupItem.claimed_at < to_key(now - stale_after)
        )
        try:
            item.save(condition=free | abandoned)
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise DedupKeyTaken(dedup_key) from exc
            raise

    def release_dedup_claim(self, dedup_key: str, nonce: str) -> None:
        """Give back a claim whose incident was never committed (best effort)."""
        with contextlib.suppress(UpdateError):
            self._dedup_key(dedup_key).update(
                actions=[DedupItem.active.set(False)],
                condition=(DedupItem.nonce == nonce) & DedupItem.incident_id.does_not_exist(),
            )

    def dedup_holder(self, dedup_key: str) -> DedupHolder | None:
        """Who holds a dedup key: an active incident, or a create still under way (no id yet)."""
        try:
            item = DedupItem.get(f"DEDUP#{key_part(dedup_key)}", "DEDUP", consistent_read=True)
        except DoesNotExist:
            return None
        if not item.active:
            return None
        return DedupHolder(item.incident_id, parse_iso(item.claimed_at))

    def dedup_record(self, dedup_key: str) -> tuple[DedupHolder | None, str | None]:
        """The holder (as ``dedup_holder``) and the last incident the key pointed at: a released
        DEDUP item keeps its incident id, so a new incident can link to the previous one."""
        try:
            item = DedupItem.get(f"DEDUP#{key_part(dedup_key)}", "DEDUP", consistent_read=True)
        except DoesNotExist:
            return None, None
        holder = DedupHolder(item.incident_id, parse_iso(item.claimed_at)) if item.active else None
        return holder, item.incident_id

    def active_incident_for_dedup_key(self, dedup_key: str) -> str | None:
        holder = self.dedup_holder(dedup_key)
        return holder.incident_id if holder else None

    # --- idempotency keys -----------------------------------------------------------------------

    def claim_idempotency_key(
        self,
        key_hash: str,
        request_hash: str,
        nonce: str,
        now: datetime,
        ttl: timedelta,
        stale_after: timedelta,
    ) -> IdempotencyRecord | None:
        """Claim a key for this request; None when claimed, else the record someone else holds."""
        item = IdempotencyItem(
            f"IDEM#{key_hash}",
            "IDEM",
            request_hash=request_hash,
            nonce=nonce,
            claimed_at=to_key(now),
            expires_at=to_key(now + ttl),
        )
        expired = IdempotencyItem.expires_at < to_key(now)
        abandoned = IdempotencyItem.incident_id.does_not_exist() & (
            IdempotencyItem.claimed_at < to_key(now - stale_after)
        )
        try:
            item.save(condition=IdempotencyItem.pk.does_not_exist() | expired | abandoned)
        except PutError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            return self.idempotency_record(key_hash)
        return None

    def idempotency_record(self, key_hash: str) -> IdempotencyRecord | None:
        try:
            item = IdempotencyItem.get(f"IDEM#{key_hash}", "IDEM", consistent_read=True)
        except DoesNotExist:
            return None
        return IdempotencyRecord(
            request_hash=item.request_hash,
            incident_id=item.incident_id,
            status_code=None if item.status_code is None else int(item.status_code),
        )

    def release_idempotency_claim(self, key_hash: str, nonce: str) -> None:
        """A create that failed before committing frees its key at once (it expires now)."""
        with contextlib.suppress(UpdateError):
            IdempotencyItem(f"IDEM#{key_hash}", "IDEM").update(
                actions=[IdempotencyItem.expires_at.set("")],
                condition=(IdempotencyItem.nonce == nonce) & IdempotencyItem.incident_id.does_not_exist(),
            )

    def bind_idempotency_key(self, key_hash: str, nonce: str, incident_id: str, status_code: int) -> None:
        """Record the answer of a create that committed no transaction of its own (a dedup join)."""
        IdempotencyItem(f"IDEM#{key_hash}", "IDEM").update(
            actions=[
                IdempotencyItem.incident_id.set(incident_id),
                IdempotencyItem.status_code.set(status_code),
            ],
            condition=IdempotencyItem.nonce == nonce,
        )

    def list_page(self, flt: IncidentFilter, limit: int, cursor: str | None) -> Page[Incident]:
        """Newest first, O(page): each shard's index partition is read from the cursor's position
        down, the shards are merged, and one BatchGetItem reads the page's items."""
        position = self._cursors.decode("incidents", cursor, _POSITION)
        index, prefix, residual = _plan(flt)
        # Unfiltered, `limit` entries from each shard always fill the page; a residual filter may
        # discard entries, so it reads a little further, within the bound.
        per_shard = limit if residual is None else max(limit, FILTER_SCAN_PER_SHARD)
        entries: list[tuple[str, str]] = []  # (created_key, pk)
        frontier: str | None = None  # the newest place where an unfinished shard stopped
        connection = IncidentItem._get_connection()
        for shard in range(SHARDS):
            answer = connection.query(
                _partition(prefix, shard),
                range_key_condition=IncidentItem.created_key < position["k"] if position else None,
                filter_condition=residual,
                index_name=index,
                limit=per_shard,
                scan_index_forward=False,
            )
            entries.extend((e["created_key"]["S"], e["pk"]["S"]) for e in answer.get("Items", []))
            stopped = answer.get("LastEvaluatedKey")
            if stopped:
                frontier = max(frontier or "", stopped["created_key"]["S"])
        # Below the frontier some shard has entries nobody read yet: nothing there may be listed.
        entries = sorted((e for e in entries if frontier is None or e[0] >= frontier), reverse=True)
        page = entries[:limit]
        if len(entries) > limit or (frontier is not None and len(page) == limit):
            more: str | None = page[-1][0]
        else:
            more = frontier  # None when every shard is exhausted; else a short page goes on
        items = self._get_many(pk for _, pk in page)
        incidents = [i for i in (items.get(pk) for _, pk in page) if i is not None and _matches(i, flt)]
        return Page(incidents, self._cursors.encode("incidents", {"k": more} if more else None))

    def _get_many(self, pks: Iterable[str]) -> dict[str, Incident]:
        # pynamodb's batch_get splits by 100 keys and retries UnprocessedKeys itself.
        keys = [(pk, META) for pk in pks]
        return {item.pk: self._to_incident(item) for item in IncidentItem.batch_get(keys)} if keys else {}

    # --- timeline, escalations, outbox ---------------------------------------------------------

    def append_event(self, event: TimelineEvent, after_version: int) -> None:
        # Sorts after the events of the change that made `after_version`, never between them.
        self._event_item(event, after_version, 999).save(condition=TimelineItem.pk.does_not_exist())

    def append_event_once(self, event: TimelineEvent, key: str) -> bool:
        """An event that must appear once whoever writes it (a window's edge, by a timer that may
        be delivered twice): its sort key is made of its time and ``key`` only. False if there."""
        item = self._event_item(event, 0, 0)
        item.sk = f"EV#{to_key(event.at)}#{key_part(key)}"
        try:
            item.save(condition=TimelineItem.pk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def timeline(self, incident_id: str, limit: int, cursor: str | None) -> Page[TimelineEvent]:
        """Events one by one, in order, though a change's events share one item: the cursor names
        the item and the place of the next event inside it. The open run of repeated alerts lives
        on the incident item (see RepeatFold), which sorts right after the timeline: the same
        Query reads it, and shows the run where its event will be written when it closes."""
        pk = incident_pk(incident_id)
        purpose = f"timeline:{incident_id}"
        position = self._cursors.decode(purpose, cursor, _EVENT_POSITION)
        skip = 0
        if position is not None:
            if not position["sk"].startswith("EV#") or not position["i"].isdigit():
                raise InvalidInput("cursor", "cursor is not one this list returned")  # cannot be ours
            skip = int(position["i"])
        start = position["sk"] if position else "EV#"
        # Every item holds at least one event, so limit + 1 items hold limit + 1 events if there
        # are that many; the cursor's own item is read again, from its place.
        raw = (
            TimelineItem._get_connection()
            .query(pk, range_key_condition=TimelineItem.sk.between(start, META), limit=limit + 1)
            .get("Items", [])
        )
        meta = next((r for r in raw if r["sk"]["S"] == META), None)
        items: dict[str, list[TimelineEvent]] = {
            r["sk"]["S"]: self._item_events(TimelineItem.from_raw_data(r))
            for r in raw
            if r["sk"]["S"] != META
        }
        if meta is not None:
            incident: Incident | None = self._to_incident(IncidentItem.from_raw_data(meta))
        elif len(raw) > limit:  # the page ends before the incident item: read it for the open run
            incident = self.get(incident_id)
        else:
            incident = None  # no incident item: nothing open
        run = repeat_event(incident) if incident is not None else None
        if run is not None and run.fold is not None:
            sk = _fold_key(run.fold)
            reached = meta is not None or (bool(items) and sk <= max(items))
            if sk >= start and reached:
                items[sk] = [run]  # the live count, also over a run an earlier version stored
        placed: list[tuple[str, int, TimelineEvent]] = []
        for sk in sorted(items):
            events = items[sk]
            first = skip if position is not None and sk == position["sk"] else 0
            placed.extend((sk, n, events[n]) for n in range(first, len(events)))
        more = {"sk": placed[limit][0], "i": str(placed[limit][1])} if len(placed) > limit else None
        return Page([e for _, _, e in placed[:limit]], self._cursors.encode(purpose, more))

    @staticmethod
    def _item_events(item: TimelineItem) -> list[TimelineEvent]:
        at = parse_iso(item.at)
        if item.events is not None:
            return [
                TimelineEvent(
                    item.incident_id,
                    parse_iso(e["at"]) if "at" in e else at,
                    e["type"],
                    e["actor"],
                    e.get("data") or {},
                )
                for e in item.events
            ]
        return [TimelineEvent(item.incident_id, at, item.type or "", item.actor or "", item.data or {})]

    def escalations(self, incident_id: str, limit: int, cursor: str | None) -> Page[EscalationRecord]:
        """Stored steps in order, then the armed one, which is not stored until it fires or is
        cancelled: its record is the incident's cursor (see ``armed_step``), read on the last page."""
        page = self._stored_escalations(incident_id, limit, cursor)
        if page.next_cursor is not None:
            return page
        incident = self.get(incident_id)
        step = armed_step(incident) if incident is not None else None
        position = self._cursors.decode(f"escalations:{incident_id}", cursor, _SUB_POSITION)
        key = f"ESC#{step.seq:06d}" if step is not None else ""
        if step is None or (position is not None and key <= position["sk"]):
            return page
        if any(r.seq == step.seq for r in page.items):
            return page  # stored pending by an earlier version: the same step
        if len(page.items) < limit:
            return Page([*page.items, step], None)
        more = {"sk": f"ESC#{page.items[-1].seq:06d}"}  # the armed step opens the next page
        return Page(page.items, self._cursors.encode(f"escalations:{incident_id}", more))

    def _stored_escalations(self, incident_id: str, limit: int, cursor: str | None) -> Page[EscalationRecord]:
        return self._sub_page(
            EscalationRecordItem,
            incident_id,
            "ESC#",
            "escalations",
            limit,
            cursor,
            lambda i: EscalationRecord(
                incident_id=i.incident_id,
                seq=int(i.seq),
                level=int(i.level),
                loop=int(i.loop),
                status=i.status,
                scheduled_at=parse_iso(i.scheduled_at),
                targets=tuple(i.targets),
                executed_at=_opt_time(i.executed_at),
                cancelled_at=_opt_time(i.cancelled_at),
                recipients=tuple(i.recipients or ()),
            ),
            consistent=True,
        )

    def notifications(self, incident_id: str, limit: int, cursor: str | None) -> Page[Notification]:
        # In key (dedup id) order: paging needs the stored order, and the outbox key holds no time.
        return self._sub_page(
            OutboxItem,
            incident_id,
            "OUT#",
            "notifications",
            limit,
            cursor,
            self._to_notification,
            consistent=True,
        )

    def _sub_page(
        self,
        model: Any,
        incident_id: str,
        prefix: str,
        kind: str,
        limit: int,
        cursor: str | None,
        convert: Callable[[Any], T],
        consistent: bool = False,
    ) -> Page[T]:
        """One Query of limit + 1 items in key order; the extra one only says whether more follow."""
        pk = incident_pk(incident_id)
        purpose = f"{kind}:{incident_id}"  # a cursor works only on the list that issued it
        position = self._cursors.decode(purpose, cursor, _SUB_POSITION)
        items = list(
            model.query(
                pk,
                model.sk.startswith(prefix),
                consistent_read=consistent,
                limit=limit + 1,
                page_size=limit + 1,
                last_evaluated_key={"pk": {"S": pk}, "sk": {"S": position["sk"]}} if position else None,
            )
        )
        more = {"sk": items[limit - 1].sk} if len(items) > limit else None
        return Page([convert(i) for i in items[:limit]], self._cursors.encode(purpose, more))

    def mark_all_sent(self, notifications: list[Notification], at: datetime) -> None:
        """Few rows: one conditional update each (1 write unit a row, where a transaction bills
        2); more: conditional transactions of up to 100, row by row if any was marked already.
        Each row's mark stands alone (conditional on its own status), so either way is exact."""
        if len(notifications) <= MARK_ONE_BY_ONE:
            for n in notifications:
                self.mark_sent(n, at)
            return
        for start in range(0, len(notifications), 100):  # TransactWriteItems takes 100 items
            chunk = notifications[start : start + 100]
            try:
                with TransactWrite(connection=self._connection) as tx:
                    for n in chunk:
                        tx.update(
                            self._outbox_key(n),
                            actions=self._sent_actions(at),
                            condition=OutboxItem.status == "pending",
                        )
            except TransactWriteError:
                for n in chunk:
                    self.mark_sent(n, at)

    def mark_sent(self, notification: Notification, at: datetime) -> bool:
        try:
            self._outbox_key(notification).update(
                actions=self._sent_actions(at), condition=OutboxItem.status == "pending"
            )
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False  # someone else (the reconciler, or a retry) marked it first
            raise
        return True

    def record_publish_failures(
        self, failures: list[tuple[Notification, str, bool]], at: datetime
    ) -> list[Notification]:
        """Count a failed attempt on each row; park those that keep failing. Returns the parked."""
        parked: list[Notification] = []
        for n, error, permanent in failures:
            attempts = n.attempts + 1
            limit = PARK_AFTER_PERMANENT if permanent else PARK_AFTER_TRANSIENT
            actions: list[Any] = [
                OutboxItem.attempts.set(attempts),
                OutboxItem.last_error.set(error[:500]),
            ]
            if attempts >= limit:
                actions += [
                    OutboxItem.status.set("parked"),
                    OutboxItem.pending_pk.remove(),
                    OutboxItem.pending_key.remove(),
                ]
            # Conditional on the count we read, so two failing publishers count once each.
            seen = (
                OutboxItem.attempts.does_not_exist() if n.attempts == 0 else OutboxItem.attempts == n.attempts
            )
            try:
                self._outbox_key(n).update(actions=actions, condition=(OutboxItem.status == "pending") & seen)
            except UpdateError as exc:
                if exc.cause_response_code == "ConditionalCheckFailedException":
                    continue  # sent, superseded or counted by someone else meanwhile
                raise
            if attempts >= limit:
                parked.append(n)
        return parked

    def record_delivery(
        self,
        incident_id: str,
        dedup_id: str,
        status: str,
        attempts: int,
        http_status: int | None,
        error: str | None,
    ) -> None:
        """A webhook attempt, on the notification's own row. It leaves the pending index too: the
        message reached the sender, so the reconciler must not publish it again."""
        actions: list[Any] = [
            OutboxItem.status.set(status),
            OutboxItem.delivery_attempts.set(attempts),
            OutboxItem.pending_pk.remove(),
            OutboxItem.pending_key.remove(),
        ]
        actions.append(
            OutboxItem.last_http_status.set(http_status)
            if http_status is not None
            else OutboxItem.last_http_status.remove()
        )
        actions.append(OutboxItem.last_error.set(error[:500]) if error else OutboxItem.last_error.remove())
        try:
            OutboxItem(incident_pk(incident_id), f"OUT#{dedup_id}").update(
                actions=actions,
                # Never back from delivered (a duplicate SQS delivery), never onto a missing row.
                condition=OutboxItem.pk.exists() & (OutboxItem.status != "delivered"),
            )
        except UpdateError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise

    def unsent_pages(self, incident_id: str) -> list[Notification]:
        rows = OutboxItem.query(
            incident_pk(incident_id),
            OutboxItem.sk.startswith("OUT#"),
            filter_condition=(OutboxItem.status == "pending") & (OutboxItem.kind == "page"),
            consistent_read=True,
        )
        return [self._to_notification(i) for i in rows]

    def supersede(self, notifications: list[Notification]) -> None:
        """Retire pending rows of an incident already closed (the reconciler's guard), or a
        delayed page's scheduled row that its incident no longer lists (its timer's guard)."""
        for n in notifications:
            with contextlib.suppress(UpdateError):  # a row sent meanwhile stays sent
                self._outbox_key(n).update(
                    actions=[
                        OutboxItem.status.set("superseded"),
                        OutboxItem.pending_pk.remove(),
                        OutboxItem.pending_key.remove(),
                        OutboxItem.due_pk.remove(),
                        OutboxItem.due_key.remove(),
                    ],
                    condition=OutboxItem.status.is_in("pending", "scheduled"),
                )

    def outbox_row(self, incident_id: str, dedup_id: str) -> Notification | None:
        try:
            item = OutboxItem.get(incident_pk(incident_id), f"OUT#{dedup_id}", consistent_read=True)
        except DoesNotExist:
            return None
        return self._to_notification(item)

    @staticmethod
    def _outbox_key(n: Notification) -> OutboxItem:
        return OutboxItem(incident_pk(n.incident_id), f"OUT#{n.dedup_id}")

    @staticmethod
    def _sent_actions(at: datetime) -> list[Any]:
        return [
            OutboxItem.status.set("sent"),
            OutboxItem.sent_at.set(to_key(at)),
            OutboxItem.pending_pk.remove(),
            OutboxItem.pending_key.remove(),
        ]

    def overdue(self, cutoff: datetime, limit: int) -> list[TimerMessage]:
        """The timers to re-arm: earliest due first across the shards; each shard's read stops at
        the cutoff: O(overdue). The DueIndex holds keys only (see template.yaml) of incidents with
        an armed timer and of delayed pages still scheduled; each is then read itself,
        consistently: one that moved on meanwhile is left out."""
        connection = IncidentItem._get_connection()
        due = sorted(
            (entry["due_key"]["S"], entry["pk"]["S"], entry["sk"]["S"])
            for shard in range(SHARDS)
            for entry in connection.query(
                _partition("DUE", shard),
                range_key_condition=IncidentItem.due_key <= to_key(cutoff),
                index_name="DueIndex",
                limit=limit,
            ).get("Items", [])
        )[:limit]
        timers: list[TimerMessage] = []
        for _, pk, sk in due:
            incident_id = pk.removeprefix("INC#")
            if sk == META:
                incident = self.get(incident_id)
                if incident and incident.token and incident.due_at and incident.due_at <= cutoff:
                    timers.append(TimerMessage(incident.id, incident.token, incident.due_at))
                continue
            row = self.outbox_row(incident_id, sk.removeprefix("OUT#"))
            if row and row.status == "scheduled" and row.due_at and row.due_at <= cutoff:
                token = row.dedup_id.split("/")[1] if row.dedup_id.count("/") >= 2 else ""
                timers.append(TimerMessage(incident_id, token, row.due_at, page=row.dedup_id))
        return timers

    def record_reconciler_run(self, run: ReconcilerRun) -> bool:
        """The reconciler's heartbeat: one conditional write that only moves forward in time, so
        two overlapping runs cannot set it back. False when a later run was recorded first."""
        at = to_key(run.at)
        try:
            ReconcilerRunItem("ENGINE", "RECONCILER").update(
                actions=[
                    ReconcilerRunItem.last_run_at.set(at),
                    ReconcilerRunItem.timers_rearmed.set(run.timers_rearmed),
                    ReconcilerRunItem.notifications_republished.set(run.notifications_republished),
                ],
                condition=ReconcilerRunItem.last_run_at.does_not_exist()
                | (ReconcilerRunItem.last_run_at < at),
            )
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def last_reconciler_run(self) -> ReconcilerRun | None:
        try:
            item = ReconcilerRunItem.get("ENGINE", "RECONCILER", consistent_read=True)
        except DoesNotExist:
            return None
        return ReconcilerRun(
            parse_iso(item.last_run_at), int(item.timers_rearmed), int(item.notifications_republished)
        )

    def pending_notifications(self, cutoff: datetime, limit: int) -> list[Notification]:
        """Oldest first across the shards, O(stuck rows); keys only in the index, as for overdue()."""
        connection = OutboxItem._get_connection()
        keys = sorted(
            (entry["pending_key"]["S"], entry["pk"]["S"], entry["sk"]["S"])
            for shard in range(SHARDS)
            for entry in connection.query(
                _partition("PENDING", shard),
                range_key_condition=OutboxItem.pending_key <= to_key(cutoff),
                index_name="PendingIndex",
                limit=limit,
            ).get("Items", [])
        )[:limit]
        rows = []
        for _, pk, sk in keys:
            try:
                row = OutboxItem.get(pk, sk, consistent_read=True)
            except DoesNotExist:
                continue
            if row.status == "pending":  # not marked sent since the index was read
                rows.append(self._to_notification(row))
        return rows

    # --- mapping -------------------------------------------------------------------------------

    @staticmethod
    def _to_item(incident: Incident, change_nonce: str | None = None) -> IncidentItem:
        lifecycle: dict[str, str | None] = {k: _opt_key(getattr(incident, k)) for k in _LIFECYCLE_TIMES}
        lifecycle.update({k: getattr(incident, k) for k in _LIFECYCLE_TEXT})
        cursor = incident.escalation
        keys = _IndexKeys.of(incident)
        return IncidentItem(
            incident_pk(incident.id),
            META,
            incident_id=incident.id,
            title=incident.title,
            description=incident.description,
            severity=incident.severity.value,
            status=incident.status.value,
            service=incident.service,
            service_id=incident.service_id,
            team=incident.team,
            source=incident.source,
            labels=incident.labels or None,
            dedup_key=incident.dedup_key,
            created_at=to_key(incident.created_at),
            updated_at=to_key(incident.updated_at),
            lifecycle={k: v for k, v in lifecycle.items() if v is not None} or None,
            escalation=(
                {
                    "policy": cursor.policy,
                    "level": cursor.level,
                    "loop": cursor.loop,
                    "next_level": cursor.next_level,
                    "next_loop": cursor.next_loop,
                    "record_seq": cursor.record_seq,
                }
                if cursor
                else None
            ),
            token=incident.token,
            due_at=_opt_key(incident.due_at),
            paged=[list(p) for p in incident.paged] or None,
            scheduled=[
                {
                    "dedup_id": p.dedup_id,
                    "channel": p.channel,
                    "address": p.address,
                    "due_at": to_key(p.due_at),
                }
                for p in incident.scheduled
            ]
            or None,
            version=incident.version,
            change_nonce=change_nonce,
            alert_count=incident.alert_count or None,
            last_seen_at=_opt_key(incident.last_seen_at),
            latest_alert=incident.latest_alert,
            previous_incident_id=incident.previous_incident_id,
            suppressed=incident.suppressed or None,
            routing=(
                {"assignees": list(incident.assignees), "runbooks": list(incident.runbooks)}
                if incident.assignees or incident.runbooks
                else None
            ),
            repeats=(
                {
                    "first_at": to_key(incident.repeats.first_at),
                    "version": incident.repeats.version,
                    "count": incident.repeats.count,
                    "actor": incident.repeats.actor,
                }
                if incident.repeats
                else None
            ),
            created_key=f"{to_key(incident.created_at)}#{incident.id}",
            list_pk=keys.list_pk,
            status_pk=keys.status_pk,
            severity_pk=keys.severity_pk,
            service_pk=keys.service_pk,
            team_pk=keys.team_pk,
            active_pk=keys.active_pk,
            # Sparse: only incidents with an armed timer are in the DueIndex.
            due_pk=_partition("DUE", shard_of(incident.id)) if incident.due_at else None,
            due_key=f"{to_key(incident.due_at)}#{incident.id}" if incident.due_at else None,
        )

    @staticmethod
    def _to_incident(item: IncidentItem) -> Incident:
        life: dict[str, Any] = item.lifecycle or {}
        times: dict[str, Any] = {k: _opt_time(life.get(k)) for k in _LIFECYCLE_TIMES}
        texts: dict[str, Any] = {k: life.get(k) for k in _LIFECYCLE_TEXT}
        esc = item.escalation
        routed: dict[str, Any] = item.routing or {}
        return Incident(
            id=item.incident_id,
            title=item.title,
            severity=Severity(item.severity),
            status=Status(item.status),
            created_at=parse_iso(item.created_at),
            updated_at=parse_iso(item.updated_at),
            description=item.description,
            service=item.service,
            service_id=item.service_id,
            team=item.team,
            source=item.source,
            labels=dict(item.labels or {}),
            dedup_key=item.dedup_key,
            escalation=EscalationCursor(**esc) if esc else None,
            token=item.token,
            due_at=_opt_time(item.due_at),
            paged=tuple((p[0], p[1]) for p in (item.paged or [])),
            scheduled=tuple(
                ScheduledPage(p["dedup_id"], p["channel"], p["address"], parse_iso(p["due_at"]))
                for p in (item.scheduled or [])
            ),
            version=int(item.version),
            alert_count=int(item.alert_count or 0),
            last_seen_at=_opt_time(item.last_seen_at),
            latest_alert=item.latest_alert,
            previous_incident_id=item.previous_incident_id,
            suppressed=bool(item.suppressed),
            assignees=tuple(routed.get("assignees", ())),
            runbooks=tuple(routed.get("runbooks", ())),
            repeats=(
                RepeatFold(
                    parse_iso(run["first_at"]),
                    int(run["version"]),
                    int(run["count"]),
                    str(run.get("actor") or "alerts"),
                )
                if (run := item.repeats)
                else None
            ),
            **times,
            **texts,
        )

    @staticmethod
    def _event_item(event: TimelineEvent, version: int, n: int) -> TimelineItem:
        # Time first so the timeline sorts by time; then the incident version and n keep the
        # order of changes made in the same instant; the random tail keeps keys unique.
        sk = f"EV#{to_key(event.at)}#{version:09d}#{n:03d}#{secrets.token_hex(3)}"
        return TimelineItem(
            incident_pk(event.incident_id),
            sk,
            incident_id=event.incident_id,
            at=to_key(event.at),
            type=event.type,
            actor=event.actor,
            data=_jsonable(event.data) or None,
        )

    def _change_item(self, events: list[TimelineEvent], version: int) -> TimelineItem:
        """A change's events (all at its one instant) as one item; a lone event keeps the
        single-event layout."""
        if len(events) == 1:
            return self._event_item(events[0], version, 0)
        item = self._event_item(events[0], version, 0)
        item.type = item.actor = item.data = None
        item.events = [
            {
                "type": e.type,
                "actor": e.actor,
                **({"data": d} if (d := _jsonable(e.data)) else {}),
                **({"at": to_key(e.at)} if e.at != events[0].at else {}),
            }
            for e in events
        ]
        return item

    @staticmethod
    def _fold_item(event: TimelineEvent, fold: RepeatFold) -> TimelineItem:
        return TimelineItem(
            incident_pk(event.incident_id),
            _fold_key(fold),
            incident_id=event.incident_id,
            at=to_key(fold.first_at),
            type=event.type,
            actor=event.actor,
            data=_jsonable(event.data) or None,
        )

    @staticmethod
    def _record_item(record: EscalationRecord) -> EscalationRecordItem:
        return EscalationRecordItem(
            incident_pk(record.incident_id),
            f"ESC#{record.seq:06d}",
            incident_id=record.incident_id,
            seq=record.seq,
            level=record.level,
            loop=record.loop,
            status=record.status,
            scheduled_at=to_key(record.scheduled_at),
            executed_at=_opt_key(record.executed_at),
            cancelled_at=_opt_key(record.cancelled_at),
            targets=[dict(t) for t in record.targets],
            recipients=[dict(r) for r in record.recipients] or None,
        )

    @staticmethod
    def _outbox_item(n: Notification) -> OutboxItem:
        scheduled = n.status == "scheduled" and n.due_at is not None
        return OutboxItem(
            incident_pk(n.incident_id),
            f"OUT#{n.dedup_id}",
            kind=n.kind,
            recipient=n.recipient,
            channel=n.channel,
            body=_pack_body(n.subject, n.message, n.attributes),
            level=n.level,
            loop=n.loop,
            status=n.status,
            created_at=to_key(n.created_at),
            sent_at=_opt_key(n.sent_at),
            attempts=n.attempts or None,
            last_error=n.last_error,
            # Sparse: only rows still pending are in the PendingIndex.
            pending_pk=_partition("PENDING", shard_of(n.incident_id)) if n.status == "pending" else None,
            pending_key=f"{to_key(n.created_at)}#{n.dedup_id}" if n.status == "pending" else None,
            due_at=_opt_key(n.due_at),
            # Sparse: a delayed page is in the DueIndex only while scheduled.
            due_pk=_partition("DUE", shard_of(n.incident_id)) if scheduled else None,
            due_key=f"{to_key(n.due_at)}#{n.incident_id}#{n.dedup_id}" if scheduled and n.due_at else None,
        )

    @staticmethod
    def _to_notification(i: OutboxItem) -> Notification:
        subject, message, attributes = _unpack_body(i)
        return Notification(
            incident_id=i.pk.removeprefix("INC#"),
            dedup_id=i.sk.removeprefix("OUT#"),
            kind=i.kind,
            recipient=i.recipient,
            channel=i.channel,
            subject=subject,
            message=message,
            attributes=attributes,
            created_at=parse_iso(i.created_at),
            level=None if i.level is None else int(i.level),
            loop=None if i.loop is None else int(i.loop),
            status=i.status,
            sent_at=_opt_time(i.sent_at),
            attempts=int(i.attempts or 0),
            last_error=i.last_error,
            delivery_attempts=int(i.delivery_attempts or 0),
            last_http_status=None if i.last_http_status is None else int(i.last_http_status),
            due_at=_opt_time(i.due_at),
        )


def _fold_key(fold: RepeatFold) -> str:
    """Where a run of repeats sorts: where its first repeat happened, among its changes."""
    return f"EV#{to_key(fold.first_at)}#{fold.version:09d}#000#repeats"


def _pack_body(subject: str, message: str, attributes: dict[str, Any]) -> bytes:
    """A row's subject, text and attributes as one compressed value (see OutboxItem.body)."""
    text = json.dumps(
        {"s": subject, "m": message, "a": attributes}, ensure_ascii=False, separators=(",", ":")
    )
    return zlib.compress(text.encode(), 9)


def _unpack_body(item: OutboxItem) -> tuple[str, str, dict[str, Any]]:
    if item.body is None:  # a row from before the packed body
        return item.subject or "", item.message or "", dict(item.attributes or {})
    data = json.loads(zlib.decompress(item.body))
    return str(data["s"]), str(data["m"]), dict(data["a"])


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    """Timeline data as JSON: times become ISO strings."""
    return json.loads(json.dumps(data, default=lambda v: to_key(v) if isinstance(v, datetime) else str(v)))
