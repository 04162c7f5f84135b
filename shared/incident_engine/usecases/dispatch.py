"""After a change commits: publish its outbox rows, mark them sent, arm its timer.

Each step may fail (a crash, a throttle). None of them is retried here: the committed outbox
row stays ``pending`` and the incident's due time stays in the DueIndex, and the reconciler
finishes the job. That is what makes "commit first, then send" safe.
"""

from __future__ import annotations

import math
import random
import time

from incident_engine.domain.model import Change, Notification, TimerMessage
from incident_engine.observability import count, logger
from incident_engine.usecases.ports import (
    Clock,
    IncidentStore,
    NotificationPublisher,
    PublishFailure,
    PublishResult,
    TimerQueue,
)


class Dispatcher:
    def __init__(
        self, store: IncidentStore, timers: TimerQueue, publisher: NotificationPublisher, clock: Clock
    ) -> None:
        self._store = store
        self._timers = timers
        self._publisher = publisher
        self._clock = clock

    def after_commit(self, change: Change) -> None:
        # Rows written scheduled (a delayed contact) or already superseded are not sent now.
        self.deliver([n for n in change.outbox if n.status == "pending"] + change.released)
        if change.timer is not None:
            self.arm(change.timer)
        for timer in change.page_timers:
            self.arm(timer)

    def deliver(self, notifications: list[Notification]) -> int:
        """Publish, then mark sent what SNS accepted; returns how many were published.

        A row SNS did not accept stays pending with its failed attempt counted, and is parked
        (with a metric) once it keeps failing, so one bad row cannot re-page others forever.
        """
        if not notifications:
            return 0
        try:
            result = self._publisher.publish_all(notifications)
        except Exception as exc:
            logger.exception("publish failed; the reconciler will retry", extra={"count": len(notifications)})
            result = PublishResult([], [PublishFailure(n, type(exc).__name__, False) for n in notifications])
        published = result.accepted
        count("NotificationsPublished", len(published))
        if published:
            try:
                self._store.mark_all_sent(published, self._clock.now())
            except Exception:
                # Published but not marked: the reconciler republishes with the same dedup ids.
                logger.exception("mark-sent failed after publish", extra={"count": len(published)})
                count("MarkSentFailed")
        if result.failed:
            count("PublishFailed", len(result.failed))
            self._count_failures(result.failed)
        return len(published)

    def _count_failures(self, failures: list[PublishFailure]) -> None:
        try:
            parked = self._store.record_publish_failures(
                [(f.notification, f.error, f.permanent) for f in failures], self._clock.now()
            )
        except Exception:
            logger.exception("could not record publish failures", extra={"count": len(failures)})
            return
        if parked:
            count("NotificationsParked", len(parked))
            logger.error(
                "notifications parked after repeated publish failures",
                extra={"incident_ids": sorted({n.incident_id for n in parked}), "count": len(parked)},
            )

    def arm(self, timer: TimerMessage) -> bool:
        try:
            self._timers.send(timer, delay_for(timer, self._clock))
        except Exception:
            logger.exception(
                "timer send failed; the reconciler will re-arm", extra={"incident_id": timer.incident_id}
            )
            count("TimerSendFailed")
            return False
        return True


def back_off(attempt: int) -> None:
    """A short random pause before retrying a change DynamoDB cancelled for contention.

    The competing transaction is usually done within milliseconds; jitter keeps the retries of
    several writers from colliding again.
    """
    time.sleep(random.uniform(0, 0.02 * (attempt + 1)))  # noqa: S311 - jitter, not security


def delay_for(timer: TimerMessage, clock: Clock) -> int:
    """Whole seconds until due, rounded up so a timer never arrives early."""
    return max(0, math.ceil((timer.due_at - clock.now()).total_seconds()))
