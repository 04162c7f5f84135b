"""The polling alternative: a processor that wakes every N seconds, reads every open incident,
and fires what is due (the cron design of seed 000, or an engine cycle every 5 s).

It is replayed on the same workload as the local-stack run (the same creation instants and the
same two-level policy), on a simulated clock, so lateness and items read compare directly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class PollingResult:
    interval_s: float
    lateness_ms: list[float]
    items_read: int
    ticks: int


def simulate(created: list[float], level1_delay_s: float, interval_s: float, seed: int = 7) -> PollingResult:
    """`created`: when each incident opened (level 0 due then); level 1 is due `level1_delay_s`
    after level 0 actually fired. The first tick falls at a random phase of the interval."""
    if not created:
        return PollingResult(interval_s, [], 0, 0)
    start = min(created)
    tick = start + random.Random(seed).uniform(0, interval_s)
    pending = sorted(created)  # not yet opened as of the current tick
    due: list[tuple[float, int]] = []  # (due time, level) of open incidents
    lateness: list[float] = []
    items_read = ticks = 0
    while pending or due:
        while pending and pending[0] <= tick:
            due.append((pending.pop(0), 0))
        ticks += 1
        items_read += len(due)  # a poller reads every open incident on every cycle
        still_open = []
        for when, level in due:
            if when <= tick:
                lateness.append((tick - when) * 1000)
                if level == 0:
                    still_open.append((tick + level1_delay_s, 1))
            else:
                still_open.append((when, level))
        due = still_open
        tick += interval_s
    return PollingResult(interval_s, lateness, items_read, ticks)
