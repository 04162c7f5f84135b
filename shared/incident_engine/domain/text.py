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


def line_problem(text: str) -> str | None:
    """Why ``text`` is not acceptable as one line (a name or a title), or None."""
    for ch in text:
        if ch in DECEPTIVE:
            return f"contains an invisible or direction-changing character (U+{ord(ch):04X})"
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs", "Co", "Cn") or ch in "\u2028\u2029":
            return f"contains a control or unassigned character (U+{ord(ch):04X})"
    return None


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
