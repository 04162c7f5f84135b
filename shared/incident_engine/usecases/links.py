"""One-click links: made for each page's recipient, inspected on GET, acted on by POST."""

from __future__ import annotations

from dataclasses import dataclass

from incident_engine.domain import links
from incident_engine.domain.errors import InvalidTransition
from incident_engine.domain.links import ActionLink, LinkMaker, LinkRefused
from incident_engine.domain.model import Incident
from incident_engine.usecases.incidents import IncidentService
from incident_engine.usecases.ports import Clock, Signer


@dataclass(frozen=True)
class LinkOutcome:
    link: ActionLink
    incident: Incident
    acted: bool  # False: the incident had moved on (e.g. resolved) and nothing was done
    reason: str | None = None


class ActionLinkService:
    def __init__(self, signer: Signer, incidents: IncidentService, clock: Clock) -> None:
        self._signer = signer
        self._incidents = incidents
        self._clock = clock

    def maker(self, base_url: str) -> LinkMaker:
        return LinkMaker(base_url, lambda payload: self._signer.sign(links.PURPOSE, payload))

    def inspect(self, token: str) -> tuple[ActionLink, Incident]:
        """What a link would do; raises LinkRefused (tampered, expired). Never acts."""
        link = links.decode(token, self._verify, self._clock.now())
        return link, self._incidents.get_incident(link.incident_id)

    def act(self, token: str) -> LinkOutcome:
        """Acknowledge or resolve as the link's recipient; a link past its use does nothing."""
        link, _ = self.inspect(token)
        by = link.recipient
        try:
            if link.action == "acknowledge":
                done = self._incidents.acknowledge_incident(link.incident_id, by)
            else:
                done = self._incidents.resolve_incident(link.incident_id, by, "resolved from a page link")
        except InvalidTransition as exc:
            return LinkOutcome(link, self._incidents.get_incident(link.incident_id), False, exc.message)
        return LinkOutcome(link, done, True)

    def _verify(self, payload: bytes, signature: bytes) -> bool:
        return self._signer.verify(links.PURPOSE, payload, signature)


__all__ = ["ActionLinkService", "LinkOutcome", "LinkRefused"]
