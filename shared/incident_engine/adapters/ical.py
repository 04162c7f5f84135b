"""Shifts as an iCalendar feed (RFC 5545), for Google Calendar, Outlook and friends.

Imported only by the calendar route, so the icalendar library never weighs on the api's cold start.
"""

from __future__ import annotations

from datetime import UTC, datetime

from incident_engine.domain.people import User
from incident_engine.domain.schedules import Schedule, Shift
from incident_engine.domain.timefmt import to_key


def render_shifts(schedule: Schedule, shifts: list[Shift], users: dict[str, User], now: datetime) -> str:
    from icalendar import Calendar, Event

    cal = Calendar()
    cal.add("prodid", "-//Incident Engine//On-call schedule//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", f"On call: {schedule.name}")
    cal.add("x-wr-timezone", schedule.time_zone)
    for shift in shifts:
        user = users.get(shift.user_id)
        who = user.name if user else shift.user_id
        event = Event()
        # Stable per shift, so a calendar that re-reads the feed updates events instead of duplicating them.
        event.add("uid", f"{schedule.id}-{shift.user_id}-{to_key(shift.start)}@incident-engine")
        event.add("dtstamp", now.astimezone(UTC))
        event.add("dtstart", shift.start.astimezone(UTC))
        event.add("dtend", shift.end.astimezone(UTC))
        event.add("summary", f"On call: {who} ({shift.source})")
        event.add(
            "description", f"Schedule {schedule.name} ({schedule.id}), {shift.source}, user {shift.user_id}"
        )
        event.add("transp", "TRANSPARENT")
        cal.add_component(event)
    return cal.to_ical().decode("utf-8")
