"""API handler: every REST route, through the Powertools resolver in the engine layer."""

import os
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from incident_engine.api.app import handle, openapi_json
from incident_engine.observability import logger, metrics

if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") in ("snap-start", "provisioned-concurrency"):
    # This init runs before any request waits on it (into a SnapStart snapshot, or an environment
    # kept warm; template.yaml's ApiColdStart): build every router and its models now, which an
    # on-demand environment leaves to the first request that needs each.
    openapi_json()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, context)
