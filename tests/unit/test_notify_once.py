"""A routing rule's notify targets: expanded as a level's are, paged once in the opening change."""

from __future__ import annotations

from datetime import UTC, datetime

from incident_engine.domain import engine
from incident_engine.domain.severity import Severity

NOW = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
TARGETS = ({"type": "user", "email": "a@example.com"}, {"type": "user", "email": "a@example.com"})


def test_notify_targets_get_one_page_each_keyed_by_the_incident() -> None:
    new = engine.NewIncident(title="db down", severity=Severity.P1, notify=TARGETS)
    change = engine.open_incident("INC-1", new, None, NOW, "api", None)
    [row] = change.outbox  # the same address twice is paged once
    assert row.kind == "page" and row.recipient == "a@example.com" and row.level is None
    assert row.dedup_id.startswith("INC-1/notify/") and "notified by a routing rule" in row.message
    assert change.incident.paged == (("email", "a@example.com"),)  # so it hears the resolution too
    assert [e.type for e in change.events] == ["created", "routing_notified"]


def test_a_suppressed_incident_notifies_nobody() -> None:
    new = engine.NewIncident(
        title="db down", severity=Severity.P1, notify=TARGETS, suppressed=True, suppress_reasons=("drill",)
    )
    change = engine.open_incident("INC-1", new, None, NOW, "api", None)
    assert change.outbox == [] and change.incident.paged == ()


def test_notify_recipients_are_bounded_so_the_opening_transaction_fits() -> None:
    many = tuple({"type": "user", "email": f"u{n}@example.com"} for n in range(25))
    change = engine.open_incident(
        "INC-1", engine.NewIncident(title="x", severity=Severity.P1, notify=many), None, NOW, "api", None
    )
    assert len(change.outbox) == engine.MAX_NOTIFY
    [truncated] = [e for e in change.events if e.type == "recipients_truncated"]
    assert truncated.data == {"notify": True, "paged": engine.MAX_NOTIFY, "total": 25}
