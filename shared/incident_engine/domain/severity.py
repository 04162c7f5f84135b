"""Severities and their default SLAs, from the incident-response runbooks."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


@dataclass(frozen=True)
class Sla:
    response_minutes: int | None
    resolution_minutes: int | None


DEFAULT_SLAS: dict[Severity, Sla] = {
    Severity.P0: Sla(5, 30),
    Severity.P1: Sla(15, 120),
    Severity.P2: Sla(30, 480),
    Severity.P3: Sla(120, 1440),
    Severity.P4: Sla(None, None),
}

BANNERS: dict[Severity, str] = {
    Severity.P0: "🚨 P0 CRITICAL INCIDENT",
    Severity.P1: "⚠️  P1 HIGH PRIORITY INCIDENT",
    Severity.P2: "🔶 P2 MEDIUM PRIORITY INCIDENT",
    Severity.P3: "🔷 P3 LOW PRIORITY INCIDENT",
    Severity.P4: "ℹ️  P4 INFORMATIONAL INCIDENT",
}
