"""Alarm ingest: CloudWatch alarm state changes, from the AlarmTopic (SNS) or EventBridge, to incidents.

Thin: the receiver parses, routes and stores; an unparseable payload is parked on the DLQ by it.
"""

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from incident_engine.observability import logger, metrics
from incident_engine.wiring import services


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return asdict(services().alarm_receiver().receive(event))
