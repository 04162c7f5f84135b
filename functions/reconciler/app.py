"""Reconciler: every minute, re-arms overdue timers and republishes stuck notifications."""

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from incident_engine.observability import logger, metrics
from incident_engine.wiring import services


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = services().timer_service().reconcile()
    return asdict(report)
