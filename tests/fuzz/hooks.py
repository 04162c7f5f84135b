"""Schemathesis hooks for fuzzing this API (SCHEMATHESIS_HOOKS=tests.fuzz.hooks; tests/fuzz/run.py sets it).

Each hook stands for one thing the OpenAPI document cannot say; none hides an answer.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis


def _positive(case: Any) -> bool:
    meta = case.meta
    return meta is not None and meta.generation.mode.is_positive


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    if not _positive(case):
        return  # negative cases go as generated: they must be refused, credential or not
    label = case.operation.label
    # POST /v2/enqueue carries its credential in the body (PagerDuty's routing_key): a drawn key
    # names no service, and PagerDuty's contract answers it 400 "invalid event", which positive data
    # must not get. Valid events carry the key of the service tests/fuzz/run.py created, so they
    # reach the ingest path instead of stopping at the key.
    if label == "POST /v2/enqueue" and isinstance(case.body, dict) and "routing_key" in case.body:
        case.body["routing_key"] = os.environ["FUZZ_ROUTING_KEY"]
    # `cursor` is opaque: only a next_cursor this API returned is valid (the incident lists' are
    # signed). No schema can tell a drawn string from one the API issued, so a positive case lists
    # from the start; negative cases still send what was drawn.
    if case.query and "cursor" in case.query:
        case.query.pop("cursor")


@schemathesis.check
def refusals_name_the_field(ctx: Any, response: Any, case: Any) -> bool | None:
    """A schema-valid request this API refuses is refused in the error shape, naming the field.

    The document states shapes; some rules it cannot state (a time zone that is in no IANA
    database, an end before its start, a user that does not exist, either user_id or email): a
    well-shaped request breaking one is a 422 (schemathesis.toml lets positive_data_acceptance take
    it), and this check holds each such 422 to the contract: an Error body naming the field, never
    a bare refusal. PagerDuty's route answers every refusal 400 in PagerDuty's shape, with errors."""
    if not _positive(case):
        return None
    label = case.operation.label
    status = response.status_code
    if label == "POST /v2/enqueue" and status == 400:
        body = response.json()
        assert body.get("status") == "invalid event" and body.get("errors"), f"not PagerDuty's shape: {body}"
        return True
    if status == 422:
        body = response.json()
        assert body.get("error") in ("validation_error", "invalid_input"), f"unknown error code: {body}"
        assert body.get("field"), f"a refusal of a schema-valid request must name its field: {body}"
        return True
    return None


@schemathesis.hook
def filter_failure(ctx: Any, failure: Any, case: Any, response: Any) -> bool:
    """use_after_free (ST301) expects a 404 once a DELETE succeeded. Every DELETE of this API
    disables and never erases (README): policies, users, teams, schedules, services, webhooks and
    routing rules stay readable with `enabled: false`, because incidents, timelines and escalations
    in flight name them. So a GET after DELETE that shows the resource disabled is the contract;
    one that shows it still enabled (or anything else) stays a failure."""
    if getattr(failure, "code", None) != "ST301":
        return True
    try:
        body = response.json()
    except ValueError:
        return True
    return not (response.status_code == 200 and isinstance(body, dict) and body.get("enabled") is False)
