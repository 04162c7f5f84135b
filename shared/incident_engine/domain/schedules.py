"""On-call schedules: who is on call at an instant, and the resolved shifts over a range.

Pure code: no AWS, no clock. A schedule lives in one IANA zone. Each layer rotates its users
from ``rotation.start`` (a local wall-clock date-time) with handoffs at local wall-clock times,
so a daily 09:00 handoff stays at 09:00 across DST changes and the shift spanning the change is
23 or 25 hours long. Custom rotations step ``shift_hours`` of wall-clock time for the same reason.

Wall-clock times that a DST change skips or repeats are mapped to one instant by one rule:
*the first instant at which the local clock reads that time or later*. A 02:30 handoff on the
spring-forward night happens at 03:00 (the clocks jump past it); a 01:30 handoff on the fall-back
night happens at the first 01:30. The rule keeps handoffs in order, so every shift has a start
no later than its end.

Precedence: overrides win over every layer; among layers, the later (higher) one wins wherever
it has someone on call, i.e. where it has started, has users and one of its restriction windows
(if any) is open.

Internally, wall-clock readings and instants are integers of microseconds since 0001-01-01
(a Monday), so the rotation index and the weekday are plain integer arithmetic; converting a
wall reading to an instant goes through ``zoneinfo`` once and is memoised per evaluator.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

RotationType = Literal["daily", "weekly", "custom"]
OVERRIDE = "override"  # the source named for an override; layers may not take this name

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY_ABBREVIATIONS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_US = 1
_SECOND = 1_000_000 * _US
_DAY = 86_400 * _SECOND
_WEEK = 7 * _DAY
_EPOCH_NAIVE = datetime(1, 1, 1)  # a Monday, so weekday == (wall // _DAY) % 7
_EPOCH_UTC = _EPOCH_NAIVE.replace(tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_MEMO_LIMIT = 50_000  # wall readings remembered per evaluator before the memo starts over


@dataclass(frozen=True)
class Rotation:
    type: RotationType
    start: datetime  # naive: the local wall-clock time the rotation begins, users[0] first
    handoff_time: time = time(0, 0)  # daily and weekly
    handoff_day: int = 0  # weekly: 0 = Monday .. 6 = Sunday
    shift_hours: int = 24  # custom


@dataclass(frozen=True)
class Restriction:
    """A window that opens on each of ``days`` at ``start`` and closes at ``end``.

    An ``end`` at or before ``start`` closes on the next day (the window wraps midnight);
    ``end == start`` is a whole day.
    """

    days: frozenset[int]  # the weekdays the window opens on, 0 = Monday
    start: time
    end: time


@dataclass(frozen=True)
class Layer:
    name: str
    users: tuple[str, ...]
    rotation: Rotation
    restrictions: tuple[Restriction, ...] = ()  # none: on call around the clock


@dataclass(frozen=True)
class Override:
    id: str
    user_id: str
    start: datetime  # aware
    end: datetime  # aware, after start


@dataclass(frozen=True)
class Schedule:
    id: str
    name: str
    time_zone: str
    layers: tuple[Layer, ...]  # the last is the highest
    enabled: bool = True
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = 1


@dataclass(frozen=True)
class OnCall:
    user_id: str
    source: str  # the layer's name, or "override"
    layer: int | None = None  # index of the layer that put the user on call
    override_id: str | None = None


@dataclass(frozen=True)
class Shift:
    user_id: str
    start: datetime
    end: datetime
    source: str


def _micros(at: datetime) -> int:
    """An aware datetime as microseconds since 0001-01-01 UTC."""
    return (at - _EPOCH_UTC) // _ONE_US


def _from_micros(us: int) -> datetime:
    return _EPOCH_UTC + timedelta(microseconds=us)


def _wall(naive: datetime) -> int:
    return (naive - _EPOCH_NAIVE) // _ONE_US


def _tod(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * _SECOND + t.microsecond


class _LayerClock:
    """One layer's rotation as integers: boundary 0 is the start, boundary k >= 1 is
    ``first + (k - 1) * period``."""

    __slots__ = ("first", "index", "layer", "period", "start", "users", "windows")

    def __init__(self, index: int, layer: Layer) -> None:
        rot = layer.rotation
        self.index = index
        self.layer = layer
        self.users = layer.users
        self.start = _wall(rot.start)
        if rot.type == "custom":
            self.period = rot.shift_hours * 3600 * _SECOND
            self.first = self.start + self.period
        else:
            self.period = _DAY if rot.type == "daily" else _WEEK
            phase = _tod(rot.handoff_time) + (rot.handoff_day * _DAY if rot.type == "weekly" else 0)
            # the first handoff strictly after the start
            self.first = self.start + (phase - self.start) % self.period
            if self.first == self.start:
                self.first += self.period
        self.windows = tuple(
            (r.days, _tod(r.start), _tod(r.end) + (_DAY if _tod(r.end) <= _tod(r.start) else 0))
            for r in layer.restrictions
        )

    def boundary(self, k: int) -> int:
        return self.start if k == 0 else self.first + (k - 1) * self.period

    def index_from_wall(self, wall: int) -> int:
        """The shift index the wall reading falls in, ignoring DST (a first guess)."""
        if wall < self.first:
            return 0
        return 1 + (wall - self.first) // self.period


class ScheduleEvaluator:
    """A schedule and its overrides, prepared for many lookups (build once per request)."""

    def __init__(self, schedule: Schedule, overrides: Iterable[Override] = ()) -> None:
        self.schedule = schedule
        self.zone = ZoneInfo(schedule.time_zone)
        self._layers = [_LayerClock(i, layer) for i, layer in enumerate(schedule.layers)]
        self._overrides = sorted(
            (o for o in overrides if o.end > o.start), key=lambda o: (_micros(o.start), o.id)
        )
        self._override_spans = [(_micros(o.start), _micros(o.end)) for o in self._overrides]
        self._override_starts = [s for s, _ in self._override_spans]
        self._instants: dict[int, int] = {}

    # --- wall clock <-> instant ------------------------------------------------------------

    def _instant(self, wall: int) -> int:
        """The first instant at which the local clock reads ``wall`` or later."""
        known = self._instants.get(wall)
        if known is not None:
            return known
        naive = _EPOCH_NAIVE + timedelta(microseconds=wall)
        before = naive.replace(tzinfo=self.zone).utcoffset()
        after = naive.replace(tzinfo=self.zone, fold=1).utcoffset()
        assert before is not None and after is not None
        if before < after:
            # In a gap (clocks jumped forward over it): the instant the jump happens.
            instant = self._transition(wall - after // _ONE_US, wall - before // _ONE_US)
        else:
            instant = wall - before // _ONE_US  # fold=0 is the first of a repeated reading
        if len(self._instants) >= _MEMO_LIMIT:
            self._instants.clear()
        self._instants[wall] = instant
        return instant

    def _transition(self, low: int, high: int) -> int:
        """The first instant in (low, high] with the offset that ``high`` has (a DST jump)."""
        offset_after = _from_micros(high).astimezone(self.zone).utcoffset()
        while high - low > _US:
            mid = (low + high) // 2
            if _from_micros(mid).astimezone(self.zone).utcoffset() == offset_after:
                high = mid
            else:
                low = mid
        return high

    def _wall_of(self, instant: int) -> int:
        return _wall(_from_micros(instant).astimezone(self.zone).replace(tzinfo=None))

    # --- one layer ---------------------------------------------------------------------------

    def _shift_index(self, layer: _LayerClock, wall: int, instant: int) -> int | None:
        """The index of the shift the layer is in at ``instant``; None before it starts."""
        if instant < self._instant(layer.start):
            return None
        k = layer.index_from_wall(wall)
        # The wall reading never runs ahead of the shift (a handoff's instant is the first at which
        # the clock reads its time), but after a fall-back it can lag behind: step forward.
        while self._instant(layer.boundary(k + 1)) <= instant:
            k += 1
        return k

    def _in_window(self, layer: _LayerClock, wall: int, instant: int) -> bool:
        if not layer.windows:
            return True
        day = wall - wall % _DAY
        # A window that opened yesterday may still be open; tomorrow's only near a midnight DST change.
        for opened in (day - _DAY, day, day + _DAY):
            weekday = (opened // _DAY) % 7
            for days, start, end in layer.windows:
                if weekday in days and self._instant(opened + start) <= instant < self._instant(opened + end):
                    return True
        return False

    def _layer_user(self, layer: _LayerClock, wall: int, instant: int) -> str | None:
        if not layer.users:
            return None
        k = self._shift_index(layer, wall, instant)
        if k is None or not self._in_window(layer, wall, instant):
            return None
        return layer.users[k % len(layer.users)]

    # --- the schedule ------------------------------------------------------------------------

    def _overrides_at(self, instant: int) -> list[OnCall]:
        found: dict[str, OnCall] = {}
        for i in range(bisect.bisect_right(self._override_starts, instant)):
            start, end = self._override_spans[i]
            if start <= instant < end:
                o = self._overrides[i]
                found.setdefault(o.user_id, OnCall(o.user_id, OVERRIDE, override_id=o.id))
        return list(found.values())

    def _on_call(self, instant: int) -> list[OnCall]:
        if self._override_spans:
            overriding = self._overrides_at(instant)
            if overriding:
                return overriding
        wall = self._wall_of(instant)
        for layer in reversed(self._layers):
            user = self._layer_user(layer, wall, instant)
            if user is not None:
                return [OnCall(user, layer.layer.name, layer=layer.index)]
        return []

    def on_call_at(self, at: datetime) -> list[OnCall]:
        """Who is on call at ``at`` (aware) and why; an empty list when nobody is."""
        return self._on_call(_micros(at))

    def _change_points(self, start: int, end: int) -> list[int]:
        """Every instant in (start, end) where the answer of on_call_at may change."""
        points: set[int] = set()
        first_wall, last_wall = self._wall_of(start), self._wall_of(end)
        for layer in self._layers:
            if not layer.users:
                continue
            points.add(self._instant(layer.start))
            k = max(0, layer.index_from_wall(first_wall) - 1)
            while True:
                at = self._instant(layer.boundary(k))
                if at >= end:
                    break
                points.add(at)
                k += 1
            if layer.windows:
                day = first_wall - first_wall % _DAY - _DAY
                while day <= last_wall + _DAY:
                    weekday = (day // _DAY) % 7
                    for days, opens, closes in layer.windows:
                        if weekday in days:
                            points.add(self._instant(day + opens))
                            points.add(self._instant(day + closes))
                    day += _DAY
        for o_start, o_end in self._override_spans:
            points.update((o_start, o_end))
        return sorted(p for p in points if start < p < end)

    def shifts(self, start: datetime, end: datetime) -> list[Shift]:
        """The resolved timeline over [start, end): one entry per user and contiguous stretch of
        the same source, clipped to the range, ordered by start then user."""
        lo, hi = _micros(start), _micros(end)
        if hi <= lo:
            return []
        open_since: dict[tuple[str, str], int] = {}
        done: list[tuple[int, int, str, str]] = []
        for point in [lo, *self._change_points(lo, hi)]:
            now = {(c.user_id, c.source) for c in self._on_call(point)}
            for key in [k for k in open_since if k not in now]:
                done.append((open_since.pop(key), point, *key))
            for key in now:
                open_since.setdefault(key, point)
        done.extend((since, hi, *key) for key, since in open_since.items())
        done.sort(key=lambda s: (s[0], s[2], s[1]))
        return [Shift(user, _from_micros(s), _from_micros(e), source) for s, e, user, source in done]


def on_call_at(schedule: Schedule, at: datetime, overrides: Sequence[Override] = ()) -> list[OnCall]:
    """Who is on call at ``at`` and why (a convenience for one lookup)."""
    return ScheduleEvaluator(schedule, overrides).on_call_at(at)


def shifts_between(
    schedule: Schedule, start: datetime, end: datetime, overrides: Sequence[Override] = ()
) -> list[Shift]:
    """The resolved shifts over [start, end)."""
    return ScheduleEvaluator(schedule, overrides).shifts(start, end)


def user_ids(schedule: Schedule) -> set[str]:
    """Every user a schedule's layers name (overrides are kept apart)."""
    return {u for layer in schedule.layers for u in layer.users}
