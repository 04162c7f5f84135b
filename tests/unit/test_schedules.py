"""Schedule evaluation: rotations, DST, restrictions, layers, overrides, and a property test
against a brute-force reference that walks every handoff from the rotation's start."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incident_engine.domain.schedules import (
    Layer,
    OnCall,
    Override,
    Restriction,
    Rotation,
    Schedule,
    ScheduleEvaluator,
    on_call_at,
    shifts_between,
)

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


def local(zone: ZoneInfo, *parts: int, fold: int = 0) -> datetime:
    # In UTC: arithmetic between two datetimes of one zone ignores fold and DST.
    return datetime(*parts, tzinfo=zone, fold=fold).astimezone(UTC)  # type: ignore[misc]


def schedule(zone: str, *layers: Layer) -> Schedule:
    return Schedule("sch_1", "Primary", zone, layers)


def daily(name: str, users: tuple[str, ...], start: datetime, at: time, *windows: Restriction) -> Layer:
    return Layer(name, users, Rotation("daily", start, handoff_time=at), windows)


def who(s: Schedule, at: datetime, overrides: tuple[Override, ...] = ()) -> list[tuple[str, str]]:
    return [(c.user_id, c.source) for c in on_call_at(s, at, overrides)]


def durations(s: Schedule, start: datetime, end: datetime) -> list[tuple[str, timedelta]]:
    return [(sh.user_id, sh.end - sh.start) for sh in shifts_between(s, start, end)]


# --- DST ---------------------------------------------------------------------------------------


def test_daily_handoff_stays_at_nine_across_new_york_spring_forward() -> None:
    # Given a daily 09:00 rotation in New York; clocks jump 02:00 -> 03:00 on 2026-03-08
    s = schedule("America/New_York", daily("primary", ("a", "b", "c"), datetime(2026, 3, 6, 9), time(9)))
    # Then the handoff is at 09:00 local on both sides, and the shift over the jump lasts 23 hours
    assert who(s, local(NY, 2026, 3, 7, 8, 59)) == [("a", "primary")]
    assert who(s, local(NY, 2026, 3, 7, 9, 0)) == [("b", "primary")]
    assert who(s, local(NY, 2026, 3, 8, 8, 59)) == [("b", "primary")]
    assert who(s, local(NY, 2026, 3, 8, 9, 0)) == [("c", "primary")]
    assert durations(s, local(NY, 2026, 3, 7, 9), local(NY, 2026, 3, 9, 9)) == [
        ("b", timedelta(hours=23)),
        ("c", timedelta(hours=24)),
    ]


def test_daily_handoff_stays_at_nine_across_new_york_fall_back() -> None:
    # Given the same rotation; clocks fall 02:00 -> 01:00 on 2026-11-01
    s = schedule("America/New_York", daily("primary", ("a", "b"), datetime(2026, 10, 30, 9), time(9)))
    assert durations(s, local(NY, 2026, 10, 31, 9), local(NY, 2026, 11, 2, 9)) == [
        ("b", timedelta(hours=25)),
        ("a", timedelta(hours=24)),
    ]
    assert who(s, local(NY, 2026, 11, 1, 8, 59)) == [("b", "primary")]
    assert who(s, local(NY, 2026, 11, 1, 9, 0)) == [("a", "primary")]


def test_weekly_handoff_across_berlin_spring_forward_and_fall_back() -> None:
    # Given a weekly Sunday 10:00 rotation in Berlin (clocks change on 2026-03-29 and 2026-10-25)
    layer = Layer(
        "weekly",
        ("a", "b"),
        Rotation("weekly", datetime(2026, 3, 1, 10), handoff_time=time(10), handoff_day=SUN),
    )
    s = schedule("Europe/Berlin", layer)
    # Then the week holding the spring change is an hour short, the one holding the autumn change an hour long
    spring = shifts_between(s, local(BERLIN, 2026, 3, 22, 10), local(BERLIN, 2026, 3, 29, 10))
    assert [(x.user_id, x.end - x.start) for x in spring] == [("b", timedelta(days=7, hours=-1))]
    autumn = shifts_between(s, local(BERLIN, 2026, 10, 18, 10), local(BERLIN, 2026, 10, 25, 10))
    assert [(x.user_id, x.end - x.start) for x in autumn] == [("b", timedelta(days=7, hours=1))]  # week 33
    assert who(s, local(BERLIN, 2026, 3, 29, 9, 59)) == [("b", "weekly")]
    assert who(s, local(BERLIN, 2026, 3, 29, 10, 0)) == [("a", "weekly")]


def test_custom_twelve_hour_shifts_keep_wall_clock_handoffs_in_berlin() -> None:
    s = schedule(
        "Europe/Berlin",
        Layer("halves", ("day", "night"), Rotation("custom", datetime(2026, 3, 27, 9), shift_hours=12)),
    )
    got = shifts_between(s, local(BERLIN, 2026, 3, 28, 21), local(BERLIN, 2026, 3, 29, 21))
    assert [(x.user_id, x.start.astimezone(BERLIN).hour, x.end - x.start) for x in got] == [
        ("night", 21, timedelta(hours=11)),  # 21:00 -> 09:00 across the jump
        ("day", 9, timedelta(hours=12)),
    ]


def test_handoff_inside_the_spring_gap_happens_when_the_clocks_jump() -> None:
    # Given a 02:30 handoff, a time that does not exist on 2026-03-08 in New York
    s = schedule("America/New_York", daily("p", ("a", "b"), datetime(2026, 3, 1, 2, 30), time(2, 30)))
    (last,) = [x for x in shifts_between(s, local(NY, 2026, 3, 7), local(NY, 2026, 3, 9)) if x.user_id == "a"]
    # Then it happens at 03:00 EDT, the first moment the wall clock reads 02:30 or later
    assert last.end == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    assert who(s, datetime(2026, 3, 8, 6, 59, 59, tzinfo=UTC)) == [("a", "p")]
    assert who(s, datetime(2026, 3, 8, 7, 0, tzinfo=UTC)) == [("b", "p")]


def test_handoff_in_the_repeated_hour_happens_once_at_its_first_occurrence() -> None:
    # Given a 01:30 handoff; 01:30 happens twice in New York on 2026-11-01
    s = schedule("America/New_York", daily("p", ("a", "b"), datetime(2026, 10, 25, 1, 30), time(1, 30)))
    first = local(NY, 2026, 11, 1, 1, 30, fold=0)
    second = local(NY, 2026, 11, 1, 1, 30, fold=1)
    assert second - first == timedelta(hours=1)
    before = who(s, first - timedelta(seconds=1))
    # Then the handoff happens at the first 01:30 and the second pass through 01:xx does not undo it
    assert who(s, first) != before
    assert who(s, local(NY, 2026, 11, 1, 1, 0, fold=1)) == who(s, first)
    assert who(s, second) == who(s, first)


# --- restrictions, layers, overrides --------------------------------------------------------------


def test_restriction_window_wrapping_midnight() -> None:
    # Given nights on Friday and Saturday, 22:00 -> 06:00 the next morning
    nights = Restriction(frozenset({FRI, SAT}), time(22), time(6))
    s = schedule("Europe/Berlin", daily("nights", ("a",), datetime(2026, 1, 1), time(0), nights))
    # Then Friday 22:00 to Saturday 06:00 and Saturday 22:00 to Sunday 06:00 are covered, nothing else
    assert who(s, local(BERLIN, 2026, 6, 5, 21, 59)) == []  # Friday
    assert who(s, local(BERLIN, 2026, 6, 5, 22, 0)) == [("a", "nights")]
    assert who(s, local(BERLIN, 2026, 6, 6, 3, 0)) == [("a", "nights")]  # Saturday, small hours
    assert who(s, local(BERLIN, 2026, 6, 6, 6, 0)) == []
    assert who(s, local(BERLIN, 2026, 6, 7, 5, 59)) == [("a", "nights")]  # Sunday morning
    assert who(s, local(BERLIN, 2026, 6, 7, 23, 0)) == []  # Sunday night: no window opened
    assert who(s, local(BERLIN, 2026, 6, 4, 23, 0)) == []  # Thursday night
    assert [
        (x.start, x.end) for x in shifts_between(s, local(BERLIN, 2026, 6, 5), local(BERLIN, 2026, 6, 8))
    ] == [
        (local(BERLIN, 2026, 6, 5, 22), local(BERLIN, 2026, 6, 6, 6)),
        (local(BERLIN, 2026, 6, 6, 22), local(BERLIN, 2026, 6, 7, 6)),
    ]


def test_a_wrapping_window_over_the_spring_change_is_an_hour_shorter() -> None:
    nights = Restriction(frozenset({SAT}), time(22), time(6))
    s = schedule("America/New_York", daily("nights", ("a",), datetime(2026, 1, 1), time(0), nights))
    (night,) = shifts_between(s, local(NY, 2026, 3, 7), local(NY, 2026, 3, 9))
    assert night.end - night.start == timedelta(hours=7)


def test_the_higher_layer_wins_where_it_has_someone_and_the_lower_fills_the_rest() -> None:
    # Given a 24/7 base layer and a higher business-hours layer
    base = daily("after hours", ("night",), datetime(2026, 1, 1), time(0))
    office = daily(
        "business hours",
        ("day",),
        datetime(2026, 1, 1),
        time(0),
        Restriction(frozenset({MON, TUE, WED, THU, FRI}), time(9), time(17)),
    )
    s = schedule("America/New_York", base, office)
    assert who(s, local(NY, 2026, 6, 3, 12)) == [("day", "business hours")]  # Wednesday noon
    assert who(s, local(NY, 2026, 6, 3, 17)) == [("night", "after hours")]
    assert who(s, local(NY, 2026, 6, 6, 12)) == [("night", "after hours")]  # Saturday
    # And the shifts tile the day without gaps or overlaps
    got = shifts_between(s, local(NY, 2026, 6, 3), local(NY, 2026, 6, 4))
    assert [(x.user_id, x.start.astimezone(NY).hour, x.end.astimezone(NY).hour) for x in got] == [
        ("night", 0, 9),
        ("day", 9, 17),
        ("night", 17, 0),
    ]


def test_a_layer_without_users_or_not_yet_started_puts_nobody_on_call() -> None:
    s = schedule(
        "UTC",
        daily("lower", ("a",), datetime(2026, 1, 1), time(0)),
        daily("empty", (), datetime(2026, 1, 1), time(0)),
        daily("later", ("b",), datetime(2026, 7, 1, 12), time(12)),
    )
    assert who(s, datetime(2026, 6, 30, tzinfo=UTC)) == [("a", "lower")]
    assert who(s, datetime(2026, 7, 1, 12, tzinfo=UTC)) == [("b", "later")]
    assert (
        who(
            schedule("UTC", daily("x", ("a",), datetime(2026, 1, 1), time(0))),
            datetime(2025, 12, 31, tzinfo=UTC),
        )
        == []
    )


def test_overrides_win_over_every_layer_and_end_on_time() -> None:
    s = schedule(
        "UTC",
        daily("base", ("a",), datetime(2026, 1, 1), time(0)),
        daily("top", ("b",), datetime(2026, 1, 1), time(0)),
    )
    o1 = Override("ovr_1", "c", datetime(2026, 2, 1, 10, tzinfo=UTC), datetime(2026, 2, 1, 14, tzinfo=UTC))
    o2 = Override("ovr_2", "d", datetime(2026, 2, 1, 12, tzinfo=UTC), datetime(2026, 2, 1, 16, tzinfo=UTC))
    assert on_call_at(s, datetime(2026, 2, 1, 11, tzinfo=UTC), (o1, o2)) == [
        OnCall("c", "override", override_id="ovr_1")
    ]
    assert who(s, datetime(2026, 2, 1, 13, tzinfo=UTC), (o1, o2)) == [("c", "override"), ("d", "override")]
    assert who(s, datetime(2026, 2, 1, 16, tzinfo=UTC), (o1, o2)) == [("b", "top")]
    got = shifts_between(
        s, datetime(2026, 2, 1, 8, tzinfo=UTC), datetime(2026, 2, 1, 18, tzinfo=UTC), (o1, o2)
    )
    assert [(x.user_id, x.source, x.start.hour, x.end.hour) for x in got] == [
        ("b", "top", 8, 10),
        ("c", "override", 10, 14),
        ("d", "override", 12, 16),
        ("b", "top", 16, 18),
    ]


def test_shifts_are_merged_and_clipped_to_the_range() -> None:
    s = schedule("UTC", daily("solo", ("a",), datetime(2026, 1, 1), time(9)))
    got = shifts_between(s, datetime(2026, 1, 5, 3, tzinfo=UTC), datetime(2026, 1, 9, 3, tzinfo=UTC))
    assert [(x.user_id, x.start, x.end) for x in got] == [
        ("a", datetime(2026, 1, 5, 3, tzinfo=UTC), datetime(2026, 1, 9, 3, tzinfo=UTC))
    ]
    assert shifts_between(s, datetime(2026, 1, 9, tzinfo=UTC), datetime(2026, 1, 9, tzinfo=UTC)) == []


def test_rotation_index_is_arithmetic_far_from_the_start() -> None:
    # Ten years of daily handoffs: the lookup jumps straight to the shift (3653 days, 3 users).
    s = schedule("Europe/Berlin", daily("p", ("a", "b", "c"), datetime(2020, 1, 1, 9), time(9)))
    days = (datetime(2030, 1, 1) - datetime(2020, 1, 1)).days
    assert who(s, local(BERLIN, 2030, 1, 1, 9, 0)) == [(("a", "b", "c")[days % 3], "p")]


# --- property: the shifts and the point lookup agree with a brute-force reference ----------------


def reference_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first instant the local clock reads ``wall`` or later, found by walking minutes."""
    candidates = []
    for fold in (0, 1):
        at = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if at.astimezone(zone).replace(tzinfo=None) == wall:
            candidates.append(at)
    if candidates:
        return min(candidates)
    at = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)  # reads before the gap
    while at.astimezone(zone).replace(tzinfo=None) < wall:
        at += timedelta(minutes=1)
    return at


def reference_handoffs(rot: Rotation) -> object:
    """Walk the wall-clock handoffs one by one from the start."""
    at = rot.start
    yield at
    if rot.type == "custom":
        while True:
            at += timedelta(hours=rot.shift_hours)
            yield at
    nxt = datetime.combine(at.date(), rot.handoff_time)
    while nxt <= at or (rot.type == "weekly" and nxt.weekday() != rot.handoff_day):
        nxt += timedelta(days=1)
    step = timedelta(days=1 if rot.type == "daily" else 7)
    while True:
        yield nxt
        nxt += step


def reference_layer_user(layer: Layer, zone: ZoneInfo, at: datetime) -> str | None:
    if not layer.users:
        return None
    index = -1
    for i, wall in enumerate(reference_handoffs(layer.rotation)):  # type: ignore[attr-defined]
        if reference_instant(wall, zone) > at:
            break
        index = i
    if index < 0:
        return None
    if layer.restrictions:
        day = at.astimezone(zone).date()
        open_now = False
        for opened in (day - timedelta(days=1), day, day + timedelta(days=1)):
            for r in layer.restrictions:
                if opened.weekday() not in r.days:
                    continue
                start = datetime.combine(opened, r.start)
                end = datetime.combine(opened if r.end > r.start else opened + timedelta(days=1), r.end)
                if reference_instant(start, zone) <= at < reference_instant(end, zone):
                    open_now = True
        if not open_now:
            return None
    return layer.users[index % len(layer.users)]


def reference_on_call(s: Schedule, overrides: list[Override], at: datetime) -> set[tuple[str, str]]:
    active = {(o.user_id, "override") for o in overrides if o.start <= at < o.end}
    if active:
        return active
    zone = ZoneInfo(s.time_zone)
    for layer in reversed(s.layers):
        user = reference_layer_user(layer, zone, at)
        if user is not None:
            return {(user, layer.name)}
    return set()


# Each zone with a range holding one of its DST changes (Lord Howe moves by half an hour).
RANGES = [
    ("America/New_York", datetime(2026, 3, 4, tzinfo=UTC)),
    ("America/New_York", datetime(2026, 10, 28, tzinfo=UTC)),
    ("Europe/Berlin", datetime(2026, 3, 25, tzinfo=UTC)),
    ("Europe/Berlin", datetime(2026, 10, 21, tzinfo=UTC)),
    ("Australia/Lord_Howe", datetime(2026, 4, 1, tzinfo=UTC)),
    ("Australia/Lord_Howe", datetime(2026, 9, 30, tzinfo=UTC)),
    ("UTC", datetime(2026, 6, 1, tzinfo=UTC)),
]
RANGE_DAYS = 10

# Handoffs and window edges favour the small hours, where the clocks change.
times = st.builds(time, st.one_of(st.integers(0, 3), st.integers(0, 23)), st.sampled_from([0, 15, 30, 45]))


@st.composite
def layers(draw: st.DrawFn, near: datetime) -> Layer:
    naive = near.replace(tzinfo=None)
    start = draw(st.datetimes(naive - timedelta(days=20), naive + timedelta(days=3))).replace(
        second=0, microsecond=0
    )
    kind = draw(st.sampled_from(["daily", "weekly", "custom"]))
    rotation = Rotation(
        kind,  # type: ignore[arg-type]
        start,
        handoff_time=draw(times),
        handoff_day=draw(st.integers(0, 6)),
        shift_hours=draw(st.integers(1, 60)),
    )
    windows = draw(
        st.lists(
            st.builds(Restriction, st.frozensets(st.integers(0, 6), min_size=1), times, times), max_size=2
        )
    )
    users = draw(st.lists(st.sampled_from("abcde"), max_size=4))
    return Layer("", tuple(users), rotation, tuple(windows))


@st.composite
def overrides(draw: st.DrawFn, near: datetime, i: int) -> Override:
    start = near + timedelta(hours=draw(st.integers(0, RANGE_DAYS * 24)))
    return Override(
        f"ovr_{i}", draw(st.sampled_from("xyz")), start, start + timedelta(hours=draw(st.integers(1, 48)))
    )


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), where=st.sampled_from(RANGES))
def test_every_instant_has_exactly_the_users_the_rules_say(
    data: st.DataObject, where: tuple[str, datetime]
) -> None:
    zone, range_start = where
    layer_list = data.draw(st.lists(layers(range_start), min_size=1, max_size=3))
    override_list = [data.draw(overrides(range_start, i)) for i in range(data.draw(st.integers(0, 2)))]
    probes = data.draw(st.lists(st.integers(0, RANGE_DAYS * 86_400 - 1), min_size=1, max_size=15))
    named = tuple(
        Layer(f"layer{i}", lv.users, lv.rotation, lv.restrictions) for i, lv in enumerate(layer_list)
    )
    s = schedule(zone, *named)
    ev = ScheduleEvaluator(s, override_list)
    end = range_start + timedelta(days=RANGE_DAYS)
    shifts = ev.shifts(range_start, end)
    # Same user and source never overlap or touch (touching stretches are merged).
    by_key: dict[tuple[str, str], list[tuple[datetime, datetime]]] = {}
    for x in shifts:
        assert range_start <= x.start < x.end <= end
        by_key.setdefault((x.user_id, x.source), []).append((x.start, x.end))
    for spans in by_key.values():
        spans.sort()
        assert all(a_end < b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
    # Probe random instants and the edges of every shift.
    instants = [range_start + timedelta(seconds=p) for p in probes]
    for x in shifts:
        instants += [x.start, x.end - timedelta(microseconds=1)]
    for at in instants:
        if not range_start <= at < end:
            continue
        expected = reference_on_call(s, override_list, at)
        covering = {(x.user_id, x.source) for x in shifts if x.start <= at < x.end}
        assert covering == expected, at
        assert {(c.user_id, c.source) for c in ev.on_call_at(at)} == expected, at
