"""Hypothesis strategies for hostile input: arbitrary JSON, and real samples with one part replaced."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

from incident_engine.domain.alerts import (
    MAX_DEDUP_KEY,
    MAX_SUMMARY,
    Alert,
    AlertAction,
    Rejected,
    has_control,
)

# Text that includes what breaks naive code: control characters, line breaks, bidi overrides,
# lone surrogates (JSON's "\ud800" decodes to one), and very long runs.
hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec=None, categories=("Cc", "Cf", "Cs", "Zl", "Zp")), max_size=20),
    st.sampled_from(
        ["", " ", "\n", "ALARM", "OK", "firing", "resolved", "trigger", "4", "critical", "\ud800"]
    ),
    st.integers(min_value=0, max_value=3000).map(lambda n: "x" * n),
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**38, -(10**4000)]),  # past DynamoDB's 38 digits, and float's range
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
)

json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(hostile_text, children, max_size=5),
    ),
    max_leaves=30,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place inside a JSON value that could be replaced."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


def replaced(sample: Any, path: tuple[Any, ...], new: Any) -> Any:
    """A copy of ``sample`` with the value at ``path`` replaced (the root when path is empty)."""
    if not path:
        return new
    out = copy.deepcopy(sample)
    node = out
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = new
    return out


@st.composite
def mutated(draw: st.DrawFn, sample: Any) -> Any:
    """A real sample with one field, anywhere in it, replaced by arbitrary JSON."""
    path = draw(st.sampled_from(paths(sample)))
    return replaced(sample, path, draw(json_values))


def assert_outcome(result: object) -> None:
    """What every parser promises: an alert or a rejection that names a field, nothing else."""
    assert isinstance(result, Alert | Rejected), result
    if isinstance(result, Rejected):
        assert result.errors and all(e.field and e.message for e in result.errors)
        return
    # Whatever was accepted can be stored and shown: valid UTF-8 throughout, a one-line summary.
    stored = [result.summary, result.source, result.description, result.dedup_key]
    stored += [dict(result.labels), dict(result.custom_details), dict(result.raw)]
    json.dumps(stored, ensure_ascii=False, allow_nan=False).encode("utf-8")
    for kept in (result.custom_details, result.raw):  # bounded, to fit an incident item
        assert len(json.dumps(kept, ensure_ascii=False).encode("utf-8")) <= 64 * 1024
    assert not has_control(result.summary) and len(result.summary) <= MAX_SUMMARY
    assert result.summary or result.action is not AlertAction.TRIGGER  # a page always says something
    assert not has_control(result.dedup_key) and len(result.dedup_key) <= MAX_DEDUP_KEY
