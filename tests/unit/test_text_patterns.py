"""The patterns the API's document states for names and texts say what the validators do."""

from __future__ import annotations

import re

from incident_engine.domain.text import (
    BLOCK_PATTERN,
    LINE_PATTERN,
    NAME_PATTERN,
    TEXT_PATTERN,
    block_problem,
    line_problem,
)

# The BMP but its surrogates: those and the private use planes beyond it are the validators' alone.
BMP = (*range(0xD800), *range(0xE000, 0x10000))


def test_each_pattern_accepts_exactly_the_characters_its_validator_accepts() -> None:
    for pattern, problem in ((LINE_PATTERN, line_problem), (BLOCK_PATTERN, block_problem)):
        compiled = re.compile(pattern)
        disagree = [hex(cp) for cp in BMP if (compiled.fullmatch(chr(cp)) is None) != bool(problem(chr(cp)))]
        assert disagree == [], (pattern[:40], disagree[:10])


def test_names_and_texts_need_more_than_whitespace() -> None:
    for pattern in (NAME_PATTERN, TEXT_PATTERN):
        assert re.fullmatch(pattern, "  Checkout  ") and not re.fullmatch(pattern, "   ")
    assert re.fullmatch(TEXT_PATTERN, "line one\n\tline two") and not re.fullmatch(NAME_PATTERN, "a\nb")
    assert not re.fullmatch(NAME_PATTERN, "rtl \u202e override") and re.fullmatch(NAME_PATTERN, "Zoë 日本")
