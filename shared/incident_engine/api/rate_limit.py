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
    under ``hits <= limit - n``; TTL removes old windows): every container of the function shares
    it, so the limit holds however many run. A container claims its requests in blocks of
    ``block_size(limit)`` (a hundredth of the limit, at most 10; 1 under a limit of 200) and spends
    them without another write, so a busy credential costs one write per block rather than one per
    request; near the limit it claims one at a time, so the last requests are counted exactly. What
    a container claimed and did not spend by the minute's end (at most a block per container) is
    refused to the others: the limit errs low, never high. A credential refused once is refused by
    this container without another write until its minute ends, so a flood costs one write per
    container. An error of the counter itself lets the request through (logged): the limit protects
    the engine, and an incident engine that cannot page is worse than one briefly unlimited.
    """

    def __init__(self) -> None:
        self._blocked: dict[str, int] = {}  # caller id -> the minute it is refused until its end
        self._claimed: dict[str, tuple[int, int]] = {}  # counter key -> (minute, requests left)
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget what this container refused and claimed (tests change the limit between runs)."""
        with self._lock:
            self._blocked.clear()
            self._claimed.clear()

    def _spend_claimed(self, who: str, window: int) -> bool:
        with self._lock:
            minute, left = self._claimed.get(who, (window, 0))
            if minute != window or left <= 0:
                return False
            self._claimed[who] = (window, left - 1)
            return True

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
            if len(self._claimed) > 10_000:
                self._claimed.clear()
        key = f"{who.kind}#{who.id}"
        if self._spend_claimed(key, window):
            return 0
        expires = (window + 2) * 60
        try:
            block = block_size(limit)
            if block > 1 and wired.token_store.count_request(key, window, limit, expires, block):
                with self._lock:
                    self._claimed[key] = (window, block - 1)  # this request spends one
                return 0
            allowed = wired.token_store.count_request(key, window, limit, expires, 1)
        except Exception:
            logger.exception("the rate limit counter failed; the request goes ahead")
            return 0
        if allowed:
            return 0
        with self._lock:
            self._blocked[who.id] = window
        return wait


def block_size(limit: int) -> int:
    """Requests a container claims at once: a hundredth of the limit, between 1 and 10."""
    return max(1, min(10, limit // 100))


RATE_LIMIT = RateLimit()
