"""The api's lazy router table (api/routes.py): a request includes only the routers of its path's
first segment, so every route the template declares must be served by a router that its own path
brings in, and every router module must be in the table."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import incident_engine.api
from incident_engine.api import routes
from local.template import load_template

# The routes the resolver itself declares (api/app.py), present without any router.
APP_ROUTES = {("GET", "/health"), ("GET", "/openapi.json"), ("GET", "/docs")}
ROOT = Path(__file__).resolve().parents[2]


def template_routes() -> set[tuple[str, str]]:
    events = load_template()["Resources"]["ApiFunction"]["Properties"]["Events"]
    apis = [e["Properties"] for e in events.values() if e["Type"] == "Api"]
    return {(e["Method"].upper(), e["Path"]) for e in apis}


def routes_of(module: str) -> set[tuple[str, str]]:
    """(method, template-style path) of every route a router module declares."""
    router = importlib.import_module(f"incident_engine.api.{module}").router
    return {
        (method, re.sub(r"<([^>]+)>", r"{\1}", rule))
        for rule, methods, *_ in router._routes
        for method in ([methods] if isinstance(methods, str) else methods)
    }


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x_1", path)


def test_every_router_module_is_in_the_table() -> None:
    with_router = {
        info.name
        for info in pkgutil.iter_modules(incident_engine.api.__path__)
        if hasattr(importlib.import_module(f"incident_engine.api.{info.name}"), "router")
    }
    assert with_router == set(routes.ORDER)
    assert {m for modules in routes.BY_SEGMENT.values() for m in modules} == set(routes.ORDER)


def test_every_template_route_is_served_by_a_router_its_own_path_includes() -> None:
    declared = template_routes()
    served = {module: routes_of(module) for module in routes.ORDER}
    for method, path in sorted(declared - APP_ROUTES):
        # Given a request for this route, when the table picks the routers for its path,
        # then one of them declares the route.
        picked = routes.modules_for(concrete(path))
        if method == "ANY":
            # a public path's other methods: the 405 answer names the methods the path's routers
            # declare, so they must be included for it too
            on_path = {m for r in picked for m, p in served[r] if p == path} | {
                m for m, p in APP_ROUTES if p == path
            }
            assert on_path, (method, path, picked)
            continue
        assert any((method, path) in served[m] for m in picked), (method, path, picked)
    # and the routers declare nothing the template does not (API Gateway would never send it)
    assert set().union(*served.values()) | APP_ROUTES == {r for r in declared if r[0] != "ANY"}


def test_a_path_no_route_starts_with_includes_no_router() -> None:
    assert routes.modules_for("/") == ()
    assert routes.modules_for("/wp-admin/setup.php") == ()
    assert routes.modules_for("/health") == ()
    assert routes.modules_for("/services/svc_1/maintenance-windows") == ("services", "maintenance")
    assert routes.modules_for("/incidents/") == ("incidents",)  # the resolver allows a trailing slash


def test_the_routes_that_bound_their_own_bodies_are_named_where_they_live() -> None:
    from incident_engine.api import alertmanager, app, pagerduty

    assert (app.PAGERDUTY_PATH, app.ALERTMANAGER_PATH) == (pagerduty.PATH, alertmanager.PATH)


PROBE = """
import json, sys
import functions.api.app
from incident_engine.api import app
watched = lambda m: m.startswith("incident_engine.api.") or m in ("boto3", "pynamodb")
loaded_at_import = sorted(m for m in sys.modules if watched(m))
app.ROUTERS.include_for("/tokens")
after_tokens = sorted(app.ROUTERS.included)
app.ROUTERS.include_all()
names = lambda rs: [r.func.__module__.rpartition(".")[2] for r in rs]
order = [names(app.app._static_routes), names(app.app._dynamic_routes)]
print(json.dumps({"import": loaded_at_import, "tokens": after_tokens, "order": order}))
"""


def test_a_cold_start_imports_no_router_and_a_request_only_its_own() -> None:
    # A fresh interpreter, as a cold start.
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'shared'}{os.pathsep}{ROOT}"}
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    out = subprocess.run(  # noqa: S603 - our own interpreter and a fixed snippet
        [sys.executable, "-c", PROBE], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    # Then importing the handler imports no router, no engine and no AWS SDK ...
    assert not set(seen["import"]) & {f"incident_engine.api.{m}" for m in routes.ORDER}, seen["import"]
    assert "pynamodb" not in seen["import"] and "boto3" not in seen["import"]
    # ... a request to /tokens includes only the tokens router ...
    assert seen["tokens"] == ["tokens"]
    # ... and once all are in, each of the resolver's lists (static, dynamic) is in the fixed
    # order whatever came first (the OpenAPI document's order), the app's own routes last.
    for listed in seen["order"]:
        rank = [routes.ORDER.index(m) if m in routes.ORDER else len(routes.ORDER) for m in listed]
        assert rank == sorted(rank), listed
    assert {m for listed in seen["order"] for m in listed} == {*routes.ORDER, "app"}


def test_a_snapstart_or_provisioned_init_builds_every_router_before_any_request() -> None:
    # Given the init Lambda runs for a SnapStart snapshot (template.yaml's ApiColdStart)
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'shared'}{os.pathsep}{ROOT}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start",
    }
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    code = "import functions.api.app\nimport incident_engine.api.app as a\nprint(sorted(a.ROUTERS.included))"
    # When the handler is imported
    out = subprocess.run(  # noqa: S603 - our own interpreter and a fixed snippet
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    # Then every router is already in
    assert out.stdout.strip().splitlines()[-1] == str(sorted(routes.ORDER))
