"""Headers every answer carries, whoever makes it: the api function (api/app.py adds them in one
place), API Gateway's own answers (template.yaml's GatewayResponses, held to this by a test) and
the local gateway. Pure: importable without the resolver."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable

# A JSON API: nothing in an answer may run, be framed, be cached, or be sniffed into another type.
API_CSP = "sandbox; default-src 'none'; frame-ancestors 'none'"
SECURITY_HEADERS: dict[str, str] = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": API_CSP,
}
# API Gateway's GatewayResponses take static header values in single quotes, which CSP keywords
# ('none') would need inside: its answers say `sandbox` alone (no script, no form, an opaque
# origin), and X-Frame-Options keeps them out of frames.
GATEWAY_HEADERS: dict[str, str] = {**SECURITY_HEADERS, "Content-Security-Policy": "sandbox"}


def csp_hash(text: str) -> str:
    """A CSP source that allows exactly this inline script or style element's text."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def page_csp(
    scripts: Iterable[str] = (), styles: Iterable[str] = (), inline_style_attributes: bool = False
) -> str:
    """The policy of an HTML page of ours: only its own inline elements (by hash), forms posting
    back to this origin, never framed, no base URL, nothing fetched from elsewhere."""
    script_src = " ".join(csp_hash(s) for s in scripts) or "'none'"
    style_sources = [csp_hash(s) for s in styles]
    if inline_style_attributes:  # Swagger UI sets style="" attributes, which hashes cannot allow
        style_sources = ["'unsafe-inline'"]
    style_src = " ".join(style_sources) or "'none'"
    return (
        f"default-src 'none'; script-src {script_src}; style-src {style_src}; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )


def add_security_headers(response: dict[str, object]) -> dict[str, object]:
    """Every security header the answer does not already set (a route may set a stricter or a
    page-specific one), into the proxy response's multiValueHeaders (and headers, when used)."""
    multi = response.get("multiValueHeaders")
    single = response.get("headers")
    present = {k.lower() for source in (multi, single) if isinstance(source, dict) for k in source}
    if not isinstance(multi, dict):
        multi = {}
        if isinstance(single, dict):
            multi = {k: [str(v)] for k, v in single.items()}
        response["multiValueHeaders"] = multi
    for name, value in SECURITY_HEADERS.items():
        if name.lower() not in present:
            multi[name] = [value]
    if isinstance(single, dict):  # keep the two in step: API Gateway merges them
        for name, values in multi.items():
            single.setdefault(name, values[-1])
    return response
