"""Logger and metrics shared by handlers and use cases (Powertools reads service/namespace from env)."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

logger = Logger(service=os.getenv("POWERTOOLS_SERVICE_NAME", "incident-engine"))
# Built at import time, so the namespace falls back to ours when the env does not say.
metrics = Metrics(namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE", "IncidentEngine"))


def count(name: str, value: float = 1) -> None:
    # With metrics disabled (tests, the local stack) nothing is flushed, and Powertools would print
    # the pile itself every hundred values; so do not pile them up.
    if is_metrics_disabled():
        return
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
