"""The per-credential rate limit: API tokens, integration keys and the admin token, each counted
the same way, on every route that takes one (PagerDuty's ``/v2/enqueue`` counts its routing key)."""

from __future__ import annotations

import math
import threading
import time

from incident_engine.api.context import Caller
from incident_engine.observability import logger


class RateLimit:
    """At most ``TOKEN_RATE_PER_MINUTE`` requests per credential per minute (0: no limit).

    One conditional counter per credential per clock minute in the config table (UpdateItem ADD
    under ``hits < limit``; TTL removes old windows): every container of the function shares it,
    so the limit holds however many run. A credential refused once is refused by this container
    without another write until its minute ends, so a flood costs one write per container, not one
    per request. An error of the counter itself lets the request through (logged): the limit
    protects the engine, and an incident engine that cannot page is worse than one briefly unlimited.
    """

    def __init__(self) -> None:
        self._blocked: dict[str, int] = {}  # caller id -> the minute it is refused until its end
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget which credentials this container refused (tests change the limit between runs)."""
        with self._lock:
            self._blocked.clear()

    def wait_for(self, who: Caller) -> int:
        """Seconds to wait (0: go ahead, counted)."""
        from incident_engine.wiring import services

        wired = services()
        limit = wired.settings.token_rate_per_minute
        if limit <= 0:
            return 0
        now = time.time()
        window = int(now // 60)
        wait = max(1, math.ceil((window + 1) * 60 - now))
        with self._lock:
            if self._blocked.get(who.id) == window:
                return wait
            if len(self._blocked) > 10_000:
                self._blocked.clear()
        try:
            key = f"{who.kind}#{who.id}"
            allowed = wired.token_store.count_request(key, window, limit, (window + 2) * 60)
        except Exception:
            logger.exception("the rate limit counter failed; the request goes ahead")
            return 0
        if allowed:
            return 0
        with self._lock:
            self._blocked[who.id] = window
        return wait


RATE_LIMIT = RateLimit()
