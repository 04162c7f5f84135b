"""CloudWatch alarm state changes, both ways AWS delivers them, to ``Alert``s.

(a) An alarm action on an SNS topic: the Lambda SNS event, whose ``Records[].Sns.Message`` is the
    alarm notification as JSON (``AlarmName``, ``AlarmArn``, ``NewStateValue``, ``Trigger``...).
(b) EventBridge's "CloudWatch Alarm State Change" event (``detail.alarmName``, ``detail.state``,
    ``resources[0]`` = the alarm ARN, ``detail.configuration``).

Single-metric, metric-math and composite alarms all parse. The alarm ARN is the dedup key;
ALARM triggers, OK resolves, INSUFFICIENT_DATA is its own action for the use case to weigh.
Tags are in the payload only when the alarm propagates them; otherwise ``Alert.alarm`` names the
alarm so the use case can read its ``incident-service`` / ``incident-severity`` tags.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from incident_engine.adapters.sources.reader import (
    Invalid,
    Obj,
    bounded_details,
    bounded_raw,
    check_depth,
    link,
    links,
    loads,
    sanitize_json,
    string_map,
)
from incident_engine.domain.alerts import (
    MAX_DESCRIPTION,
    MAX_LABELS,
    MAX_SOURCE,
    MAX_SUMMARY,
    SERVICE_TAG,
    SEVERITY_TAG,
    AlarmRef,
    Alert,
    AlertAction,
    Integration,
    Rejected,
    clean_line,
    clean_text,
    severity_from_label,
)

MAX_MESSAGE_BYTES = 256 * 1024  # SNS's own message limit
MAX_RECORDS = 10  # SNS hands Lambda one record per invocation; anything far past that is not SNS
MAX_NAME = 255  # CloudWatch's limit on alarm names
MAX_ARN = 2048
MAX_METRICS = 50
STATES = {
    "ALARM": AlertAction.TRIGGER,
    "OK": AlertAction.RESOLVE,
    "INSUFFICIENT_DATA": AlertAction.INSUFFICIENT_DATA,
}
DETAIL_TYPE = "CloudWatch Alarm State Change"
_ALARM_ARN = re.compile(r"arn:(aws[a-z-]*):cloudwatch:([a-z0-9-]{1,64}):(\d{12}):alarm:(.{1,255})")


def parse_event(event: object) -> list[Alert | Rejected]:
    """Whatever the alarm_ingest function receives: an SNS event or an EventBridge event."""
    if isinstance(event, dict) and "Records" in event:
        return parse_sns_event(event)
    if isinstance(event, dict) and "detail-type" in event:
        return [parse_eventbridge_event(event)]
    return [Rejected.of("event", "is neither an SNS notification nor a CloudWatch alarm state change")]


def parse_sns_event(event: object) -> list[Alert | Rejected]:
    """One result per record, so one bad record does not hide a good one."""
    try:
        records = Obj(event, "").array("Records", MAX_RECORDS, required=True)
    except Invalid as bad:
        return [bad.rejected()]
    return [_guard(lambda i=i, r=r: _sns_record(r, f"Records[{i}]")) for i, r in enumerate(records)]


def parse_alarm_message(message: object, path: str = "Message") -> Alert | Rejected:
    """The alarm notification itself (the JSON inside an SNS message)."""
    return _guard(lambda: _alarm_message(message, path))


def parse_eventbridge_event(event: object) -> Alert | Rejected:
    return _guard(lambda: _eventbridge(event))


def _guard(parse: Any) -> Alert | Rejected:
    try:
        alert: Alert = parse()
    except Invalid as bad:
        return bad.rejected()
    return alert


# --- SNS --------------------------------------------------------------------------------------------


def _sns_record(record: object, path: str) -> Alert:
    sns = Obj(record, path).child("Sns", required=True)
    assert sns is not None
    text = sns.string("Message", MAX_MESSAGE_BYTES, required=True)
    assert text is not None
    try:
        message = loads(text)
    except (ValueError, RecursionError):
        raise Invalid(sns.at("Message"), "is not a JSON alarm notification") from None
    return _alarm_message(message, sns.at("Message"))


def _alarm_message(message: object, path: str) -> Alert:
    check_depth(message, path)
    msg = Obj(message, path)
    name = _name(msg, "AlarmName")
    arn = msg.identity("AlarmArn", MAX_ARN, required=True)
    assert arn is not None
    partition_region_account = _arn_parts(arn, msg.at("AlarmArn"))
    action = _state(msg, "NewStateValue")
    trigger = msg.child("Trigger")
    if msg.has("AlarmRule"):
        kind, source, details = "composite", arn, _composite_sns(msg)
    elif trigger is not None and trigger.has("Metrics"):
        kind, source, details = "metric_math", *_metric_math_sns(trigger)
    else:
        kind, source, details = "single_metric", *_single_metric_sns(trigger)
    tags = _tags(msg.raw("AlarmTags"), msg.at("AlarmTags"))
    return _alert(
        arn=arn,
        name=name,
        arn_parts=partition_region_account,
        kind=kind,
        action=action,
        source=source,
        description=msg.string("AlarmDescription", MAX_DESCRIPTION),
        reason=msg.string("NewStateReason", MAX_DESCRIPTION),
        timestamp_field=(msg, "StateChangeTime"),
        details={
            "alarm_kind": kind,
            "state": msg.raw("NewStateValue"),
            "previous_state": msg.string("OldStateValue", 32),
            **details,
        },
        tags=tags,
        raw=message,
    )


def _single_metric_sns(trigger: Obj | None) -> tuple[str, dict[str, Any]]:
    if trigger is None:
        return "cloudwatch", {}
    namespace = trigger.string("Namespace", 255)
    metric = trigger.string("MetricName", 255)
    dimensions = _dimension_list(trigger, "Dimensions")
    details = {
        "namespace": namespace,
        "metric_name": metric,
        "dimensions": dimensions,
        "statistic": trigger.string("Statistic", 64) or trigger.string("ExtendedStatistic", 64),
        "comparison": trigger.string("ComparisonOperator", 64),
        "threshold": trigger.number("Threshold"),
        "period": trigger.number("Period"),
        "evaluation_periods": trigger.number("EvaluationPeriods"),
    }
    return _metric_source(namespace, dimensions), details


def _metric_math_sns(trigger: Obj) -> tuple[str, dict[str, Any]]:
    metrics: list[dict[str, Any]] = []
    source = "cloudwatch"
    for i, item in enumerate(trigger.array("Metrics", MAX_METRICS)):
        m = Obj(item, f"{trigger.at('Metrics')}[{i}]")
        entry: dict[str, Any] = {"id": m.string("Id", 255), "expression": m.string("Expression", 2048)}
        stat = m.child("MetricStat")
        metric = stat.child("Metric") if stat is not None else None
        if metric is not None:
            dims = _dimension_list(metric, "Dimensions")
            namespace = metric.string("Namespace", 255)
            entry.update(namespace=namespace, metric_name=metric.string("MetricName", 255), dimensions=dims)
            if source == "cloudwatch":
                source = _metric_source(namespace, dims)
        metrics.append({k: v for k, v in entry.items() if v is not None})
    details = {
        "metrics": metrics,
        "comparison": trigger.string("ComparisonOperator", 64),
        "threshold": trigger.number("Threshold"),
    }
    return source, details


def _composite_sns(msg: Obj) -> dict[str, Any]:
    children = []
    for i, item in enumerate(msg.array("TriggeringChildren", 100)):
        child = Obj(item, f"{msg.at('TriggeringChildren')}[{i}]")
        state = child.child("State")
        value = state.string("Value", 32) if state is not None else None
        children.append({"arn": child.string("Arn", MAX_ARN), "state": value})
    return {"alarm_rule": msg.string("AlarmRule", 10_240), "triggering_children": children}


def _dimension_list(node: Obj, key: str) -> dict[str, str]:
    """SNS writes dimensions as [{"name": .., "value": ..}]; keep them as a plain map."""
    pairs: dict[str, str] = {}
    for i, item in enumerate(node.array(key, 30)):
        dim = Obj(item, f"{node.at(key)}[{i}]")
        name, value = dim.string("name", 255, required=True), dim.string("value", 1024, required=True)
        assert name is not None and value is not None
        pairs[name] = value
    return string_map(pairs, node.at(key))


# --- EventBridge ------------------------------------------------------------------------------------


def _eventbridge(event: object) -> Alert:
    check_depth(event, "event")
    top = Obj(event, "")
    if top.string("detail-type", 128, required=True) != DETAIL_TYPE:
        raise Invalid("detail-type", f"must be {DETAIL_TYPE!r}")
    if top.string("source", 128, required=True) != "aws.cloudwatch":
        raise Invalid("source", "must be 'aws.cloudwatch'")
    resources = top.array("resources", 10, required=True)
    if not resources or not isinstance(resources[0], str) or len(resources[0]) > MAX_ARN:
        raise Invalid("resources[0]", "must be the alarm ARN")
    arn = resources[0]
    parts = _arn_parts(arn, "resources[0]")
    detail = top.child("detail", required=True)
    assert detail is not None
    name = _name(detail, "alarmName")
    state = detail.child("state", required=True)
    assert state is not None
    action = _state(state, "value")
    previous = detail.child("previousState")
    config = detail.child("configuration") or Obj({}, detail.at("configuration"))
    metrics = config.array("metrics", MAX_METRICS)
    details: dict[str, Any] = {
        "state": state.raw("value"),
        "previous_state": previous.string("value", 32) if previous else None,
        "reason_data": _reason_data(state),
    }
    if config.has("alarmRule"):
        kind, source = "composite", arn
        details["alarm_rule"] = config.string("alarmRule", 10_240)
    else:
        kind = (
            "metric_math"
            if any(isinstance(m, dict) and m.get("expression") for m in metrics)
            else "single_metric"
        )
        details["metrics"] = sanitize_json(metrics, config.at("metrics"))
        source = _eventbridge_source(config, metrics)
    details["alarm_kind"] = kind
    return _alert(
        arn=arn,
        name=name,
        arn_parts=parts,
        kind=kind,
        action=action,
        source=source,
        description=config.string("description", MAX_DESCRIPTION),
        reason=state.string("reason", MAX_DESCRIPTION),
        timestamp_field=(state, "timestamp"),
        details=details,
        tags=_tags(detail.raw("alarmTags"), detail.at("alarmTags")),
        raw=event,
    )


def _reason_data(state: Obj) -> Any:
    """CloudWatch nests the evaluation (datapoints, triggering alarms) as a JSON string."""
    text = state.string("reasonData", 16_384)
    if text is None:
        return None
    try:
        value = loads(text)
        return sanitize_json(value, state.at("reasonData"))
    except (ValueError, RecursionError, Invalid):
        return clean_text(text, 4096)


def _eventbridge_source(config: Obj, metrics: list[Any]) -> str:
    for i, item in enumerate(metrics):
        m = Obj(item, f"{config.at('metrics')}[{i}]")
        stat = m.child("metricStat")
        metric = stat.child("metric") if stat else None
        if metric is not None:
            return _metric_source(metric.string("namespace", 255), metric.mapping("dimensions"))
    return "cloudwatch"


# --- shared ---------------------------------------------------------------------------------------


def _name(node: Obj, key: str) -> str:
    name = node.identity(key, MAX_NAME, required=True)
    assert name is not None
    return name


def _state(node: Obj, key: str) -> AlertAction:
    value = node.string(key, 32, required=True)
    if value not in STATES:
        raise Invalid(node.at(key), "must be ALARM, OK or INSUFFICIENT_DATA")
    return STATES[value]


def _arn_parts(arn: str, field: str) -> tuple[str, str, str]:
    match = _ALARM_ARN.fullmatch(arn)
    if match is None:
        raise Invalid(field, "must be a CloudWatch alarm ARN")
    return match.group(1), match.group(2), match.group(3)


def _metric_source(namespace: str | None, dimensions: dict[str, str]) -> str:
    """The affected resource as CloudWatch names it: namespace and dimensions."""
    dims = ",".join(f"{k}={v}" for k, v in sorted(dimensions.items()))
    return clean_line(" ".join(p for p in (namespace, dims) if p) or "cloudwatch", MAX_SOURCE)


def _tags(value: object, field: str) -> dict[str, str] | None:
    """Propagated alarm tags, when present and well formed.

    Malformed tags are ignored rather than rejected: the alarm itself is fine, and the use case
    can still read the tags from CloudWatch. An alarm must never be lost over its decoration.
    """
    if not isinstance(value, dict):
        return None
    try:
        tags = string_map(value, field, limit=MAX_LABELS)
    except Invalid:
        return None
    return {k: v for k, v in tags.items() if not k.startswith("aws:")}


def _alert(
    *,
    arn: str,
    name: str,
    arn_parts: tuple[str, str, str],
    kind: str,
    action: AlertAction,
    source: str,
    description: str | None,
    reason: str | None,
    timestamp_field: tuple[Obj, str],
    details: dict[str, Any],
    tags: dict[str, str] | None,
    raw: object,
) -> Alert:
    _partition, region, account = arn_parts
    node, key = timestamp_field
    labels = {"alarm_name": clean_line(name, 1024), "aws_region": region, "aws_account": account}
    for key_, value in (tags or {}).items():
        if key_ not in (SERVICE_TAG, SEVERITY_TAG) and len(labels) < MAX_LABELS:
            labels.setdefault(key_, value)
    text = "\n\n".join(clean_text(part, MAX_DESCRIPTION) for part in (description, reason) if part)
    console = None
    if _partition == "aws":
        home = f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        console = f"{home}#alarmsV2:alarm/{quote(name, safe='')}"
    return Alert(
        integration=Integration.CLOUDWATCH,
        action=action,
        dedup_key=arn,
        summary=clean_line(name, MAX_SUMMARY),
        source=source,
        severity=severity_from_label((tags or {}).get(SEVERITY_TAG)),
        source_severity=(tags or {}).get(SEVERITY_TAG),
        service=(tags or {}).get(SERVICE_TAG) or None,
        description=text[:MAX_DESCRIPTION] or None,
        labels=labels,
        custom_details=bounded_details({k: v for k, v in details.items() if v is not None}, "details"),
        links=links(link(console, "CloudWatch alarm")),
        timestamp=node.timestamp(key),
        alarm=AlarmRef(arn=arn, name=name, region=region, account=account, kind=kind, tags=tags),
        raw=bounded_raw(raw),
    )
