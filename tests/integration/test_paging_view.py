"""What a level fire reads to expand its targets: the right people, in four DynamoDB calls."""

from __future__ import annotations

from bench.harness import CallLog, counting
from incident_engine.domain.targets import expand_targets
from incident_engine.wiring import reset_services, services
from tests.support import Api


def test_a_schedule_target_reaches_who_is_on_call_at_fire_time_with_few_reads(api: Api, clock) -> None:
    # Given Ann (SMS now, e-mail in 5 minutes) and Bob rotating daily, a team of both, and Cid
    ann = api.ok(
        "POST",
        "/users",
        {
            "name": "Ann",
            "email": "ann@example.com",
            "contact_methods": [
                {"type": "sms", "address": "+14155550100"},
                {"type": "email", "address": "ann@example.com", "delay_minutes": 5},
            ],
        },
        expect=201,
    )["id"]
    bob = api.ok("POST", "/users", {"name": "Bob", "email": "bob@example.com"}, expect=201)["id"]
    cid = api.ok("POST", "/users", {"name": "Cid", "email": "cid@example.com"}, expect=201)["id"]
    team = api.ok("POST", "/teams", {"name": "Ops", "members": [ann, bob]}, expect=201)["id"]
    rotation = {"type": "daily", "start": "2026-11-22T00:00", "handoff_time": "00:00"}
    sid = api.ok(
        "POST",
        "/schedules",
        {
            "name": "Primary",
            "time_zone": "UTC",
            "layers": [{"name": "daily", "users": [ann, bob], "rotation": rotation}],
        },
        expect=201,
    )["id"]
    targets = [{"type": "schedule", "schedule_id": sid}]
    now = services().clock.now()  # 2026-11-22 07:00 UTC: Ann's day
    config = services().config_service()
    assert [
        (r.user_id, r.channel, r.delay_minutes)
        for r in expand_targets(targets, config.view_for_targets(targets, now), now).recipients
    ] == [
        (ann, "sms", 0),
        (ann, "email", 5),
    ]
    # When an override for Cid is added after the incident opened
    api.ok(
        "POST",
        f"/schedules/{sid}/overrides",
        {"user_id": cid, "start": "2026-11-22T06:00:00Z", "end": "2026-11-22T12:00:00Z"},
        expect=201,
    )
    # Then the level, firing now, reaches Cid, and says why
    level = [*targets, {"type": "team", "team_id": team}, {"type": "user", "user_id": cid}]
    log = CallLog()
    with counting(log):
        reset_services()  # new clients, so that the log sees them
        view = services().config_service().view_for_targets(level, now)
    got = expand_targets(level, view, now)
    assert [(r.user_id, r.channel, r.why.type, r.why.source) for r in got.recipients] == [
        (cid, "email", "schedule", "override"),
        (ann, "sms", "team", None),
        (ann, "email", "team", None),
        (bob, "email", "team", None),
    ]
    # And the reads were one per team and schedule, one override query, one batch of users
    assert log.counts() == {"GetItem": 2, "Query": 1, "BatchGetItem": 1}
