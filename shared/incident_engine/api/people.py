"""/users and /teams routes."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote

from aws_lambda_powertools.event_handler.api_gateway import Response, Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from incident_engine.api.config_schemas import TeamIn, TeamOut, TeamPage, UserIn, UserOut, UserPage
from incident_engine.usecases.config import ConfigService
from incident_engine.wiring import services

router = Router()

Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=2048)]


def _service() -> ConfigService:
    return services().config_service()


@router.post("/users", tags=["people"], summary="Create a user")
def create_user(body: UserIn) -> Response[UserOut]:
    user = _service().create_user(body.to_domain())
    return Response(status_code=201, content_type="application/json", body=UserOut.of(user))


@router.get("/users", tags=["people"], summary="List users, by id")
def list_users(
    include_disabled: Annotated[bool, Query()] = False, limit: Limit = 25, cursor: Cursor = None
) -> UserPage:
    page = _service().list_users(include_disabled, limit, cursor)
    return UserPage(items=[UserOut.of(u) for u in page.items], next_cursor=page.next_cursor)


@router.get("/users/<user_id>", tags=["people"], summary="Get one user")
def get_user(user_id: str) -> UserOut:
    return UserOut.of(_service().get_user(unquote(user_id)))


@router.put("/users/<user_id>", tags=["people"], summary="Replace a user (send the version you read)")
def replace_user(user_id: str, body: UserIn) -> UserOut:
    return UserOut.of(_service().replace_user(unquote(user_id), body.to_domain(), body.version))


@router.delete(
    "/users/<user_id>",
    tags=["people"],
    summary="Disable a user (never erased); 409 while a team, schedule, override or policy names them",
)
def delete_user(user_id: str) -> UserOut:
    return UserOut.of(_service().disable_user(unquote(user_id)))


@router.post("/teams", tags=["people"], summary="Create a team")
def create_team(body: TeamIn) -> Response[TeamOut]:
    team = _service().create_team(body.to_domain())
    return Response(status_code=201, content_type="application/json", body=TeamOut.of(team))


@router.get("/teams", tags=["people"], summary="List teams, by id")
def list_teams(
    include_disabled: Annotated[bool, Query()] = False, limit: Limit = 25, cursor: Cursor = None
) -> TeamPage:
    page = _service().list_teams(include_disabled, limit, cursor)
    return TeamPage(items=[TeamOut.of(t) for t in page.items], next_cursor=page.next_cursor)


@router.get("/teams/<team_id>", tags=["people"], summary="Get one team")
def get_team(team_id: str) -> TeamOut:
    return TeamOut.of(_service().get_team(unquote(team_id)))


@router.put("/teams/<team_id>", tags=["people"], summary="Replace a team (send the version you read)")
def replace_team(team_id: str, body: TeamIn) -> TeamOut:
    return TeamOut.of(_service().replace_team(unquote(team_id), body.to_domain(), body.version))


@router.delete(
    "/teams/<team_id>", tags=["people"], summary="Disable a team (never erased); 409 while a policy names it"
)
def delete_team(team_id: str) -> TeamOut:
    return TeamOut.of(_service().disable_team(unquote(team_id)))
