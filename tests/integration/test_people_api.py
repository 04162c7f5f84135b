"""Users and teams: CRUD, versions, disable-not-erase, references that block a disable, strict input."""

from __future__ import annotations

from typing import Any

import pytest

from incident_engine.store.people import UserItem
from incident_engine.usecases.ports import VersionConflict
from incident_engine.wiring import services
from tests.support import Api


def ann() -> dict[str, Any]:
    return {
        "name": "Ann Example",
        "email": "Ann@Example.com",
        "time_zone": "America/New_York",
        "contact_methods": [
            {"type": "sms", "address": "+14155550100"},
            {"type": "email", "address": "ann@example.com", "delay_minutes": 5},
            {"type": "slack", "address": "https://hooks.slack.com/services/T000/B000/XXXX"},
        ],
    }


def make_user(api: Api, name: str = "Bob") -> dict[str, Any]:
    return api.ok("POST", "/users", {"name": name, "email": f"{name.lower()}@example.com"}, expect=201)


def test_create_get_and_list_a_user(api: Api) -> None:
    created = api.ok("POST", "/users", ann(), expect=201)
    assert created["id"].startswith("usr_") and created["version"] == 1 and created["enabled"] is True
    assert created["email"] == "ann@example.com"  # addresses are compared lower-case
    # E-mail and SMS methods are subscribed to the notifications topic (moto confirms at once)
    sms_sub, mail_sub = (created["contact_methods"][i].pop("subscription") for i in (0, 1))
    assert sms_sub["status"] == mail_sub["status"] == "confirmed" and sms_sub["arn"] != mail_sub["arn"]
    assert created["contact_methods"][2].pop("subscription") is None
    assert created["contact_methods"] == [
        {"type": "sms", "address": "+14155550100", "delay_minutes": 0.0},
        {"type": "email", "address": "ann@example.com", "delay_minutes": 5.0},
        {"type": "slack", "address": "https://hooks.slack.com/services/T000/B000/XXXX", "delay_minutes": 0.0},
    ]
    created["contact_methods"][0]["subscription"] = sms_sub
    created["contact_methods"][1]["subscription"] = mail_sub
    created["contact_methods"][2]["subscription"] = None
    assert api.ok("GET", f"/users/{created['id']}") == created
    assert api.ok("GET", "/users") == {"items": [created], "next_cursor": None}
    stored = UserItem.get("USER", created["id"], consistent_read=True)
    assert stored.name == "Ann Example" and stored.body["time_zone"] == "America/New_York"


def test_put_is_conditional_on_the_version_read(api: Api) -> None:
    created = api.ok("POST", "/users", ann(), expect=201)
    updated = api.ok("PUT", f"/users/{created['id']}", {**ann(), "name": "Ann Renamed", "version": 1})
    assert updated["version"] == 2 and updated["name"] == "Ann Renamed"
    assert updated["created_at"] == created["created_at"]
    # A writer still holding version 1 is refused, and what is stored does not change
    status, body = api.call("PUT", f"/users/{created['id']}", {**ann(), "name": "Stale", "version": 1})
    assert status == 409 and body["version"] == 2
    assert api.ok("GET", f"/users/{created['id']}")["name"] == "Ann Renamed"


def test_delete_disables_and_never_erases(api: Api) -> None:
    created = make_user(api)
    deleted = api.ok("DELETE", f"/users/{created['id']}")
    assert deleted["enabled"] is False and deleted["version"] == 2
    assert api.ok("GET", f"/users/{created['id']}")["enabled"] is False
    assert api.ok("GET", "/users")["items"] == []
    assert [u["id"] for u in api.ok("GET", "/users", query={"include_disabled": "true"})["items"]] == [
        created["id"]
    ]
    assert api.ok("DELETE", f"/users/{created['id']}")["version"] == 2  # twice is not an error
    assert api.call("PUT", f"/users/{created['id']}", ann())[0] == 409
    assert api.call("GET", "/users/usr_missing")[0] == 404


def test_a_user_named_by_a_team_or_schedule_cannot_be_disabled(api: Api) -> None:
    # Given a user in a team and in a schedule
    user, other = make_user(api, "Bob"), make_user(api, "Cid")
    team = api.ok("POST", "/teams", {"name": "Ops", "members": [other["id"], user["id"]]}, expect=201)
    schedule = api.ok(
        "POST",
        "/schedules",
        {
            "name": "Primary",
            "time_zone": "UTC",
            "layers": [
                {
                    "name": "l1",
                    "users": [user["id"]],
                    "rotation": {"type": "daily", "start": "2026-11-01T09:00"},
                }
            ],
        },
        expect=201,
    )
    # When it is deleted
    status, body = api.call("DELETE", f"/users/{user['id']}")
    # Then 409 says where it is still named, and the user stays enabled
    assert status == 409
    assert body["references"] == [
        {"kind": "team", "id": team["id"], "name": "Ops", "field": "members.1"},
        {"kind": "schedule", "id": schedule["id"], "name": "Primary", "field": "layers.0.users.0"},
    ]
    assert team["id"] in body["message"] and schedule["id"] in body["message"]
    assert api.ok("GET", f"/users/{user['id']}")["enabled"] is True
    # And once the team and schedule let go of the user, the delete goes through
    api.ok("PUT", f"/teams/{team['id']}", {"name": "Ops", "members": [other["id"]]})
    api.ok("DELETE", f"/schedules/{schedule['id']}")
    assert api.ok("DELETE", f"/users/{user['id']}")["enabled"] is False


def test_naming_a_user_bumps_its_counter_so_a_racing_disable_fails(api: Api) -> None:
    # Given a disable that has read the user and found nothing naming it
    user = make_user(api)
    repo = services().users
    current, ref_changes = repo.get(user["id"])  # type: ignore[misc]
    # When a team names the user before the disable writes
    api.ok("POST", "/teams", {"name": "Ops", "members": [user["id"]]}, expect=201)
    assert repo.get(user["id"])[1] == ref_changes + 1  # type: ignore[index]
    # Then the disable's conditional write is refused
    from dataclasses import replace

    with pytest.raises(VersionConflict):
        repo.replace(replace(current, enabled=False, version=2), current.version, ref_changes)
    assert api.ok("GET", f"/users/{user['id']}")["enabled"] is True


def test_teams_crud_and_members_must_be_enabled_users(api: Api) -> None:
    a, b = make_user(api, "Ann"), make_user(api, "Bob")
    team = api.ok("POST", "/teams", {"name": "Platform", "members": [a["id"], b["id"]]}, expect=201)
    assert team["members"] == [a["id"], b["id"]] and team["version"] == 1
    assert api.ok("GET", f"/teams/{team['id']}") == team
    replaced = api.ok("PUT", f"/teams/{team['id']}", {"name": "Platform", "members": [b["id"]], "version": 1})
    assert replaced["members"] == [b["id"]] and replaced["version"] == 2
    api.ok("DELETE", f"/users/{a['id']}")
    status, body = api.call("POST", "/teams", {"name": "X", "members": [b["id"], a["id"]]})
    assert status == 422 and body["field"] == "members.1" and "disabled" in body["message"]
    status, body = api.call("POST", "/teams", {"name": "X", "members": ["usr_nobody"]})
    assert status == 422 and body["field"] == "members.0" and "does not exist" in body["message"]
    status, body = api.call("POST", "/teams", {"name": "X", "members": [b["id"], b["id"]]})
    assert status == 422 and body["field"] == "members.1"
    assert api.ok("DELETE", f"/teams/{team['id']}")["enabled"] is False
    assert api.ok("GET", "/teams")["items"] == []


def test_lists_are_paginated_with_an_opaque_cursor(api: Api) -> None:
    ids = {make_user(api, name)["id"] for name in ("Ann", "Bob", "Cid")}
    first = api.ok("GET", "/users", query={"limit": "2"})
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = api.ok("GET", "/users", query={"limit": "2", "cursor": first["next_cursor"]})
    assert second["next_cursor"] is None
    assert {u["id"] for u in first["items"] + second["items"]} == ids
    status, body = api.call("GET", "/users", query={"cursor": "not-a-cursor"})
    assert status == 422 and body["field"] == "cursor"
    # A cursor from another list is refused rather than read from the wrong partition
    api.ok("POST", "/teams", {"name": "A", "members": []}, expect=201)
    api.ok("POST", "/teams", {"name": "B", "members": []}, expect=201)
    team_cursor = api.ok("GET", "/teams", query={"limit": "1"})["next_cursor"]
    assert api.call("GET", "/users", query={"cursor": team_cursor})[0] == 422


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda u: u.update(name="Ann\x07"), "name"),
        (lambda u: u.update(name="Ann\u202egnp.exe"), "name"),  # a direction override
        (
            lambda u: u["contact_methods"][2].update(address="https://169.254.169.254/latest/meta-data"),
            "contact_methods.2.slack.address",
        ),
        (
            lambda u: u["contact_methods"][2].update(address="https://10.0.0.7/hook"),
            "contact_methods.2.slack.address",
        ),
        (lambda u: u.update(name="x" * 101), "name"),
        (lambda u: u.update(name="  "), "name"),
        (lambda u: u.update(email="ann@example.com\x00"), "email"),
        (lambda u: u.update(email="<ann@example.com>"), "email"),
        (lambda u: u.update(email="ann@localhost"), "email"),
        (lambda u: u.update(time_zone="Mars/Olympus_Mons"), "time_zone"),
        (lambda u: u.update(time_zone="../../etc/passwd"), "time_zone"),
        (lambda u: u["contact_methods"][0].update(address="4155550100"), "contact_methods.0.sms.address"),
        (lambda u: u["contact_methods"][1].update(delay_minutes=-1), "contact_methods.1.email.delay_minutes"),
        (
            lambda u: u["contact_methods"][1].update(delay_minutes=1441),
            "contact_methods.1.email.delay_minutes",
        ),
        (
            lambda u: u["contact_methods"][2].update(address="http://hooks.slack.com/x"),
            "contact_methods.2.slack.address",
        ),
        (
            lambda u: u["contact_methods"][2].update(address="https://user:pw@hooks.example.com/x"),
            "contact_methods.2.slack.address",
        ),
        (
            lambda u: u["contact_methods"].append({"type": "webhook", "address": "https://x.example/a b"}),
            "contact_methods.3.webhook.address",
        ),
        (lambda u: u["contact_methods"].append({"type": "pager", "address": "x"}), "contact_methods.3"),
        (lambda u: u.update(contact_methods=[u["contact_methods"][0]] * 11), "contact_methods"),
        (lambda u: u.update(role="admin"), "role"),
    ],
)
def test_bad_users_are_422_naming_the_field(api: Api, mutate: Any, field: str) -> None:
    body = ann()
    mutate(body)
    status, payload = api.call("POST", "/users", body)
    assert status == 422 and payload["field"] == field, payload
    assert api.ok("GET", "/users", query={"include_disabled": "true"})["items"] == []
