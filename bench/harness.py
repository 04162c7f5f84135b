"""In-process AWS (moto) built from template.yaml, with every AWS call counted and sized.

Calls are counted through botocore's event hooks: every client created while a CallLog is
installed (boto3's and PynamoDB's alike) reports each call, its parameters and its response.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.session
from moto import mock_aws

from local.template import LocalStack, provision

TOKEN = "bench-token"


def _value_bytes(value: dict[str, Any]) -> int:
    """DynamoDB's documented sizing: strings by UTF-8 length, numbers about one byte per two
    digits plus one, maps and lists 3 bytes plus their elements (and 1 byte per element)."""
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        return len(str(data).lstrip("-").replace(".", "")) // 2 + 1
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_bytes(v) + 1 for k, v in data.items())
    if kind == "L":
        return 3 + sum(_value_bytes(v) + 1 for v in data)
    if kind in ("SS", "NS", "BS"):
        return sum(len(str(x)) for x in data)
    return len(json.dumps(data))


def _item_bytes(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())


@dataclass
class Call:
    service: str
    operation: str
    consistent: bool = False
    write_units: float = 0.0
    read_units: float = 0.0
    items_read: int = 0


@dataclass
class CallLog:
    calls: list[Call] = field(default_factory=list)

    def reset(self) -> None:
        self.calls.clear()

    def counts(self) -> Counter[str]:
        return Counter(c.operation for c in self.calls)

    def total(self) -> int:
        return len(self.calls)

    def units(self) -> tuple[float, float]:
        return sum(c.read_units for c in self.calls), sum(c.write_units for c in self.calls)

    # --- botocore hooks ---------------------------------------------------------------------

    def before_parameter_build(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        consistent = bool(params.get("ConsistentRead")) or any(
            # BatchGetItem asks for consistency per table
            isinstance(keys, dict) and keys.get("ConsistentRead")
            for keys in (params.get("RequestItems") or {}).values()
        )
        call = Call(model.service_model.service_name, model.name, consistent=consistent)
        if call.service == "dynamodb":
            call.write_units = _write_units(model.name, params)
        self.calls.append(call)

    def after_call(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        if model.service_model.service_name != "dynamodb" or not self.calls:
            return
        call = self.calls[-1]
        if model.name == "GetItem":
            call.items_read = 1 if "Item" in parsed else 0
            call.read_units = _read_units(_item_bytes(parsed.get("Item", {})), call.consistent)
        elif model.name == "Query":
            items = parsed.get("Items", [])
            # A Query is billed on every item it evaluated, filtered out or not: scale the bytes
            # returned by ScannedCount / Count (the items filtered out are not seen here).
            scanned = int(parsed.get("ScannedCount", len(items)))
            size = sum(_item_bytes(i) for i in items) * scanned / max(len(items), 1)
            call.items_read = scanned
            call.read_units = _read_units(math.ceil(size), call.consistent)
        elif model.name == "BatchGetItem":
            # Billed per item, each rounded up to 4 KB on its own.
            items = [i for rows in parsed.get("Responses", {}).values() for i in rows]
            call.items_read = len(items)
            call.read_units = sum(_read_units(_item_bytes(i), call.consistent) for i in items)


class StoredSizeCallLog(CallLog):
    """A CallLog that bills updates as DynamoDB does: by the larger of the item before and after
    the write, read from moto's backend around the call (the request alone holds only the key).
    Puts are billed by the item sent, as in CallLog."""

    def __init__(self, region: str) -> None:
        super().__init__()
        self._region = region
        self._updates: list[tuple[str, dict[str, Any], int, bool]] = []  # table, key, size before, tx

    def _size(self, table: str, key: dict[str, Any]) -> int:
        from moto.dynamodb.models import dynamodb_backends

        from local.template import ACCOUNT

        item = dynamodb_backends[ACCOUNT][self._region].get_item(table, key)
        return 0 if item is None else _item_bytes(item.to_json()["Attributes"])

    def before_parameter_build(self, model: Any, params: dict[str, Any], **kwargs: Any) -> None:
        super().before_parameter_build(model, params, **kwargs)
        self._updates = []
        if model.service_model.service_name != "dynamodb":
            return
        if model.name == "UpdateItem":
            self._updates = [(params["TableName"], params["Key"], 0, False)]
        elif model.name == "TransactWriteItems":
            self._updates = [
                (e["Update"]["TableName"], e["Update"]["Key"], 0, True)
                for e in params.get("TransactItems", [])
                if "Update" in e
            ]
        self._updates = [(t, k, self._size(t, k), tx) for t, k, _, tx in self._updates]

    def after_call(self, model: Any, parsed: dict[str, Any], **kwargs: Any) -> None:
        super().after_call(model, parsed, **kwargs)
        if not self._updates or not self.calls:
            return
        call = self.calls[-1]
        failed = "Error" in parsed or "CancellationReasons" in parsed
        for table, key, before, tx in self._updates:
            after = before if failed else self._size(table, key)
            keyed = max(1, math.ceil(_item_bytes(key) / 1024))  # what CallLog counted for it
            billed = max(1, math.ceil(max(before, after) / 1024))
            call.write_units += (billed - keyed) * (2.0 if tx else 1.0)
        self._updates = []


def _read_units(size: int, strongly_consistent: bool) -> float:
    units = max(1, math.ceil(size / 4096))
    return float(units) if strongly_consistent else units / 2


def _write_units(operation: str, params: dict[str, Any]) -> float:
    def one(item: dict[str, Any] | None) -> int:
        return max(1, math.ceil(_item_bytes(item or {}) / 1024))

    if operation == "TransactWriteItems":
        total = 0
        for entry in params.get("TransactItems", []):
            ((kind, body),) = entry.items()
            total += one(body.get("Item") if kind == "Put" else body.get("Key"))
        return 2.0 * total  # transactional writes cost double
    if operation == "PutItem":
        return float(one(params.get("Item")))
    if operation == "UpdateItem":
        return float(one(params.get("Key")))
    if operation == "BatchWriteItem":
        return float(
            sum(
                one(r["PutRequest"]["Item"])
                for reqs in params["RequestItems"].values()
                for r in reqs
                if "PutRequest" in r
            )
        )
    return 0.0


@contextmanager
def on_new_clients(instrument: Callable[[Any], None]) -> Iterator[None]:
    """Call `instrument(client)` on every botocore client created inside this block."""
    original = botocore.session.Session.create_client

    def create_client(self: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        instrument(client)
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]
    try:
        yield
    finally:
        botocore.session.Session.create_client = original  # type: ignore[method-assign]


@contextmanager
def counting(log: CallLog) -> Iterator[CallLog]:
    """Every botocore client created inside this block reports its calls to `log`."""

    def instrument(client: Any) -> None:
        client.meta.events.register("before-parameter-build", log.before_parameter_build)
        client.meta.events.register("after-call", log.after_call)

    with on_new_clients(instrument):
        yield log


@contextmanager
def in_process_aws(extra_env: dict[str, str] | None = None) -> Iterator[LocalStack]:
    """moto in this process, the template's resources on it, the functions' environment set."""
    saved = dict(os.environ)
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "ERROR",
            "PUBLIC_API_URL": "https://abc123.execute-api.us-east-1.amazonaws.com/v1",
        }
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
    from incident_engine.wiring import reset_services
    from local.emulator import fast_queries, fast_transactions

    # The local stack's emulator change: moto's own transactions copy whole tables, which makes
    # every request slower as the tables grow and would drown the figures in emulator time.
    fast_transactions()
    fast_queries()
    try:
        with mock_aws():
            stack = provision(
                boto3.Session(),
                parameters={
                    "ApiTokenSha256": hashlib.sha256(TOKEN.encode()).hexdigest(),
                    # A benchmark sends far more than a person would: still counted (its write is
                    # measured), never refused.
                    "TokenRateLimitPerMinute": "1000000",
                },
            )
            os.environ.update(stack.environment())
            os.environ["PUBLIC_API_URL"] = "https://abc123.execute-api.us-east-1.amazonaws.com/v1"
            os.environ.update(extra_env or {})
            reset_services()
            _forget_pynamodb_connections()
            yield stack
    finally:
        reset_services()
        _forget_pynamodb_connections()
        os.environ.clear()
        os.environ.update(saved)


def _forget_pynamodb_connections() -> None:
    from incident_engine.store.models import CONFIG_MODELS, INCIDENT_MODELS

    for model in (*INCIDENT_MODELS, *CONFIG_MODELS):
        model._connection = None


class EmulatorClock:
    """Time spent inside the emulator: from botocore's before-send to its response-received."""

    def __init__(self) -> None:
        self.spent = 0.0
        self._started = 0.0

    def before_send(self, **_: Any) -> None:
        self._started = time.perf_counter()

    def response_received(self, **_: Any) -> None:
        self.spent += time.perf_counter() - self._started


@contextmanager
def timing_emulator(clock: EmulatorClock) -> Iterator[EmulatorClock]:
    """Every botocore client created inside this block adds its emulator time to `clock`."""

    def instrument(client: Any) -> None:
        # first, so it runs before moto's own before-send handler answers the request
        client.meta.events.register_first("before-send", clock.before_send)
        client.meta.events.register("response-received", clock.response_received)

    with on_new_clients(instrument):
        yield clock
