"""Read template.yaml and create its tables, queues and topic on an emulated AWS.

template.yaml is the one source of truth for names, keys, indexes, queues and event sources:
the local stack and the tests both build their resources through this module, never copies.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
ACCOUNT = "123456789012"


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !GetAtt, !Sub, ...) read as their long form."""


def _tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open() as fh:
        data: dict[str, Any] = yaml.load(fh, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return data


@dataclass(frozen=True)
class ApiRoute:
    method: str
    path: str  # /incidents/{incident_id}
    public: bool

    def matches(self, method: str, path: str) -> dict[str, str] | None:
        if method.upper() != self.method and self.method != "ANY":
            return None
        pattern = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path)) + "$"
        found = re.match(pattern, path)
        return found.groupdict() if found else None


@dataclass(frozen=True)
class GatewayAnswer:
    """One of the answers API Gateway makes itself (the template's GatewayResponses)."""

    status: int
    body: str
    headers: dict[str, str]


def gateway_responses(template: dict[str, Any] | None = None) -> dict[str, GatewayAnswer]:
    """The REST API's GatewayResponses by type, as API Gateway would render them."""
    template = template or load_template()
    api = next(r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Api")
    out = {}
    for kind, spec in (api["Properties"].get("GatewayResponses") or {}).items():
        headers = {
            k: v.strip("'") for k, v in (spec.get("ResponseParameters", {}).get("Headers") or {}).items()
        }
        out[kind] = GatewayAnswer(
            int(spec.get("StatusCode") or 0), spec["ResponseTemplates"]["application/json"], headers
        )
    return out


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    module: str  # functions.<folder>.app
    handler: str
    timeout: int
    environment: dict[str, str]
    routes: tuple[ApiRoute, ...] = ()
    sqs_queue: str | None = None  # logical id of the queue it consumes
    sqs_batch_size: int = 10
    schedule: str | None = None
    schedule_input: str | None = None
    # Asynchronous sources: topics (logical ids) of SNS events, EventBridge rule patterns (JSON),
    # and what Lambda does when an invocation fails (EventInvokeConfig).
    sns_topics: tuple[str, ...] = ()
    event_patterns: tuple[str, ...] = ()
    max_retry_attempts: int = 2
    on_failure_queue: str | None = None  # logical id of the OnFailure SQS destination


@dataclass
class LocalStack:
    """What provisioning created, by logical id, and each function's resolved environment."""

    stack_name: str
    region: str
    parameters: dict[str, str] = field(default_factory=dict)
    physical: dict[str, str] = field(default_factory=dict)  # logical id -> name / url / arn
    arns: dict[str, str] = field(default_factory=dict)
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    def function(self, logical_id: str) -> FunctionSpec:
        return self.functions[logical_id]

    def environment(self) -> dict[str, str]:
        """Every function's variables merged (they agree on the shared ones)."""
        merged: dict[str, str] = {}
        for spec in self.functions.values():
            merged.update(spec.environment)
        return merged


class _Resolver:
    def __init__(self, stack: LocalStack, parameters: dict[str, str], api_url: str) -> None:
        self.stack = stack
        self.parameters = parameters
        self.api_url = api_url

    def ref(self, name: str) -> str:
        if name == "AWS::Region":
            return self.stack.region
        if name == "AWS::URLSuffix":
            return "amazonaws.com"
        if name == "AWS::AccountId":
            return ACCOUNT
        if name == "AWS::StackName":
            return self.stack.stack_name
        if name in self.parameters:
            return self.parameters[name]
        if name in self.stack.physical:
            return self.stack.physical[name]
        return name  # resources with no local counterpart (the API, layers) keep their logical id

    def get_att(self, name: str, attribute: str) -> str:
        if attribute == "Arn":
            return self.stack.arns.get(name, f"arn:aws:lambda:{self.stack.region}:{ACCOUNT}:function:{name}")
        if attribute == "QueueName":
            return self.stack.physical[name].rsplit("/", 1)[-1]
        raise KeyError(f"{name}.{attribute}")

    def value(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                return self.get_att(arg[0], arg[1])
            if key == "Fn::Sub":
                return self.sub(arg)
        if isinstance(node, dict):
            return {k: self.value(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.value(v) for v in node]
        return node

    def sub(self, text: str) -> str:
        if text.startswith("https://${IncidentApi}.execute-api"):
            return self.api_url  # the local gateway stands in for API Gateway

        def one(m: re.Match[str]) -> str:
            name = m.group(1)
            if "." in name and not name.startswith("AWS::"):
                res, att = name.split(".", 1)
                return self.get_att(res, att)
            return self.ref(name)

        return re.sub(r"\$\{([^}]+)\}", one, text)


def provision(
    session: Any,
    *,
    stack_name: str = "incident-engine-local",
    region: str = "us-east-1",
    parameters: dict[str, str] | None = None,
    api_url: str = "http://127.0.0.1:3000",
    endpoint_url: str | None = None,
    template: dict[str, Any] | None = None,
    create: bool = True,
    dynamodb_endpoint_url: str | None = None,
) -> LocalStack:
    """Create every table, queue and topic in the template; return names and function specs.

    DynamoDB is reached at dynamodb_endpoint_url when given (`make run` answers it from an emulator
    process of its own), else at endpoint_url like the rest.

    With create=False nothing is created: the resources a stack of that name already made on the
    endpoint (`make run`'s) are looked up instead, and LookupError names the first one missing.
    """
    tpl = template or load_template()
    resources: dict[str, Any] = tpl["Resources"]
    params = {name: str(spec.get("Default", "")) for name, spec in tpl.get("Parameters", {}).items()}
    params.update(parameters or {})
    stack = LocalStack(stack_name=stack_name, region=region, parameters=params)
    resolver = _Resolver(stack, params, api_url)
    dynamodb_endpoint_url = dynamodb_endpoint_url or endpoint_url
    dynamodb = session.client("dynamodb", region_name=region, endpoint_url=dynamodb_endpoint_url)
    sqs = session.client("sqs", region_name=region, endpoint_url=endpoint_url)
    sns = session.client("sns", region_name=region, endpoint_url=endpoint_url)

    def physical_name(logical_id: str) -> str:
        return f"{stack_name}-{logical_id}"

    def missing(logical_id: str, name: str, endpoint: str | None) -> LookupError:
        where = endpoint or "the emulated AWS"
        return LookupError(f"{logical_id} ({name}) does not exist on {where}: is the local stack running?")

    for logical_id, res in resources.items():
        if res["Type"] == "AWS::DynamoDB::Table" and not create:
            name = physical_name(logical_id)
            try:
                arn = dynamodb.describe_table(TableName=name)["Table"]["TableArn"]
            except dynamodb.exceptions.ResourceNotFoundException:
                raise missing(logical_id, name, dynamodb_endpoint_url) from None
            stack.physical[logical_id], stack.arns[logical_id] = name, arn
        elif res["Type"] == "AWS::DynamoDB::Table":
            props = res["Properties"]
            args: dict[str, Any] = {
                "TableName": physical_name(logical_id),
                "AttributeDefinitions": props["AttributeDefinitions"],
                "KeySchema": props["KeySchema"],
                "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
            }
            if props.get("GlobalSecondaryIndexes"):
                args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
            dynamodb.create_table(**args)
            stack.physical[logical_id] = args["TableName"]
            stack.arns[logical_id] = f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{args['TableName']}"

    # Queues: dead-letter targets first, so a redrive policy can name them.
    queues = [(lid, r) for lid, r in resources.items() if r["Type"] == "AWS::SQS::Queue"]
    queues.sort(key=lambda item: "RedrivePolicy" in item[1].get("Properties", {}))
    for logical_id, res in queues:
        props = resolver.value(res.get("Properties", {}))
        attributes = {
            k: str(props[k])
            for k in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds")
            if k in props
        }
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        if create:
            url = sqs.create_queue(QueueName=physical_name(logical_id), Attributes=attributes)["QueueUrl"]
        else:
            try:
                url = sqs.get_queue_url(QueueName=physical_name(logical_id))["QueueUrl"]
            except sqs.exceptions.QueueDoesNotExist:
                raise missing(logical_id, physical_name(logical_id), endpoint_url) from None
        stack.physical[logical_id] = url
        stack.arns[logical_id] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]

    for logical_id, res in resources.items():
        if res["Type"] == "AWS::SNS::Topic":
            if create:
                arn = sns.create_topic(Name=physical_name(logical_id))["TopicArn"]
            else:
                arn = f"arn:aws:sns:{region}:{ACCOUNT}:{physical_name(logical_id)}"
                try:
                    sns.get_topic_attributes(TopicArn=arn)
                except sns.exceptions.NotFoundException:
                    raise missing(logical_id, physical_name(logical_id), endpoint_url) from None
            stack.physical[logical_id] = arn
            stack.arns[logical_id] = arn

    # Subscriptions of queues to topics, with their filter policies, as CloudFormation makes them.
    for logical_id, res in resources.items():
        if res["Type"] != "AWS::SNS::Subscription":
            continue
        props = resolver.value(res["Properties"])
        options: dict[str, str] = {}
        if "FilterPolicy" in props:
            options["FilterPolicy"] = json.dumps(props["FilterPolicy"])
        if "RawMessageDelivery" in props:
            options["RawMessageDelivery"] = str(props["RawMessageDelivery"]).lower()
        arn = sns.subscribe(
            TopicArn=props["TopicArn"],
            Protocol=props["Protocol"],
            Endpoint=props["Endpoint"],
            Attributes=options,
        )["SubscriptionArn"]
        stack.physical[logical_id] = arn

    global_env = tpl.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    global_timeout = int(tpl.get("Globals", {}).get("Function", {}).get("Timeout", 3))
    for logical_id, res in resources.items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        props = res["Properties"]
        env = {**global_env, **props.get("Environment", {}).get("Variables", {})}
        # The template declares the endpoints empty (real AWS) so that `sam local invoke` can be
        # pointed elsewhere; here they are the emulators, or unset when moto runs in-process.
        for name, url in (
            ("AWS_ENDPOINT_URL", endpoint_url),
            ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_endpoint_url),
        ):
            if name in env and url:
                env[name] = url
            elif name in env:
                del env[name]
        folder = Path(props["CodeUri"]).name
        routes, queue, batch, schedule, schedule_input = [], None, 10, None, None
        topics: list[str] = []
        patterns: list[str] = []
        for event in props.get("Events", {}).values():
            ep = event.get("Properties", {})
            if event["Type"] == "Api":
                public = ep.get("Auth", {}).get("Authorizer") == "NONE"
                routes.append(ApiRoute(ep["Method"].upper(), ep["Path"], public))
            elif event["Type"] == "SQS":
                queue = ep["Queue"]["Fn::GetAtt"][0]
                batch = int(ep.get("BatchSize", 10))
            elif event["Type"] in ("ScheduleV2", "Schedule"):
                schedule = ep["ScheduleExpression"]
                schedule_input = ep.get("Input")
            elif event["Type"] == "SNS":
                topics.append(ep["Topic"]["Ref"])
            elif event["Type"] == "EventBridgeRule":
                patterns.append(json.dumps(ep["Pattern"]))
        invoke_config = props.get("EventInvokeConfig", {})
        on_failure = invoke_config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        stack.functions[logical_id] = FunctionSpec(
            logical_id=logical_id,
            module=f"functions.{folder}.app",
            handler=props["Handler"].split(".", 1)[1],
            timeout=int(props.get("Timeout", global_timeout)),
            environment={k: str(resolver.value(v)) for k, v in env.items()},
            routes=tuple(routes),
            sqs_queue=queue,
            sqs_batch_size=batch,
            schedule=schedule,
            schedule_input=schedule_input,
            sns_topics=tuple(topics),
            event_patterns=tuple(patterns),
            max_retry_attempts=int(invoke_config.get("MaximumRetryAttempts", 2)),
            on_failure_queue=on_failure["Fn::GetAtt"][0] if on_failure else None,
        )
    stack.outputs = {name: str(resolver.value(o["Value"])) for name, o in tpl.get("Outputs", {}).items()}
    return stack
