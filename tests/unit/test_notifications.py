from dataclasses import replace

from incident_engine.domain.notifications import render_closure, render_page
from tests.unit.builders import BASE, T0, opened, policy


def test_page_follows_the_runbook_template() -> None:
    incident = opened(policy(0, 5)).incident
    subject, body = render_page(incident, 1, 0, 2, BASE)
    assert subject == "[P1] INC-20261122-001: Checkout errors"
    assert body.splitlines()[0].startswith("⚠️  P1 HIGH PRIORITY INCIDENT")
    assert "IMPACT:   5xx at 23%" in body
    assert "(escalation level 2 of 2)" in body
    assert f"Incident: {BASE}/incidents/INC-20261122-001" in body
    assert f"POST {BASE}/incidents/INC-20261122-001/acknowledge" in body


def test_subject_is_one_ascii_line_under_100_characters() -> None:
    incident = replace(opened(None).incident, title="Ünïcode\nnewline " + "x" * 200)
    subject, _ = render_page(incident, 0, 0, 1, None)
    assert len(subject) <= 99 and subject.isascii() and "\n" not in subject and subject.endswith("...")


def test_resolution_notice_names_duration_and_note() -> None:
    incident = replace(opened(None).incident, resolved_by="bob", resolution_note="rolled back")
    subject, body = render_closure(incident, "resolution", T0.replace(hour=8, minute=5), BASE)
    assert subject.startswith("[RESOLVED] INC-20261122-001")
    assert "(1h 05m 00s)" in body and "RESOLUTION: rolled back" in body and "Resolved by: bob" in body
