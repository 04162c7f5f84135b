"""What a level fire reads just before it decides who to page: the configuration its targets name."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from incident_engine.domain.targets import ConfigView
from incident_engine.domain.webhooks import Webhook


class TargetViews(Protocol):
    def view_for_targets(self, targets: Sequence[Mapping[str, Any]], at: datetime) -> ConfigView: ...


class WebhookLookup(Protocol):
    def get(self, webhook_id: str) -> Webhook | None: ...


class PagingConfig:
    """Reads only what the levels about to fire name (nothing at all for bare e-mail targets)."""

    def __init__(self, views: TargetViews, webhooks: WebhookLookup) -> None:
        self._views = views
        self._webhooks = webhooks

    def view_for(
        self,
        snapshot: Mapping[str, Any],
        levels: Iterable[int],
        at: datetime,
        extra: Sequence[Mapping[str, Any]] = (),
    ) -> ConfigView:
        """``extra``: targets paged besides the levels (a routing rule's ``notify``)."""
        all_levels = snapshot.get("levels") or []
        targets: list[Mapping[str, Any]] = [
            t for n in sorted(set(levels)) if 0 <= n < len(all_levels) for t in all_levels[n]["targets"]
        ]
        targets += list(snapshot.get("fallback") or [])
        targets += list(extra)
        if not any(t.get("type") != "user" or "email" not in t for t in targets):
            return ConfigView()  # bare e-mail addresses only: nothing to read
        view = self._views.view_for_targets(targets, at)
        kinds: dict[str, str] = {}
        for webhook_id in {
            str(t["webhook_id"]) for t in targets if t.get("type") == "webhook" and "webhook_id" in t
        }:
            webhook = self._webhooks.get(webhook_id)
            if webhook is not None and webhook.enabled:
                kinds[webhook_id] = webhook.kind
        return replace(view, webhooks=kinds)


def levels_about_to_fire(
    snapshot: Mapping[str, Any] | None, next_level: int | None, restarting: bool
) -> list[int]:
    """The levels one decision may fire: the armed one, or level 0 when escalation (re)starts."""
    if snapshot is None:
        return []
    if restarting or next_level is None:
        return [0]
    return [next_level]
