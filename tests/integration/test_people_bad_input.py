"""Every route issue 8 added answers bad input with a 4xx that names the field, never a 500.

The users, schedules and overrides bodies have tables of their own (test_people_api.py,
test_schedules_api.py); this one covers what those leave out: teams, webhook names and kinds,
replacements (PUT), query parameters, and the one-click links.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import Api

HOOK = "https://hooks.example.com/incident"


@pytest.fixture
def ids(api: Api) -> dict[str, str]:
    user = api.ok("POST", "/users", {"name": "Ann", "email": "ann@example.com"}, expect=201)
    team = api.ok("POST", "/teams", {"name": "payments", "members": [user["id"]]}, expect=201)
    layer = {"name": "l", "users": [user["id"]], "rotation": {"type": "daily", "start": "2026-11-01T09:00"}}
    schedule = api.ok("POST", "/schedules", {"name": "s", "time_zone": "UTC", "layers": [layer]}, expect=201)
    hook = api.ok("POST", "/webhooks", {"name": "w", "url": HOOK}, expect=201)
    return {"user": user["id"], "team": team["id"], "schedule": schedule["id"], "webhook": hook["id"]}


BODIES: list[tuple[str, str, Any, str]] = [
    # (method, path with {user}/{team}/{schedule}/{webhook}, body, the field named)
    ("POST", "/teams", {"members": []}, "name"),
    ("POST", "/teams", {"name": "", "members": []}, "name"),
    ("POST", "/teams", {"name": "t\u0000", "members": []}, "name"),
    ("POST", "/teams", {"name": "t", "members": "usr_x"}, "members"),
    ("POST", "/teams", {"name": "t", "members": ["usr_nobody"]}, "members.0"),
    ("POST", "/teams", {"name": "t", "members": [], "owner": "me"}, "owner"),
    ("PUT", "/teams/{team}", {"name": "t", "members": [], "version": "one"}, "version"),
    ("PUT", "/users/{user}", {"name": "Ann", "email": "not-an-address", "version": 1}, "email"),
    ("PUT", "/users/{user}", {"name": "Ann", "email": "ann@example.com", "version": -1}, "version"),
    ("POST", "/webhooks", {"url": HOOK}, "name"),
    ("POST", "/webhooks", {"name": "w"}, "url"),
    ("POST", "/webhooks", {"name": "w", "url": HOOK, "kind": "teams"}, "kind"),
    ("POST", "/webhooks", {"name": "w", "url": HOOK, "secret": "mine"}, "secret"),
    ("PUT", "/webhooks/{webhook}", {"name": "w", "url": "http://hooks.example.com/x"}, "url"),
    ("POST", "/schedules/{schedule}/overrides", {"start": "2026-11-23T12:00:00Z"}, "user_id"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), BODIES)
def test_bad_bodies_are_422_naming_the_field(
    api: Api, ids: dict[str, str], method: str, path: str, body: Any, field: str
) -> None:
    status, answer = api.call(method, path.format(**ids), body)
    assert status == 422 and answer["field"] == field, answer


QUERIES: list[tuple[str, dict[str, str], str]] = [
    ("/users", {"limit": "0"}, "limit"),
    ("/users", {"limit": "many"}, "limit"),
    ("/teams", {"include_disabled": "perhaps"}, "include_disabled"),
    ("/teams", {"cursor": "not-a-cursor"}, "cursor"),
    ("/schedules", {"limit": "101"}, "limit"),
    ("/webhooks", {"include_disabled": "perhaps"}, "include_disabled"),
    ("/schedules/{schedule}/oncall", {"at": "soon"}, "at"),
    ("/schedules/{schedule}/oncall", {"at": "2026-11-23T09:00"}, "at"),  # no offset
    ("/schedules/{schedule}/oncall", {"at": "1066-10-14T09:00:00Z"}, "at"),
    ("/schedules/{schedule}/shifts", {"from": "yesterday"}, "from"),
    ("/schedules/{schedule}/shifts", {"from": "2026-11-23T00:00:00Z", "to": "2027-06-01T00:00:00Z"}, "to"),
    ("/schedules/{schedule}/shifts", {"from": "2026-11-23T00:00:00Z", "to": "2026-11-22T00:00:00Z"}, "to"),
    ("/schedules/{schedule}/overrides", {"to": "later"}, "to"),
    ("/schedules/{schedule}/overrides", {"limit": "0"}, "limit"),
]


@pytest.mark.parametrize(("path", "query", "field"), QUERIES)
def test_bad_query_parameters_are_422_naming_the_parameter(
    api: Api, ids: dict[str, str], path: str, query: dict[str, str], field: str
) -> None:
    status, answer = api.call("GET", path.format(**ids), query=query)
    # (a parameter the router validates is named "query.<name>")
    assert status == 422 and answer["field"] in (field, f"query.{field}"), answer


@pytest.mark.parametrize("token", ["", "%00", "a" * 5000, "x.y", "..", "%2e%2e%2fincidents"])
def test_a_link_that_is_not_ours_is_a_400_page_that_changed_nothing(api: Api, token: str) -> None:
    for method in ("GET", "POST"):
        status, html = api.call(method, f"/a/{token or '-'}")
        assert status == 400 and "Nothing was changed" in html, (method, token, status, html)
