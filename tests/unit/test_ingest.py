"""The ingest use case on in-memory ports: which alert opens, appends, acknowledges, resolves, or not."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from incident_engine.adapters.sources import alertmanager, cloudwatch, pagerduty
from incident_engine.domain.alerts import DEFAULT_SEVERITY, Alert, AlertAction, Integration
from incident_engine.domain.errors import Conflict
from incident_engine.domain.lifecycle import Status
from incident_engine.domain.model import Incident
from incident_engine.domain.routing_documents import parse_rule
from incident_engine.domain.severity import Severity
from incident_engine.usecases.ingest import AlertIncident, AlertIngest, Outcome, ServiceConfig, decide
from tests.support import load_event
from tests.unit.fake_alert_incidents import T0, InMemoryAlertIncidents, Rules, Services, Tags

CHECKOUT = ServiceConfig("svc_checkout", "checkout", team="payments", policy_id="pol_checkout")
ORDERS = ServiceConfig("svc_orders", "orders", alarm_name_prefixes=("orders-",), default_severity=Severity.P3)
ORDERS_WORKER = ServiceConfig("svc_orders_worker", "orders-worker", alarm_name_prefixes=("orders-worker-",))
CATCH_ALL = ServiceConfig("svc_unrouted", "unrouted")


def cw(name: str, **message_changes: Any) -> Alert:
    event = load_event(name)
    if message_changes:
        record = event["Records"][0]["Sns"]
        record["Message"] = json.dumps(json.loads(record["Message"]) | message_changes)
    (alert,) = cloudwatch.parse_event(event)
    assert isinstance(alert, Alert), alert
    return alert


def pd(name: str) -> Alert:
    event = pagerduty.parse_enqueue(json.dumps(load_event(name)))
    assert isinstance(event, pagerduty.PagerDutyEvent), event
    return event.alert


def am(name: str) -> tuple[Alert, ...]:
    alerts = alertmanager.parse_webhook_payload(load_event(name))
    assert isinstance(alerts, tuple), alerts
    return alerts


class World:
    def __init__(self, *services: ServiceConfig, rules: list[dict[str, Any]] | None = None) -> None:
        self.incidents = InMemoryAlertIncidents()
        self.tags = Tags()
        self.ingest = AlertIngest(
            self.incidents,
            Services(list(services or (CHECKOUT, ORDERS, ORDERS_WORKER)), CATCH_ALL),
            Rules([parse_rule(r) for r in rules or []]),
            self.tags,
        )

    def opened(self, incident: Incident | None) -> AlertIncident:
        assert incident is not None
        return self.incidents.opened[incident.id]


# --- CloudWatch: tags, prefixes, catch-all, auto-resolve -----------------------------------------


def test_an_alarm_opens_then_repeats_then_resolves_then_opens_anew() -> None:
    # Given an alarm tagged for the checkout service at P1
    world = World()
    alarm = cw("cloudwatch_sns_alarm.json")
    world.tags.by_arn[alarm.dedup_key] = {"incident-service": "checkout", "incident-severity": "P1"}
    # When it fires, fires again, clears, and fires once more
    first = world.ingest.ingest_alert(alarm)
    repeat = world.ingest.ingest_alert(alarm)
    cleared = world.ingest.ingest_alert(cw("cloudwatch_sns_ok.json"))
    again = world.ingest.ingest_alert(alarm)
    # Then one incident took the first two, the OK resolved it, and the next ALARM opened a new one
    assert [r.outcome for r in (first, repeat, cleared, again)] == [
        Outcome.OPENED,
        Outcome.APPENDED,
        Outcome.RESOLVED,
        Outcome.OPENED,
    ]
    assert first.incident and repeat.incident and cleared.incident and again.incident
    assert first.incident.id == repeat.incident.id == cleared.incident.id != again.incident.id
    assert world.incidents.alert_counts[first.incident.id] == 2
    assert cleared.incident.status is Status.RESOLVED
    assert world.opened(again.incident).previous_incident_id == first.incident.id
    # And the incident is the checkout service's, at the tag's severity, on the service's policy
    new = world.opened(first.incident)
    assert (first.service_id, new.severity, new.policy_id) == ("svc_checkout", Severity.P1, "pol_checkout")
    assert new.alert.team == CHECKOUT.team


def test_propagated_tags_spare_the_lookup() -> None:
    world = World()
    result = world.ingest.ingest_alert(
        cw("cloudwatch_sns_alarm.json", AlarmTags={"incident-service": "orders"})
    )
    assert result.service_id == ORDERS.id and world.tags.lookups == []


def test_the_longest_alarm_name_prefix_wins_and_then_the_service_default_severity() -> None:
    world = World()
    result = world.ingest.ingest_alert(cw("cloudwatch_sns_metric_math.json"))  # "orders-worker-error-rate"
    assert result.service_id == ORDERS_WORKER.id
    assert world.opened(result.incident).severity is DEFAULT_SEVERITY[Integration.CLOUDWATCH]
    world = World(ORDERS)
    result = world.ingest.ingest_alert(cw("cloudwatch_sns_metric_math.json"))
    assert result.service_id == ORDERS.id
    assert world.opened(result.incident).severity is ORDERS.default_severity


def test_an_alarm_of_no_service_lands_on_the_catch_all() -> None:
    result = World().ingest.ingest_alert(cw("cloudwatch_sns_composite.json"))
    assert (result.outcome, result.service_id) == (Outcome.OPENED, CATCH_ALL.id)


def test_insufficient_data_is_ignored_unless_the_service_pages_on_it() -> None:
    alarm = cw(
        "cloudwatch_sns_alarm.json",
        NewStateValue="INSUFFICIENT_DATA",
        AlarmTags={"incident-service": "checkout"},
    )
    ignored = World().ingest.ingest_alert(alarm)
    assert ignored.outcome is Outcome.IGNORED and ignored.reason and "insufficient data" in ignored.reason
    paging = World(replace(CHECKOUT, trigger_on_insufficient_data=True)).ingest.ingest_alert(alarm)
    assert paging.outcome is Outcome.OPENED


def test_ok_does_not_resolve_when_the_service_turns_auto_resolve_off() -> None:
    world = World(replace(CHECKOUT, auto_resolve=False))
    tags = {"AlarmTags": {"incident-service": "checkout"}}
    opened = world.ingest.ingest_alert(cw("cloudwatch_sns_alarm.json", **tags))
    cleared = world.ingest.ingest_alert(cw("cloudwatch_sns_ok.json", **tags))
    assert cleared.outcome is Outcome.IGNORED and cleared.incident == opened.incident


# --- PagerDuty and Alertmanager: the key names the service ------------------------------------------


def test_pagerduty_trigger_acknowledge_resolve() -> None:
    world = World()
    outcomes = [
        world.ingest.ingest_alert(pd(f"pagerduty_enqueue_{name}.json"), CHECKOUT).outcome
        for name in ("trigger", "acknowledge", "acknowledge", "resolve", "resolve")
    ]
    assert outcomes == [
        Outcome.OPENED,
        Outcome.ACKNOWLEDGED,
        Outcome.IGNORED,  # already acknowledged
        Outcome.RESOLVED,
        Outcome.IGNORED,  # nothing active any more
    ]


def test_acknowledge_or_resolve_for_an_unknown_key_says_so() -> None:
    world = World()
    for name in ("acknowledge", "resolve"):
        result = world.ingest.ingest_alert(pd(f"pagerduty_enqueue_{name}.json"), CHECKOUT)
        assert result.outcome is Outcome.IGNORED and result.incident is None
        assert result.reason and result.dedup_key in result.reason


def test_the_same_key_on_two_services_is_two_incidents() -> None:
    world = World()
    trigger = pd("pagerduty_enqueue_trigger.json")
    a = world.ingest.ingest_alert(trigger, CHECKOUT)
    b = world.ingest.ingest_alert(trigger, ORDERS)
    assert a.outcome is b.outcome is Outcome.OPENED and a.incident != b.incident


def test_one_incident_per_alertmanager_fingerprint_and_resolved_alerts_resolve() -> None:
    world = World()
    opened = [world.ingest.ingest_alert(a, CHECKOUT) for a in am("alertmanager_webhook_firing.json")]
    again = [world.ingest.ingest_alert(a, CHECKOUT) for a in am("alertmanager_webhook_partly_resolved.json")]
    assert [r.outcome for r in opened] == [Outcome.OPENED, Outcome.OPENED]
    by_key = {r.dedup_key: r.outcome for r in again}
    assert sorted(by_key.values()) == sorted([Outcome.APPENDED, Outcome.RESOLVED])
    assert len(world.incidents.incidents) == 2


def test_a_hundred_triggers_with_one_key_make_one_incident() -> None:
    world = World()
    trigger = pd("pagerduty_enqueue_trigger.json")
    results = [world.ingest.ingest_alert(trigger, CHECKOUT) for _ in range(100)]
    assert len(world.incidents.incidents) == 1
    assert world.incidents.alert_counts[results[0].incident.id] == 100  # type: ignore[union-attr]


# --- races ------------------------------------------------------------------------------------------


def test_losing_the_claim_to_a_concurrent_trigger_appends_to_the_winner() -> None:
    # Given another trigger with the same key that commits between our read and our write
    world = World()
    trigger = pd("pagerduty_enqueue_trigger.json")
    world.incidents.before_open = lambda new: world.ingest.ingest_alert(trigger, CHECKOUT) and None
    # When ours tries to open
    result = world.ingest.ingest_alert(trigger, CHECKOUT)
    # Then the conditional claim refuses it, and it joins the winner instead
    assert result.outcome is Outcome.APPENDED
    assert len(world.incidents.incidents) == 1
    assert world.incidents.alert_counts[result.incident.id] == 2  # type: ignore[union-attr]


def test_endless_races_end_in_a_conflict_not_a_loop() -> None:
    world = World()
    trigger = pd("pagerduty_enqueue_trigger.json")

    class AlwaysTaken(InMemoryAlertIncidents):
        def open(self, new: AlertIncident) -> Incident:
            from incident_engine.usecases.ports import DedupKeyTaken

            raise DedupKeyTaken(new.alert.dedup_key)

    world.ingest = AlertIngest(AlwaysTaken(), Services([CHECKOUT], CATCH_ALL), Rules())
    with pytest.raises(Conflict):
        world.ingest.ingest_alert(trigger, CHECKOUT)


# --- routing ----------------------------------------------------------------------------------------


def test_routing_rules_shape_the_new_incident() -> None:
    world = World(
        rules=[
            {
                "name": "db pages the DBAs",
                "priority": 10,
                "conditions": [{"field": "labels.class", "operator": "equals", "value": "http 5xx"}],
                "actions": [
                    {"type": "set_policy", "policy_id": "pol_web"},
                    {"type": "set_severity", "severity": "P1"},
                    {"type": "add_labels", "labels": {"routed": "yes"}},
                ],
            }
        ]
    )
    result = world.ingest.ingest_alert(pd("pagerduty_enqueue_trigger.json"), CHECKOUT)
    new = world.opened(result.incident)
    assert (new.policy_id, new.severity, new.labels["routed"]) == ("pol_web", Severity.P1, "yes")
    assert result.routing is not None and [m.rule_name for m in result.routing.matches] == [
        "db pages the DBAs"
    ]


def test_rules_see_the_service_the_alert_was_placed_on() -> None:
    world = World(
        rules=[
            {
                "name": "quiet checkout",
                "conditions": [{"field": "service", "operator": "equals", "value": "checkout"}],
                "actions": [{"type": "suppress", "reason": "checkout is being migrated"}],
            }
        ]
    )
    result = world.ingest.ingest_alert(
        cw("cloudwatch_sns_alarm.json", AlarmTags={"incident-service": "checkout"})
    )
    new = world.opened(result.incident)
    assert new.suppressed and new.suppress_reasons == ("checkout is being migrated",)


def test_without_rules_the_service_policy_and_alert_labels_stand() -> None:
    world = World()
    result = world.ingest.ingest_alert(pd("pagerduty_enqueue_trigger.json"), CHECKOUT)
    new = world.opened(result.incident)
    assert new.policy_id == CHECKOUT.policy_id and dict(new.labels) == dict(new.alert.labels)
    assert not new.suppressed


# --- the pure decision ------------------------------------------------------------------------------


def incident(status: Status) -> Incident:
    return Incident("INC-1", "t", Severity.P2, status, T0, T0)


@pytest.mark.parametrize(
    ("action", "status", "outcome"),
    [
        (AlertAction.TRIGGER, None, Outcome.OPENED),
        (AlertAction.TRIGGER, Status.ESCALATING, Outcome.APPENDED),
        (AlertAction.TRIGGER, Status.ACKNOWLEDGED, Outcome.APPENDED),
        (AlertAction.ACKNOWLEDGE, None, Outcome.IGNORED),
        (AlertAction.ACKNOWLEDGE, Status.ESCALATING, Outcome.ACKNOWLEDGED),
        (AlertAction.ACKNOWLEDGE, Status.ACKNOWLEDGED, Outcome.IGNORED),
        (AlertAction.RESOLVE, None, Outcome.IGNORED),
        (AlertAction.RESOLVE, Status.SNOOZED, Outcome.RESOLVED),
        (AlertAction.INSUFFICIENT_DATA, Status.ESCALATING, Outcome.IGNORED),
    ],
)
def test_decide(action: AlertAction, status: Status | None, outcome: Outcome) -> None:
    alert = Alert(Integration.PAGERDUTY, action, "k", "s", "src")
    assert decide(alert, CHECKOUT, incident(status) if status else None).outcome is outcome
