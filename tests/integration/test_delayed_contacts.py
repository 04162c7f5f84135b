"""A contact method's delay_minutes: "SMS at once, e-mail 5 minutes later, unless someone
acknowledged first". The delayed page travels the timer protocol of escalation levels (a delayed
SQS message, hops, the reconciler re-arming it from the DueIndex), so it is sent exactly once,
or never when an acknowledge, snooze, resolve or cancel came before its time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import boto3
import pytest

from incident_engine.adapters.notifications import SnsNotificationPublisher
from incident_engine.domain.timefmt import parse_iso
from local.template import LocalStack
from tests.conftest import START
from tests.integration.test_timer_faults import run_after_first_read
from tests.support import Api, Tap, Timers, reconcile

SMS, MAIL = "+15550001234", "ann@example.com"
GRACE = 20  # RECONCILE_GRACE_SECONDS default


def user(api: Api, email_delay: float = 5) -> str:
    body = {
        "name": "Ann",
        "email": MAIL,
        "contact_methods": [
            {"type": "sms", "address": SMS},
            {"type": "email", "address": MAIL, "delay_minutes": email_delay},
        ],
    }
    return str(api.ok("POST", "/users", body, expect=201)["id"])


def open_incident(api: Api, user_id: str, **policy: object) -> str:
    levels = [
        {"delay_minutes": 0, "targets": [{"type": "user", "user_id": user_id}]},
        {"delay_minutes": 60, "targets": [{"type": "user", "email": "lead@example.com"}]},
    ]
    body = {"name": "p", "is_default": True, "levels": levels, **policy}
    api.ok("POST", "/policies", body, expect=201)
    return str(api.ok("POST", "/incidents", {"title": "db down", "severity": "P1"}, expect=201)["id"])


@pytest.fixture
def incident(api: Api, tap: Tap) -> Iterator[str]:
    """Ann's SMS paged when level 0 fired at START; her e-mail waits until START + 5 min."""
    yield open_incident(api, user(api))


def pages(tap: Tap) -> Counter[tuple[str, str]]:
    return Counter(
        (m["attributes"]["channel"], m["attributes"]["recipient"])
        for m in tap.messages()
        if m["attributes"]["kind"] == "page"
    )


def mail_row(api: Api, incident: str) -> dict[str, object]:
    [row] = [
        r for r in api.ok("GET", f"/incidents/{incident}/notifications")["items"] if r["recipient"] == MAIL
    ]
    return dict(row)


def events(api: Api, incident: str) -> list[str]:
    return [e["type"] for e in api.ok("GET", f"/incidents/{incident}/timeline")["items"]]


def test_without_an_ack_the_delayed_contact_is_paged_once_at_its_time(
    aws: LocalStack, api: Api, incident: str, timers: Timers, tap: Tap, clock
) -> None:
    # Given the level fired: the SMS went out, the e-mail is scheduled for 5 minutes later
    assert pages(tap) == Counter({("sms", SMS): 1})
    row = mail_row(api, incident)
    assert row["status"] == "scheduled" and row["level"] == 0
    assert parse_iso(str(row["due_at"])) == START + timedelta(minutes=5)
    assert timers.depth()["delayed"] == 2  # level 1's timer and the e-mail's
    # When 4 minutes pass, nothing more; at 5 minutes the e-mail's timer comes due
    clock.shift(240)
    assert timers.deliver() == 0
    clock.shift(60)
    assert timers.deliver() == 1
    # Then the e-mail was paged once, and its row says sent at its due time
    assert pages(tap) == Counter({("sms", SMS): 1, ("email", MAIL): 1})
    row = mail_row(api, incident)
    assert row["status"] == "sent" and parse_iso(str(row["sent_at"])) == START + timedelta(minutes=5)
    assert "delayed_page_sent" in events(api, incident)
    # And the reconciler finds nothing to repair; the resolution notice reaches both methods
    clock.shift(60)
    assert reconcile(aws) == {"timers_rearmed": 0, "notifications_republished": 0}
    api.ok("POST", f"/incidents/{incident}/resolve", {})
    closures = Counter(
        (m["attributes"]["channel"], m["attributes"]["recipient"])
        for m in tap.messages()
        if m["attributes"]["kind"] == "resolution"
    )
    assert closures == Counter({("sms", SMS): 1, ("email", MAIL): 1})


@pytest.mark.parametrize("action", ["acknowledge", "snooze", "resolve", "cancel"])
def test_an_ack_snooze_resolve_or_cancel_before_its_time_means_it_is_never_paged(
    aws: LocalStack, api: Api, incident: str, timers: Timers, tap: Tap, clock, action: str
) -> None:
    # Given two minutes in, someone acts on the incident
    clock.shift(120)
    api.ok("POST", f"/incidents/{incident}/{action}", {"minutes": 30} if action == "snooze" else {})
    # Then the e-mail's row is superseded at once, in the same transaction
    assert mail_row(api, incident)["status"] == "superseded"
    assert "delayed_pages_superseded" in events(api, incident)
    # And when its timer comes due (and the reconciler ticks), it is not paged
    clock.shift(180)
    timers.deliver()
    clock.shift(GRACE + 1)
    assert reconcile(aws)["timers_rearmed"] == 0
    timers.deliver()
    assert pages(tap) == Counter({("sms", SMS): 1})
    assert mail_row(api, incident)["status"] == "superseded"
    if action in ("resolve", "cancel"):
        # the person never paged by e-mail gets no closure notice there either
        closed = [m["attributes"] for m in tap.messages() if m["attributes"]["kind"] != "page"]
        assert [(a["channel"], a["recipient"]) for a in closed] == [("sms", SMS)]


def test_a_re_escalation_after_an_ack_does_not_revive_a_retired_delayed_page(
    api: Api, incident: str, timers: Timers, tap: Tap, clock
) -> None:
    # Given an acknowledge retired the e-mail, then someone escalates again (level 1 fires now)
    clock.shift(60)
    api.ok("POST", f"/incidents/{incident}/acknowledge", {})
    api.ok("POST", f"/incidents/{incident}/escalate", {})
    # When the retired page's time comes
    clock.shift(240)
    timers.deliver()
    # Then it is still not sent: only the SMS and the lead's page went out
    assert pages(tap) == Counter({("sms", SMS): 1, ("email", "lead@example.com"): 1})
    assert mail_row(api, incident)["status"] == "superseded"


def test_duplicate_and_late_deliveries_of_its_timer_page_once(
    aws: LocalStack, api: Api, incident: str, timers: Timers, tap: Tap, clock
) -> None:
    sqs = boto3.client("sqs", region_name=aws.region)
    # Given the e-mail's timer is delivered three times when due (SQS is at-least-once)
    clock.shift(300)
    raw = [m for m in timers.receive_raw() if '"page"' in m["Body"]]
    assert len(raw) == 1
    for _ in range(2):
        sqs.send_message(QueueUrl=timers.url, MessageBody=raw[0]["Body"])
    clock.shift(181)  # the received copy becomes visible again too
    timers.deliver()
    # Then it was paged once
    assert pages(tap)[("email", MAIL)] == 1
    # And a copy arriving an hour late does nothing either
    clock.shift(3600)
    sqs.send_message(QueueUrl=timers.url, MessageBody=raw[0]["Body"])
    timers.deliver()
    assert pages(tap)[("email", MAIL)] == 1
    assert mail_row(api, incident)["status"] == "sent"


def test_a_lost_timer_is_rearmed_by_the_reconciler_and_pages_once(
    aws: LocalStack, api: Api, incident: str, timers: Timers, tap: Tap, clock
) -> None:
    # Given every timer message is lost (level 1's and the e-mail's)
    boto3.client("sqs", region_name=aws.region).purge_queue(QueueUrl=timers.url)
    clock.shift(300)
    assert timers.deliver() == 0
    assert mail_row(api, incident)["status"] == "scheduled"
    # When the reconciler ticks past the grace period
    clock.shift(GRACE - 5)
    assert reconcile(aws)["timers_rearmed"] == 0
    clock.shift(10)
    assert reconcile(aws)["timers_rearmed"] == 1  # just the e-mail: level 1 is not due for an hour
    timers.deliver()
    # Then the e-mail is paged once, within about a minute of its time, and nothing is re-armed again
    assert pages(tap) == Counter({("sms", SMS): 1, ("email", MAIL): 1})
    row = mail_row(api, incident)
    assert row["status"] == "sent"
    assert parse_iso(str(row["sent_at"])) - parse_iso(str(row["due_at"])) <= timedelta(seconds=60 + GRACE)
    clock.shift(60)
    assert reconcile(aws)["timers_rearmed"] == 0


def test_an_ack_racing_the_delayed_page_wins_and_it_is_never_sent(
    api: Api, incident: str, timers: Timers, tap: Tap, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the worker has read the incident to send the e-mail when an acknowledge commits
    clock.shift(300)
    with run_after_first_read(monkeypatch, lambda: api.ok("POST", f"/incidents/{incident}/acknowledge", {})):
        timers.deliver()
    # Then its conditional transaction loses, the retry finds the row retired, and it is not sent
    assert pages(tap) == Counter({("sms", SMS): 1})
    assert mail_row(api, incident)["status"] == "superseded"


def test_a_delay_longer_than_sqs_allows_hops_and_still_pages_on_time(
    api: Api, timers: Timers, tap: Tap, clock
) -> None:
    incident = open_incident(api, user(api, email_delay=40))
    for _ in range(2):  # SQS delays at most 15 minutes: the e-mail's timer hops twice
        clock.shift(900)
        assert timers.deliver() == 2  # the e-mail's and level 1's (due in an hour) each hop
        assert pages(tap)[("email", MAIL)] == 0
        assert mail_row(api, incident)["status"] == "scheduled"
    clock.shift(600)
    timers.deliver()
    assert pages(tap)[("email", MAIL)] == 1
    assert parse_iso(str(mail_row(api, incident)["sent_at"])) == START + timedelta(minutes=40)


def test_a_level_firing_again_never_doubles_a_scheduled_page(
    api: Api, timers: Timers, tap: Tap, clock
) -> None:
    # Given a one-level policy repeating every minute, twice, and Ann's e-mail 5 minutes late
    ann = user(api)
    levels = [{"delay_minutes": 0, "targets": [{"type": "user", "user_id": ann}]}]
    body = {
        "name": "p",
        "is_default": True,
        "levels": levels,
        "repeat": {"max_repeats": 2, "interval_minutes": 1},
    }
    api.ok("POST", "/policies", body, expect=201)
    incident = api.ok("POST", "/incidents", {"title": "x", "severity": "P1"}, expect=201)["id"]
    # When the level fires three times in three minutes
    for _ in range(2):
        clock.shift(60)
        timers.deliver()
    assert pages(tap) == Counter({("sms", SMS): 3})
    # Then one e-mail is scheduled, not three, and it is sent once at 5 minutes
    rows = [
        r for r in api.ok("GET", f"/incidents/{incident}/notifications")["items"] if r["recipient"] == MAIL
    ]
    assert [r["status"] for r in rows] == ["scheduled"]
    clock.shift(180)
    timers.deliver()
    assert pages(tap) == Counter({("sms", SMS): 3, ("email", MAIL): 1})
    fired = [
        e for e in api.ok("GET", f"/incidents/{incident}/timeline")["items"] if e["type"] == "level_fired"
    ]
    assert [d["outcome"] for e in fired for d in e["data"]["delayed"]] == [
        "scheduled",
        "already_scheduled",
        "already_scheduled",
    ]


def test_a_crash_before_the_delayed_page_is_published_is_republished_once(
    aws: LocalStack, api: Api, incident: str, timers: Timers, tap: Tap, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given SNS is unreachable when the e-mail's time comes (the release itself commits)
    def down(self: SnsNotificationPublisher, notifications: object) -> object:
        raise ConnectionError("SNS unreachable")

    clock.shift(300)
    with monkeypatch.context() as patch:
        patch.setattr(SnsNotificationPublisher, "publish_all", down)
        timers.deliver()
    assert mail_row(api, incident)["status"] == "pending"
    # When the reconciler ticks, it publishes it, once
    clock.shift(GRACE + 1)
    assert reconcile(aws)["notifications_republished"] == 1
    assert pages(tap)[("email", MAIL)] == 1
    assert mail_row(api, incident)["status"] == "sent"
