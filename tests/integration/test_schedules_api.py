"""On-call schedules over the API: CRUD, who is on call across DST, shifts, overrides, the calendar."""

from __future__ import annotations

import base64
import itertools
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from incident_engine.store.people import UserItem
from local.runtime import invoke
from local.template import LocalStack
from tests.conftest import START
from tests.support import Api, load_event


@pytest.fixture
def people(api: Api) -> dict[str, str]:
    return {
        name: api.ok("POST", "/users", {"name": name, "email": f"{name.lower()}@example.com"}, expect=201)[
            "id"
        ]
        for name in ("Ann", "Bob", "Cid")
    }


def follow_the_sun(people: dict[str, str]) -> dict[str, Any]:
    """Two layers in New York: Ann and Bob swap daily at 09:00; Cid covers weekday office hours above them."""
    return {
        "name": "Checkout primary",
        "time_zone": "America/New_York",
        "layers": [
            {
                "name": "around the clock",
                "users": [people["Ann"], people["Bob"]],
                "rotation": {"type": "daily", "start": "2026-03-01T09:00", "handoff_time": "09:00"},
            },
            {
                "name": "office",
                "users": [people["Cid"]],
                "rotation": {"type": "weekly", "start": "2026-03-02T00:00", "handoff_day": "monday"},
                "restrictions": [
                    {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "10:00", "end": "16:00"}
                ],
            },
        ],
    }


def oncall(api: Api, schedule_id: str, at: str) -> list[tuple[str | None, str]]:
    body = api.ok("GET", f"/schedules/{schedule_id}/oncall", query={"at": at})
    return [(o["name"], o["source"]) for o in body["oncall"]]


def test_two_layer_schedule_answers_on_both_sides_of_spring_forward(api: Api, people: dict[str, str]) -> None:
    # Given a two-layer New York schedule; clocks jump forward at 02:00 on Sunday 2026-03-08
    schedule = api.ok("POST", "/schedules", follow_the_sun(people), expect=201)
    sid = schedule["id"]
    # Then the 09:00 local handoff is 14:00 UTC before the change and 13:00 UTC after it
    assert oncall(api, sid, "2026-03-07T13:59:00Z") == [("Bob", "around the clock")]  # Sat 08:59 EST
    assert oncall(api, sid, "2026-03-07T14:00:00Z") == [("Ann", "around the clock")]  # Sat 09:00 EST
    assert oncall(api, sid, "2026-03-08T12:59:00Z") == [("Ann", "around the clock")]  # Sun 08:59 EDT
    assert oncall(api, sid, "2026-03-08T13:00:00Z") == [("Bob", "around the clock")]  # Sun 09:00 EDT
    # And the higher office layer wins on a weekday between 10:00 and 16:00 local, on both sides
    assert oncall(api, sid, "2026-03-06T15:00:00Z") == [("Cid", "office")]  # Fri 10:00 EST
    assert oncall(api, sid, "2026-03-09T14:00:00Z") == [("Cid", "office")]  # Mon 10:00 EDT
    assert oncall(api, sid, "2026-03-09T13:59:00Z") == [("Ann", "around the clock")]
    body = api.ok("GET", f"/schedules/{sid}/oncall", query={"at": "2026-03-09T14:00:00-04:00"})
    assert body == {
        "schedule_id": sid,
        "at": "2026-03-09T18:00:00.000Z",
        "oncall": [{"user_id": people["Cid"], "name": "Cid", "source": "office"}],
    }


def test_oncall_defaults_to_now_and_shifts_to_the_next_week(api: Api, people: dict[str, str]) -> None:
    sid = api.ok("POST", "/schedules", follow_the_sun(people), expect=201)["id"]
    now = api.ok("GET", f"/schedules/{sid}/oncall")
    assert now["at"] == "2026-11-22T07:00:00.000Z"  # START, a Sunday 02:00 in New York
    shifts = api.ok("GET", f"/schedules/{sid}/shifts")
    assert (shifts["start"], shifts["end"]) == ("2026-11-22T07:00:00.000Z", "2026-11-29T07:00:00.000Z")
    items = shifts["items"]
    assert items[0]["start"] == shifts["start"] and items[-1]["end"] == shifts["end"]
    assert now["oncall"][0]["user_id"] == items[0]["user_id"]
    # Contiguous: each shift ends where the next begins (one person on call at a time here)
    assert all(a["end"] == b["start"] for a, b in itertools.pairwise(items))
    # Monday to Friday Cid holds 10:00-16:00 EST (15:00-21:00 UTC)
    cid = [(s["start"], s["end"]) for s in items if s["source"] == "office"]
    assert cid == [(f"2026-11-{d}T15:00:00.000Z", f"2026-11-{d}T21:00:00.000Z") for d in (23, 24, 25, 26, 27)]


def test_shift_ranges_are_bounded(api: Api, people: dict[str, str]) -> None:
    sid = api.ok("POST", "/schedules", follow_the_sun(people), expect=201)["id"]
    long = {"from": "2026-01-01T00:00:00Z", "to": "2026-04-02T00:00:00Z"}  # 91 days
    status, body = api.call("GET", f"/schedules/{sid}/shifts", query=long)
    assert status == 422 and body["field"] == "to" and "90 days" in body["message"]
    status, body = api.call(
        "GET",
        f"/schedules/{sid}/shifts",
        query={"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
    )
    assert status == 422 and body["field"] == "to"
    status, body = api.call("GET", f"/schedules/{sid}/shifts", query={"from": "yesterday"})
    assert status == 422 and body["field"] == "from"
    status, body = api.call("GET", f"/schedules/{sid}/oncall", query={"at": "2026-03-08T09:00:00"})
    assert status == 422 and body["field"] == "at" and "offset" in body["message"]
    ninety = api.ok(
        "GET",
        f"/schedules/{sid}/shifts",
        query={"from": "2026-01-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"},
    )
    assert ninety["items"][0]["start"] == "2026-03-01T14:00:00.000Z"  # nobody before the rotations start


def test_an_override_wins_over_every_layer_until_deleted(api: Api, people: dict[str, str], clock) -> None:
    sid = api.ok("POST", "/schedules", follow_the_sun(people), expect=201)["id"]
    before = oncall(api, sid, "2026-11-23T16:00:00Z")  # Monday, office hours: Cid
    assert before == [("Cid", "office")]
    # When Bob takes over Monday noon to 18:00 UTC
    created = api.ok(
        "POST",
        f"/schedules/{sid}/overrides",
        {"user_id": people["Bob"], "start": "2026-11-23T12:00:00Z", "end": "2026-11-23T18:00:00Z"},
        expect=201,
    )
    assert created["id"].startswith("ovr_") and created["user_id"] == people["Bob"]
    # Then Bob is on call over both layers, and the shifts show the override
    assert oncall(api, sid, "2026-11-23T16:00:00Z") == [("Bob", "override")]
    window = {"from": "2026-11-23T11:00:00Z", "to": "2026-11-23T19:00:00Z"}
    shifts = api.ok("GET", f"/schedules/{sid}/shifts", query=window)["items"]
    assert [(s["name"], s["source"], s["start"][11:16], s["end"][11:16]) for s in shifts] == [
        ("Ann", "around the clock", "11:00", "12:00"),  # day 266 of the rotation
        ("Bob", "override", "12:00", "18:00"),
        ("Cid", "office", "18:00", "19:00"),
    ]
    assert api.ok("GET", f"/schedules/{sid}/overrides")["items"] == [created]
    # And the user an override names may not be disabled
    status, body = api.call("DELETE", f"/users/{people['Bob']}")
    assert (
        status == 409 and {"kind": "override", "id": created["id"]}.items() <= body["references"][-1].items()
    )
    # When the override is deleted it stops counting but is kept
    assert api.ok("DELETE", f"/schedules/{sid}/overrides/{created['id']}") == created
    assert oncall(api, sid, "2026-11-23T16:00:00Z") == [("Cid", "office")]
    assert api.ok("GET", f"/schedules/{sid}/overrides")["items"] == []
    assert api.call("DELETE", f"/schedules/{sid}/overrides/{created['id']}")[0] == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"start": "2026-11-23T12:00:00Z", "end": "2026-11-23T11:00:00Z"}, "end"),
        ({"start": "2026-11-20T12:00:00Z", "end": "2026-11-21T12:00:00Z"}, "end"),  # over before now
        ({"start": "2026-11-23T12:00:00Z", "end": "2027-03-01T12:00:00Z"}, "end"),  # > 90 days
        ({"start": "2026-11-23T12:00:00", "end": "2026-11-23T18:00:00Z"}, "start"),  # no offset
        ({"start": "soon", "end": "2026-11-23T18:00:00Z"}, "start"),
        (
            {"user_id": "usr_nobody", "start": "2026-11-23T12:00:00Z", "end": "2026-11-23T18:00:00Z"},
            "user_id",
        ),
    ],
)
def test_bad_overrides_are_422_naming_the_field(
    api: Api, people: dict[str, str], body: dict[str, str], field: str
) -> None:
    sid = api.ok("POST", "/schedules", follow_the_sun(people), expect=201)["id"]
    status, payload = api.call("POST", f"/schedules/{sid}/overrides", {"user_id": people["Ann"], **body})
    assert status == 422 and payload["field"] == field, payload
    assert api.ok("GET", f"/schedules/{sid}/overrides")["items"] == []


def test_calendar_feed_holds_the_next_sixty_days(api: Api, people: dict[str, str]) -> None:
    from icalendar import Calendar

    sid = api.ok("POST", "/schedules", follow_the_sun(people), expect=201)["id"]
    status, text = api.call("GET", f"/schedules/{sid}/calendar.ics")
    assert status == 200 and text.startswith("BEGIN:VCALENDAR")
    events = Calendar.from_ical(text).walk("VEVENT")
    expected = api.ok(
        "GET",
        f"/schedules/{sid}/shifts",
        query={"from": "2026-11-22T07:00:00Z", "to": "2027-01-21T07:00:00Z"},
    )
    assert len(events) == len(expected["items"]) > 60
    # The shift in progress keeps its real start (not "now"), so its event is the same on every refresh
    assert events[0].decoded("dtstart") < START < events[0].decoded("dtend")
    assert events[0].decoded("dtend") == datetime.fromisoformat(
        expected["items"][0]["end"].replace("Z", "+00:00")
    )
    assert events[-1].decoded("dtend") == START + timedelta(days=60)
    assert str(events[0]["summary"]).startswith("On call: ")
    assert len({str(e["uid"]) for e in events}) == len(events)
    again = Calendar.from_ical(api.call("GET", f"/schedules/{sid}/calendar.ics")[1]).walk("VEVENT")
    assert [str(e["uid"]) for e in again] == [str(e["uid"]) for e in events]


def test_put_and_delete_schedule(api: Api, people: dict[str, str]) -> None:
    created = api.ok("POST", "/schedules", follow_the_sun(people), expect=201)
    assert created["layers"][1]["rotation"] == {
        "type": "weekly",
        "start": "2026-03-02T00:00",
        "handoff_time": "00:00",  # defaults to the start's time and weekday
        "handoff_day": "monday",
        "shift_hours": None,
    }
    body = follow_the_sun(people)
    body["layers"] = body["layers"][:1]
    replaced = api.ok("PUT", f"/schedules/{created['id']}", {**body, "version": 1})
    assert replaced["version"] == 2 and len(replaced["layers"]) == 1
    assert api.call("PUT", f"/schedules/{created['id']}", {**body, "version": 1})[0] == 409
    assert api.ok("GET", f"/schedules/{created['id']}") == replaced
    deleted = api.ok("DELETE", f"/schedules/{created['id']}")
    assert deleted["enabled"] is False
    assert api.call("GET", f"/schedules/{created['id']}/oncall")[0] == 409
    assert api.ok("GET", "/schedules")["items"] == []
    # Every write that named a user told the user so (the guard against a racing disable)
    assert int(UserItem.get("USER", people["Ann"], consistent_read=True).ref_changes) == 2


def layer(people: dict[str, str], **changes: Any) -> dict[str, Any]:
    base = {"name": "l", "users": [people["Ann"]], "rotation": {"type": "daily", "start": "2026-03-01T09:00"}}
    return {**base, **changes}


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda p: {"time_zone": "Europe/Atlantis"}, "time_zone"),
        (lambda p: {"name": "bad\nname"}, "name"),
        (lambda p: {"layers": []}, "layers"),
        (lambda p: {"layers": [layer(p, name="override")]}, "layers.0.name"),
        (lambda p: {"layers": [layer(p), layer(p)]}, "layers.1.name"),
        (lambda p: {"layers": [layer(p, users=[p["Ann"], "usr_nobody"])]}, "layers.0.users.1"),
        (lambda p: {"layers": [layer(p, users=[])]}, "layers.0.users"),
        (
            lambda p: {
                "layers": [
                    layer(p, rotation={"type": "daily", "start": "2026-03-01T09:00", "handoff_time": "24:00"})
                ]
            },
            "layers.0.rotation.daily.handoff_time",
        ),
        (
            lambda p: {"layers": [layer(p, rotation={"type": "daily", "start": "2026-03-01T09:00-05:00"})]},
            "layers.0.rotation.daily.start",
        ),
        (
            lambda p: {"layers": [layer(p, rotation={"type": "daily", "start": "2026-02-30T09:00"})]},
            "layers.0.rotation.daily.start",
        ),
        (
            lambda p: {
                "layers": [
                    layer(
                        p, rotation={"type": "weekly", "start": "2026-03-01T09:00", "handoff_day": "funday"}
                    )
                ]
            },
            "layers.0.rotation.weekly.handoff_day",
        ),
        (
            lambda p: {
                "layers": [
                    layer(p, rotation={"type": "custom", "start": "2026-03-01T09:00", "shift_hours": 0})
                ]
            },
            "layers.0.rotation.custom.shift_hours",
        ),
        (
            lambda p: {"layers": [layer(p, rotation={"type": "hourly", "start": "2026-03-01T09:00"})]},
            "layers.0.rotation",
        ),
        (
            lambda p: {
                "layers": [layer(p, restrictions=[{"days": ["someday"], "start": "09:00", "end": "17:00"}])]
            },
            "layers.0.restrictions.0.days.0",
        ),
        (
            lambda p: {
                "layers": [layer(p, restrictions=[{"days": ["mon"], "start": "9am", "end": "17:00"}])]
            },
            "layers.0.restrictions.0.start",
        ),
    ],
)
def test_bad_schedules_are_422_naming_the_field(
    api: Api, people: dict[str, str], make: Any, field: str
) -> None:
    body = {**follow_the_sun(people), **make(people)}
    status, payload = api.call("POST", "/schedules", body)
    assert status == 422 and payload["field"] == field, payload
    assert api.ok("GET", "/schedules", query={"include_disabled": "true"})["items"] == []


def test_unknown_schedule_is_404_everywhere(api: Api) -> None:
    for method, path in [
        ("GET", "/schedules/sch_missing"),
        ("GET", "/schedules/sch_missing/oncall"),
        ("GET", "/schedules/sch_missing/shifts"),
        ("GET", "/schedules/sch_missing/calendar.ics"),
        ("GET", "/schedules/sch_missing/overrides"),
        ("DELETE", "/schedules/sch_missing"),
        ("DELETE", "/schedules/sch_missing/overrides/ovr_x"),
    ]:
        status, body = api.call(method, path)
        assert status == 404 and body["error"] == "not_found", (method, path, body)
    assert datetime.now(UTC) == START  # the clock fixture holds still


def test_the_api_loads_icalendar_only_for_the_calendar_route() -> None:
    # A fresh interpreter, as a cold start: importing the handler must not pay for icalendar.
    code = "import sys, functions.api.app; print('icalendar' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root / 'shared'}{os.pathsep}{root}"}
    out = subprocess.run(  # noqa: S603 - our own interpreter and a fixed snippet
        [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False", out.stderr


def test_ids_and_cursors_that_cannot_be_ours_are_refused_not_sent_to_dynamodb(
    api: Api, people: dict[str, str]
) -> None:
    # An id longer than a sort key may be is simply not found (DynamoDB would reject the key)
    for path in ("/users/" + "u" * 2000, "/teams/" + "t" * 2000, "/schedules/" + "s" * 2000):
        status, body = api.call("GET", path)
        assert status == 404 and len(body["message"]) < 200, (path, body)
    sid = api.ok("POST", "/schedules", follow_the_sun(people), expect=201)["id"]
    assert api.call("DELETE", f"/schedules/{sid}/overrides/{'o' * 2000}")[0] == 404

    def cursor(pk: str, sk: str) -> str:
        raw = json.dumps({"pk": {"S": pk}, "sk": {"S": sk}}).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    # A well-formed cursor from before the asked range would make DynamoDB fail the query: 422
    stale = cursor(f"OVERRIDE#{sid}", "2000-01-01T00:00:00.000000Z#ovr_x")
    status, body = api.call("GET", f"/schedules/{sid}/overrides", query={"cursor": stale})
    assert status == 422 and body["field"] == "cursor"
    status, body = api.call("GET", "/users", query={"cursor": cursor("USER", "u" * 1100)})
    assert status == 422 and body["field"] == "cursor"


def test_the_sample_event_creates_a_schedule_once_its_users_exist(api: Api, aws: LocalStack) -> None:
    event = load_event("api_create_schedule.json")
    # Without its users the sample is refused, naming the first missing one
    response = invoke(aws.function("ApiFunction"), load_event("api_create_schedule.json"))
    assert response["statusCode"] == 422 and json.loads(response["body"])["field"] == "layers.0.users.0"
    # With real users in their places it creates the schedule as written
    body = event["body"]
    for placeholder in ("usr_ann", "usr_bob", "usr_cid"):
        real = api.ok(
            "POST", "/users", {"name": placeholder[4:], "email": f"{placeholder[4:]}@example.com"}, expect=201
        )
        body = body.replace(placeholder, real["id"])
    response = invoke(aws.function("ApiFunction"), {**event, "body": body})
    assert response["statusCode"] == 201, response
    created = json.loads(response["body"])
    assert [layer["name"] for layer in created["layers"]] == ["around the clock", "office"]
    assert api.ok("GET", "/schedules")["items"] == [created]
