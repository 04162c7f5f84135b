"""After a change commits: publish its outbox rows, mark them sent, arm its timer.

Each step may fail (a crash, a throttle). None of them is retried here: the committed outbox
row stays ``pending`` and the incident's due time stays in the DueIndex, and the reconciler
finishes the job. That is what makes "commit first, then send" safe.
"""

from __future__ import annotations

import math

from incident_engine.domain.model import Change, Notification, TimerMessage
from incident_engine.observability import count, logger
from incident_engine.usecases.ports import Clock, IncidentStore, NotificationPublisher, TimerQueue


class Dispatcher:
    def __init__(
        self, store: IncidentStore, timers: TimerQueue, publisher: NotificationPublisher, clock: Clock
    ) -> None:
        self._store = store
        self._timers = timers
        self._publisher = publisher
        self._clock = clock

    def after_commit(self, change: Change) -> None:
        self.deliver(change.outbox)
        if change.timer is not None:
            self.arm(change.timer)

    def deliver(self, notifications: list[Notification]) -> int:
        """Publish, then mark sent what SNS accepted; returns how many were published."""
        if not notifications:
            return 0
        try:
            published = self._publisher.publish_all(notifications)
        except Exception:
            logger.exception("publish failed; the reconciler will retry", extra={"count": len(notifications)})
            count("PublishFailed")
            return 0
        count("NotificationsPublished", len(published))
        if len(published) < len(notifications):
            count("PublishFailed", len(notifications) - len(published))
        try:
            self._store.mark_all_sent(published, self._clock.now())
        except Exception:
            # Published but not marked: the reconciler republishes with the same dedup ids.
            logger.exception("mark-sent failed after publish", extra={"count": len(published)})
            count("MarkSentFailed")
        return len(published)

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


def delay_for(timer: TimerMessage, clock: Clock) -> int:
    """Whole seconds until due, rounded up so a timer never arrives early."""
    return max(0, math.ceil((timer.due_at - clock.now()).total_seconds()))
