"""Untrusted text: what a name, a title or a free text may contain, and how pages show it.

Everything here is pure. The API validates with these rules; the message templates render
through them, so a client's text can never pose as a line the engine wrote.
"""

from __future__ import annotations

import unicodedata

# Characters that reorder or hide text (bidi overrides and isolates, zero-width joiners and
# spaces, the BOM): harmless to a machine, deceptive to a person reading a page at 3 AM.
DECEPTIVE = frozenset(
    "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2066\u2067\u2068\u2069\ufeff"
)


# What one line may not contain besides: controls (Cc), surrogates (Cs), private use (Co), and the
# line and paragraph separators. Unassigned code points are let through: which ones are unassigned
# depends on the Unicode version of the interpreter (3.11's is not 3.13's), and a rule that moved
# with it could not be written down in the API's document.
REFUSED_RANGES: tuple[tuple[int, int], ...] = (
    (0x00, 0x1F),
    (0x7F, 0x9F),
    (0x200B, 0x200F),
    (0x2028, 0x202E),
    (0x2060, 0x2060),
    (0x2066, 0x2069),
    (0xD800, 0xDFFF),  # surrogates (a JSON escape can carry one; no pattern can name them)
    (0xE000, 0xF8FF),  # the private use area
    (0xFEFF, 0xFEFF),
    (0xF0000, 0xFFFFD),  # the supplementary private use planes
    (0x100000, 0x10FFFD),
)


def line_problem(text: str) -> str | None:
    """Why ``text`` is not acceptable as one line (a name or a title), or None."""
    for ch in text:
        if ch in DECEPTIVE:
            return f"contains an invisible or direction-changing character (U+{ord(ch):04X})"
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs", "Co") or ch in "\u2028\u2029":
            return f"contains a control or private-use character (U+{ord(ch):04X})"
    return None


def _refused_class(allow: str = "") -> str:
    """REFUSED_RANGES in the BMP less the characters in ``allow``, as the inside of a regex
    character class. The supplementary private use planes and the surrogates are left to the
    validators: regex dialects disagree on how to write characters beyond the BMP, and a lone
    surrogate is no character at all to most of them (nor can valid UTF-8 carry one)."""
    cuts = sorted(ord(c) for c in allow)
    parts = []
    for low, high in (r for r in REFUSED_RANGES if r[1] < 0x10000 and r[0] != 0xD800):
        start = low
        for cut in (c for c in cuts if low <= c <= high):
            if start <= cut - 1:
                parts.append((start, cut - 1))
            start = cut + 1
        if start <= high:
            parts.append((start, high))
    return "".join(_char(a) if a == b else f"{_char(a)}-{_char(b)}" for a, b in parts)


def _char(code: int) -> str:
    # Every regex dialect reads \uXXXX; a literal surrogate could not even be encoded.
    return f"\\u{code:04x}"


# The same rules as JSON Schema patterns (written so that Python's, JavaScript's and Rust's regex
# engines read them alike), for the API's document: one line, with something besides
# whitespace in it (the API strips names), and free text, which may hold tabs and line breaks.
LINE_PATTERN = f"^[^{_refused_class()}]*$"
NAME_PATTERN = f"^[^{_refused_class()}]*[^{_refused_class()}\\s][^{_refused_class()}]*$"
BLOCK_PATTERN = f"^[^{_refused_class(allow=chr(9) + chr(10))}]*$"
_B = _refused_class(allow=chr(9) + chr(10))
TEXT_PATTERN = f"^[^{_B}]*[^{_B}\\s][^{_B}]*$"  # free text that is more than whitespace


def block_problem(text: str) -> str | None:
    """Why ``text`` is not acceptable as free text (a description, a note), or None.

    Line breaks and tabs are allowed; other control characters are not."""
    return line_problem(text.replace("\n", " ").replace("\t", " ").replace("\r\n", " "))


def quoted_block(text: str, prefix: str = "  | ") -> list[str]:
    """Free text as lines that each start with ``prefix``, so none can pass for ours."""
    return [prefix + line for line in text.splitlines() or [""]]


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# The one e-mail shape every input takes: a practical subset of RFC 5321 (no quoting, no comments,
# no angle brackets or NULs), so an address cannot carry markup or control characters into a page.
EMAIL_PATTERN = rf"^[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]{{1,64}}@{_LABEL}(?:\.{_LABEL})+$"
