"""Heartbeats through the real handlers on moto: pings with the service's key, misses through the
timer protocol (the worker and reconciler of template.yaml), incidents through alert ingest."""

from __future__ import annotations

import json
from typing import Any

import pytest
import time_machine

from incident_engine.store.heartbeats import HeartbeatRepository
from local.runtime import authorize, invoke
from local.template import LocalStack
from tests.support import Api, Tap, Timers, load_event, reconcile

ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1"
MINUTE = 60


@pytest.fixture
def service(api: Api) -> dict[str, Any]:
    policy = json.loads(load_event("api_create_policy.json")["body"])
    api.ok("POST", "/policies", policy, expect=201)
    return api.ok("POST", "/services", {"name": "nightly"}, expect=201)  # type: ignore[no-any-return]


def declare(api: Api, service: dict[str, Any], interval: int = 5) -> dict[str, Any]:
    body = {"name": "backup job", "service_id": service["id"], "interval_minutes": interval}
    return api.ok("POST", "/heartbeats", body, expect=201)  # type: ignore[no-any-return]


def ping(api: Api, hb: dict[str, Any], service_id: str | None) -> tuple[int, Any]:
    """A ping as API Gateway passes it on once the authorizer accepted an integration key of
    ``service_id`` (None: the admin token)."""
    event = api.event("POST", f"/heartbeats/{hb['id']}/ping")
    if service_id is not None:
        event["requestContext"]["authorizer"] = {  # what functions/authorizer puts in its context
            "role": "integration",
            "scopes": "ingest",
            "credential_id": "key_1",
            "team_ids": "",
            "service_id": service_id,
            "principalId": f"integration:{service_id}:key_1",
        }
    response = invoke(api.spec, event)
    return int(response["statusCode"]), json.loads(response["body"])


def incidents_of(api: Api, service: dict[str, Any]) -> list[dict[str, Any]]:
    items = api.ok("GET", "/incidents", query={"service": service["name"]})["items"]
    return sorted(items, key=lambda i: i["created_at"])  # type: ignore[no-any-return]


def test_a_missed_interval_opens_one_incident_and_the_next_ping_resolves_it(
    api: Api, service: dict[str, Any], timers: Timers, clock: time_machine.Traveller
) -> None:
    # Given a heartbeat every 5 minutes, pinged once
    hb = declare(api, service)
    assert hb["id"].startswith("hb_") and hb["ping_url"].endswith(f"/heartbeats/{hb['id']}/ping")
    status, body = ping(api, hb, service["id"])
    assert status == 200 and body["heartbeat"]["status"] == "up", body
    # When 5 minutes pass without a ping and the timer comes due
    clock.shift(5 * MINUTE + 1)
    timers.deliver()
    # Then one incident is open on the service, its timeline saying the heartbeat was missed
    [incident] = incidents_of(api, service)
    assert incident["status"] in ("open", "escalating") and incident["dedup_key"] == f"heartbeat/{hb['id']}"
    events = api.ok("GET", f"/incidents/{incident['id']}/timeline")["items"]
    [missed] = [e for e in events if e["type"] == "heartbeat_missed"]
    assert missed["data"]["heartbeat_id"] == hb["id"]
    assert api.ok("GET", f"/heartbeats/{hb['id']}")["status"] == "down"
    # When the job pings again
    clock.shift(MINUTE)
    status, body = ping(api, hb, service["id"])
    # Then that incident is resolved, the recovery on its timeline, and no other incident exists
    assert status == 200 and body["heartbeat"]["status"] == "up"
    [resolved] = incidents_of(api, service)
    assert resolved["id"] == incident["id"] and resolved["status"] == "resolved"
    events = api.ok("GET", f"/incidents/{incident['id']}/timeline")["items"]
    assert [e["type"] for e in events if e["type"].startswith("heartbeat_")] == [
        "heartbeat_missed",
        "heartbeat_recovered",
    ]


def test_only_the_services_own_key_pings(api: Api, aws: LocalStack, service: dict[str, Any]) -> None:
    # Given a heartbeat of one service, and another service with its own key
    hb = declare(api, service)
    other = api.ok("POST", "/services", {"name": "other"}, expect=201)
    # The authorizer lets any integration key reach the ping route (it cannot know the service)...
    for key in (service["integration_key"], other["integration_key"]):
        status, _ = authorize(
            aws.function("AuthorizerFunction"),
            {"Authorization": f"Bearer {key}"},
            f"{ARN}/POST/heartbeats/{hb['id']}/ping",
        )
        assert status == 0
    # ...and the route refuses a key of another service, and the admin token, naming the credential
    status, body = ping(api, hb, other["id"])
    assert status == 403 and body["field"] == "Authorization", body
    # (the admin token is refused before the route runs: ping is an integration key's route alone)
    status, body = ping(api, hb, None)
    assert status == 403 and body["error"] == "forbidden" and "integration key" in body["message"], body
    assert api.ok("GET", f"/heartbeats/{hb['id']}")["last_ping_at"] is None
    assert ping(api, {"id": "hb_nope"}, service["id"])[0] == 404


def test_a_duplicate_timer_opens_no_second_incident(
    api: Api, aws: LocalStack, service: dict[str, Any], timers: Timers, clock: time_machine.Traveller
) -> None:
    # Given the miss timer is delivered three times (SQS is at-least-once)
    hb = declare(api, service)
    clock.shift(5 * MINUTE + 1)
    [message] = timers.receive_raw()
    for _ in range(3):
        timers.sqs.send_message(QueueUrl=timers.url, MessageBody=message["Body"])
    timers.deliver()
    # Then one incident, one alert on it
    [incident] = incidents_of(api, service)
    assert incident["alert_count"] == 1
    assert api.ok("GET", f"/heartbeats/{hb['id']}")["incident_id"] == incident["id"]


def test_a_lost_timer_is_rearmed_by_the_reconciler(
    api: Api, aws: LocalStack, service: dict[str, Any], timers: Timers, clock: time_machine.Traveller
) -> None:
    # Given the heartbeat's timer message is lost
    hb = declare(api, service)
    clock.shift(5 * MINUTE + 1)
    for message in timers.receive_raw():
        timers.sqs.delete_message(QueueUrl=timers.url, ReceiptHandle=message["ReceiptHandle"])
    assert timers.deliver() == 0 and incidents_of(api, service) == []
    # When the reconciler ticks once the grace has passed
    clock.shift(MINUTE)
    assert reconcile(aws)["timers_rearmed"] == 1
    timers.deliver()
    # Then the miss is not lost: one incident, and the heartbeat has nothing more due
    [incident] = incidents_of(api, service)
    assert incident["dedup_key"] == f"heartbeat/{hb['id']}"
    stored = HeartbeatRepository().get(hb["id"])
    assert stored is not None and stored.synced and stored.due_at is None


def test_a_ping_makes_the_old_timer_stale(
    api: Api, service: dict[str, Any], timers: Timers, clock: time_machine.Traveller
) -> None:
    # Given a ping at 07:04 (deadline moves from 07:05 to 07:09)
    hb = declare(api, service)
    clock.shift(4 * MINUTE)
    assert ping(api, hb, service["id"])[0] == 200
    # When the first timer comes due at 07:05
    clock.shift(MINUTE + 1)
    timers.deliver()
    # Then nothing happens; the new deadline still holds
    assert incidents_of(api, service) == []
    assert api.ok("GET", f"/heartbeats/{hb['id']}")["status"] == "up"
    clock.shift(4 * MINUTE)
    timers.deliver()
    assert len(incidents_of(api, service)) == 1


def test_a_late_timer_after_a_late_ping_loses_no_miss_and_doubles_nothing(
    api: Api, service: dict[str, Any], timers: Timers, clock: time_machine.Traveller
) -> None:
    # Given the deadline (07:05) passes and the timer is late: the ping at 07:07 comes first
    hb = declare(api, service)
    clock.shift(7 * MINUTE)
    status, body = ping(api, hb, service["id"])
    assert status == 200 and body["heartbeat"]["status"] == "up"
    # Then the miss was recorded by the ping: one incident, opened and resolved
    [incident] = incidents_of(api, service)
    assert incident["status"] == "resolved"
    types = [e["type"] for e in api.ok("GET", f"/incidents/{incident['id']}/timeline")["items"]]
    assert "heartbeat_missed" in types and "heartbeat_recovered" in types
    # When the late timer finally arrives, it is stale
    timers.deliver()
    assert [i["id"] for i in incidents_of(api, service)] == [incident["id"]]


def test_a_crash_between_the_miss_and_its_incident_is_finished_by_the_reconciler(
    api: Api,
    aws: LocalStack,
    service: dict[str, Any],
    timers: Timers,
    clock: time_machine.Traveller,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given opening the incident fails once, after the miss was recorded
    from incident_engine.usecases.ingest import AlertIngest

    original = AlertIngest.ingest_alert
    calls: list[int] = []

    def crash_once(self: AlertIngest, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the function died here")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(AlertIngest, "ingest_alert", crash_once)  # the timer's attempt dies
    hb = declare(api, service)
    clock.shift(5 * MINUTE + 1)
    timers.deliver()
    assert incidents_of(api, service) == []
    assert api.ok("GET", f"/heartbeats/{hb['id']}")["status"] == "down"
    # When the reconciler ticks after the grace
    clock.shift(MINUTE)
    reconcile(aws)
    timers.deliver()
    # Then the outage has its incident, once
    [incident] = incidents_of(api, service)
    assert incident["alert_count"] == 1
    clock.shift(MINUTE)
    reconcile(aws)
    timers.deliver()
    assert len(incidents_of(api, service)) == 1


def test_a_long_interval_hops_and_misses_on_time(
    api: Api, service: dict[str, Any], timers: Timers, clock: time_machine.Traveller
) -> None:
    # Given a 60-minute heartbeat: SQS delays stop at 15 minutes, so the timer hops
    declare(api, service, interval=60)
    for _ in range(3):
        clock.shift(15 * MINUTE)
        timers.deliver()
        assert incidents_of(api, service) == []
    # When the hour is up
    clock.shift(15 * MINUTE + 1)
    timers.deliver()
    # Then the miss opens its incident
    assert len(incidents_of(api, service)) == 1


def test_a_miss_inside_a_maintenance_window_is_recorded_not_paged(
    api: Api, service: dict[str, Any], timers: Timers, tap: Tap, clock: time_machine.Traveller
) -> None:
    # Given a maintenance window on the service over the deadline
    window = {"start": "2026-11-22T06:30:00Z", "end": "2026-11-22T08:00:00Z", "reason": "migration"}
    api.ok("POST", f"/services/{service['id']}/maintenance-windows", window, expect=201)
    hb = declare(api, service)
    # When the heartbeat is missed
    clock.shift(5 * MINUTE + 1)
    timers.deliver()
    # Then its incident is suppressed, never paged; the next ping still resolves it
    [incident] = incidents_of(api, service)
    assert incident["suppressed"] is True and incident["escalation"] is None
    assert [m for m in tap.messages() if m["attributes"]["kind"] == "page"] == []
    assert ping(api, hb, service["id"])[0] == 200
    assert incidents_of(api, service)[0]["status"] == "resolved"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"interval_minutes": 0}, "interval_minutes"),
        ({"interval_minutes": 10081}, "interval_minutes"),
        ({"interval_minutes": "5"}, "interval_minutes"),
        ({"interval_minutes": True}, "interval_minutes"),
        ({"interval_minutes": 2.5}, "interval_minutes"),
        ({"name": ""}, "name"),
        ({"name": "a\nb"}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"service_id": "svc_nope"}, "service_id"),
        ({"ping_url": "https://elsewhere"}, "ping_url"),
    ],
)
def test_a_bad_heartbeat_is_refused_naming_the_field(
    api: Api, service: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    body = {"name": "backup", "service_id": service["id"], "interval_minutes": 5, **change}
    status, answer = api.call("POST", "/heartbeats", body)
    assert status == 422 and answer["field"].startswith(field), answer
    assert api.ok("GET", "/heartbeats")["items"] == []


def test_a_heartbeat_is_edited_and_disabled_never_erased(
    api: Api, service: dict[str, Any], timers: Timers, clock: time_machine.Traveller
) -> None:
    hb = declare(api, service)
    assert [h["id"] for h in api.ok("GET", "/heartbeats")["items"]] == [hb["id"]]
    # An edit moves the deadline: 30 minutes from creation
    body = {"name": "backup v2", "service_id": service["id"], "interval_minutes": 30}
    edited = api.ok("PUT", f"/heartbeats/{hb['id']}", body)
    assert edited["version"] == hb["version"] + 1 and edited["next_ping_due_by"].startswith(
        "2026-11-22T07:30"
    )
    moved = {**body, "service_id": api.ok("POST", "/services", {"name": "x"}, expect=201)["id"]}
    status, answer = api.call("PUT", f"/heartbeats/{hb['id']}", moved)
    assert status == 422 and answer["field"] == "service_id"
    # Disabled: kept, listed on request, its timers do nothing, pings refused
    disabled = api.ok("DELETE", f"/heartbeats/{hb['id']}")
    assert disabled["enabled"] is False and disabled["status"] == "disabled"
    assert api.ok("GET", "/heartbeats")["items"] == []
    listed = api.ok("GET", "/heartbeats", query={"include_disabled": "true"})["items"]
    assert [h["id"] for h in listed] == [hb["id"]]
    assert ping(api, hb, service["id"])[0] == 409
    assert api.call("PUT", f"/heartbeats/{hb['id']}", body)[0] == 409
    clock.shift(31 * MINUTE)
    timers.deliver()
    assert incidents_of(api, service) == []
    assert api.call("GET", "/heartbeats/hb_nope")[0] == 404
    assert api.call("GET", f"/heartbeats/hb_{'0' * 4000}")[0] == 404  # never a key DynamoDB refuses


def test_a_team_token_is_not_told_of_another_teams_heartbeat_incident(
    api: Api, timers: Timers, clock: time_machine.Traveller
) -> None:
    # Given a heartbeat of a search-team service whose missed interval opened an incident
    search = api.ok("POST", "/services", {"name": "search nightly", "team_id": "search"}, expect=201)
    hb = declare(api, search)
    clock.shift(5 * MINUTE + 1)
    timers.deliver()
    [incident] = incidents_of(api, search)
    assert api.ok("GET", f"/heartbeats/{hb['id']}")["incident_id"] == incident["id"]  # the admin sees it
    tokens = {
        team: api.ok("POST", "/tokens", {"name": team, "scopes": ["read"], "team_ids": [team]}, expect=201)
        for team in ("payments", "search")
    }
    # When a token held to payments reads the heartbeats (config: every read token may)
    secret = tokens["payments"]["token"]
    status, listed = api.call_as(secret, "GET", "/heartbeats")
    status_one, one = api.call_as(secret, "GET", f"/heartbeats/{hb['id']}")
    # Then the heartbeat is there, but not the other team's incident it would 404 on
    assert status == 200 and [(h["id"], h["status"], h["incident_id"]) for h in listed["items"]] == [
        (hb["id"], "down", None)
    ]
    assert status_one == 200 and one["incident_id"] is None
    assert api.call_as(secret, "GET", f"/incidents/{incident['id']}")[0] == 404
    # And a token of the search team still sees which incident it is
    status, own = api.call_as(tokens["search"]["token"], "GET", f"/heartbeats/{hb['id']}")
    assert status == 200 and own["incident_id"] == incident["id"]


def test_the_reconciler_reads_only_heartbeats_that_are_due(
    api: Api,
    aws: LocalStack,
    service: dict[str, Any],
    timers: Timers,
    clock: time_machine.Traveller,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given ten heartbeats, of which only one is overdue with its timer lost
    due = declare(api, service, interval=1)
    for _ in range(9):
        declare(api, service, interval=60)
    clock.shift(2 * MINUTE)
    for message in timers.receive_raw():
        timers.sqs.delete_message(QueueUrl=timers.url, ReceiptHandle=message["ReceiptHandle"])
    read: list[str] = []
    original = HeartbeatRepository.get

    def counting(self: HeartbeatRepository, heartbeat_id: str) -> Any:
        read.append(heartbeat_id)
        return original(self, heartbeat_id)

    monkeypatch.setattr(HeartbeatRepository, "get", counting)
    # When the reconciler ticks
    assert reconcile(aws)["timers_rearmed"] == 1
    # Then it read the one that is due, not all ten
    assert read == [due["id"]]


def test_the_worker_reports_only_the_unreadable_heartbeat_timers(aws: LocalStack) -> None:
    # Given the sample batch: a timer of a heartbeat that does not exist, one of an unknown kind,
    # and one that names no heartbeat
    event = load_event("sqs_heartbeat_timer_batch.json")
    # When the worker handles it
    result = invoke(aws.function("EscalationWorkerFunction"), event)
    # Then the first is dropped as stale, and only the other two are reported failed
    assert result == {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"][1:]]}
