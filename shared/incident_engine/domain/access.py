"""Who may call what: the one table from route to scope, and what a set of scopes reaches.

Every route template.yaml declares has exactly one entry here (a test holds the two together); a
route missing from the table needs ``admin`` (fail closed). The authorizer turns a credential's
scopes into an API Gateway policy with ``policy_routes``; the api function checks the same table
again for every request (``allows``), so neither alone decides.

Scopes nest: ``admin`` includes ``write``, which includes ``read``. ``ingest`` belongs to
integration keys only and reaches the alert ingestion routes and nothing else. Pure: no AWS.
"""

from __future__ import annotations

from collections.abc import Iterable

PUBLIC = "public"  # no credential at the gateway (the handler checks what the request carries)
INGEST = "ingest"  # an integration key: alerts in, never the rest of the API
READ = "read"
WRITE = "write"
ADMIN = "admin"
TOKEN_SCOPES = (READ, WRITE, ADMIN)  # what an API token may be given
IMPLIED = {READ: {READ}, WRITE: {READ, WRITE}, ADMIN: {READ, WRITE, ADMIN}, INGEST: {INGEST}}

# (method, path as template.yaml declares it) -> the scope a caller needs.
ROUTE_SCOPES: dict[tuple[str, str], str] = {
    # meta and the signed page links
    ("GET", "/health"): PUBLIC,
    ("GET", "/openapi.json"): READ,
    ("GET", "/docs"): READ,
    ("GET", "/a/{token}"): PUBLIC,
    ("POST", "/a/{token}"): PUBLIC,
    # the public paths' other methods reach the handler, which answers 405 naming the allowed ones
    # (API Gateway would otherwise answer an unknown method with its 403 no_route)
    ("ANY", "/health"): PUBLIC,
    ("ANY", "/a/{token}"): PUBLIC,
    ("ANY", "/v2/enqueue"): PUBLIC,
    # incidents: read them, act on them
    ("GET", "/incidents"): READ,
    ("GET", "/incidents/{incident_id}"): READ,
    ("GET", "/incidents/{incident_id}/timeline"): READ,
    ("GET", "/incidents/{incident_id}/escalations"): READ,
    ("GET", "/incidents/{incident_id}/notifications"): READ,
    ("POST", "/incidents"): WRITE,
    ("POST", "/incidents/{incident_id}/acknowledge"): WRITE,
    ("POST", "/incidents/{incident_id}/escalate"): WRITE,
    ("POST", "/incidents/{incident_id}/snooze"): WRITE,
    ("POST", "/incidents/{incident_id}/resolve"): WRITE,
    ("POST", "/incidents/{incident_id}/cancel"): WRITE,
    ("POST", "/incidents/{incident_id}/notes"): WRITE,
    # alerts in
    ("POST", "/v2/enqueue"): PUBLIC,  # the body's routing_key is the credential
    ("POST", "/integrations/alertmanager"): INGEST,
    ("POST", "/heartbeats/{heartbeat_id}/ping"): INGEST,
    # configuration: read by read, changed by admin
    ("GET", "/policies"): READ,
    ("GET", "/policies/{policy_id}"): READ,
    ("POST", "/policies"): ADMIN,
    ("PUT", "/policies/{policy_id}"): ADMIN,
    ("DELETE", "/policies/{policy_id}"): ADMIN,
    ("GET", "/users"): READ,
    ("GET", "/users/{user_id}"): READ,
    ("POST", "/users"): ADMIN,
    ("PUT", "/users/{user_id}"): ADMIN,
    ("DELETE", "/users/{user_id}"): ADMIN,
    ("GET", "/teams"): READ,
    ("GET", "/teams/{team_id}"): READ,
    ("POST", "/teams"): ADMIN,
    ("PUT", "/teams/{team_id}"): ADMIN,
    ("DELETE", "/teams/{team_id}"): ADMIN,
    ("GET", "/schedules"): READ,
    ("GET", "/schedules/{schedule_id}"): READ,
    ("GET", "/schedules/{schedule_id}/overrides"): READ,
    ("GET", "/schedules/{schedule_id}/oncall"): READ,
    ("GET", "/schedules/{schedule_id}/shifts"): READ,
    ("GET", "/schedules/{schedule_id}/calendar.ics"): READ,
    ("POST", "/schedules"): ADMIN,
    ("PUT", "/schedules/{schedule_id}"): ADMIN,
    ("DELETE", "/schedules/{schedule_id}"): ADMIN,
    ("POST", "/schedules/{schedule_id}/overrides"): ADMIN,
    ("DELETE", "/schedules/{schedule_id}/overrides/{override_id}"): ADMIN,
    ("GET", "/services"): READ,
    ("GET", "/services/{service_id}"): READ,
    ("GET", "/services/{service_id}/maintenance-windows"): READ,
    ("POST", "/services"): ADMIN,
    ("PUT", "/services/{service_id}"): ADMIN,
    ("DELETE", "/services/{service_id}"): ADMIN,
    ("POST", "/services/{service_id}/integration-keys"): ADMIN,
    ("DELETE", "/services/{service_id}/integration-keys/{key_id}"): ADMIN,
    ("POST", "/services/{service_id}/maintenance-windows"): ADMIN,
    ("GET", "/routing-rules"): READ,
    ("GET", "/routing-rules/{rule_id}"): READ,
    ("POST", "/routing-rules/test"): READ,  # a dry run: changes nothing
    ("POST", "/routing-rules"): ADMIN,
    ("PUT", "/routing-rules/{rule_id}"): ADMIN,
    ("DELETE", "/routing-rules/{rule_id}"): ADMIN,
    ("GET", "/heartbeats"): READ,
    ("GET", "/heartbeats/{heartbeat_id}"): READ,
    ("POST", "/heartbeats"): ADMIN,
    ("PUT", "/heartbeats/{heartbeat_id}"): ADMIN,
    ("DELETE", "/heartbeats/{heartbeat_id}"): ADMIN,
    # webhooks: a receiver's URL can itself be a credential (Slack's are), so reading is admin's
    ("GET", "/webhooks"): ADMIN,
    ("GET", "/webhooks/{webhook_id}"): ADMIN,
    ("POST", "/webhooks"): ADMIN,
    ("PUT", "/webhooks/{webhook_id}"): ADMIN,
    ("DELETE", "/webhooks/{webhook_id}"): ADMIN,
    # API tokens
    ("GET", "/tokens"): ADMIN,
    ("POST", "/tokens"): ADMIN,
    ("DELETE", "/tokens/{token_id}"): ADMIN,
}


def scope_of(method: str, path: str) -> str:
    """The scope a route needs; a method the table does not name falls to the path's ``ANY``
    (any method token, QUERY or PROPFIND too: API Gateway's ANY takes them), else ``admin``."""
    method = method.upper()
    return ROUTE_SCOPES.get((method, path)) or ROUTE_SCOPES.get(("ANY", path), ADMIN)


def effective(scopes: Iterable[str]) -> frozenset[str]:
    """What a credential's scopes reach, nesting included (``write`` reads too)."""
    out: set[str] = set()
    for scope in scopes:
        out |= IMPLIED.get(scope, set())
    return frozenset(out)


def allows(scopes: Iterable[str], method: str, path: str) -> bool:
    needed = scope_of(method, path)
    return needed == PUBLIC or needed in effective(scopes)


def policy_routes(scopes: Iterable[str]) -> list[str]:
    """``METHOD/path`` patterns for an API Gateway policy that allow exactly the routes these
    scopes reach, as few as can say it: a method's routes under one first path segment become
    ``METHOD/segment`` and ``METHOD/segment/*`` when every one of them (three or more) is
    allowed (API Gateway's ``*`` spans slashes), else one pattern per route (a path parameter
    becomes ``*``). Public routes never reach the authorizer, so they are left out."""
    reach = effective(scopes)
    groups: dict[tuple[str, str], list[tuple[str, bool]]] = {}
    for (method, path), needed in ROUTE_SCOPES.items():
        if needed == PUBLIC:
            continue
        first = path.strip("/").split("/", 1)[0]
        groups.setdefault((method, first), []).append((path, needed in reach))
    patterns: list[str] = []
    for (method, first), routes in sorted(groups.items()):
        if len(routes) > 2 and all(ok for _, ok in routes):
            if any(path == f"/{first}" for path, _ in routes):
                patterns.append(f"{method}/{first}")
            patterns.append(f"{method}/{first}/*")
            continue
        patterns += [f"{method}{_glob(path)}" for path, ok in routes if ok]
    return patterns


def _glob(path: str) -> str:
    return "/".join("*" if part.startswith("{") else part for part in path.split("/"))
