"""Alertmanager webhooks, as a real Alertmanager 0.25 sent them (events/alertmanager_webhook_*.json)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incident_engine.adapters.sources import alertmanager as am
from incident_engine.domain.alerts import LABEL_SEVERITIES, Alert, AlertAction, Integration, Rejected
from incident_engine.domain.timefmt import parse_iso
from tests.support import load_event
from tests.unit.hostile import assert_outcome, json_values, mutated, replaced

SAMPLES = [
    "alertmanager_webhook_firing.json",
    "alertmanager_webhook_partly_resolved.json",
    "alertmanager_webhook_resolved.json",
]


def parse(payload: Any) -> tuple[Alert, ...]:
    result = am.parse_webhook(json.dumps(payload))
    assert isinstance(result, tuple), result
    return result


def refused(payload: Any) -> Rejected:
    result = am.parse_webhook(payload if isinstance(payload, str | bytes) else json.dumps(payload))
    assert isinstance(result, Rejected), result
    return result


@pytest.mark.parametrize("name", SAMPLES)
def test_one_alert_per_fingerprint_with_its_own_status(name: str) -> None:
    payload = load_event(name)
    alerts = parse(payload)
    assert [a.dedup_key for a in alerts] == [a["fingerprint"] for a in payload["alerts"]]
    expected = {"firing": AlertAction.TRIGGER, "resolved": AlertAction.RESOLVE}
    assert [a.action for a in alerts] == [expected[a["status"]] for a in payload["alerts"]]
    assert all(a.integration is Integration.ALERTMANAGER for a in alerts)


def test_a_group_still_firing_can_carry_a_resolved_alert() -> None:
    # Given a batch whose group status is firing, one of whose alerts has cleared
    payload = load_event("alertmanager_webhook_partly_resolved.json")
    assert payload["status"] == "firing"
    # When it is parsed
    actions = {a.dedup_key: a.action for a in parse(payload)}
    # Then each alert follows its own status, not the group's
    assert {a["fingerprint"]: a["status"] for a in payload["alerts"]} == {
        k: ("firing" if v is AlertAction.TRIGGER else "resolved") for k, v in actions.items()
    }
    assert AlertAction.RESOLVE in actions.values()


def test_labels_and_annotations_are_kept() -> None:
    payload = load_event("alertmanager_webhook_firing.json")
    for alert, sent in zip(parse(payload), payload["alerts"], strict=True):
        assert alert.labels == sent["labels"]
        assert alert.custom_details["annotations"] == sent["annotations"]
        assert alert.summary == sent["annotations"]["summary"]
        assert alert.description == sent["annotations"]["description"]  # line breaks and all
        assert alert.severity is LABEL_SEVERITIES[sent["labels"]["severity"]]
        assert alert.source_severity == sent["labels"]["severity"]
        assert (alert.service, alert.team) == (sent["labels"]["service"], sent["labels"]["team"])
        assert alert.source == sent["labels"]["instance"]
        assert alert.timestamp == parse_iso(sent["startsAt"])
        hrefs = [link.href for link in alert.links]
        assert sent["annotations"]["runbook_url"] in hrefs and sent["generatorURL"] in hrefs


def test_a_resolved_alert_is_stamped_when_it_ended() -> None:
    payload = load_event("alertmanager_webhook_resolved.json")
    (alert,) = parse(payload)
    assert alert.timestamp == parse_iso(payload["alerts"][0]["endsAt"])


def test_the_raw_payload_kept_is_the_alert_and_its_envelope_only() -> None:
    payload = load_event("alertmanager_webhook_firing.json")
    first = parse(payload)[0]
    assert first.raw["alert"] == payload["alerts"][0]
    assert first.raw["groupKey"] == payload["groupKey"]
    assert payload["alerts"][1]["fingerprint"] not in json.dumps(first.raw)


def test_without_a_severity_label_the_severity_is_left_to_the_service() -> None:
    payload = load_event("alertmanager_webhook_firing.json")
    del payload["alerts"][0]["labels"]["severity"]
    payload["alerts"][1]["labels"]["severity"] = "whatever"
    assert [a.severity for a in parse(payload)] == [None, None]


def test_a_missing_fingerprint_is_derived_from_the_label_set() -> None:
    payload = load_event("alertmanager_webhook_firing.json")
    for alert in payload["alerts"]:
        del alert["fingerprint"]
    first, second = parse(payload)
    again = parse(payload)
    assert first.dedup_key != second.dedup_key
    assert (first.dedup_key, second.dedup_key) == (again[0].dedup_key, again[1].dedup_key)


def test_summary_falls_back_to_the_alert_name() -> None:
    payload = load_event("alertmanager_webhook_firing.json")
    payload["alerts"][0]["annotations"] = {}
    assert parse(payload)[0].summary == payload["alerts"][0]["labels"]["alertname"]


def test_a_truncated_batch_says_so_on_its_alerts() -> None:
    payload = load_event("alertmanager_webhook_firing.json")
    assert "truncated_alerts" not in parse(payload)[0].custom_details
    payload["truncatedAlerts"] = 7
    assert all(a.custom_details["truncated_alerts"] == 7 for a in parse(payload))


def test_an_empty_batch_is_nothing_to_do() -> None:
    payload = load_event("alertmanager_webhook_firing.json") | {"alerts": []}
    assert parse(payload) == ()


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("version",), "3", "version"),
        (("version",), 4, "version"),
        (("status",), "pending", "status"),
        (("alerts",), {"0": {}}, "alerts"),
        (("alerts", 1), "firing", "alerts[1]"),
        (("alerts", 1, "status"), "unknown", "alerts[1].status"),
        (("alerts", 0, "labels"), None, "alerts[0].labels"),
        (("alerts", 0, "labels", "severity"), 1, "alerts[0].labels.severity"),
        (("alerts", 0, "annotations"), ["summary"], "alerts[0].annotations"),
        (("alerts", 0, "startsAt"), "soon", "alerts[0].startsAt"),
        (("alerts", 0, "fingerprint"), "a\nb", "alerts[0].fingerprint"),
        (("groupLabels",), "alertname", "groupLabels"),
    ],
)
def test_malformed_batches_name_the_field(path: tuple[Any, ...], value: Any, field: str) -> None:
    payload = replaced(load_event("alertmanager_webhook_firing.json"), path, value)
    assert refused(payload).field == field


def test_label_sets_are_bounded() -> None:
    payload = load_event("alertmanager_webhook_firing.json")
    payload["alerts"][0]["labels"] = {f"l{i}": "v" for i in range(100)}
    assert refused(payload).field == "alerts[0].labels"
    payload["alerts"][0]["labels"] = {"k" * 200: "v"}
    assert refused(payload).field.startswith("alerts[0].labels.")


def test_long_label_values_are_shortened_not_rejected() -> None:
    payload = load_event("alertmanager_webhook_firing.json")
    payload["alerts"][0]["labels"]["instance"] = "h" * 5000
    assert len(parse(payload)[0].labels["instance"]) < 5000


def test_huge_annotations_are_kept_as_a_marked_head() -> None:
    payload = load_event("alertmanager_webhook_firing.json")
    payload["alerts"][0]["annotations"] = {f"note{i}": "n" * 9000 for i in range(10)}
    details = parse(payload)[0].custom_details
    assert details["_truncated"] is True and details["_bytes"] > 90_000


def test_batches_are_bounded() -> None:
    payload = load_event("alertmanager_webhook_firing.json")
    payload["alerts"] = payload["alerts"][:1] * (am.MAX_ALERTS + 1)
    assert refused(payload).field == "alerts"


@pytest.mark.parametrize("body", [None, b"", b"\xc3\x28", "[]", "{", '"firing"', "1e999999"])
def test_bodies_that_are_not_one_json_object_are_rejected(body: str | bytes | None) -> None:
    assert isinstance(am.parse_webhook(body), Rejected)


def outcome(result: tuple[Alert, ...] | Rejected) -> None:
    for item in result if isinstance(result, tuple) else (result,):
        assert_outcome(item)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300), json_values.map(json.dumps)))
def test_any_body_is_alerts_or_a_rejection(body: str | bytes) -> None:
    outcome(am.parse_webhook(body))


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_any_change_to_a_real_batch_is_alerts_or_a_rejection(data: st.DataObject) -> None:
    payload = data.draw(mutated(load_event(data.draw(st.sampled_from(SAMPLES)))))
    outcome(am.parse_webhook_payload(payload))
