"""One-click links in pages: a person acknowledges from the page itself, without an API token."""

from __future__ import annotations

import re
from typing import Any

import pytest

from local.template import LocalStack
from tests.support import Api, Tap, Timers

A, B = "a@example.com", "b@example.com"


@pytest.fixture
def paged(api: Api, tap: Tap) -> tuple[str, dict[str, Any]]:
    """An incident escalating; level 0 has paged A, whose page is returned."""
    levels = [
        {"delay_minutes": 0, "targets": [{"type": "user", "email": A}]},
        {"delay_minutes": 0.05, "targets": [{"type": "user", "email": B}]},
    ]
    api.ok("POST", "/policies", {"name": "p", "is_default": True, "levels": levels}, expect=201)
    inc = api.ok("POST", "/incidents", {"title": "Checkout <down>", "severity": "P1"}, expect=201)["id"]
    [page] = tap.messages()
    return inc, page


def link_in(page: dict[str, Any], label: str) -> str:
    match = re.search(rf"^{label}: (\S+)$", page["message"], re.M)
    assert match, page["message"]
    return match.group(1)


def token_of(url: str) -> str:
    return url.rsplit("/a/", 1)[1]


def test_a_page_carries_links_that_acknowledge_as_its_recipient_after_confirmation(
    api: Api, paged: tuple[str, dict[str, Any]], timers: Timers, clock
) -> None:
    inc, page = paged
    ack = link_in(page, r"Acknowledge \(stops escalation\)")
    assert ack.startswith("https://abc123.execute-api.us-east-1.amazonaws.com/v1/a/")
    assert page["attributes"]["ack_url"] == ack  # webhooks get them as attributes too
    # When A follows the link (as a phone or a mail scanner would): a confirmation page, no action
    status, html = api.call("GET", f"/a/{token_of(ack)}")
    assert status == 200 and "Acknowledge" in html and "a@example.com" in html
    assert "Checkout &lt;down&gt;" in html  # the title is escaped
    assert api.ok("GET", f"/incidents/{inc}")["status"] == "escalating"
    # and confirms it
    status, html = api.call("POST", f"/a/{token_of(ack)}")
    # Then the incident is acknowledged as A, and level 1 never fires
    assert status == 200 and "acknowledged by a@example.com" in html
    body = api.ok("GET", f"/incidents/{inc}")
    assert body["status"] == "acknowledged" and body["acknowledged_by"] == A
    events = api.ok("GET", f"/incidents/{inc}/timeline")["items"]
    assert events[-1]["type"] == "acknowledged" and events[-1]["actor"] == A
    clock.shift(10)
    timers.deliver()
    assert [r["recipient"] for r in api.ok("GET", f"/incidents/{inc}/notifications")["items"]] == [A]


def test_the_resolve_link_resolves_and_a_replayed_link_does_nothing(
    api: Api, paged: tuple[str, dict[str, Any]]
) -> None:
    inc, page = paged
    resolve = token_of(link_in(page, "Resolve"))
    assert api.call("POST", f"/a/{resolve}")[0] == 200
    assert api.ok("GET", f"/incidents/{inc}")["resolved_by"] == A
    # Replayed after the resolve, and the ack link after it: a clear page, no change
    status, html = api.call("POST", f"/a/{resolve}")
    assert status == 409 and "nothing was changed" in html
    status, html = api.call("GET", f"/a/{resolve}")  # the confirmation page offers nothing either
    assert status == 409 and "<form" not in html
    ack = token_of(link_in(page, r"Acknowledge \(stops escalation\)"))
    assert api.call("POST", f"/a/{ack}")[0] == 409
    assert api.ok("GET", f"/incidents/{inc}")["status"] == "resolved"


def test_a_tampered_link_is_refused_and_changes_nothing(api: Api, paged: tuple[str, dict[str, Any]]) -> None:
    inc, page = paged
    token = token_of(link_in(page, r"Acknowledge \(stops escalation\)"))
    body, mac = token.split(".")
    forged = [
        body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac,  # another payload
        body + "." + mac[:-2] + ("AA" if mac[-2:] != "AA" else "BB"),  # another signature
        "garbage",
        "a.b.c",
        "x" * 3000,
    ]
    for bad in forged:
        for method in ("GET", "POST"):
            status, html = api.call(method, f"/a/{bad}")
            assert status == 400 and "Nothing was changed" in html, (bad, method, status)
    assert api.ok("GET", f"/incidents/{inc}")["status"] == "escalating"


def test_an_expired_link_is_refused(api: Api, paged: tuple[str, dict[str, Any]], clock) -> None:
    inc, page = paged
    token = token_of(link_in(page, r"Acknowledge \(stops escalation\)"))
    clock.shift(24 * 3600 + 1)
    status, html = api.call("POST", f"/a/{token}")
    assert status == 410 and "expired" in html
    assert api.ok("GET", f"/incidents/{inc}")["status"] != "acknowledged"


def test_links_need_no_token_and_reach_nothing_else(aws: LocalStack) -> None:
    from local.runtime import authorize

    spec = aws.function("AuthorizerFunction")
    arn = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1"
    route = next(r for r in aws.function("ApiFunction").routes if r.path == "/a/{token}")
    assert route.public
    assert authorize(spec, {}, f"{arn}/GET/incidents")[0] == 401
