"""Every byte from outside is hostile: what an outside probe sent, and the answers it must get."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import Api, Tap

LEVEL = {"delay_minutes": 0, "targets": [{"type": "user", "email": "oncall@example.com"}]}


def policy_with(**overrides: Any) -> dict[str, Any]:
    return {"name": "p", "levels": [LEVEL], **overrides}


def deep(n: int) -> str:
    return "[" * n + "]" * n


@pytest.mark.parametrize("path", ["/incidents", "/policies", "/incidents/INC-20261122-001/notes"])
def test_json_nested_a_thousand_deep_is_a_422_not_a_500(api: Api, path: str) -> None:
    api.ok("POST", "/incidents", {"title": "x", "severity": "P3"}, expect=201)
    status, body = api.call("POST", path, raw_body='{"title": ' + deep(1_000) + "}")
    assert status == 422 and body["field"] == "body" and "nested" in body["message"]


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/incidents", '[{"title": "first", "severity": "P1"}, {"title": "second", "severity": "P1"}]'),
        ("/incidents/INC-20261122-001/acknowledge", "[null, null]"),
        ("/incidents/INC-20261122-001/acknowledge", '"by"'),
        ("/policies", "42"),
    ],
)
def test_a_body_that_is_not_an_object_is_refused(api: Api, path: str, raw: str) -> None:
    api.ok("POST", "/incidents", {"title": "x", "severity": "P3"}, expect=201)
    status, body = api.call("POST", path, raw_body=raw)
    assert (status, body["field"]) == (422, "body")
    assert api.ok("GET", "/incidents/INC-20261122-001")["status"] == "open"  # nothing acted
    assert len(api.ok("GET", "/incidents")["items"]) == 1


def test_a_body_over_256_kb_is_a_413(api: Api) -> None:
    status, body = api.call("POST", "/incidents", raw_body='{"title": "' + "x" * 300_000 + '"}')
    assert status == 413 and body["error"] == "payload_too_large"


@pytest.mark.parametrize(
    "title",
    [
        "line one\nAcknowledge to stop escalation: POST https://evil.example/ack",
        "bell\u0007",
        "nul\u0000byte",
        "esc\u001b[31mred",
        "rtl \u202eevil",
        "zero\u200bwidth",
    ],
)
def test_titles_with_control_or_invisible_characters_are_refused(api: Api, title: str) -> None:
    status, body = api.call("POST", "/incidents", {"title": title, "severity": "P1"})
    assert status == 422 and body["field"] == "title"


def test_a_multiline_description_cannot_pose_as_a_line_of_the_page(api: Api, tap: Tap) -> None:
    # Given a description that forges the page's own "how to acknowledge" line
    api.ok("POST", "/policies", policy_with(is_default=True), expect=201)
    forged = "Checkout is down.\nAcknowledge to stop escalation: POST https://evil.example/ack"
    api.ok("POST", "/incidents", {"title": "x", "severity": "P1", "description": forged}, expect=201)
    # Then the page shows it quoted under IMPACT, and only our own line starts with the instruction
    [page] = tap.messages()
    lines = page["message"].splitlines()
    assert "  | Acknowledge to stop escalation: POST https://evil.example/ack" in lines
    assert [ln for ln in lines if ln.startswith("Acknowledge to stop escalation")] == [
        "Acknowledge to stop escalation: POST https://abc123.execute-api.us-east-1.amazonaws.com/v1/incidents/"
        "INC-20261122-001/acknowledge"
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (policy_with(levels=[{**LEVEL, "delay_minutes": "5"}]), "levels.0.delay_minutes"),
        (policy_with(levels=[{**LEVEL, "delay_minutes": True}]), "levels.0.delay_minutes"),
        (policy_with(levels=[{**LEVEL, "delay_minutes": 1e-300}]), "levels.0"),
        (policy_with(is_default="yes"), "is_default"),
        (policy_with(is_default=1), "is_default"),
        (policy_with(repeat={"max_repeats": "2", "interval_minutes": 5}), "repeat.max_repeats"),
        (policy_with(name="a\u0000b"), "name"),
        (policy_with(name="admin\u202e"), "name"),
    ],
)
def test_policies_take_strict_types_and_sane_values(api: Api, body: dict[str, Any], field: str) -> None:
    status, answer = api.call("POST", "/policies", body)
    assert status == 422, answer
    assert answer["field"].startswith(field), answer


def test_snooze_minutes_must_be_a_json_integer(api: Api) -> None:
    inc = api.ok("POST", "/incidents", {"title": "x", "severity": "P3"}, expect=201)["id"]
    for minutes in ("5", 5.5, True):
        status, body = api.call("POST", f"/incidents/{inc}/snooze", {"minutes": minutes})
        assert status == 422 and body["field"] == "minutes", (minutes, body)


@pytest.mark.parametrize("email", ["a\u0000b@x.com", "<script>@x.com", "a@b", "a b@x.com", "x@-bad-.com"])
def test_odd_email_targets_are_refused(api: Api, email: str) -> None:
    body = policy_with(levels=[{"delay_minutes": 0, "targets": [{"type": "user", "email": email}]}])
    status, answer = api.call("POST", "/policies", body)
    assert status == 422 and answer["field"].startswith("levels.0.targets.0"), answer


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:22/",
        "https://127.0.0.1:8443/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://10.0.0.5/hook",
        "https://localhost/hook",
        "https://user:secret@hooks.example.com/x",
        "http://hooks.example.com/plain",
        "ftp://hooks.example.com/x",
    ],
)
def test_webhook_urls_that_reach_inside_or_carry_credentials_are_refused(api: Api, url: str) -> None:
    status, answer = api.call("POST", "/webhooks", {"name": "w", "url": url})
    assert status == 422 and answer["field"] == "url", (url, answer)
    assert "user:secret" not in str(answer)  # the credentials are never echoed back


def test_private_targets_are_allowed_where_the_deployment_says_so(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from incident_engine.settings import reset_settings

    monkeypatch.setenv("ALLOW_PRIVATE_TARGETS", "true")
    reset_settings()
    try:
        api.ok("POST", "/webhooks", {"name": "local", "url": "http://127.0.0.1:9/h"}, expect=201)
        # metadata addresses never, whatever the setting
        assert api.call("POST", "/webhooks", {"name": "m", "url": "http://169.254.169.254/"})[0] == 422
    finally:
        monkeypatch.delenv("ALLOW_PRIVATE_TARGETS")
        reset_settings()
