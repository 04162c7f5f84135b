"""CloudWatch alarms of template.yaml, evaluated on the local stack.

moto stores alarms but never evaluates them. This reads every AWS::CloudWatch::Alarm of the
template, creates it on the emulator (PutMetricAlarm), and judges it as CloudWatch would: over its
last EvaluationPeriods complete periods, from the metric data the local functions put there
(local/metrics.py), with DatapointsToAlarm and TreatMissingData. A change of state is set on the
emulator (SetAlarmState, so DescribeAlarms shows it), published to the alarm's actions
(EngineHealthTopic) in CloudWatch's notification shape, and reported to the stack's log.

Time is compressed as the reconciler's is: the template's periods are written for a reconciler
that runs every minute, and locally it runs every RECONCILE_SECONDS, so every period is scaled by
RECONCILE_SECONDS / 60 (at least a second). A period that began before the evaluator started is
not judged: a new alarm starts INSUFFICIENT_DATA, as on AWS, until it has enough periods.

What AWS publishes by itself is stood in for where the emulator can: the depth of each queue an
alarm names (AWS/SQS ApproximateNumberOfMessagesVisible) is read and put every round. SQS's
ApproximateAgeOfOldestMessage cannot be read without receiving messages, so an alarm on it sees
no data locally (treated as its TreatMissingData says).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from local.template import ACCOUNT, LocalStack, _Resolver, load_template

STATISTICS = ("Sum", "Maximum", "Minimum", "SampleCount", "Average")
COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
EXPRESSION = re.compile(r"\s*(MAX|MIN|SUM|AVG)\(\[\s*([A-Za-z0-9_,\s]+)\]\)\s*")
# What AWS/SQS metrics mean, in GetQueueAttributes' terms (those the emulator can answer).
SQS_ATTRIBUTE = {"ApproximateNumberOfMessagesVisible": "ApproximateNumberOfMessages"}


@dataclass(frozen=True)
class MetricStat:
    id: str
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str
    period: int  # the template's seconds


@dataclass(frozen=True)
class AlarmSpec:
    logical_id: str
    name: str
    description: str
    stats: tuple[MetricStat, ...]
    expression: tuple[str, tuple[str, ...]] | None  # (function, metric ids) of a metric-math alarm
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: str
    treat_missing: str
    alarm_actions: tuple[str, ...]
    ok_actions: tuple[str, ...]
    properties: dict[str, Any]  # resolved, for PutMetricAlarm


def alarm_specs(stack: LocalStack, template: dict[str, Any] | None = None) -> list[AlarmSpec]:
    """Every alarm of the template, resolved against the local stack. Raises ValueError for an
    alarm this evaluator cannot judge, so that such an alarm is never silently ignored."""
    tpl = template or load_template()
    resolver = _Resolver(stack, stack.parameters, "")
    specs = []
    for logical_id, res in tpl["Resources"].items():
        if res["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props: dict[str, Any] = resolver.value(res["Properties"])
        stats: list[MetricStat] = []
        expression = None
        if "Metrics" in props:
            for query in props["Metrics"]:
                if "MetricStat" in query:
                    ms = query["MetricStat"]
                    metric = ms["Metric"]
                    stats.append(
                        MetricStat(
                            query["Id"],
                            metric["Namespace"],
                            metric["MetricName"],
                            tuple((d["Name"], str(d["Value"])) for d in metric.get("Dimensions", [])),
                            ms["Stat"],
                            int(ms["Period"]),
                        )
                    )
                elif "Expression" in query:
                    found = EXPRESSION.fullmatch(query["Expression"])
                    if found is None:
                        unknown = query["Expression"]
                        raise ValueError(f"{logical_id}: the local evaluator cannot compute {unknown}")
                    expression = (found.group(1), tuple(i.strip() for i in found.group(2).split(",")))
        else:
            stats.append(
                MetricStat(
                    "m",
                    props["Namespace"],
                    props["MetricName"],
                    tuple((d["Name"], str(d["Value"])) for d in props.get("Dimensions", [])),
                    props["Statistic"],
                    int(props["Period"]),
                )
            )
        for stat in stats:
            if stat.stat not in STATISTICS:
                raise ValueError(f"{logical_id}: the local evaluator has no statistic {stat.stat}")
        evaluation_periods = int(props["EvaluationPeriods"])
        specs.append(
            AlarmSpec(
                logical_id=logical_id,
                name=f"{stack.stack_name}-{logical_id}",
                description=str(props.get("AlarmDescription", "")).strip(),
                stats=tuple(stats),
                expression=expression,
                period=max(s.period for s in stats),
                evaluation_periods=evaluation_periods,
                datapoints_to_alarm=int(props.get("DatapointsToAlarm", evaluation_periods)),
                threshold=float(props["Threshold"]),
                comparison=props["ComparisonOperator"],
                treat_missing=props.get("TreatMissingData", "missing"),
                alarm_actions=tuple(props.get("AlarmActions", [])),
                ok_actions=tuple(props.get("OKActions", [])),
                properties=props,
            )
        )
    return specs


def _combine(function: str, values: list[float]) -> float:
    if function == "MAX":
        return max(values)
    if function == "MIN":
        return min(values)
    if function == "SUM":
        return sum(values)
    return sum(values) / len(values)


def _statistic(stat: str, points: list[dict[str, float]]) -> float:
    if stat == "Sum":
        return sum(p["Sum"] for p in points)
    if stat == "Maximum":
        return max(p["Maximum"] for p in points)
    if stat == "Minimum":
        return min(p["Minimum"] for p in points)
    count = sum(p["SampleCount"] for p in points)
    if stat == "SampleCount":
        return count
    return sum(p["Sum"] for p in points) / count if count else 0.0


class LocalAlarms:
    def __init__(
        self,
        session: Any,
        stack: LocalStack,
        endpoint_url: str | None,
        scale: float,
        log: Callable[[str], None],
        template: dict[str, Any] | None = None,
    ) -> None:
        self.stack = stack
        self.scale = scale
        self.log = log
        self.specs = alarm_specs(stack, template)
        where = {"endpoint_url": endpoint_url, "region_name": stack.region}  # None: moto in-process
        self.cloudwatch = session.client("cloudwatch", **where)
        self.sns = session.client("sns", **where)
        self.sqs = session.client("sqs", **where)
        self.started = datetime.now(UTC)
        self.state = {spec.name: "INSUFFICIENT_DATA" for spec in self.specs}
        queue_urls = {url.rsplit("/", 1)[-1]: url for url in stack.physical.values() if "/" in url}
        # (queue name, url, metric name) for every SQS metric an alarm reads
        self.queue_metrics = sorted(
            {
                (value, queue_urls[value], stat.name)
                for spec in self.specs
                for stat in spec.stats
                if stat.namespace == "AWS/SQS" and stat.name in SQS_ATTRIBUTE
                for name, value in stat.dimensions
                if name == "QueueName" and value in queue_urls
            }
        )
        for spec in self.specs:
            self.cloudwatch.put_metric_alarm(
                AlarmName=spec.name, **{k: v for k, v in spec.properties.items() if k != "AlarmName"}
            )
            # A new alarm has no state yet; moto would start it OK.
            self.cloudwatch.set_alarm_state(
                AlarmName=spec.name, StateValue="INSUFFICIENT_DATA", StateReason="created by the local stack"
            )

    def seconds(self, template_seconds: int) -> int:
        return max(1, round(template_seconds * self.scale))

    @property
    def poll_seconds(self) -> float:
        shortest = min((self.seconds(s.period) for s in self.specs), default=60)
        return min(10.0, max(0.5, shortest / 2))

    def poll(self) -> bool:
        """One round: put the queue metrics, then judge every alarm. Never busy (False)."""
        now = datetime.now(UTC)
        self._put_queue_metrics(now)
        for spec in self.specs:
            self.judge(spec, now)
        return False

    def _put_queue_metrics(self, now: datetime) -> None:
        for queue_name, url, metric in self.queue_metrics:
            attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[SQS_ATTRIBUTE[metric]])
            value = float(attrs["Attributes"].get(SQS_ATTRIBUTE[metric], 0))
            self.cloudwatch.put_metric_data(
                Namespace="AWS/SQS",
                MetricData=[
                    {
                        "MetricName": metric,
                        "Dimensions": [{"Name": "QueueName", "Value": queue_name}],
                        "Timestamp": now,
                        "Value": value,
                        "Unit": "Count",
                    }
                ],
            )

    def _values(self, stat: MetricStat, starts: list[datetime], width: timedelta) -> list[float | None]:
        """The statistic in each period [start, start + width), None where there is no data."""
        # One call at one-second resolution over the whole window, grouped into periods here:
        # moto's own periods start at the first datum, not on the period's boundary.
        points = self.cloudwatch.get_metric_statistics(
            Namespace=stat.namespace,
            MetricName=stat.name,
            Dimensions=[{"Name": n, "Value": v} for n, v in stat.dimensions],
            StartTime=min(starts),
            EndTime=max(starts) + width,
            Period=1,
            Statistics=list(STATISTICS[:4]),
        )["Datapoints"]
        values: list[float | None] = []
        for start in starts:
            inside = [p for p in points if start <= p["Timestamp"] < start + width]
            values.append(_statistic(stat.stat, inside) if inside else None)
        return values

    def judge(self, spec: AlarmSpec, now: datetime) -> str:
        width = self.seconds(spec.period)
        end = math.floor(now.timestamp() / width) * width  # the last complete period ends here
        starts = [datetime.fromtimestamp(end - (i + 1) * width, UTC) for i in range(spec.evaluation_periods)]
        if min(starts) < self.started:
            return self.state[spec.name]  # not enough periods since the stack started
        by_id = {s.id: self._values(s, starts, timedelta(seconds=width)) for s in spec.stats}
        if spec.expression is None:
            values = next(iter(by_id.values()))
        else:
            function, ids = spec.expression
            values = []
            for n in range(len(starts)):
                present = [v for i in ids if (v := by_id[i][n]) is not None]
                values.append(_combine(function, present) if present else None)
        compare = COMPARE[spec.comparison]
        breaching = 0
        judged = 0
        for value in values:
            if value is None:
                if spec.treat_missing in ("breaching", "notBreaching"):
                    judged += 1
                    breaching += spec.treat_missing == "breaching"
                continue
            judged += 1
            breaching += compare(value, spec.threshold)
        if judged == 0:
            new = "INSUFFICIENT_DATA" if spec.treat_missing == "missing" else self.state[spec.name]
        else:
            new = "ALARM" if breaching >= spec.datapoints_to_alarm else "OK"
        if new != self.state[spec.name]:
            shown = ", ".join("no data" if v is None else f"{v:g}" for v in reversed(values))
            reason = (
                f"{breaching} of the last {len(values)} periods of {width} s breached "
                f"({spec.comparison} {spec.threshold:g}; newest last: {shown})"
            )
            self._change(spec, self.state[spec.name], new, reason, now)
        return new

    def _change(self, spec: AlarmSpec, old: str, new: str, reason: str, now: datetime) -> None:
        self.state[spec.name] = new
        self.cloudwatch.set_alarm_state(AlarmName=spec.name, StateValue=new, StateReason=reason[:1023])
        if "ALARM" in (old, new):
            self.log(f"[alarm] {spec.name}: {old} -> {new}: {reason}")
        actions = spec.alarm_actions if new == "ALARM" else spec.ok_actions if new == "OK" else ()
        notice = {
            "AlarmName": spec.name,
            "AlarmDescription": spec.description,
            "AWSAccountId": ACCOUNT,
            "NewStateValue": new,
            "NewStateReason": reason,
            "StateChangeTime": now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000",
            "Region": self.stack.region,
            "AlarmArn": f"arn:aws:cloudwatch:{self.stack.region}:{ACCOUNT}:alarm:{spec.name}",
            "OldStateValue": old,
            "Trigger": {
                "Period": spec.period,
                "EvaluationPeriods": spec.evaluation_periods,
                "ComparisonOperator": spec.comparison,
                "Threshold": spec.threshold,
                "TreatMissingData": spec.treat_missing,
                "Metrics": [
                    {"Id": s.id, "Namespace": s.namespace, "MetricName": s.name, "Stat": s.stat}
                    for s in spec.stats
                ],
            },
        }
        for topic in actions:
            self.sns.publish(
                TopicArn=topic, Subject=f'{new}: "{spec.name}"'[:100], Message=json.dumps(notice)
            )
