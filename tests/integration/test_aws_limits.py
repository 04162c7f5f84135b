"""The guarantees at limits moto does not enforce: key and item sizes, SNS batch sizes, and the
errors real DynamoDB answers under contention. Each test feeds in what real AWS would do."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from pynamodb.connection.base import Connection

from incident_engine.adapters.notifications import BATCH_BYTES, SnsNotificationPublisher, entry_size
from incident_engine.domain.model import Notification
from local.template import LocalStack
from tests.support import Api, Tap, Timers, reconcile

GRACE = 20
LONG_URL = "https://hooks.example.com/" + "p" * 2_000  # accepted by the schema (2,083 characters max)


def policy(api: Api, levels: list[list[dict[str, str]]], delay: float = 0.05) -> dict[str, Any]:
    body = {
        "name": "p",
        "is_default": True,
        "levels": [{"delay_minutes": 0 if n == 0 else delay, "targets": t} for n, t in enumerate(levels)],
    }
    return api.ok("POST", "/policies", body, expect=201)


def pages(tap: Tap) -> Counter[str]:
    return Counter(m["attributes"]["recipient"] for m in tap.messages() if m["attributes"]["kind"] == "page")


# --- DynamoDB key and item sizes ----------------------------------------------------------------


def _size(value: Any) -> int:
    """DynamoDB's item-size arithmetic, close enough to bound: UTF-8 strings, ~21 bytes a number."""
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, (int, float, Decimal)):
        return 21
    if isinstance(value, dict):
        return 3 + sum(len(k.encode()) + 1 + _size(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return 3 + sum(1 + _size(v) for v in value)
    return len(bytes(value))


KEY_ATTRS = {  # attribute -> DynamoDB's cap for it as a key (partition 2,048 bytes, sort 1,024)
    "pk": 2048,
    "sk": 1024,
    "list_pk": 2048,
    "created_key": 1024,
    "due_pk": 2048,
    "due_key": 1024,
    "pending_pk": 2048,
    "pending_key": 1024,
}


def assert_every_item_fits(stack: LocalStack) -> int:
    table = boto3.resource("dynamodb", region_name=stack.region).Table(stack.physical["IncidentsTable"])
    items: list[dict[str, Any]] = []
    page = table.scan()
    items += page["Items"]
    while "LastEvaluatedKey" in page:  # a scan returns at most 1 MB a call
        page = table.scan(ExclusiveStartKey=page["LastEvaluatedKey"])
        items += page["Items"]
    for item in items:
        for attr, cap in KEY_ATTRS.items():
            if attr in item:
                assert len(str(item[attr]).encode()) <= cap, (attr, len(str(item[attr]).encode()))
        size = sum(len(k.encode()) + _size(v) for k, v in item.items())
        assert size <= 400 * 1024, (item["sk"], size)
    return len(items)


def test_a_webhook_with_a_2000_character_url_is_stored_and_its_levels_fire(
    api: Api, aws: LocalStack, timers: Timers, tap: Tap, clock
) -> None:
    # Given webhooks whose URLs are 2,026 characters long, paged by levels 0 and 1
    hooks = [
        api.ok("POST", "/webhooks", {"name": f"w{n}", "url": LONG_URL + f"/{n}"}, expect=201) for n in (0, 1)
    ]
    policy(api, [[{"type": "webhook", "webhook_id": h["id"]}] for h in hooks])
    # When an incident opens and level 1 comes due
    status, body = api.call("POST", "/incidents", {"title": "long url", "severity": "P1"})
    assert status == 201, body
    clock.shift(3)
    timers.deliver()
    # Then both levels fired once, their rows are sent, and every key fits DynamoDB's limits
    assert pages(tap) == Counter({hooks[0]["id"]: 1, hooks[1]["id"]: 1})
    rows = api.ok("GET", f"/incidents/{body['id']}/notifications")["items"]
    assert [r["status"] for r in rows] == ["sent", "sent"]
    assert api.ok("GET", f"/incidents/{body['id']}")["escalation"]["level"] == 1
    assert timers.depth()["visible"] == 0
    assert assert_every_item_fits(aws) > 0


def test_a_2000_character_recipient_still_gets_a_bounded_dedup_id() -> None:
    # Whatever a target's address holds (here 2,000 multibyte characters), its keys stay bounded.
    from datetime import UTC, datetime

    from incident_engine.domain import engine
    from incident_engine.domain.policy import Level, Policy, Target
    from incident_engine.domain.severity import Severity

    address = "€" * 2_000
    policy_ = Policy("pol_1", "p", (Level(0, (Target("user", address),)),))
    new = engine.NewIncident(title="x", severity=Severity.P1)
    change = engine.open_incident("INC-20261122-001", new, policy_, datetime.now(UTC), "api", None)
    [row] = change.outbox
    assert row.recipient == address and len(row.dedup_id.encode()) < 200


def test_long_or_odd_dedup_keys_never_answer_500(api: Api) -> None:
    # A key longer than the schema allows is a 422 naming it; a long multibyte one that fits
    # the schema (255 characters, 1,020 bytes) is stored and dedups like any other.
    status, body = api.call("POST", "/incidents", {"title": "x", "severity": "P3", "dedup_key": "k" * 2_000})
    assert status == 422 and body["field"] == "dedup_key"
    status, body = api.call("POST", "/incidents", {"title": "x", "severity": "P3", "dedup_key": "a\u0007b"})
    assert status == 422 and body["field"] == "dedup_key"
    key = "€" * 255
    first = api.ok("POST", "/incidents", {"title": "x", "severity": "P3", "dedup_key": key}, expect=201)
    again = api.ok("POST", "/incidents", {"title": "y", "severity": "P3", "dedup_key": key}, expect=200)
    assert again["id"] == first["id"]


def test_every_item_of_the_largest_incident_fits_dynamodb(
    api: Api, aws: LocalStack, timers: Timers, tap: Tap, clock
) -> None:
    # Given the largest policy the schema accepts: 10 levels of 5 targets of the longest e-mail
    def longest_email(lv: int, n: int) -> str:  # 254 characters, the most the schema takes
        local = f"{lv}{n}" + "x" * 62
        domain = "d" * 63 + "." + "e" * 63 + "." + "f" * (254 - len(local) - 1 - 63 - 1 - 63 - 1 - 4) + ".com"
        return f"{local}@{domain}"

    levels = [[{"type": "user", "email": longest_email(lv, n)} for n in range(5)] for lv in range(10)]
    policy(api, levels)
    # and the largest incident: every text field at its limit, in 3-byte characters
    incident = {
        "title": "€" * 200,
        "severity": "P0",
        "description": "€" * 10_000,
        "service": "€" * 100,
        "team": "€" * 100,
        "source": "€" * 100,
        "dedup_key": "€" * 255,
        "labels": {f"{n:02d}" + "€" * 62: "€" * 256 for n in range(50)},
    }
    inc = api.ok("POST", "/incidents", incident, expect=201)["id"]
    # When every level fires and the incident is resolved with the longest note
    for _ in range(10):
        clock.shift(3)
        timers.deliver()
    api.ok("POST", f"/incidents/{inc}/resolve", {"resolution_note": "€" * 5_000})
    # Then every stored item and key is within DynamoDB's limits, and everyone was paged once
    assert assert_every_item_fits(aws) > 50
    assert len(pages(tap)) == 50 and set(pages(tap).values()) == {1}


# --- SNS batches --------------------------------------------------------------------------------


def _pending_rows(
    api: Api, aws: LocalStack, monkeypatch: pytest.MonkeyPatch, incidents: int, **extra: Any
) -> None:
    """Incidents whose level-0 pages SNS refused at first, so they wait for the reconciler."""

    def down(self: SnsNotificationPublisher, batch: list[Notification]) -> Any:
        raise ClientError({"Error": {"Code": "InternalError", "Message": "down"}}, "Publish")

    with monkeypatch.context() as patch:
        patch.setattr(SnsNotificationPublisher, "_publish", down)
        for n in range(incidents):
            api.ok("POST", "/incidents", {"title": f"inc {n}", "severity": "P1", **extra}, expect=201)


def test_a_failing_middle_batch_leaves_the_others_sent(
    api: Api, aws: LocalStack, tap: Tap, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 12 page rows pending (3 incidents x 4 recipients) after an SNS outage
    people = [f"u{n}@example.com" for n in range(4)]
    policy(api, [[{"type": "user", "email": p} for p in people]])
    _pending_rows(api, aws, monkeypatch, 3)
    # When the reconciler republishes them and SNS fails the second batch only, three ticks running
    original = SnsNotificationPublisher._publish
    calls: list[int] = []

    def second_batch_fails(self: SnsNotificationPublisher, batch: list[Notification]) -> Any:
        calls.append(len(batch))
        if len(calls) == 2:
            raise ClientError({"Error": {"Code": "Throttling", "Message": "slow down"}}, "PublishBatch")
        return original(self, batch)

    monkeypatch.setattr(SnsNotificationPublisher, "_publish", second_batch_fails)
    for _ in range(3):
        clock.shift(GRACE + 40)
        reconcile(aws)
    # Then every row went out exactly once: the first batch was marked sent, the failed two later
    assert calls[:2] == [10, 2] and len(calls) == 3
    assert pages(tap) == Counter({p: 3 for p in people})


def test_batches_are_cut_at_snss_256_kib(
    api: Api, aws: LocalStack, tap: Tap, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given SNS's real limit, which moto does not enforce: a request over 256 KiB is refused
    sns = SnsNotificationPublisher._publish

    def enforce(self: SnsNotificationPublisher, batch: list[Notification]) -> Any:
        if sum(entry_size(n) for n in batch) > 256 * 1024:
            raise ClientError(
                {"Error": {"Code": "BatchRequestTooLong", "Message": "too long"}}, "PublishBatch"
            )
        return sns(self, batch)

    monkeypatch.setattr(SnsNotificationPublisher, "_publish", enforce)
    # and 10 pending pages whose descriptions are 10,000 three-byte characters (~30 KB each)
    policy(api, [[{"type": "user", "email": f"u{n}@example.com"} for n in range(5)]])
    _pending_rows(api, aws, monkeypatch, 2, description="€" * 10_000)
    # When the reconciler republishes them
    clock.shift(GRACE + 1)
    assert reconcile(aws)["notifications_republished"] == 10
    # Then all ten went out, in batches under the limit
    assert sum(pages(tap).values()) == 10


def test_a_row_sns_keeps_refusing_is_parked_not_retried_forever(
    api: Api, aws: LocalStack, tap: Tap, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given SNS refuses one recipient's message as invalid, every time
    sns = SnsNotificationPublisher._publish

    def refuse_bad(self: SnsNotificationPublisher, batch: list[Notification]) -> Any:
        ok, bad = sns(self, [n for n in batch if n.recipient != "bad@example.com"])
        from incident_engine.usecases.ports import PublishFailure

        refused = [
            PublishFailure(n, "InvalidParameter", True) for n in batch if n.recipient == "bad@example.com"
        ]
        return ok, bad + refused

    monkeypatch.setattr(SnsNotificationPublisher, "_publish", refuse_bad)
    policy(
        api, [[{"type": "user", "email": "good@example.com"}, {"type": "user", "email": "bad@example.com"}]]
    )
    inc = api.ok("POST", "/incidents", {"title": "x", "severity": "P1"}, expect=201)["id"]
    # When the reconciler ticks for ten minutes
    republished = []
    for _ in range(10):
        clock.shift(60)
        republished.append(reconcile(aws)["notifications_republished"])
    # Then the good row went once; the bad one was tried 3 times in all and then parked
    rows = {r["recipient"]: r for r in api.ok("GET", f"/incidents/{inc}/notifications")["items"]}
    assert rows["good@example.com"]["status"] == "sent"
    assert rows["bad@example.com"]["status"] == "parked"
    assert rows["bad@example.com"]["attempts"] == 3
    assert pages(tap) == Counter({"good@example.com": 1})
    assert republished == [0] * 10


def test_size_batches_never_exceeds_either_cap() -> None:
    from datetime import UTC, datetime

    from incident_engine.adapters.notifications import size_batches

    def row(n: int, chars: int) -> Notification:
        return Notification(
            "INC-1", f"d{n}", "page", "r", "email", "s", "€" * chars, {}, datetime.now(UTC), 0, 0
        )

    rows = [
        row(n, c) for n, c in enumerate([10, 40_000, 40_000, 5, 80_000, 90_000, 1, 1, 1, 1, 1, 1, 1, 1, 1])
    ]
    batches = size_batches(rows)
    assert [n for b in batches for n in b] == rows  # order kept, nothing lost
    assert all(
        len(b) <= 10 and (len(b) == 1 or sum(entry_size(n) for n in b) <= BATCH_BYTES) for b in batches
    )


# --- DynamoDB contention ------------------------------------------------------------------------


def _conflict_once(monkeypatch: pytest.MonkeyPatch, reasons: list[dict[str, str]]) -> list[int]:
    """The next TransactWriteItems is cancelled as real DynamoDB cancels it under contention
    (at botocore's level, so PynamoDB parses the cancellation reasons as it would from AWS)."""
    original = BaseClient._make_api_call
    seen: list[int] = []

    def call(self: BaseClient, operation: str, kwargs: dict[str, Any]) -> Any:
        if operation == "TransactWriteItems":
            seen.append(1)
            if len(seen) == 1:
                codes = [r["Code"] for r in reasons]
                raise ClientError(
                    {  # type: ignore[typeddict-unknown-key]
                        "Error": {
                            "Code": "TransactionCanceledException",
                            "Message": "Transaction cancelled, please refer cancellation reasons for "
                            f"specific reasons [{', '.join(codes)}]",
                        },
                        "CancellationReasons": reasons,
                    },
                    "TransactWriteItems",
                )
        return original(self, operation, kwargs)

    monkeypatch.setattr(BaseClient, "_make_api_call", call)
    return seen


@pytest.mark.parametrize("reason", ["TransactionConflict", "ThrottlingError"])
def test_an_acknowledge_cancelled_for_contention_is_retried_not_a_500(
    api: Api, aws: LocalStack, tap: Tap, monkeypatch: pytest.MonkeyPatch, reason: str
) -> None:
    policy(api, [[{"type": "user", "email": "a@example.com"}], [{"type": "user", "email": "b@example.com"}]])
    inc = api.ok("POST", "/incidents", {"title": "x", "severity": "P1"}, expect=201)["id"]
    # Given DynamoDB cancels the acknowledge's transaction once with a non-condition reason
    seen = _conflict_once(monkeypatch, [{"Code": reason, "Message": "Transaction is ongoing for the item"}])
    # When the acknowledge is sent
    status, body = api.call("POST", f"/incidents/{inc}/acknowledge", {"by": "a@example.com"})
    # Then it is retried and succeeds, and the stored incident is acknowledged
    assert status == 200 and body["status"] == "acknowledged", body
    assert len(seen) == 2
    assert api.ok("GET", f"/incidents/{inc}")["acknowledged_by"] == "a@example.com"


def test_a_retried_transaction_that_already_committed_is_a_success_and_still_publishes(
    api: Api, aws: LocalStack, tap: Tap, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the create's transaction commits but its answer is lost, and botocore sends it again
    policy(api, [[{"type": "user", "email": "a@example.com"}]])
    original = Connection._make_api_call
    sent: list[str] = []

    def committed_then_retried(self: Connection, operation: str, kwargs: dict[str, Any]) -> Any:
        if operation == "TransactWriteItems" and not sent:
            sent.append(kwargs.get("ClientRequestToken", ""))
            original(self, operation, kwargs)  # it commits ...
        return original(self, operation, kwargs)  # ... and the retry meets its own write

    monkeypatch.setattr(Connection, "_make_api_call", committed_then_retried)
    # When the incident is created
    status, body = api.call("POST", "/incidents", {"title": "x", "severity": "P1"})
    # Then the client gets 201 (not 409), the page is published once, and the request carried a token
    assert status == 201, body
    assert pages(tap) == Counter({"a@example.com": 1})
    assert sent and 1 <= len(sent[0]) <= 36


def test_a_fire_cancelled_for_contention_fires_once_on_redelivery(
    api: Api, aws: LocalStack, timers: Timers, tap: Tap, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy(api, [[{"type": "user", "email": "a@example.com"}], [{"type": "user", "email": "b@example.com"}]])
    api.ok("POST", "/incidents", {"title": "x", "severity": "P1"}, expect=201)
    clock.shift(3)
    _conflict_once(monkeypatch, [{"Code": "None"}, {"Code": "TransactionConflict"}])
    timers.deliver()
    assert pages(tap) == Counter({"a@example.com": 1, "b@example.com": 1})
    assert json.dumps(timers.depth()) == json.dumps({"visible": 0, "delayed": 0, "in_flight": 0})


def test_a_create_cancelled_for_contention_keeps_its_number_and_sends_a_new_request_token(
    api: Api, aws: LocalStack, tap: Tap, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given DynamoDB cancels the create's transaction once (another writer held an item)
    _conflict_once(monkeypatch, [{"Code": "TransactionConflict"}])
    tokens: list[str] = []
    original = BaseClient._make_api_call

    def record(self: BaseClient, operation: str, kwargs: dict[str, Any]) -> Any:
        if operation == "TransactWriteItems":
            tokens.append(kwargs["ClientRequestToken"])
        return original(self, operation, kwargs)

    monkeypatch.setattr(BaseClient, "_make_api_call", record)
    # When an incident is created
    body = api.ok("POST", "/incidents", {"title": "x", "severity": "P2"}, expect=201)
    # Then it took the first number, and the retry was a new request (a token names one request)
    assert body["id"] == "INC-20261122-001"
    assert len(tokens) == 2 and tokens[0] != tokens[1]
    assert (
        api.ok("POST", "/incidents", {"title": "y", "severity": "P2"}, expect=201)["id"] == "INC-20261122-002"
    )
