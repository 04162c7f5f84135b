"""Who gets paged is decided when a level fires: users, teams, schedules (overrides included),
nobody on call, fallback, and a policy that keeps paging after an acknowledge."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.support import Api, Tap, Timers


@pytest.fixture
def people(api: Api) -> dict[str, str]:
    ids = {}
    for name in ("ann", "bob", "cid"):
        body = {
            "name": name.title(),
            "email": f"{name}@example.com",
            "contact_methods": [
                {"type": "sms", "address": f"+1555000{len(ids)}{len(ids)}{len(ids)}{len(ids)}"},
                {"type": "email", "address": f"{name}@example.com"},
            ],
        }
        ids[name] = api.ok("POST", "/users", body, expect=201)["id"]
    return ids


def rotation(users: list[str]) -> dict[str, Any]:
    return {
        "name": "primary",
        "time_zone": "Europe/Berlin",
        "layers": [
            {
                "name": "daily",
                "users": users,
                "rotation": {"type": "daily", "start": "2026-11-22T00:00", "handoff_time": "00:00"},
            }
        ],
    }


def policy(api: Api, levels: list[list[dict[str, str]]], **extra: Any) -> dict[str, Any]:
    body = {
        "name": "p",
        "is_default": True,
        "levels": [{"delay_minutes": 0 if n == 0 else 0.05, "targets": t} for n, t in enumerate(levels)],
        **extra,
    }
    return api.ok("POST", "/policies", body, expect=201)


def paged(tap: Tap) -> Counter[tuple[str, str]]:
    return Counter(
        (m["attributes"]["channel"], m["attributes"]["recipient"])
        for m in tap.messages()
        if m["attributes"]["kind"] == "page"
    )


def test_a_schedule_level_pages_whoever_is_on_call_when_it_fires_override_included(
    api: Api, people: dict[str, str], timers: Timers, tap: Tap, clock
) -> None:
    # Given Ann on call today, and a policy whose level 1 targets the schedule
    schedule = api.ok("POST", "/schedules", rotation([people["ann"]]), expect=201)
    policy(
        api,
        [
            [{"type": "user", "email": "desk@example.com"}],
            [{"type": "schedule", "schedule_id": schedule["id"]}],
        ],
    )
    inc = api.ok("POST", "/incidents", {"title": "x", "severity": "P1"}, expect=201)["id"]
    # When Bob takes over with an override added after the incident opened, and level 1 fires
    api.ok(
        "POST",
        f"/schedules/{schedule['id']}/overrides",
        {"user_id": people["bob"], "start": "2026-11-22T06:00:00Z", "end": "2026-11-22T09:00:00Z"},
        expect=201,
    )
    clock.shift(3)
    timers.deliver()
    # Then Bob is paged on each of his contact methods, and the step records why
    assert paged(tap) == Counter(
        {("email", "desk@example.com"): 1, ("sms", "+15550001111"): 1, ("email", "bob@example.com"): 1}
    )
    step = api.ok("GET", f"/incidents/{inc}/escalations")["items"][1]
    assert {r["why"]["source"] for r in step["recipients"]} == {"override"}
    assert {r["user_id"] for r in step["recipients"]} == {people["bob"]}


def test_a_team_level_pages_every_enabled_member(api: Api, people: dict[str, str], tap: Tap) -> None:
    team = api.ok(
        "POST", "/teams", {"name": "payments", "members": [people["ann"], people["cid"]]}, expect=201
    )
    policy(api, [[{"type": "team", "team_id": team["id"]}]])
    api.ok("POST", "/incidents", {"title": "x", "severity": "P1"}, expect=201)
    assert {r for _, r in paged(tap)} == {
        "+15550000000",
        "ann@example.com",
        "+15550002222",
        "cid@example.com",
    }


def test_a_level_that_reaches_nobody_says_so_pages_the_fallback_and_moves_on_at_once(
    api: Api, people: dict[str, str], timers: Timers, tap: Tap, clock
) -> None:
    # Given a schedule with nobody on call now (its only user starts tomorrow), then level 1 after 10 min
    empty = rotation([people["ann"]])
    empty["layers"][0]["rotation"]["start"] = "2026-11-23T00:00"
    schedule = api.ok("POST", "/schedules", empty, expect=201)
    body = {
        "name": "p",
        "is_default": True,
        "levels": [
            {"delay_minutes": 0, "targets": [{"type": "schedule", "schedule_id": schedule["id"]}]},
            {"delay_minutes": 10, "targets": [{"type": "user", "user_id": people["cid"]}]},
        ],
        "fallback": [{"type": "user", "email": "duty-manager@example.com"}],
    }
    api.ok("POST", "/policies", body, expect=201)
    # When an incident opens
    inc = api.ok("POST", "/incidents", {"title": "x", "severity": "P1"}, expect=201)["id"]
    # Then level 0 records nobody on call and pages the fallback; level 1 is due now, not in 10 minutes
    events = [e["type"] for e in api.ok("GET", f"/incidents/{inc}/timeline")["items"]]
    assert "nobody_on_call" in events
    assert paged(tap) == Counter({("email", "duty-manager@example.com"): 1})
    assert api.ok("GET", f"/incidents/{inc}")["escalation"]["next_at"] == "2026-11-22T07:00:00.000Z"
    timers.deliver()
    assert paged(tap)[("email", "cid@example.com")] == 1


def test_stop_on_ack_false_keeps_paging_the_remaining_levels(
    api: Api, people: dict[str, str], timers: Timers, tap: Tap, clock
) -> None:
    policy(
        api,
        [[{"type": "user", "email": "first@example.com"}], [{"type": "user", "email": "second@example.com"}]],
        stop_on_ack=False,
    )
    inc = api.ok("POST", "/incidents", {"title": "x", "severity": "P1"}, expect=201)["id"]
    acked = api.ok("POST", f"/incidents/{inc}/acknowledge", {"by": "first@example.com"})
    assert acked["status"] == "acknowledged" and acked["escalation"]["next_level"] == 1
    clock.shift(3)
    timers.deliver()
    assert paged(tap) == Counter({("email", "first@example.com"): 1, ("email", "second@example.com"): 1})
    assert api.ok("GET", f"/incidents/{inc}")["status"] == "acknowledged"


def test_policies_name_only_existing_people_and_people_named_cannot_be_deleted(
    api: Api, people: dict[str, str]
) -> None:
    for target, field in (
        ({"type": "user", "user_id": "usr_nobody"}, "levels.0.targets.0.user_id"),
        ({"type": "team", "team_id": "team_nope"}, "levels.0.targets.0.team_id"),
        ({"type": "schedule", "schedule_id": "sch_nope"}, "levels.0.targets.0.schedule_id"),
        ({"type": "user", "user_id": people["ann"], "email": "a@example.com"}, "levels.0.targets.0.user"),
    ):
        status, body = api.call(
            "POST", "/policies", {"name": "p", "levels": [{"delay_minutes": 0, "targets": [target]}]}
        )
        assert status == 422 and body["field"].startswith(field), (target, body)
    policy(api, [[{"type": "user", "user_id": people["bob"]}]])
    status, body = api.call("DELETE", f"/users/{people['bob']}")
    assert status == 409 and any(r["kind"] == "policy" for r in body["references"]), body


def test_more_than_80_recipients_on_one_level_are_truncated_and_the_timeline_says_so(
    api: Api, tap: Tap
) -> None:
    # Given a team of 9 people with 10 contact methods each: 90 recipients for one level
    members = []
    for n in range(9):
        methods = [{"type": "sms", "address": f"+1555{n:03d}{m:04d}"} for m in range(9)]
        methods.append({"type": "email", "address": f"member{n}@example.com"})
        body = {"name": f"Member {n}", "email": f"member{n}@example.com", "contact_methods": methods}
        members.append(api.ok("POST", "/users", body, expect=201)["id"])
    team = api.ok("POST", "/teams", {"name": "everyone", "members": members}, expect=201)
    policy(api, [[{"type": "team", "team_id": team["id"]}]])
    # When an incident opens and level 0 fires
    inc = api.ok("POST", "/incidents", {"title": "x", "severity": "P1"}, expect=201)["id"]
    # Then the first 80 are paged (one fire is one transaction), and the timeline says how many were not
    pages = paged(tap)
    assert sum(pages.values()) == 80 and set(pages.values()) == {1}
    assert ("sms", "+15550000000") in pages and ("email", "member8@example.com") not in pages
    [truncated] = [
        e for e in api.ok("GET", f"/incidents/{inc}/timeline")["items"] if e["type"] == "recipients_truncated"
    ]
    assert truncated["data"] == {"level": 0, "paged": 80, "total": 90}
    rows = api.ok("GET", f"/incidents/{inc}/notifications", query={"limit": "100"})["items"]
    assert len(rows) == 80
    [step] = api.ok("GET", f"/incidents/{inc}/escalations")["items"][:1]
    assert len(step["recipients"]) == 80


def test_a_timer_fire_reads_the_schedule_at_the_instant_it_fires(
    api: Api, people: dict[str, str], aws, clock
) -> None:
    from datetime import UTC, datetime, timedelta

    from incident_engine.domain.model import TimerMessage
    from incident_engine.usecases.escalation import EscalationTimerService
    from incident_engine.wiring import services

    # Given Ann on call until a 08:00 handoff to Bob, and level 1 targeting the schedule due at 07:59:30
    body = rotation([people["ann"], people["bob"]])
    body["time_zone"] = "UTC"
    body["layers"][0]["rotation"] = {"type": "daily", "start": "2026-11-21T08:00", "handoff_time": "08:00"}
    schedule = api.ok("POST", "/schedules", body, expect=201)
    levels = [
        {"delay_minutes": 0, "targets": [{"type": "user", "email": "desk@example.com"}]},
        {"delay_minutes": 59.5, "targets": [{"type": "schedule", "schedule_id": schedule["id"]}]},
    ]
    api.ok("POST", "/policies", {"name": "p", "is_default": True, "levels": levels}, expect=201)
    inc = api.ok("POST", "/incidents", {"title": "x", "severity": "P1"}, expect=201)["id"]

    class Ticking:
        """Each reading 0.4 s after the last: the fire's own instant is 07:59:59.9, just before the
        handoff; anything read after it is past 08:00."""

        def __init__(self) -> None:
            self.at = datetime(2026, 11, 22, 7, 59, 59, 100_000, tzinfo=UTC)

        def now(self) -> datetime:
            self.at += timedelta(milliseconds=400)
            return self.at

    s = services()
    worker = EscalationTimerService(s.incidents, s.dispatcher, Ticking(), None, paging=s.paging_config())
    stored = s.incidents.get(inc)
    assert stored is not None and stored.token is not None and stored.due_at is not None
    # When level 1 fires at 07:59:59.9
    worker.handle_timer(TimerMessage(inc, stored.token, stored.due_at))
    # Then Ann, on call at that instant, is paged: the configuration was read for that same instant
    step = api.ok("GET", f"/incidents/{inc}/escalations")["items"][1]
    assert step["executed_at"] == "2026-11-22T07:59:59.900Z"
    assert {r["user_id"] for r in step["recipients"]} == {people["ann"]}
    events = [e["type"] for e in api.ok("GET", f"/incidents/{inc}/timeline")["items"]]
    assert "nobody_on_call" not in events
