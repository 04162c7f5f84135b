"""Alerts in through the real ports (usecases/alert_incidents.py) on moto: open, append, ack,
resolve, reopen with a link, routing, and a burst of one dedup key."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.client import BaseClient

from incident_engine.adapters.sources import pagerduty as pd
from incident_engine.domain.alerts import Alert
from incident_engine.domain.routing_documents import parse_rule
from incident_engine.usecases.ingest import IngestResult, Outcome
from incident_engine.wiring import services
from tests.support import Api, load_event


def pd_alert(name: str, **changes: Any) -> Alert:
    body = {**load_event(name), **changes}
    event = pd.parse_enqueue(json.dumps(body))
    assert isinstance(event, pd.PagerDutyEvent), event
    return event.alert


def ingest(service_id: str, alert: Alert) -> IngestResult:
    ingester = services().alert_ingest()
    directory = services().service_catalog()
    from incident_engine.usecases.alert_incidents import service_config

    return ingester.ingest_alert(alert, service_config(directory.get_service(service_id)))


@pytest.fixture
def service(api: Api) -> dict[str, Any]:
    return api.ok("POST", "/services", {"name": "checkout", "team_id": "payments"}, expect=201)


def timeline_types(api: Api, incident_id: str) -> list[str]:
    return [e["type"] for e in api.ok("GET", f"/incidents/{incident_id}/timeline")["items"]]


def test_trigger_opens_a_repeat_appends_and_resolve_closes(api: Api, service: dict[str, Any]) -> None:
    # Given a service and PagerDuty's trigger sample
    trigger = pd_alert("pagerduty_enqueue_trigger.json")
    # When it arrives twice, then the resolve sample
    first = ingest(service["id"], trigger)
    second = ingest(service["id"], trigger)
    # Then the first opens an incident on the service and the second is counted on it
    assert (first.outcome, second.outcome) == (Outcome.OPENED, Outcome.APPENDED)
    assert first.incident is not None and second.incident is not None
    assert second.incident.id == first.incident.id
    stored = api.ok("GET", f"/incidents/{first.incident.id}")
    assert stored["service_id"] == service["id"] and stored["team"] == "payments"
    assert stored["severity"] == "P0" and stored["alert_count"] == 2
    assert stored["last_seen_at"] is not None and stored["dedup_key"] == trigger.dedup_key
    assert "alert_repeated" in timeline_types(api, first.incident.id)
    # And the resolve closes it
    resolved = ingest(service["id"], pd_alert("pagerduty_enqueue_resolve.json"))
    assert resolved.outcome is Outcome.RESOLVED
    assert api.ok("GET", f"/incidents/{first.incident.id}")["status"] == "resolved"


def test_a_trigger_after_resolve_opens_a_new_incident_linked_to_the_previous(
    api: Api, service: dict[str, Any]
) -> None:
    # Given an incident opened and resolved by one dedup key
    first = ingest(service["id"], pd_alert("pagerduty_enqueue_trigger.json"))
    ingest(service["id"], pd_alert("pagerduty_enqueue_resolve.json"))
    # When the same key triggers again
    again = ingest(service["id"], pd_alert("pagerduty_enqueue_trigger.json"))
    # Then a new incident opens, linked to the first
    assert again.outcome is Outcome.OPENED and again.incident is not None and first.incident is not None
    assert again.incident.id != first.incident.id
    stored = api.ok("GET", f"/incidents/{again.incident.id}")
    assert stored["previous_incident_id"] == first.incident.id and stored["alert_count"] == 1


@pytest.mark.parametrize("sample", ["pagerduty_enqueue_acknowledge.json", "pagerduty_enqueue_resolve.json"])
def test_ack_or_resolve_of_an_unknown_key_is_a_no_op_that_says_so(
    api: Api, service: dict[str, Any], sample: str
) -> None:
    # When an acknowledge or resolve names a key no incident holds
    result = ingest(service["id"], pd_alert(sample))
    # Then nothing is opened and the reason names the key
    assert result.outcome is Outcome.IGNORED and result.incident is None
    assert result.reason is not None and "no active incident" in result.reason
    assert api.ok("GET", "/incidents")["items"] == []


def test_acknowledge_reaches_the_incident(api: Api, service: dict[str, Any]) -> None:
    opened = ingest(service["id"], pd_alert("pagerduty_enqueue_trigger.json"))
    result = ingest(service["id"], pd_alert("pagerduty_enqueue_acknowledge.json"))
    assert result.outcome is Outcome.ACKNOWLEDGED and opened.incident is not None
    stored = api.ok("GET", f"/incidents/{opened.incident.id}")
    assert stored["status"] == "acknowledged" and stored["acknowledged_by"] == "events-api"


def test_routing_rules_shape_and_suppress_an_alert_incident(api: Api, service: dict[str, Any]) -> None:
    # Given a rule that labels, assigns, attaches a runbook and suppresses checkout's alerts
    rules = services().routing_rules()
    rule = rules.create(
        parse_rule(
            {
                "name": "quiet checkout",
                "priority": 10,
                "conditions": [{"field": "service", "operator": "equals", "value": "checkout"}],
                "actions": [
                    {"type": "add_labels", "labels": {"routed": "yes"}},
                    {"type": "assign", "users": ["ana@example.com"]},
                    {"type": "attach_runbook", "url": "https://wiki.example.com/5xx", "checklist": ["look"]},
                    {"type": "suppress", "reason": "load test"},
                ],
            }
        )
    )
    # When an alert arrives
    opened = ingest(service["id"], pd_alert("pagerduty_enqueue_trigger.json"))
    # Then the incident is recorded, suppressed, never escalated, with the match on its timeline
    assert opened.incident is not None
    stored = api.ok("GET", f"/incidents/{opened.incident.id}")
    assert stored["suppressed"] is True and stored["status"] == "open" and stored["escalation"] is None
    assert stored["labels"]["routed"] == "yes" and stored["assignees"] == ["ana@example.com"]
    assert stored["runbooks"][0]["url"] == "https://wiki.example.com/5xx"
    events = api.ok("GET", f"/incidents/{opened.incident.id}/timeline")["items"]
    [match] = [e for e in events if e["type"] == "routing_rule_matched"]
    assert match["data"]["rule_id"] == rule.rule.id
    assert any(e["type"] == "suppressed" for e in events)


def atomic_aws_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto in-process is not thread-safe (a transaction deep-copies tables other threads write);
    DynamoDB applies each request atomically, so make each call atomic and let threads interleave
    between calls, which is where read-then-write races live."""
    lock = threading.Lock()
    original = BaseClient._make_api_call

    def call(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        with lock:
            return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", call)


def test_100_concurrent_triggers_with_one_key_make_one_incident_counting_100(
    api: Api, service: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given one trigger sample, and AWS calls that threads may interleave
    atomic_aws_calls(monkeypatch)
    trigger = pd_alert("pagerduty_enqueue_trigger.json")
    # When 100 copies arrive at once
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda _: ingest(service["id"], trigger), range(100)))
    # Then exactly one opened an incident and every other one was counted on it
    outcomes = [r.outcome for r in results]
    assert outcomes.count(Outcome.OPENED) == 1 and outcomes.count(Outcome.APPENDED) == 99
    [incident] = api.ok("GET", "/incidents")["items"]
    assert api.ok("GET", f"/incidents/{incident['id']}")["alert_count"] == 100
    # And the 99 repeats are one folded timeline event, not 99
    events = api.ok("GET", f"/incidents/{incident['id']}/timeline")["items"]
    assert [e["type"] for e in events] == ["created", "alert_repeated"]
    assert (events[1]["data"]["count"], events[1]["data"]["alert_count"]) == (99, 100)


def test_repeats_fold_into_one_event_per_run_and_a_state_change_starts_a_new_run(
    api: Api, service: dict[str, Any], clock: Any
) -> None:
    # Given an incident opened by a trigger
    trigger = pd_alert("pagerduty_enqueue_trigger.json")
    opened = ingest(service["id"], trigger)
    assert opened.incident is not None
    path = f"/incidents/{opened.incident.id}"
    # When the same alert repeats 30 times, a second apart
    for _ in range(30):
        clock.shift(1)
        assert ingest(service["id"], trigger).outcome is Outcome.APPENDED
    # Then the timeline holds one alert_repeated event: the count, first and last time, the last alert
    events = api.ok("GET", f"{path}/timeline")["items"]
    assert [e["type"] for e in events] == ["created", "alert_repeated"]
    run = events[1]
    assert run["at"] == run["data"]["first_at"] == "2026-11-22T07:00:01.000Z"
    assert run["data"]["last_at"] == "2026-11-22T07:00:30.000Z"
    assert (run["data"]["count"], run["data"]["alert_count"]) == (30, 31)
    assert run["data"]["summary"] == trigger.summary and run["data"]["action"] == "trigger"
    assert run["data"]["integration"] == "pagerduty" and run["actor"] == events[0]["actor"]
    # When someone acknowledges, then the alert repeats 5 more times
    clock.shift(1)
    api.ok("POST", f"{path}/acknowledge", {"by": "alice@example.com"})
    for _ in range(5):
        clock.shift(1)
        ingest(service["id"], trigger)
    # Then the acknowledge closed the first run: a second one follows it, and the first is unchanged
    events = api.ok("GET", f"{path}/timeline")["items"]
    assert [e["type"] for e in events] == ["created", "alert_repeated", "acknowledged", "alert_repeated"]
    assert events[1] == run
    assert (events[3]["data"]["count"], events[3]["data"]["alert_count"]) == (5, 36)
    assert events[3]["data"]["first_at"] == "2026-11-22T07:00:32.000Z"
    assert api.ok("GET", path)["alert_count"] == 36
