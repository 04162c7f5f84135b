"""Logger and metrics shared by handlers and use cases (Powertools reads service/namespace from env).

Nothing secret or personal reaches a log line: every line the logger writes passes through
``redact`` (API tokens, bearer credentials, integration keys, webhook secrets and URLs, signed
page links, e-mail addresses, phone numbers), and the code logs ids rather than such values in
the first place. Metrics carry names and counts only, never a dimension from a request.
"""

from __future__ import annotations

import logging
import os
import re

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

MASK = "***"


def _email(match: re.Match[str]) -> str:
    return f"{match.group(1)[:1]}{MASK}@{match.group(2)}"


def _phone(match: re.Match[str]) -> str:
    digits = match.group(0)
    return f"+{MASK}{digits[-2:]}"


# Order matters: whole credentials first, then what may sit inside them (a URL holds an e-mail).
_PATTERNS: tuple[tuple[re.Pattern[str], str | object], ...] = (
    # "Authorization: Bearer x", "bearer x" in any casing, and JSON's "authorization": "Bearer x"
    (re.compile(r"(?i)(bearer)(\s+|%20)[^\s\"',;]+"), rf"\1\2{MASK}"),
    (re.compile(r"(?i)(\"authorization\"\s*:\s*\")[^\"]*"), rf"\1{MASK}"),
    # API tokens, webhook signing secrets (and our signatures), by their prefixes
    (re.compile(r"\biet_[A-Za-z0-9_-]+"), f"iet_{MASK}"),
    (re.compile(r"\bwhsec_[A-Za-z0-9_-]+"), f"whsec_{MASK}"),
    (re.compile(r"(?i)\b(sha256=)[0-9a-f]{16,}"), rf"\1{MASK}"),
    # a URL's user:password@, path and query (a Slack webhook's path is its secret)
    (re.compile(r"(?i)\b(https?://)(?:[^/\s@\"']+@)?([A-Za-z0-9.\-\[\]:]+)[/?][^\s\"'<>]*"), rf"\1\2/{MASK}"),
    # integration keys (32 hex characters, PagerDuty's shape) and routing_key values
    (re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{32}(?![0-9A-Za-z])"), MASK),
    (re.compile(r"(?i)(\"?routing_key\"?\s*[:=]\s*\"?)[^\s\",}]+"), rf"\1{MASK}"),
    # the signed one-click links in pages: /a/<token>
    (re.compile(r"(/a/)[A-Za-z0-9._~%-]{16,}"), rf"\1{MASK}"),
    # e-mail addresses, phone numbers (E.164, as contacts are stored)
    (re.compile(r"([A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"), _email),
    (re.compile(r"(?<![\w+])\+[1-9]\d{6,14}(?!\d)"), _phone),
)


def redact(text: str) -> str:
    """``text`` with every secret and personal value this engine handles masked."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)  # type: ignore[arg-type]
    return text


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON lines, masked as a whole: the message, extra keys and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


logger = Logger(
    service=os.getenv("POWERTOOLS_SERVICE_NAME", "incident-engine"), logger_formatter=RedactingFormatter()
)
# Built at import time, so the namespace falls back to ours when the env does not say.
metrics = Metrics(namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE", "IncidentEngine"))


def count(name: str, value: float = 1) -> None:
    # With metrics disabled (tests, the local stack) nothing is flushed, and Powertools would print
    # the pile itself every hundred values; so do not pile them up.
    if is_metrics_disabled():
        return
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
