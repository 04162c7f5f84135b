"""Expanding a level's targets to recipients at the instant it fires."""

from __future__ import annotations

from datetime import UTC, datetime, time

from incident_engine.domain.people import ContactMethod, Team, User
from incident_engine.domain.schedules import Layer, Override, Restriction, Rotation, Schedule
from incident_engine.domain.targets import ConfigView, Recipient, Skipped, Why, expand_targets, referenced_ids

AT = datetime(2026, 6, 3, 12, tzinfo=UTC)  # a Wednesday, noon UTC

ANN = User(
    "usr_ann",
    "Ann",
    "ann@example.com",
    "UTC",
    (ContactMethod("sms", "+14155550100"), ContactMethod("email", "ann@example.com", 5)),
)
BOB = User("usr_bob", "Bob", "bob@example.com", "UTC")  # no contact methods: the account e-mail
CID = User("usr_cid", "Cid", "cid@example.com", "UTC", enabled=False)

DAY_AND_NIGHT = Schedule(
    "sch_1",
    "Primary",
    "UTC",
    (
        Layer("nights", ("usr_bob",), Rotation("daily", datetime(2026, 1, 1), handoff_time=time(0))),
        Layer(
            "days",
            ("usr_ann",),
            Rotation("daily", datetime(2026, 1, 1), handoff_time=time(0)),
            (Restriction(frozenset(range(7)), time(8), time(20)),),
        ),
    ),
)


def view(**changes: object) -> ConfigView:
    base: dict[str, object] = {
        "users": {u.id: u for u in (ANN, BOB, CID)},
        "teams": {"team_ops": Team("team_ops", "Ops", ("usr_ann", "usr_cid", "usr_bob"))},
        "schedules": {"sch_1": DAY_AND_NIGHT},
        "webhooks": {"wh_slack": "slack", "wh_generic": "generic"},
    }
    return ConfigView(**{**base, **changes})  # type: ignore[arg-type]


def addresses(
    targets: list[dict[str, str]], at: datetime = AT, **changes: object
) -> list[tuple[str, str, float]]:
    return [
        (r.channel, r.address, r.delay_minutes)
        for r in expand_targets(targets, view(**changes), at).recipients
    ]


def test_a_user_is_reached_on_every_contact_method_with_its_delay() -> None:
    got = expand_targets([{"type": "user", "user_id": "usr_ann"}], view(), AT)
    assert got.recipients == (
        Recipient("usr_ann", "sms", "+14155550100", 0, Why(0, "user", "usr_ann")),
        Recipient("usr_ann", "email", "ann@example.com", 5, Why(0, "user", "usr_ann")),
    )
    assert not got.nobody and got.skipped == ()


def test_a_user_without_contact_methods_gets_the_account_email_and_a_bare_email_is_an_address() -> None:
    assert addresses([{"type": "user", "user_id": "usr_bob"}]) == [("email", "bob@example.com", 0)]
    got = expand_targets([{"type": "user", "email": "lead@example.com"}], view(), AT)
    assert got.recipients == (
        Recipient(None, "email", "lead@example.com", 0, Why(0, "user", "lead@example.com")),
    )


def test_a_team_reaches_its_enabled_members_and_reports_the_disabled_one() -> None:
    got = expand_targets([{"type": "team", "team_id": "team_ops"}], view(), AT)
    assert [(r.user_id, r.channel) for r in got.recipients] == [
        ("usr_ann", "sms"),
        ("usr_ann", "email"),
        ("usr_bob", "email"),
    ]
    assert got.recipients[2].why == Why(0, "team", "team_ops", user_id="usr_bob")
    assert got.skipped == (Skipped(0, "team", "team_ops", "disabled", user_id="usr_cid"),)


def test_a_schedule_reaches_whoever_is_on_call_when_the_level_fires() -> None:
    target = [{"type": "schedule", "schedule_id": "sch_1"}]
    noon = expand_targets(target, view(), AT)
    assert {r.user_id for r in noon.recipients} == {"usr_ann"}
    assert noon.recipients[0].why == Why(0, "schedule", "sch_1", "usr_ann", "days")
    night = expand_targets(target, view(), datetime(2026, 6, 3, 22, tzinfo=UTC))
    assert [(r.user_id, r.why.source) for r in night.recipients] == [("usr_bob", "nights")]


def test_an_override_added_later_wins_at_fire_time() -> None:
    override = Override(
        "ovr_1", "usr_bob", datetime(2026, 6, 3, 11, tzinfo=UTC), datetime(2026, 6, 3, 13, tzinfo=UTC)
    )
    got = expand_targets(
        [{"type": "schedule", "schedule_id": "sch_1"}], view(overrides={"sch_1": [override]}), AT
    )
    assert [(r.user_id, r.why.source, r.why.override_id) for r in got.recipients] == [
        ("usr_bob", "override", "ovr_1")
    ]


def test_nobody_is_an_explicit_result_with_the_reasons() -> None:
    empty = Schedule("sch_2", "Empty", "UTC", (DAY_AND_NIGHT.layers[1],))  # days only
    got = expand_targets(
        [
            {"type": "schedule", "schedule_id": "sch_2"},
            {"type": "user", "user_id": "usr_cid"},
            {"type": "user", "user_id": "usr_gone"},
            {"type": "team", "team_id": "team_none"},
            {"type": "team", "team_id": "team_empty"},
            {"type": "webhook", "webhook_id": "wh_unknown"},
            {"type": "pager"},
        ],
        view(
            schedules={"sch_2": empty},
            teams={"team_empty": Team("team_empty", "Empty", ())},
        ),
        datetime(2026, 6, 3, 22, tzinfo=UTC),
    )
    assert got.nobody and got.recipients == ()
    assert [(s.type, s.id, s.reason) for s in got.skipped] == [
        ("schedule", "sch_2", "nobody_on_call"),
        ("user", "usr_cid", "disabled"),
        ("user", "usr_gone", "unknown"),
        ("team", "team_none", "unknown"),
        ("team", "team_empty", "no_members"),
        ("webhook", "wh_unknown", "unknown"),
        ("pager", "", "invalid"),
    ]


def test_disabled_schedule_reaches_nobody() -> None:
    disabled = Schedule("sch_1", "Primary", "UTC", DAY_AND_NIGHT.layers, enabled=False)
    got = expand_targets(
        [{"type": "schedule", "schedule_id": "sch_1"}], view(schedules={"sch_1": disabled}), AT
    )
    assert got.nobody and got.skipped == (Skipped(0, "schedule", "sch_1", "disabled"),)


def test_duplicates_are_paged_once_at_the_shortest_delay_with_the_first_reason() -> None:
    got = expand_targets(
        [
            {"type": "team", "team_id": "team_ops"},
            {"type": "user", "email": "ANN@example.com"},  # Ann's e-mail, delayed 5 by her rule
            {"type": "schedule", "schedule_id": "sch_1"},  # Ann again, on call
        ],
        view(),
        AT,
    )
    assert [(r.channel, r.address, r.delay_minutes, r.why.type) for r in got.recipients] == [
        ("sms", "+14155550100", 0, "team"),
        ("email", "ann@example.com", 0, "team"),  # the bare address asked for it at once
        ("email", "bob@example.com", 0, "team"),
    ]


def test_webhooks_by_kind_and_inline_urls_of_old_snapshots() -> None:
    assert addresses(
        [
            {"type": "webhook", "webhook_id": "wh_slack"},
            {"type": "webhook", "webhook_id": "wh_generic"},
            {"type": "webhook", "url": "https://hooks.example.com/incident"},
        ]
    ) == [
        ("webhook", "wh_slack", 0),
        ("webhook", "wh_generic", 0),
        ("webhook", "https://hooks.example.com/incident", 0),
    ]


def test_referenced_ids_tells_what_to_read() -> None:
    assert referenced_ids(
        [
            {"type": "user", "user_id": "usr_ann"},
            {"type": "user", "email": "x@example.com"},
            {"type": "team", "team_id": "team_ops"},
            {"type": "schedule", "schedule_id": "sch_1"},
            {"type": "webhook", "webhook_id": "wh_slack"},
        ]
    ) == {"user": {"usr_ann"}, "team": {"team_ops"}, "schedule": {"sch_1"}, "webhook": {"wh_slack"}}
