"""Cost per 1,000 incidents from the counted calls and AWS's published on-demand prices."""

from __future__ import annotations

from dataclasses import dataclass

from bench.calls import OpCalls

# us-east-1 list prices, USD, without free tiers. Recorded 2026-11-22 from AWS's public pricing
# pages as last published to us (this machine cannot reach them to re-check): re-verify before
# relying on them.
PRICES_DATE = "2026-11-22"
PRICES = {
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_second_arm64": 0.0000133334,
    "api_gateway_rest_request": 3.50 / 1e6,
    "api_gateway_http_request": 1.00 / 1e6,  # HTTP API, for comparison only (the stack is REST)
    "dynamodb_write_unit": 0.625 / 1e6,  # on-demand WRU
    "dynamodb_read_unit": 0.125 / 1e6,  # on-demand RRU
    "sqs_request": 0.40 / 1e6,
    "sns_publish_request": 0.50 / 1e6,  # PublishBatch is billed per 64 KB, so one request here
    "scheduler_invocation": 1.00 / 1e6,
    "cloudwatch_api_request": 0.01 / 1e3,  # ListTagsForResource, among "other API requests"
}
MEMORY_GB = 0.5  # template.yaml Globals MemorySize 512
AWS_CALL_MS = 10.0  # assumed round trip of one DynamoDB/SQS/SNS call from Lambda
# The lifecycle priced: three levels, acknowledged after the second, then resolved.
LIFECYCLE = (
    "create incident (policy; level 0 pages 1)",
    "fire one level, 1 recipient",
    "acknowledge",
    "stale timer (after an ack)",
    "resolve (2 paged, 2 notices)",
)
API_OPS = {"create incident (policy; level 0 pages 1)", "acknowledge", "resolve (2 paged, 2 notices)"}


@dataclass(frozen=True)
class CostLine:
    item: str
    quantity: float
    unit: str
    usd_per_1000: float


def per_thousand(ops: list[OpCalls], our_ms: dict[str, float]) -> list[CostLine]:
    """`our_ms`: measured in-handler time of our own code per operation (warm), by op name."""
    by_name = {o.name: o for o in ops}
    life = [by_name[name] for name in LIFECYCLE]
    api_requests = sum(1 for o in life if o.name in API_OPS)
    invocations = api_requests * 2 + (len(life) - api_requests)  # api + authorizer; worker
    gb_seconds = sum((our_ms.get(o.name, 5.0) + AWS_CALL_MS * o.total) / 1000 * MEMORY_GB for o in life)
    gb_seconds += api_requests * (2.0 / 1000) * MEMORY_GB  # the authorizer: a hash, no AWS calls
    writes = sum(o.write_units for o in life)
    index_writes = sum(o.index_units for o in life)
    reads = sum(o.read_units for o in life)
    sqs_sends = sum(o.calls.get("SendMessage", 0) for o in life)
    worker_messages = len(life) - api_requests
    sqs = sqs_sends + 2 * worker_messages  # each delivered timer: one receive and one delete (upper bound)
    sns = sum(o.calls.get("Publish", 0) + o.calls.get("PublishBatch", 0) for o in life)
    k = 1000
    return [
        CostLine(
            "API Gateway REST requests",
            api_requests,
            "requests",
            api_requests * PRICES["api_gateway_rest_request"] * k,
        ),
        CostLine("Lambda requests", invocations, "invocations", invocations * PRICES["lambda_request"] * k),
        CostLine("Lambda duration", gb_seconds, "GB-s", gb_seconds * PRICES["lambda_gb_second_arm64"] * k),
        CostLine("DynamoDB writes", writes, "WRU", writes * PRICES["dynamodb_write_unit"] * k),
        CostLine(
            "DynamoDB index writes",
            index_writes,
            "WRU",
            index_writes * PRICES["dynamodb_write_unit"] * k,
        ),
        CostLine("DynamoDB reads", reads, "RRU", reads * PRICES["dynamodb_read_unit"] * k),
        CostLine("SQS requests", sqs, "requests", sqs * PRICES["sqs_request"] * k),
        CostLine("SNS publishes", sns, "requests", sns * PRICES["sns_publish_request"] * k),
    ]


def reconciler_per_month(idle: OpCalls, duration_ms: float = 30.0) -> float:
    """The fixed cost of the safety net: one idle pass a minute, all month."""
    ticks = 60 * 24 * 30.4
    per_tick = (
        PRICES["scheduler_invocation"]
        + PRICES["lambda_request"]
        + (duration_ms + AWS_CALL_MS * idle.total) / 1000 * MEMORY_GB * PRICES["lambda_gb_second_arm64"]
        + idle.read_units * PRICES["dynamodb_read_unit"]
    )
    return ticks * per_tick


def with_http_api(lines: list[CostLine]) -> float:
    """The same lifecycle's total if the API were an HTTP API (only the request price changes)."""
    rest = next(x for x in lines if x.item == "API Gateway REST requests")
    http = rest.quantity * PRICES["api_gateway_http_request"] * 1000
    return sum(x.usd_per_1000 for x in lines) - rest.usd_per_1000 + http


@dataclass(frozen=True)
class AlertCost:
    path: str
    kind: str  # new | repeat
    lines: dict[str, float]  # item -> USD per 1,000 alerts

    @property
    def total(self) -> float:
        return sum(self.lines.values())


ALERT_ITEMS = (
    "API Gateway",
    "Lambda",
    "DynamoDB writes",
    "DynamoDB index writes",
    "DynamoDB reads",
    "SNS / SQS",
    "CloudWatch API",
)
# What carries one alert to our function, besides the calls it makes (counted in bench/calls.py):
#   PagerDuty /v2/enqueue: 1 REST request, the api function (the routing key is in the body: no
#     authorizer).
#   Alertmanager: 1 REST request, the api function, and the authorizer, counted on every alert as
#     an upper bound (API Gateway caches its answer per key for 60 s: ReauthorizeEvery).
#   CloudWatch via SNS: the alarm's publish (1 SNS request; delivery to Lambda is free), the
#     alarm_ingest function.
#   CloudWatch via EventBridge: AWS service events on the default bus are free; alarm_ingest.
_CARRIER = {
    "PagerDuty /v2/enqueue": {"rest": 1, "invocations": 1, "sns": 0},
    "Alertmanager webhook": {"rest": 1, "invocations": 2, "sns": 0},
    "CloudWatch via SNS": {"rest": 0, "invocations": 1, "sns": 1},
    "CloudWatch via EventBridge": {"rest": 0, "invocations": 1, "sns": 0},
}
OUR_ALERT_MS = 5.0  # assumed: our own code per alert, warm (section 3 measures the api routes)


def alerts_per_thousand(ops: list[OpCalls]) -> list[AlertCost]:
    """USD per 1,000 alerts, new and repeated, on each ingest path (warm containers)."""
    out = []
    k = 1000
    for o in (o for o in ops if o.group == "alert"):
        _, path, kind = (part.strip() for part in o.name.split(",", 2))
        carrier = _CARRIER[path]
        gb_seconds = (OUR_ALERT_MS + AWS_CALL_MS * o.total) / 1000 * MEMORY_GB
        gb_seconds += (carrier["invocations"] - 1) * (2.0 / 1000) * MEMORY_GB  # the authorizer
        publishes = o.calls.get("Publish", 0) + o.calls.get("PublishBatch", 0) + carrier["sns"]
        sqs = o.calls.get("SendMessage", 0)
        out.append(
            AlertCost(
                path,
                kind,
                {
                    "API Gateway": carrier["rest"] * PRICES["api_gateway_rest_request"] * k,
                    "Lambda": (
                        carrier["invocations"] * PRICES["lambda_request"]
                        + gb_seconds * PRICES["lambda_gb_second_arm64"]
                    )
                    * k,
                    "DynamoDB writes": o.write_units * PRICES["dynamodb_write_unit"] * k,
                    "DynamoDB index writes": o.index_units * PRICES["dynamodb_write_unit"] * k,
                    "DynamoDB reads": o.read_units * PRICES["dynamodb_read_unit"] * k,
                    "SNS / SQS": (publishes * PRICES["sns_publish_request"] + sqs * PRICES["sqs_request"])
                    * k,
                    "CloudWatch API": o.calls.get("ListTagsForResource", 0)
                    * PRICES["cloudwatch_api_request"]
                    * k,
                },
            )
        )
    return out
