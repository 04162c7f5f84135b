"""The Alert's shared rules: severity tables, the choice of severity, and text cleaning."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from incident_engine.domain.alerts import (
    DEFAULT_SEVERITY,
    LABEL_SEVERITIES,
    PAGERDUTY_SEVERITIES,
    Alert,
    AlertAction,
    Integration,
    choose_severity,
    clean_line,
    clean_text,
    has_control,
    severity_from_label,
)
from incident_engine.domain.severity import Severity


def alert(severity: Severity | None, integration: Integration = Integration.ALERTMANAGER) -> Alert:
    return Alert(integration, AlertAction.TRIGGER, "k", "s", "src", severity=severity)


def test_pagerduty_severities_keep_their_order() -> None:
    # PagerDuty's four words, most severe first, must map to ours in the same order.
    ours = [PAGERDUTY_SEVERITIES[w] for w in ("critical", "error", "warning", "info")]
    assert ours == sorted(ours) and len(set(ours)) == 4


@pytest.mark.parametrize("word", ["Critical", " WARNING ", "p1", "P3", "info"])
def test_label_severities_ignore_case_and_spacing(word: str) -> None:
    assert severity_from_label(word) is LABEL_SEVERITIES[word.strip().lower()]


def test_our_own_severities_map_to_themselves() -> None:
    assert all(severity_from_label(s.value) is s for s in Severity)


@pytest.mark.parametrize("word", [None, "", "sev-unknown", "P5"])
def test_unknown_severity_words_say_nothing(word: str | None) -> None:
    assert severity_from_label(word) is None


def test_severity_comes_from_the_payload_then_the_service_then_the_source_default() -> None:
    assert choose_severity(alert(Severity.P0), Severity.P3) is Severity.P0
    assert choose_severity(alert(None), Severity.P3) is Severity.P3
    assert choose_severity(alert(None), None) is DEFAULT_SEVERITY[Integration.ALERTMANAGER]


def test_insufficient_data_can_be_turned_into_a_trigger() -> None:
    base = Alert(Integration.CLOUDWATCH, AlertAction.INSUFFICIENT_DATA, "arn", "s", "src")
    assert base.as_trigger().action is AlertAction.TRIGGER
    assert base.as_trigger().dedup_key == base.dedup_key


def test_clean_line_removes_breaks_controls_and_bidi_overrides() -> None:
    assert clean_line(" a\r\n\tb\x00c \u202eevil\u2028d  ", 100) == "a bc evil d"


def test_clean_text_keeps_line_breaks() -> None:
    assert clean_text("a\r\nb\x07\nc\u2029d", 100) == "a\nb\nc\nd"


def test_long_text_is_shortened_with_a_mark() -> None:
    out = clean_line("x" * 50, 10)
    assert len(out) == 10 and out.endswith("…")


@given(st.text(), st.integers(min_value=1, max_value=200))
def test_a_clean_line_is_always_bounded_and_printable(text: str, limit: int) -> None:
    out = clean_line(text, limit)
    assert len(out) <= limit and not has_control(out)
    out.encode("utf-8")  # no lone surrogates left
