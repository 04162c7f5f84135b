"""The timer queue's three kinds of message, and which incidents a window's edge touches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from incident_engine.adapters.timers import decode_any_timer, encode_timer
from incident_engine.domain.heartbeats import HeartbeatTimer
from incident_engine.domain.maintenance import END, START, MaintenanceWindow, WindowTimer, next_edge, touches
from incident_engine.domain.model import TimerMessage

AT = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "timer",
    [
        TimerMessage("INC-20261122-001", "abc", AT),
        HeartbeatTimer("hb_1", "def", AT),
        WindowTimer("mw_1", START, AT),
        WindowTimer("mw_1", END, AT),
    ],
)
def test_every_kind_round_trips(timer: object) -> None:
    assert decode_any_timer(encode_timer(timer)) == timer  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "body",
    [
        '{"kind":"cron","token":"x","due_at":"2026-11-22T07:00:00Z"}',
        '{"kind":"heartbeat","token":"x","due_at":"2026-11-22T07:00:00Z"}',
        '{"kind":"maintenance","window_id":"mw_1","edge":"middle","due_at":"2026-11-22T07:00:00Z"}',
        "[1, 2]",
        "not json",
    ],
)
def test_anything_else_is_refused(body: str) -> None:
    with pytest.raises((ValueError, KeyError)):
        decode_any_timer(body)


def test_an_edge_touches_incidents_open_before_it() -> None:
    window = MaintenanceWindow("mw_1", "svc_1", AT, AT + timedelta(hours=1), "upgrade", AT)
    assert touches(window, START, AT - timedelta(seconds=1)) and not touches(window, START, AT)
    inside = AT + timedelta(minutes=5)  # opened inside: its opening noted the window; only the end
    assert not touches(window, START, inside) and touches(window, END, inside)
    assert next_edge(START) == END and next_edge(END) is None
