"""The incident partition's item layout (docs/storage.md): one timeline item per change, a repeat
as one conditional write, packed outbox rows; and the rows of the earlier layout still read."""

from __future__ import annotations

import zlib
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient

from incident_engine.wiring import services
from local.template import LocalStack
from tests.integration.test_alert_ingest import ingest, pd_alert
from tests.support import Api


def _items(aws: LocalStack, incident_id: str) -> list[dict[str, Any]]:
    table = boto3.resource("dynamodb", region_name=aws.region).Table(aws.physical["IncidentsTable"])
    rows: list[dict[str, Any]] = table.query(
        KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": f"INC#{incident_id}"}
    )["Items"]
    return rows


def _timeline(api: Api, incident_id: str, limit: int) -> list[dict[str, Any]]:
    events, cursor = [], None
    while True:
        query = {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
        page = api.ok("GET", f"/incidents/{incident_id}/timeline", query=query)
        assert len(page["items"]) <= limit
        events += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return events


def _policy(api: Api) -> str:
    level = {"delay_minutes": 0, "targets": [{"type": "user", "email": "ann@example.com"}]}
    return str(api.ok("POST", "/policies", {"name": "p", "levels": [level]}, expect=201)["id"])


def test_a_change_appends_one_timeline_item_and_the_timeline_pages_by_event(
    api: Api, aws: LocalStack
) -> None:
    # Given an incident created with a policy whose level 0 pages at once (one change, three events)
    inc = api.ok(
        "POST", "/incidents", {"title": "t", "severity": "P1", "policy_id": _policy(api)}, expect=201
    )
    api.ok("POST", f"/incidents/{inc['id']}/notes", {"text": "looking"}, expect=201)
    api.ok("POST", f"/incidents/{inc['id']}/acknowledge", {})
    # Then the create stored one EV item holding its events in order
    ev = sorted((i for i in _items(aws, inc["id"]) if i["sk"].startswith("EV#")), key=lambda i: i["sk"])
    assert len(ev) == 3  # the create, the note, the acknowledgement
    whole = api.ok("GET", f"/incidents/{inc['id']}/timeline")["items"]
    created = [e["type"] for e in _json(ev[0]["events"])]
    assert len(created) >= 3 and [e["type"] for e in whole[: len(created)]] == created
    assert created[0] == "created" and whole[-1]["type"] == "acknowledged" and len(whole) > len(ev)
    # When it is read one event at a time, and two at a time
    # Then every page ends where it should, also inside the create's item, and nothing repeats or drops
    assert _timeline(api, inc["id"], 1) == whole
    assert _timeline(api, inc["id"], 2) == whole


def _json(text: str) -> list[dict[str, Any]]:
    import json

    data: list[dict[str, Any]] = json.loads(text)
    return data


def _count_writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    original = BaseClient._make_api_call

    def call(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if operation in ("PutItem", "UpdateItem", "TransactWriteItems"):
            seen.append(operation)
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", call)
    return seen


def test_a_repeat_is_one_conditional_put_and_its_run_is_written_when_closed(
    api: Api, aws: LocalStack, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an incident opened by an alert
    service = api.ok("POST", "/services", {"name": "checkout"}, expect=201)
    trigger = pd_alert("pagerduty_enqueue_trigger.json")
    opened = ingest(service["id"], trigger).incident
    assert opened is not None
    before = {i["sk"] for i in _items(aws, opened.id)}
    # When the alert repeats three times
    writes = _count_writes(monkeypatch)
    for _ in range(3):
        clock.shift(1)
        ingest(service["id"], trigger)
    # Then each repeat wrote the incident item alone, with one conditional put
    assert writes == ["PutItem"] * 3
    assert {i["sk"] for i in _items(aws, opened.id)} == before
    # And the timeline shows the open run from the incident item, at every page size
    run = api.ok("GET", f"/incidents/{opened.id}/timeline")["items"][-1]
    assert run["type"] == "alert_repeated" and (run["data"]["count"], run["data"]["alert_count"]) == (3, 4)
    assert _timeline(api, opened.id, 1)[-1] == run
    # When someone acknowledges
    clock.shift(1)
    api.ok("POST", f"/incidents/{opened.id}/acknowledge", {})
    # Then that change wrote the closed run once, unchanged, before the acknowledgement
    stored = [i for i in _items(aws, opened.id) if i["sk"].endswith("#repeats")]
    assert len(stored) == 1
    events = _timeline(api, opened.id, 2)
    assert [e["type"] for e in events][-2:] == ["alert_repeated", "acknowledged"] and events[-2] == run


def test_items_of_the_earlier_layout_still_read(api: Api, aws: LocalStack) -> None:
    # Given an incident, and beside it a single-event item and an outbox row as earlier versions wrote
    inc = api.ok("POST", "/incidents", {"title": "t", "severity": "P2"}, expect=201)["id"]
    table = boto3.resource("dynamodb", region_name=aws.region).Table(aws.physical["IncidentsTable"])
    table.put_item(
        Item={
            "pk": f"INC#{inc}",
            "sk": "EV#2099-01-01T00:00:00.000000Z#000000009#000#abcdef",
            "incident_id": inc,
            "at": "2099-01-01T00:00:00.000000Z",
            "type": "note",
            "actor": "old",
            "data": '{"text":"from before"}',
        }
    )
    table.put_item(
        Item={
            "pk": f"INC#{inc}",
            "sk": f"OUT#{inc}/old/ann@example.com",
            "incident_id": inc,
            "dedup_id": f"{inc}/old/ann@example.com",
            "kind": "page",
            "recipient": "ann@example.com",
            "channel": "email",
            "subject": "old subject",
            "message": "old text",
            "attributes": '{"severity":"P2"}',
            "status": "sent",
            "created_at": "2026-11-22T07:00:00.000000Z",
        }
    )
    # Then both read as before
    last = api.ok("GET", f"/incidents/{inc}/timeline")["items"][-1]
    assert (last["type"], last["actor"], last["data"]) == ("note", "old", {"text": "from before"})
    [row] = api.ok("GET", f"/incidents/{inc}/notifications")["items"]
    assert (row["subject"], row["dedup_id"]) == ("old subject", f"{inc}/old/ann@example.com")
    old = services().incidents.outbox_row(inc, f"{inc}/old/ann@example.com")
    assert old is not None and (old.message, old.attributes, old.incident_id) == (
        "old text",
        {"severity": "P2"},
        inc,
    )


def test_an_outbox_row_is_stored_packed_and_reads_whole(api: Api, aws: LocalStack) -> None:
    # Given an incident whose level 0 paged someone
    inc = api.ok(
        "POST", "/incidents", {"title": "t", "severity": "P1", "policy_id": _policy(api)}, expect=201
    )
    [stored] = [i for i in _items(aws, inc["id"]) if i["sk"].startswith("OUT#")]
    # Then the row keeps its text compressed, under 1 KB, and the API shows it whole
    assert "message" not in stored and "subject" not in stored
    assert b"ann@example.com" in zlib.decompress(bytes(stored["body"]))
    [row] = api.ok("GET", f"/incidents/{inc['id']}/notifications")["items"]
    assert row["subject"].startswith("[P1]") and row["dedup_id"] == stored["sk"].removeprefix("OUT#")
    whole = services().incidents.outbox_row(inc["id"], row["dedup_id"])
    assert whole is not None and inc["id"] in whole.message and whole.attributes["severity"] == "P1"


def test_the_armed_step_is_listed_from_the_incident_and_stored_once_done(api: Api, aws: LocalStack) -> None:
    # Given a policy of three levels, and an incident whose level 0 fired at once
    levels = [
        {"delay_minutes": d, "targets": [{"type": "user", "email": f"l{d}@example.com"}]} for d in (0, 5, 9)
    ]
    policy = api.ok("POST", "/policies", {"name": "three", "levels": levels}, expect=201)["id"]
    inc = api.ok("POST", "/incidents", {"title": "t", "severity": "P1", "policy_id": policy}, expect=201)[
        "id"
    ]
    # Then level 0's step is stored, executed; level 1's is armed on the incident and listed last
    assert [i["sk"] for i in _items(aws, inc) if i["sk"].startswith("ESC#")] == ["ESC#000001"]
    steps = api.ok("GET", f"/incidents/{inc}/escalations")["items"]
    assert [(s["level"], s["status"]) for s in steps] == [(0, "executed"), (1, "pending")]
    # And paging one at a time reads the same steps
    pages, cursor = [], None
    while True:
        query = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        page = api.ok("GET", f"/incidents/{inc}/escalations", query=query)
        pages += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == steps
    # When someone acknowledges, the armed step is stored, cancelled, and nothing is armed
    api.ok("POST", f"/incidents/{inc}/acknowledge", {})
    steps = api.ok("GET", f"/incidents/{inc}/escalations")["items"]
    assert [(s["level"], s["status"]) for s in steps] == [(0, "executed"), (1, "cancelled")]
    assert [i["sk"] for i in _items(aws, inc) if i["sk"].startswith("ESC#")] == ["ESC#000001", "ESC#000002"]
