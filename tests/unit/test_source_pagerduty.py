"""PagerDuty Events API v2: the real request shapes from events/, PagerDuty's limits and answers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incident_engine.adapters.sources import pagerduty as pd
from incident_engine.domain.alerts import PAGERDUTY_SEVERITIES, AlertAction, Integration, Rejected
from incident_engine.domain.timefmt import parse_iso
from tests.support import load_event
from tests.unit.hostile import assert_outcome, json_values, mutated


def parse(event: Any, **kw: Any) -> pd.PagerDutyEvent:
    result = pd.parse_enqueue(json.dumps(event), **kw)
    assert isinstance(result, pd.PagerDutyEvent), result
    return result


def rejected(event: Any) -> Rejected:
    result = pd.parse_enqueue(event if isinstance(event, str | bytes) else json.dumps(event))
    assert isinstance(result, Rejected), result
    return result


def test_trigger_carries_every_documented_field() -> None:
    sample = load_event("pagerduty_enqueue_trigger.json")
    event = parse(sample)
    alert, payload = event.alert, sample["payload"]
    assert event.routing_key == sample["routing_key"] and not event.dedup_key_generated
    assert alert.integration is Integration.PAGERDUTY and alert.action is AlertAction.TRIGGER
    assert alert.dedup_key == sample["dedup_key"]
    assert (alert.summary, alert.source) == (payload["summary"], payload["source"])
    assert alert.severity is PAGERDUTY_SEVERITIES[payload["severity"]]
    assert alert.source_severity == payload["severity"]
    assert alert.timestamp == parse_iso(payload["timestamp"])
    assert alert.labels == {k: payload[k] for k in ("component", "group", "class")}
    assert alert.custom_details == payload["custom_details"]
    hrefs = [link.href for link in alert.links]
    assert hrefs == [*(link["href"] for link in sample["links"]), sample["client_url"]]
    assert [i.src for i in alert.images] == [i["src"] for i in sample["images"]]


def test_the_routing_key_is_a_credential_and_never_kept_with_the_alert() -> None:
    sample = load_event("pagerduty_enqueue_trigger.json")
    alert = parse(sample).alert
    assert "routing_key" not in alert.raw
    assert sample["routing_key"] not in json.dumps(alert.raw)
    assert alert.raw["payload"] == sample["payload"]


@pytest.mark.parametrize(
    ("name", "action"),
    [
        ("pagerduty_enqueue_acknowledge.json", AlertAction.ACKNOWLEDGE),
        ("pagerduty_enqueue_resolve.json", AlertAction.RESOLVE),
    ],
)
def test_acknowledge_and_resolve_need_only_the_key(name: str, action: AlertAction) -> None:
    sample = load_event(name)
    alert = parse(sample).alert
    assert alert.action is action and alert.dedup_key == sample["dedup_key"]
    assert alert.severity is None and alert.summary == ""


def test_acknowledge_ignores_a_payload_as_pagerduty_does() -> None:
    sample = load_event("pagerduty_enqueue_acknowledge.json") | {"payload": {"summary": 5}}
    assert parse(sample).alert.action is AlertAction.ACKNOWLEDGE


def test_a_trigger_without_dedup_key_gets_one_and_answers_it() -> None:
    # Given a trigger with no dedup_key
    sample = load_event("pagerduty_enqueue_trigger.json")
    del sample["dedup_key"]
    keys = iter(["k-1", "k-2"])
    # When it is parsed twice
    first, second = (parse(sample, make_dedup_key=lambda: next(keys)) for _ in range(2))
    # Then each gets its own generated key (a new alert each time, as in PagerDuty), and the answer returns it
    assert (first.alert.dedup_key, second.alert.dedup_key) == ("k-1", "k-2")
    assert first.dedup_key_generated
    assert pd.accepted(first.alert.dedup_key) == (
        202,
        {"status": "success", "message": "Event processed", "dedup_key": "k-1"},
    )


def test_generated_keys_are_unique() -> None:
    assert len({pd.new_dedup_key() for _ in range(50)}) == 50


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"routing_key": None}, "routing_key"),
        ({"routing_key": "short"}, "routing_key"),
        ({"routing_key": 12345678901234567890123456789012}, "routing_key"),
        ({"event_action": "escalate"}, "event_action"),
        ({"event_action": ["trigger"]}, "event_action"),
        ({"dedup_key": "x" * 256}, "dedup_key"),
        ({"dedup_key": "line\nbreak"}, "dedup_key"),
        ({"payload": None}, "payload"),
        ({"payload": "text"}, "payload"),
        ({"links": {"href": "https://example.com"}}, "links"),
        ({"links": [{"text": "no href"}]}, "links[0].href"),
        ({"images": [{"src": 7}]}, "images[0].src"),
    ],
)
def test_invalid_fields_are_named(change: dict[str, Any], field: str) -> None:
    sample = load_event("pagerduty_enqueue_trigger.json") | change
    assert field in [e.field for e in rejected(sample).errors]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"summary": "x" * 1025}, "payload.summary"),
        ({"summary": "  \n "}, "payload.summary"),
        ({"summary": "\x00\x07\u202e"}, "payload.summary"),
        ({"source": None}, "payload.source"),
        ({"severity": "sev1"}, "payload.severity"),
        ({"severity": "CRITICAL"}, "payload.severity"),
        ({"timestamp": "yesterday"}, "payload.timestamp"),
        ({"custom_details": [1, 2]}, "payload.custom_details"),
        ({"component": {"a": 1}}, "payload.component"),
    ],
)
def test_invalid_payload_fields_are_named(change: dict[str, Any], field: str) -> None:
    sample = load_event("pagerduty_enqueue_trigger.json")
    sample["payload"] |= change
    assert rejected(sample).field == field


def test_every_error_is_reported_in_pagerdutys_shape() -> None:
    sample = load_event("pagerduty_enqueue_trigger.json") | {"routing_key": "short", "links": "x"}
    del sample["payload"]
    status, body = pd.invalid(rejected(sample))
    assert status == 400
    assert body["status"] == "invalid event" and body["message"] == "Event object is invalid"
    assert len(body["errors"]) == 3
    assert all(isinstance(e, str) for e in body["errors"])
    assert any("'payload'" in e for e in body["errors"])


def test_an_acknowledge_without_dedup_key_is_invalid() -> None:
    sample = load_event("pagerduty_enqueue_acknowledge.json")
    del sample["dedup_key"]
    assert rejected(sample).field == "dedup_key"


def test_summary_is_one_clean_line() -> None:
    sample = load_event("pagerduty_enqueue_trigger.json")
    sample["payload"]["summary"] = "disk\r\nfull\x00 on \u202edb1\t\tnow"
    assert parse(sample).alert.summary == "disk full on db1 now"


def test_custom_details_as_a_string_is_kept_as_text() -> None:
    sample = load_event("pagerduty_enqueue_trigger.json")
    sample["payload"]["custom_details"] = "ping time 1500ms"
    assert parse(sample).alert.custom_details == {"details": "ping time 1500ms"}


def test_null_optional_fields_count_as_absent() -> None:
    sample = load_event("pagerduty_enqueue_trigger.json") | {"links": None, "images": None, "client": None}
    sample["payload"] |= {"timestamp": None, "component": None}
    alert = parse(sample).alert
    assert alert.timestamp is None and "component" not in alert.labels


def test_links_that_are_not_http_are_dropped_not_followed() -> None:
    sample = load_event("pagerduty_enqueue_trigger.json") | {
        "links": [{"href": "javascript:alert(1)"}, {"href": "https://ok.example.com", "text": "ok"}],
        "client_url": None,
    }
    assert [link.href for link in parse(sample).alert.links] == ["https://ok.example.com"]


def test_images_must_be_served_over_https() -> None:
    sample = load_event("pagerduty_enqueue_trigger.json")
    sample["images"] = [{"src": "http://plain.example.com/a.png"}, {"src": "https://tls.example.com/b.png"}]
    assert [i.src for i in parse(sample).alert.images] == ["https://tls.example.com/b.png"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"\xff\xfe not utf-8", "body"),
        ("{not json", "body"),
        ("[]", "body"),
        ('"a string"', "body"),
        ("null", "body"),
        ('{"routing_key": NaN}', "body"),
        ("[" * 5000 + "]" * 5000, "body"),
        ('{"a":' * 40 + "1" + "}" * 40, "body"),
    ],
)
def test_bodies_that_are_not_one_json_object_are_rejected(body: str | bytes, field: str) -> None:
    assert rejected(body).field == field


def test_the_512_kb_limit_is_pagerdutys() -> None:
    sample = load_event("pagerduty_enqueue_trigger.json")
    sample["payload"]["custom_details"] = {"blob": "x" * (pd.MAX_BODY_BYTES - 1000)}
    assert isinstance(pd.parse_enqueue(json.dumps(sample)), pd.PagerDutyEvent)
    sample["payload"]["custom_details"] = {"blob": "x" * pd.MAX_BODY_BYTES}
    assert rejected(sample).field == "body"


def test_a_large_payload_is_kept_truncated_on_the_alert() -> None:
    # Given custom details of 100 KB (PagerDuty allows 512)
    sample = load_event("pagerduty_enqueue_trigger.json")
    sample["payload"]["custom_details"] = {"blob": "é" * 50_000}
    alert = parse(sample).alert
    # Then the alert keeps the head of the details and of the payload, marked, not all of them
    for kept in (alert.custom_details, alert.raw):
        assert kept["_truncated"] is True and kept["_bytes"] > 100_000
        assert kept["_head"].startswith("{") and len(kept["_head"].encode()) <= 8 * 1024


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300), json_values.map(json.dumps)))
def test_any_body_is_an_event_or_a_rejection(body: str | bytes) -> None:
    result = pd.parse_enqueue(body)
    assert_outcome(result.alert if isinstance(result, pd.PagerDutyEvent) else result)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_change_to_a_real_request_is_an_event_or_a_rejection(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(["trigger", "acknowledge", "resolve"]))
    event = data.draw(mutated(load_event(f"pagerduty_enqueue_{name}.json")))
    result = pd.parse_enqueue(json.dumps(event))
    assert_outcome(result.alert if isinstance(result, pd.PagerDutyEvent) else result)
