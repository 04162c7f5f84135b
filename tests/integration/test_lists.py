"""Lists stay cheap: each page reads O(page) whatever the history, across sharded indexes, and
cursors are signed so that a client can only hand back one this API issued."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from incident_engine.adapters.notifications import SnsNotificationPublisher
from incident_engine.domain import engine
from incident_engine.domain.lifecycle import Status
from incident_engine.domain.severity import Severity
from incident_engine.store import incidents as store
from incident_engine.store.incidents import IncidentRepository
from incident_engine.store.models import IncidentItem
from incident_engine.store.signing import ConfigTableSigner
from incident_engine.usecases.ports import PublishResult
from incident_engine.wiring import services
from local.template import LocalStack
from tests.conftest import START
from tests.support import Api

ACTIVE = {"open", "escalating", "acknowledged", "snoozed"}


@contextmanager
def items_read() -> Iterator[list[int]]:
    """Items DynamoDB evaluated for us: a Query's ScannedCount (index entries read, before any
    filter) plus every item a BatchGetItem returned. The sum is what the reads are billed on."""
    counts: list[int] = []

    def count(event_name: str, parsed: dict[str, Any], **_: Any) -> None:
        if event_name.endswith("Query"):
            counts.append(int(parsed.get("ScannedCount", 0)))
        else:
            counts.append(sum(len(v) for v in parsed.get("Responses", {}).values()))

    client = IncidentItem._get_connection().connection.client
    for op in ("Query", "BatchGetItem"):
        client.meta.events.register(f"after-call.dynamodb.{op}", count)
    try:
        yield counts
    finally:
        for op in ("Query", "BatchGetItem"):
            client.meta.events.unregister(f"after-call.dynamodb.{op}", count)


def _store(n: int, status: Status, **fields: Any) -> str:
    """An incident written straight to the table as the repository maps it (fast to seed many)."""
    new = engine.NewIncident(title=f"i{n}", **fields)
    made = engine.open_incident(f"INC-20261122-{n:03d}", new, None, START + timedelta(seconds=n), "t", None)
    IncidentRepository._to_item(replace(made.incident, status=status)).save()
    return made.incident.id


def _history(api: Api) -> list[str]:
    """5 old incidents still open (P0, service payments, team pay), then 55 newer ones resolved."""
    services()  # binds the item classes to this test's tables
    rare = [_store(n, Status.OPEN, severity=Severity.P0, service="payments", team="pay") for n in range(5)]
    for n in range(5, 60):
        _store(n, Status.RESOLVED, severity=Severity.P3, service="web", team="web")
    return rare[::-1]  # newest first


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"status": "open"},
        {"status": "active"},
        {"severity": "P0"},
        {"service": "payments"},
        {"team": "pay"},
        {"status": "active", "team": "pay", "severity": "P0"},
        {"service": "payments", "severity": "P0"},
    ],
    ids=lambda q: "&".join(f"{k}={v}" for k, v in q.items()) or "unfiltered",
)
def test_a_list_page_reads_o_page_not_the_history(api: Api, clock: Any, query: dict[str, str]) -> None:
    # Given 60 incidents, of which the 5 oldest are the only ones matching any filter below
    rare = _history(api)
    # When one page of 3 is listed
    with items_read() as counts:
        page = api.ok("GET", "/incidents", query={**query, "limit": "3"})
    # Then it is the newest matches, read with a few index entries per shard and 3 items, not 60
    expected = rare[:3] if query else None
    if expected is not None:
        assert [i["id"] for i in page["items"]] == expected
    else:
        assert len(page["items"]) == 3
    assert page["next_cursor"]
    assert sum(counts) <= store.SHARDS * 3 + 3, counts


def test_pages_of_a_filtered_list_go_on_where_the_last_stopped(api: Api, clock: Any) -> None:
    rare = _history(api)
    seen, cursor = [], None
    with items_read() as counts:
        for _ in range(5):
            query = {"team": "pay", "limit": "2", **({"cursor": cursor} if cursor else {})}
            page = api.ok("GET", "/incidents", query=query)
            seen += [i["id"] for i in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    assert seen == rare and cursor is None
    assert sum(counts) <= 3 * (store.SHARDS * 2 + 2)


def _wipe(aws: LocalStack) -> None:
    table = boto3.resource("dynamodb", region_name=aws.region).Table(aws.physical["IncidentsTable"])
    keys = [{"pk": i["pk"], "sk": i["sk"]} for i in table.scan(ProjectionExpression="pk, sk")["Items"]]
    with table.batch_writer() as batch:
        for key in keys:
            batch.delete_item(Key=key)


_incident = st.tuples(
    st.integers(0, 4),  # created, seconds after START (ties are broken by id)
    st.sampled_from([s.value for s in Status]),
    st.sampled_from(["P0", "P3"]),
    st.sampled_from([None, "web", "db"]),
    st.sampled_from([None, "core"]),
)
_filters = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(["active", "open", "resolved", "acknowledged"]),
        "severity": st.sampled_from(["P0", "P3"]),
        "service": st.sampled_from(["web", "db"]),
        "team": st.just("core"),
    },
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(
    rows=[(0, "open", "P0", None, None), (0, "resolved", "P0", None, None)],
    flt={"status": "active"},
    limit=1,
    scan=1,
)
@given(
    rows=st.lists(_incident, max_size=24),
    flt=_filters,
    limit=st.integers(1, 7),
    scan=st.integers(1, 6),
)
def test_paging_through_the_shards_returns_every_match_once_newest_first(
    aws: LocalStack,
    api: Api,
    monkeypatch: pytest.MonkeyPatch,
    rows: list[tuple[int, str, str, str | None, str | None]],
    flt: dict[str, str],
    limit: int,
    scan: int,
) -> None:
    # A small scan budget makes filtered pages come back short, which the cursor must survive.
    monkeypatch.setattr(store, "FILTER_SCAN_PER_SHARD", scan)
    services()
    _wipe(aws)
    stored = []
    for n, (offset, status, severity, service, team) in enumerate(rows):
        new = engine.NewIncident(title=f"i{n}", severity=Severity(severity), service=service, team=team)
        made = engine.open_incident(
            f"INC-20261122-{n:03d}", new, None, START + timedelta(seconds=offset), "t", None
        )
        incident = replace(made.incident, status=Status(status))
        IncidentRepository._to_item(incident).save()
        stored.append(incident)

    def wanted(i: Any) -> bool:
        status = flt.get("status")
        return (
            (status is None or (i.status.value in ACTIVE if status == "active" else i.status.value == status))
            and flt.get("severity") in (None, i.severity.value)
            and flt.get("service") in (None, i.service)
            and flt.get("team") in (None, i.team)
        )

    expected = [i.id for i in sorted(stored, key=lambda i: (i.created_at, i.id), reverse=True) if wanted(i)]
    seen: list[str] = []
    cursor = None
    for _ in range(len(rows) + 2 * store.SHARDS + 2):  # every page makes progress
        page = api.ok(
            "GET", "/incidents", query={**flt, "limit": str(limit), **({"cursor": cursor} if cursor else {})}
        )
        assert len(page["items"]) <= limit
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected


def test_no_index_partition_key_takes_every_write(
    aws: LocalStack, api: Api, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 24 incidents escalating (timers armed) whose pages SNS did not take (outbox pending)
    monkeypatch.setattr(SnsNotificationPublisher, "publish_all", lambda self, rows: PublishResult([], []))
    levels = [
        {"delay_minutes": 0, "targets": [{"type": "user", "email": "a@example.com"}]},
        {"delay_minutes": 30, "targets": [{"type": "user", "email": "b@example.com"}]},
    ]
    api.ok("POST", "/policies", {"name": "p", "is_default": True, "levels": levels}, expect=201)
    for n in range(24):
        api.ok(
            "POST",
            "/incidents",
            {"title": f"i{n}", "severity": "P1", "service": "s", "team": "t"},
            expect=201,
        )
    items = (
        boto3.resource("dynamodb", region_name=aws.region)
        .Table(aws.physical["IncidentsTable"])
        .scan()["Items"]
    )
    # Then every index spreads its entries over the shards, none holding them all
    for key in (
        "list_pk",
        "status_pk",
        "severity_pk",
        "service_pk",
        "team_pk",
        "active_pk",
        "due_pk",
        "pending_pk",
    ):
        spread = Counter(i[key] for i in items if key in i)
        assert sum(spread.values()) == 24, key
        assert len(spread) == store.SHARDS, (key, spread)


def _cursor_of(api: Api, clock: Any, path: str = "/incidents") -> str:
    cursor: str = api.ok("GET", path, query={"limit": "1"})["next_cursor"]
    assert cursor
    return cursor


def _rejected(api: Api, path: str, cursor: str) -> None:
    status, body = api.call("GET", path, query={"cursor": cursor})
    assert status == 422 and body["field"] == "cursor", (status, body)


def test_a_forged_or_tampered_cursor_is_rejected_naming_cursor(api: Api, clock: Any) -> None:
    made = [
        api.ok("POST", "/incidents", {"title": f"i{n}", "severity": "P2"}, expect=201)["id"] for n in range(3)
    ]
    for n in range(3):
        api.ok("POST", f"/incidents/{made[0]}/notes", {"text": f"note {n}"}, expect=201)
    genuine = _cursor_of(api, clock)
    assert api.call("GET", "/incidents", query={"cursor": genuine})[0] == 200
    body, mac = genuine.split(".")
    position = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    # A position of the client's choosing, unsigned (what any base64 JSON used to pass as)
    forged = {"k": "9999-12-31T00:00:00.000Z#INC-99991231-001"}
    _rejected(api, "/incidents", base64.urlsafe_b64encode(json.dumps(forged).encode()).decode())
    # ... or with the genuine cursor's signature
    tampered = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
    _rejected(api, "/incidents", f"{tampered}.{mac}")
    # ... or with one character of the signature changed
    _rejected(api, "/incidents", f"{body}.{mac[:-2]}{'A' if mac[-2] != 'A' else 'B'}{mac[-1]}")
    assert set(position) == {"k"}
    # A cursor only works on the list that issued it
    timeline = _cursor_of(api, clock, f"/incidents/{made[0]}/timeline")
    _rejected(api, f"/incidents/{made[1]}/timeline", timeline)
    _rejected(api, f"/incidents/{made[0]}/escalations", timeline)
    _rejected(api, f"/incidents/{made[0]}/timeline", genuine)
    _rejected(api, "/incidents", "not-a-cursor")
    _rejected(api, "/incidents", "a.b.c")


def test_the_signing_key_is_made_once_and_shared(aws: LocalStack, api: Api) -> None:
    # Two processes (two signers) agree, whichever made the key; purposes never cross
    first, second = ConfigTableSigner(), ConfigTableSigner()
    signature = first.sign("cursor:incidents", b"payload")
    assert second.verify("cursor:incidents", b"payload", signature)
    assert not second.verify("ack-link", b"payload", signature)
    assert not second.verify("cursor:incidents", b"payload!", signature)
    items = (
        boto3.resource("dynamodb", region_name=aws.region).Table(aws.physical["ConfigTable"]).scan()["Items"]
    )
    assert [i["sk"] for i in items if i["pk"] == "SECRET"] == ["SIGNING_KEY"]


def test_a_lost_race_to_create_the_key_uses_the_winners(
    aws: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given another process creates the key between this one's read and its write
    from incident_engine.store import signing
    from incident_engine.store.models import SigningKeyItem

    winner = ConfigTableSigner()
    original_get = SigningKeyItem.get
    calls: list[int] = []

    def first_read_misses(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            winner.sign("x", b"")  # the other process wins the put-if-absent
            raise signing.DoesNotExist()
        return original_get(*args, **kwargs)

    monkeypatch.setattr(SigningKeyItem, "get", first_read_misses)
    loser = ConfigTableSigner()
    assert loser.sign("x", b"data") == winner.sign("x", b"data")


def _pages(api: Api, path: str, limit: int) -> list[list[Any]]:
    pages, cursor = [], None
    while True:
        page = api.ok("GET", path, query={"limit": str(limit), **({"cursor": cursor} if cursor else {})})
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages


def test_timeline_escalations_and_notifications_paginate(api: Api, clock: Any) -> None:
    # Given an incident with 5 escalation steps, 5 recipients at level 0 and a long timeline
    targets = [{"type": "user", "email": f"u{k}@example.com"} for k in range(5)]
    levels = [{"delay_minutes": 60 * n, "targets": targets} for n in range(5)]
    api.ok("POST", "/policies", {"name": "p", "is_default": True, "levels": levels}, expect=201)
    inc = api.ok("POST", "/incidents", {"title": "x", "severity": "P1"}, expect=201)["id"]
    for _ in range(3):
        api.ok("POST", f"/incidents/{inc}/escalate", {})
    for n in range(6):
        clock.shift(1)
        api.ok("POST", f"/incidents/{inc}/notes", {"text": f"note {n}"}, expect=201)
    for kind in ("timeline", "escalations", "notifications"):
        path = f"/incidents/{inc}/{kind}"
        everything = api.ok("GET", path)
        assert everything["next_cursor"] is None and len(everything["items"]) >= 5, kind
        # When it is read 2 at a time
        pages = _pages(api, path, 2)
        # Then the pages hold at most 2 each, and together everything once, in the same order
        assert all(0 < len(p) <= 2 for p in pages), kind
        assert [i for p in pages for i in p] == everything["items"], kind
    notes = [
        e["data"]["text"] for e in api.ok("GET", f"/incidents/{inc}/timeline")["items"] if e["type"] == "note"
    ]
    assert notes == [f"note {n}" for n in range(6)]
    assert api.call("GET", f"/incidents/{inc}/timeline", query={"limit": "0"})[0] == 422
