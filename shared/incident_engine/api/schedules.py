"""/schedules routes: the schedules, their overrides, who is on call, shifts and a calendar feed."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated
from urllib.parse import unquote

from aws_lambda_powertools.event_handler.api_gateway import Response, Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from incident_engine.api.config_schemas import (
    OnCallOut,
    OnCallUserOut,
    OverrideIn,
    OverrideOut,
    OverridePage,
    ScheduleIn,
    ScheduleOut,
    SchedulePage,
    ShiftOut,
    ShiftsOut,
)
from incident_engine.api.context import actor
from incident_engine.domain.errors import InvalidInput
from incident_engine.domain.timefmt import to_iso
from incident_engine.usecases.config import ConfigService
from incident_engine.wiring import services

router = Router()

Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=2048)]
InstantQuery = Annotated[str | None, Query(max_length=40, description="ISO 8601 instant with an offset or Z")]
CALENDAR_DAYS = 60
DEFAULT_SHIFT_DAYS = 7


def _service() -> ConfigService:
    return services().config_service()


def _instant(field: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise InvalidInput(field, "not an ISO 8601 instant, such as 2026-03-08T09:00:00Z") from None
    if value.tzinfo is None:
        raise InvalidInput(field, "give an offset or Z, such as 2026-03-08T09:00:00-05:00")
    if not 2000 <= value.year <= 2100:
        raise InvalidInput(field, "must be between the years 2000 and 2100")
    return value


@router.post("/schedules", tags=["schedules"], summary="Create an on-call schedule")
def create_schedule(body: ScheduleIn) -> Response[ScheduleOut]:
    schedule = _service().create_schedule(body.to_domain())
    return Response(status_code=201, content_type="application/json", body=ScheduleOut.of(schedule))


@router.get("/schedules", tags=["schedules"], summary="List schedules, by id")
def list_schedules(
    include_disabled: Annotated[bool, Query()] = False, limit: Limit = 25, cursor: Cursor = None
) -> SchedulePage:
    page = _service().list_schedules(include_disabled, limit, cursor)
    return SchedulePage(items=[ScheduleOut.of(s) for s in page.items], next_cursor=page.next_cursor)


@router.get("/schedules/<schedule_id>", tags=["schedules"], summary="Get one schedule")
def get_schedule(schedule_id: str) -> ScheduleOut:
    return ScheduleOut.of(_service().get_schedule(unquote(schedule_id)))


@router.put(
    "/schedules/<schedule_id>", tags=["schedules"], summary="Replace a schedule (send the version you read)"
)
def replace_schedule(schedule_id: str, body: ScheduleIn) -> ScheduleOut:
    return ScheduleOut.of(_service().replace_schedule(unquote(schedule_id), body.to_domain(), body.version))


@router.delete(
    "/schedules/<schedule_id>",
    tags=["schedules"],
    summary="Disable a schedule (never erased); 409 while a policy names it",
)
def delete_schedule(schedule_id: str) -> ScheduleOut:
    return ScheduleOut.of(_service().disable_schedule(unquote(schedule_id)))


@router.post(
    "/schedules/<schedule_id>/overrides", tags=["schedules"], summary="Put a user on call over every layer"
)
def create_override(schedule_id: str, body: OverrideIn) -> Response[OverrideOut]:
    start, end = body.checked()
    override = _service().add_override(unquote(schedule_id), body.user_id, start, end, actor(router, None))  # type: ignore[arg-type]
    return Response(status_code=201, content_type="application/json", body=OverrideOut.of(override))


@router.get(
    "/schedules/<schedule_id>/overrides",
    tags=["schedules"],
    summary="Overrides overlapping [from, to) (default: the next 90 days), by end time",
)
def list_overrides(
    schedule_id: str,
    from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    to: InstantQuery = None,
    limit: Limit = 25,
    cursor: Cursor = None,
) -> OverridePage:
    page = _service().list_overrides(
        unquote(schedule_id), _instant("from", from_), _instant("to", to), limit, cursor
    )
    return OverridePage(items=[OverrideOut.of(o) for o in page.items], next_cursor=page.next_cursor)


@router.delete(
    "/schedules/<schedule_id>/overrides/<override_id>",
    tags=["schedules"],
    summary="Delete a current or future override (it is kept, marked deleted)",
)
def delete_override(schedule_id: str, override_id: str) -> OverrideOut:
    deleted = _service().delete_override(unquote(schedule_id), unquote(override_id), actor(router, None))  # type: ignore[arg-type]
    return OverrideOut.of(deleted)


@router.get("/schedules/<schedule_id>/oncall", tags=["schedules"], summary="Who is on call at an instant")
def get_oncall(schedule_id: str, at: InstantQuery = None) -> OnCallOut:
    sid = unquote(schedule_id)
    when, entries = _service().on_call(sid, _instant("at", at))
    return OnCallOut(
        schedule_id=sid,
        at=to_iso(when),
        oncall=[
            OnCallUserOut(
                user_id=e.on_call.user_id, name=e.user.name if e.user else None, source=e.on_call.source
            )
            for e in entries
        ],
    )


@router.get(
    "/schedules/<schedule_id>/shifts",
    tags=["schedules"],
    summary="The resolved timeline over [from, to): at most 90 days per call (default: the next 7)",
)
def get_shifts(
    schedule_id: str,
    from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    to: InstantQuery = None,
) -> ShiftsOut:
    view = _service().shifts(
        unquote(schedule_id), _instant("from", from_), _instant("to", to), timedelta(days=DEFAULT_SHIFT_DAYS)
    )
    return ShiftsOut(
        schedule_id=view.schedule.id,
        time_zone=view.schedule.time_zone,
        start=to_iso(view.start),
        end=to_iso(view.end),
        items=[ShiftOut.of(s, view.users) for s in view.shifts],
    )


@router.get(
    "/schedules/<schedule_id>/calendar.ics",
    tags=["schedules"],
    summary="iCalendar feed of the next 60 days of shifts",
)
def get_calendar(schedule_id: str) -> Response[str]:
    from incident_engine.adapters.ical import render_shifts  # the icalendar library loads only here

    now = services().clock.now()
    # Read from a week back so a shift in progress keeps its real start: its event (and UID) then
    # stays the same from one refresh to the next, and calendar apps do not duplicate it.
    since = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=7)
    view = _service().shifts(unquote(schedule_id), since, now + timedelta(days=CALENDAR_DAYS), timedelta(0))
    current = [shift for shift in view.shifts if shift.end > now]
    return Response(
        status_code=200,
        content_type="text/calendar; charset=utf-8",
        body=render_shifts(view.schedule, current, view.users, now),
        headers={"Content-Disposition": f'inline; filename="{view.schedule.id}.ics"'},
    )
