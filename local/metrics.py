"""Metrics of the local functions reach the emulator's CloudWatch, as they reach CloudWatch on AWS.

On Lambda, Powertools prints each invocation's metrics as one Embedded Metric Format line and
CloudWatch Logs turns it into metric data; Lambda itself counts failed invocations as the
AWS/Lambda `Errors` metric. Locally there are no log-to-metric pipes, so a process that calls
`install()` hands each EMF document straight to PutMetricData on the emulator, and a failed
invocation (local/runtime.py) is counted as `Errors` with the function's name. The local alarm
evaluator (local/alarms.py) then reads them with GetMetricStatistics, as CloudWatch alarms would.

The reconciler's and the pollers' processes install it; the API's containers do not (none of the
alarms reads their metrics, and it keeps a request free of the extra call).
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from typing import Any

_client: Any = None


def _put(namespace: str, data: list[dict[str, Any]]) -> None:
    if _client is None or not data:
        return
    try:
        for start in range(0, len(data), 20):
            _client.put_metric_data(Namespace=namespace, MetricData=data[start : start + 20])
    except Exception as exc:  # metrics must never fail the function (the emulator stopping, say)
        print(f"[metrics] not recorded: {exc!r}", file=sys.stderr, flush=True)


def emf_to_metric_data(document: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """(namespace, MetricData) pairs from one EMF document, as CloudWatch Logs extracts them."""
    meta = document.get("_aws", {})
    at = datetime.fromtimestamp(int(meta.get("Timestamp", 0)) / 1000, UTC)
    out: list[tuple[str, list[dict[str, Any]]]] = []
    for directive in meta.get("CloudWatchMetrics", []):
        dimension_sets = directive.get("Dimensions") or [[]]
        data: list[dict[str, Any]] = []
        for names in dimension_sets:
            dimensions = [{"Name": n, "Value": str(document[n])} for n in names if n in document]
            for metric in directive.get("Metrics", []):
                raw = document.get(metric["Name"])
                values = raw if isinstance(raw, list) else [raw]
                for value in values:
                    if value is None:
                        continue
                    data.append(
                        {
                            "MetricName": metric["Name"],
                            "Dimensions": dimensions,
                            "Timestamp": at,
                            "Value": float(value),
                            "Unit": metric.get("Unit", "None"),
                        }
                    )
        out.append((directive["Namespace"], data))
    return out


def function_error(function_name: str) -> None:
    """What Lambda records for an invocation that raised: one AWS/Lambda Errors datum."""
    _put(
        "AWS/Lambda",
        [
            {
                "MetricName": "Errors",
                "Dimensions": [{"Name": "FunctionName", "Value": function_name}],
                "Timestamp": datetime.now(UTC),
                "Value": 1.0,
                "Unit": "Count",
            }
        ],
    )


def install(region: str) -> None:
    """In this process: metrics on, and every flushed EMF document sent to the emulator."""
    global _client
    import boto3
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
        AmazonCloudWatchEMFProvider,
    )

    # AWS_ENDPOINT_URL (the emulator) is in this process's environment, as for the functions.
    _client = boto3.client("cloudwatch", region_name=region)
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "false"

    def flush_metrics(self: Any, raise_on_empty_metrics: bool = False) -> None:
        if not self.metric_set or is_metrics_disabled():
            return
        document = self.serialize_metric_set()
        self.clear_metrics()
        for namespace, data in emf_to_metric_data(document):
            _put(namespace, data)

    AmazonCloudWatchEMFProvider.flush_metrics = flush_metrics  # type: ignore[method-assign]
    from local import runtime

    runtime.on_function_error = function_error
