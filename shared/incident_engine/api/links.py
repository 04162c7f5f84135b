"""/a/{token}: the one-click links in pages. No bearer token: the signed link is the credential,
and it can do one thing only: acknowledge or resolve one incident as one recipient.

GET shows a confirmation page and never acts (mail scanners and link previews follow links);
its form POSTs to the same URL, which acts.
"""

from __future__ import annotations

from html import escape
from urllib.parse import unquote

from aws_lambda_powertools.event_handler.api_gateway import Response, Router

from incident_engine.api.context import base_url
from incident_engine.api.security import page_csp
from incident_engine.domain.errors import NotFound
from incident_engine.domain.lifecycle import allowed_actions
from incident_engine.domain.links import LinkRefused
from incident_engine.usecases.links import ActionLinkService
from incident_engine.wiring import services

router = Router()

REFUSED = {
    "tampered": (400, "This link is not valid", "It was changed or cut short. Open the incident instead."),
    "expired": (410, "This link has expired", "Links in pages work for 24 hours. Open the incident instead."),
}
VERB = {"acknowledge": "Acknowledge", "resolve": "Resolve"}


STYLE = (
    "body{font:18px system-ui,sans-serif;max-width:34em;margin:2em auto;padding:0 1em}"
    "button{font-size:1.2em;padding:.6em 1.4em}"
)
# Its one style element and nothing else: no script runs, the form posts back here only.
PAGE_CSP = page_csp(styles=[STYLE])


def _page(status: int, title: str, body: str) -> Response[str]:
    html = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<meta name=robots content=noindex><title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    # Never cached and never framed (api/app.py adds those): each answer is for this one person, now.
    headers = {"Content-Security-Policy": PAGE_CSP}
    return Response(status_code=status, content_type="text/html; charset=utf-8", body=html, headers=headers)


def _links() -> ActionLinkService:
    return services().action_link_service(base_url(router))  # type: ignore[arg-type]


def _refused(reason: str) -> Response[str]:
    status, title, text = REFUSED.get(reason, REFUSED["tampered"])
    return _page(status, title, f"<p>{escape(text)}</p><p>Nothing was changed.</p>")


@router.get(
    "/a/<token>", tags=["links"], summary="Confirm a page's one-click action (never acts)", security=[]
)
def confirm_action(token: str) -> Response[str]:
    try:
        link, incident = _links().inspect(unquote(token))
    except LinkRefused as exc:
        return _refused(exc.reason)
    except NotFound:
        return _refused("tampered")
    verb = VERB[link.action]
    if link.action not in allowed_actions(incident.status):
        state = f"{escape(incident.id)} is {escape(incident.status.value)}"
        text = f"<p>{state}: there is nothing to {link.action}.</p>"
        return _page(409, "Nothing to do", text + "<p>Nothing was changed.</p>")
    body = (
        f"<p><b>{escape(incident.id)}</b> [{escape(incident.severity.value)}] {escape(incident.title)}</p>"
        f"<p>Status: {escape(incident.status.value)}</p>"
        f"<p>{verb} it as <b>{escape(link.recipient)}</b>?</p>"
        f"<form method=post><button type=submit>{verb}</button></form>"
    )
    return _page(200, f"{verb} {incident.id}?", body)


@router.post("/a/<token>", tags=["links"], summary="Carry out a page's one-click action", security=[])
def do_action(token: str) -> Response[str]:
    try:
        outcome = _links().act(unquote(token))
    except LinkRefused as exc:
        return _refused(exc.reason)
    except NotFound:
        return _refused("tampered")
    incident = outcome.incident
    if not outcome.acted:
        text = f"<p>{escape(incident.id)} is {escape(incident.status.value)}: nothing was changed.</p>"
        return _page(409, "Nothing to do", text)
    done = "acknowledged" if outcome.link.action == "acknowledge" else "resolved"
    text = (
        f"<p><b>{escape(incident.id)}</b> {escape(incident.title)}</p>"
        f"<p>Now {escape(incident.status.value)}, {done} by {escape(outcome.link.recipient)}.</p>"
    )
    return _page(200, done.capitalize(), text)
