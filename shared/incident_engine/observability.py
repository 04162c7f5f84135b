"""Logger and metrics shared by handlers and use cases (Powertools reads service/namespace from env)."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger(service=os.getenv("POWERTOOLS_SERVICE_NAME", "incident-engine"))
# Built at import time, so the namespace falls back to ours when the env does not say.
metrics = Metrics(namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE", "IncidentEngine"))


def count(name: str, value: float = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
