"""Escalation policies: CRUD, one default, delete disables, and snapshots protect escalations in flight."""

from __future__ import annotations

import copy
import json

import pytest

from local.runtime import invoke
from local.template import LocalStack
from tests.support import Api, Timers, load_event


def sample_policy() -> dict:
    return copy.deepcopy(json.loads(load_event("api_create_policy.json")["body"]))


def test_create_from_the_sample_event(api: Api, aws: LocalStack) -> None:
    response = invoke(aws.function("ApiFunction"), load_event("api_create_policy.json"))
    assert response["statusCode"] == 201
    listed = api.ok("GET", "/policies")["items"]
    assert len(listed) == 1
    policy = listed[0]
    assert policy["is_default"] is True and policy["enabled"] is True and policy["version"] == 1
    assert policy["levels"][1] == {
        "delay_minutes": 0.05,
        "targets": [
            {"type": "user", "email": "lead@example.com"},
            {"type": "user", "email": "sre-manager@example.com"},
        ],
    }


def test_only_one_default_at_a_time(api: Api) -> None:
    first = api.ok("POST", "/policies", sample_policy(), expect=201)
    second = api.ok("POST", "/policies", {**sample_policy(), "name": "Second"}, expect=201)
    assert api.ok("GET", f"/policies/{first['id']}")["is_default"] is False
    assert api.ok("GET", f"/policies/{second['id']}")["is_default"] is True


def test_put_replaces_and_bumps_version(api: Api) -> None:
    created = api.ok("POST", "/policies", sample_policy(), expect=201)
    body = {
        **sample_policy(),
        "name": "Renamed",
        "levels": [{"delay_minutes": 1, "targets": [{"type": "user", "email": "X@Example.com"}]}],
        "severities": ["P0", "P1"],
    }
    updated = api.ok("PUT", f"/policies/{created['id']}", body)
    assert updated["version"] == 2 and updated["name"] == "Renamed" and updated["severities"] == ["P0", "P1"]
    assert updated["levels"] == [
        {"delay_minutes": 1.0, "targets": [{"type": "user", "email": "x@example.com"}]}
    ]
    assert updated["created_at"] == created["created_at"]


def test_delete_disables_and_never_erases(api: Api) -> None:
    created = api.ok("POST", "/policies", sample_policy(), expect=201)
    deleted = api.ok("DELETE", f"/policies/{created['id']}")
    assert deleted["enabled"] is False and deleted["is_default"] is False
    assert api.ok("GET", f"/policies/{created['id']}")["enabled"] is False
    assert api.ok("GET", "/policies")["items"] == []
    assert [p["id"] for p in api.ok("GET", "/policies", query={"include_disabled": "true"})["items"]] == [
        created["id"]
    ]
    # a disabled default no longer applies to new incidents
    assert api.ok("POST", "/incidents", {"title": "x", "severity": "P1"}, expect=201)["status"] == "open"
    assert api.call("PUT", f"/policies/{created['id']}", sample_policy())[0] == 409


def test_unknown_policy_is_404(api: Api) -> None:
    assert api.call("GET", "/policies/pol_missing")[0] == 404
    assert api.call("DELETE", "/policies/pol_missing")[0] == 404


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda p: p.update(levels=[]), "levels"),
        (lambda p: p["levels"][0].update(delay_minutes=-1), "levels.0.delay_minutes"),
        (
            lambda p: p["levels"][0]["targets"][0].update(email="not-an-email"),
            "levels.0.targets.0.user.email",
        ),
        (lambda p: p["levels"][1]["targets"][1].update(email="ftp://x"), "levels.1.targets.1.user.email"),
        (lambda p: p["levels"][0]["targets"].append({"type": "pager", "id": "x"}), "levels.0.targets.1"),
        (lambda p: p.update(repeat={"max_repeats": 0, "interval_minutes": 5}), "repeat.max_repeats"),
        (lambda p: p.update(severities=["P7"]), "severities.0"),
    ],
)
def test_bad_policies_are_422_naming_the_field(api: Api, mutate, field: str) -> None:
    body = sample_policy()
    mutate(body)
    status, payload = api.call("POST", "/policies", body)
    assert status == 422 and payload["field"] == field, payload


def test_routing_picks_the_matching_policy(api: Api) -> None:
    api.ok("POST", "/policies", sample_policy(), expect=201)  # default
    payments = api.ok(
        "POST",
        "/policies",
        {
            **sample_policy(),
            "name": "Payments P0",
            "is_default": False,
            "severities": ["P0"],
            "team": "payments",
        },
        expect=201,
    )
    p0 = api.ok("POST", "/incidents", {"title": "x", "severity": "P0", "team": "payments"}, expect=201)
    p2 = api.ok("POST", "/incidents", {"title": "y", "severity": "P2", "team": "payments"}, expect=201)
    assert p0["escalation"]["policy_id"] == payments["id"]
    assert p2["escalation"]["policy_name"] == "Payments on-call"


def test_editing_a_policy_never_changes_an_escalation_in_flight(api: Api, timers: Timers, clock) -> None:
    # Given an incident escalating on a two-level policy
    policy = api.ok("POST", "/policies", sample_policy(), expect=201)
    inc = api.ok("POST", "/incidents", {"title": "x", "severity": "P1"}, expect=201)
    # When the policy's level 1 is changed to someone else
    body = sample_policy()
    body["levels"][1]["targets"] = [{"type": "user", "email": "someone-else@example.com"}]
    api.ok("PUT", f"/policies/{policy['id']}", body)
    clock.shift(3)
    timers.deliver()
    # Then level 1 still pages the people of the snapshot taken when escalation started
    recipients = [n["recipient"] for n in api.ok("GET", f"/incidents/{inc['id']}/notifications")["items"]]
    assert sorted(recipients) == [
        "lead@example.com",
        "oncall@example.com",
        "sre-manager@example.com",
    ]
