"""Which router serves which path, so that the api imports a router only when a request needs it.

A cold start used to import all thirteen routers, their pydantic models and, through them, the
whole engine: most of the api's init went on routes its first request never touches. Now a request
includes the routers of its path's first segment (every route of a router shares it; the
resolver matches paths literally), and /openapi.json and /docs include them all.
tests/unit/test_router_table.py checks that every route in template.yaml is reached this way.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

# Every router module, in the order the resolver has always included them: the OpenAPI document
# lists routes in this order however the requests arrived.
ORDER = (
    "incidents",
    "policies",
    "people",
    "schedules",
    "services",
    "webhooks",
    "links",
    "routing_rules",
    "pagerduty",
    "alertmanager",
    "maintenance",
    "heartbeats",
    "tokens",
)
# A path's first segment -> the modules (of incident_engine.api) whose routes start with it.
BY_SEGMENT: dict[str, tuple[str, ...]] = {
    "incidents": ("incidents",),
    "policies": ("policies",),
    "users": ("people",),
    "teams": ("people",),
    "schedules": ("schedules",),
    "services": ("services", "maintenance"),
    "webhooks": ("webhooks",),
    "a": ("links",),
    "routing-rules": ("routing_rules",),
    "v2": ("pagerduty",),
    "integrations": ("alertmanager",),
    "heartbeats": ("heartbeats",),
    "tokens": ("tokens",),
}


def modules_for(path: str) -> tuple[str, ...]:
    """The router modules a request for ``path`` needs (none: only the app's own routes can match)."""
    first = path.lstrip("/").partition("/")[0]
    return BY_SEGMENT.get(first, ())


class LazyRouters:
    """Includes each router into the resolver once, on the first request that needs it."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._included: set[str] = set()
        self._lock = threading.Lock()

    def include_for(self, path: str) -> None:
        needed = modules_for(path)
        if needed and not self._included.issuperset(needed):
            self._include(needed)

    def include_all(self) -> None:
        if len(self._included) < len(ORDER):
            self._include(ORDER)

    @property
    def included(self) -> frozenset[str]:
        return frozenset(self._included)

    def _include(self, names: tuple[str, ...]) -> None:
        with self._lock:
            for name in names:
                if name not in self._included:
                    module = importlib.import_module(f"incident_engine.api.{name}")
                    self._app.include_router(module.router)
                    self._included.add(name)
            # Routers arrive in request order; keep the resolver's lists in the fixed order (the
            # app's own routes last, as when they were declared after the routers), so the OpenAPI
            # document and the resolver's matching never depend on which request came first.
            rank = {f"incident_engine.api.{n}": i for i, n in enumerate(ORDER)}

            def key(route: Any) -> int:
                return rank.get(getattr(route.func, "__module__", ""), len(ORDER))

            self._app._static_routes.sort(key=key)
            self._app._dynamic_routes.sort(key=key)
