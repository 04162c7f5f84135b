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
        for notification in change.outbox:
            self.deliver(notification)
        if change.timer is not None:
            self.arm(change.timer)

    def deliver(self, notification: Notification) -> bool:
        try:
            self._publisher.publish(notification)
        except Exception:
            logger.exception(
                "publish failed; the reconciler will retry", extra={"dedup_id": notification.dedup_id}
            )
            count("PublishFailed")
            return False
        count("NotificationsPublished")
        try:
            self._store.mark_sent(notification, self._clock.now())
        except Exception:
            # Published but not marked: the reconciler republishes with the same dedup id.
            logger.exception("mark-sent failed after publish", extra={"dedup_id": notification.dedup_id})
            count("MarkSentFailed")
        return True

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
