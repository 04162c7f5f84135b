"""The one ``Alert`` every source is parsed into, and the tables that map sources' severities to ours.

Parsers (``adapters/sources/``) turn a CloudWatch alarm, a PagerDuty event or an Alertmanager
alert into an ``Alert``, or into a ``Rejected`` that names the offending field. Routing rules and
the ingest use case see only ``Alert``s, so they never branch on where an alert came from.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from incident_engine.domain.severity import Severity

# Bounds shared by every source. A field over its bound is rejected when it is an identity
# (dedup key, label key) and shortened when it is prose (descriptions, label values), so a
# chatty monitor loses words, never the alert.
MAX_SUMMARY = 1024  # PagerDuty's own limit for payload.summary
MAX_DESCRIPTION = 10_000
MAX_SOURCE = 1024
MAX_DEDUP_KEY = 512  # room for any alarm ARN (PagerDuty's own limit, 255, is checked there)
MAX_LABELS = 64
MAX_LABEL_KEY = 128
MAX_LABEL_VALUE = 1024
MAX_LINKS = 20
MAX_URL = 2048
MAX_LINK_TEXT = 256
MAX_DEPTH = 32  # nesting of any JSON we accept (custom details included)
# What an alert carries must fit an incident item (DynamoDB's 400 KB) with room to spare.
MAX_RAW_BYTES = 32 * 1024  # the source payload kept on the alert
MAX_DETAILS_BYTES = 32 * 1024  # custom details, as JSON
RAW_HEAD_BYTES = 8 * 1024  # what is kept, as text, of a payload or details over their bound


# The alarm tags that steer a CloudWatch alarm to a service and a severity.
SERVICE_TAG = "incident-service"
SEVERITY_TAG = "incident-severity"


class AlertAction(StrEnum):
    TRIGGER = "trigger"
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"
    # CloudWatch's INSUFFICIENT_DATA: neither a problem nor a recovery. The use case ignores it
    # unless the service asks for it to trigger (``Alert.as_trigger``).
    INSUFFICIENT_DATA = "insufficient_data"


class Integration(StrEnum):
    """Which door an alert came in by."""

    CLOUDWATCH = "cloudwatch"
    PAGERDUTY = "pagerduty"
    ALERTMANAGER = "alertmanager"
    HEARTBEAT = "heartbeat"
    API = "api"


@dataclass(frozen=True)
class Link:
    href: str
    text: str | None = None


@dataclass(frozen=True)
class Image:
    src: str
    href: str | None = None
    alt: str | None = None


@dataclass(frozen=True)
class AlarmRef:
    """The CloudWatch alarm behind an alert, so the use case can read its tags.

    ``tags`` holds the tags CloudWatch put in the payload (tag propagation); None means the
    payload carried none and the use case must look them up (``incident-service``,
    ``incident-severity``) or fall back to the services' ``alarm_name_prefixes``.
    """

    arn: str
    name: str
    region: str
    account: str
    kind: str  # single_metric | metric_math | composite
    tags: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Alert:
    integration: Integration
    action: AlertAction
    dedup_key: str
    summary: str  # one line, cleaned; "" for acknowledge/resolve events that carry none
    source: str  # the affected system as the sender names it (host, instance, alarm)
    severity: Severity | None = None  # None: the source said nothing we map; see choose_severity
    source_severity: str | None = None  # the sender's own word, e.g. "critical", "warning"
    service: str | None = None  # a service named by the payload (tag, label); the use case resolves
    team: str | None = None
    description: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    custom_details: Mapping[str, Any] = field(default_factory=dict)
    links: tuple[Link, ...] = ()
    images: tuple[Image, ...] = ()
    timestamp: datetime | None = None  # when the source detected it, if it said
    alarm: AlarmRef | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)  # bounded; see bounded_raw

    def as_trigger(self) -> Alert:
        """An INSUFFICIENT_DATA alarm the service wants treated as a problem."""
        return replace(self, action=AlertAction.TRIGGER)


@dataclass(frozen=True)
class FieldError:
    field: str  # where, as a path: "payload.summary", "alerts[2].labels.severity"
    message: str


@dataclass(frozen=True)
class Rejected:
    """Why a payload is not an alert. Never empty; the first error is the headline."""

    errors: tuple[FieldError, ...]

    @property
    def field(self) -> str:
        return self.errors[0].field

    @property
    def message(self) -> str:
        return self.errors[0].message

    @staticmethod
    def of(field_: str, message: str) -> Rejected:
        return Rejected((FieldError(field_, message),))


# --- severities -------------------------------------------------------------------------------
#
# One place for every mapping from a sender's severity to ours (P0 critical ... P4 informational,
# see severity.py and the runbooks' matrix).
#
# | sender says                                         | ours |
# |-----------------------------------------------------|------|
# | PagerDuty critical                                  | P0   |
# | PagerDuty error                                     | P1   |
# | PagerDuty warning                                   | P2   |
# | PagerDuty info                                      | P4   |
# | severity label / incident-severity tag: critical, crit, fatal, emergency, disaster, page | P0 |
# |   high, error, err, major                           | P1   |
# |   warning, warn, medium, average                    | P2   |
# |   low, minor                                        | P3   |
# |   info, informational, notice, none, debug, ok      | P4   |
# |   P0..P4 (any case)                                 | same |
# | anything else, or absent                            | the service's default, else DEFAULT_SEVERITY |

PAGERDUTY_SEVERITIES: dict[str, Severity] = {
    "critical": Severity.P0,
    "error": Severity.P1,
    "warning": Severity.P2,
    "info": Severity.P4,
}

LABEL_SEVERITIES: dict[str, Severity] = {
    **{word: Severity.P0 for word in ("critical", "crit", "fatal", "emergency", "disaster", "page")},
    **{word: Severity.P1 for word in ("high", "error", "err", "major")},
    **{word: Severity.P2 for word in ("warning", "warn", "medium", "average")},
    **{word: Severity.P3 for word in ("low", "minor")},
    **{word: Severity.P4 for word in ("info", "informational", "notice", "none", "debug", "ok")},
    **{s.value.lower(): s for s in Severity},
}

# When neither the payload nor the service says: an alarm is somebody's threshold crossed, worth
# the operations team's attention (P2, 30 minutes), not an all-hands.
DEFAULT_SEVERITY: dict[Integration, Severity] = {
    Integration.CLOUDWATCH: Severity.P2,
    Integration.ALERTMANAGER: Severity.P2,
    Integration.PAGERDUTY: Severity.P2,  # PagerDuty requires one; only acks/resolves lack it
    Integration.HEARTBEAT: Severity.P2,
    Integration.API: Severity.P2,
}


def severity_from_label(value: str | None) -> Severity | None:
    """Alertmanager's ``severity`` label or an alarm's ``incident-severity`` tag, through the table."""
    if value is None:
        return None
    return LABEL_SEVERITIES.get(value.strip().lower())


def choose_severity(alert: Alert, service_default: Severity | None) -> Severity:
    """The payload's severity, else the service's default, else the integration's default."""
    return alert.severity or service_default or DEFAULT_SEVERITY[alert.integration]


# --- text -------------------------------------------------------------------------------------

# Characters that reorder or hide text (bidi overrides, isolates) are dropped, so a summary
# shows what it says; line and paragraph separators count as line breaks.
_BIDI = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_BREAKS = frozenset("\n\r\u2028\u2029\x0b\x0c\x85")


def _drop(ch: str) -> bool:
    return ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cs")


def clean_line(text: str, limit: int) -> str:
    """One line: control characters and line breaks become single spaces, ends trimmed, bounded."""
    out: list[str] = []
    for ch in text:
        if ch in _BREAKS or ch == "\t":
            ch = " "
        elif _drop(ch):
            continue
        if ch == " " and (not out or out[-1] == " "):
            continue
        out.append(ch)
    return shorten("".join(out).strip(), limit)


def clean_text(text: str, limit: int) -> str:
    """Multi-line prose: line breaks kept (as \\n), other control characters dropped, bounded."""
    text = text.replace("\r\n", "\n")
    out = [("\n" if ch in _BREAKS else ch) for ch in text if ch in _BREAKS or ch == "\t" or not _drop(ch)]
    return shorten("".join(out).strip(), limit)


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def has_control(text: str) -> bool:
    """Identities (keys, dedup keys) must be printable as they are: no cleaning may change them."""
    return any(ch in _BREAKS or ch == "\t" or _drop(ch) for ch in text)
