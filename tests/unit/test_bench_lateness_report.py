"""The lateness report tells a run the machine slowed from one the stack could not keep up with."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bench.lateness import LatenessRun, TimerPath
from bench.report import _same_work_slower, _timer_path_reason
from incident_engine.domain.timefmt import to_iso
from local.runtime import _trace_batch

KINDS = ("emulator: DynamoDB", "emulator: the rest", "api and alarm containers", "escalation workers")


def run(seconds: float, cpu: tuple[float, ...]) -> LatenessRun:
    return LatenessRun(1000, seconds, cpu_seconds=dict(zip(KINDS, cpu, strict=True)))


def test_a_run_whose_every_process_spent_more_cpu_per_incident_is_named() -> None:
    # Given three flat-out runs of the same work; the third's processes all spent ~1.4x the CPU
    runs = [run(55.4, (32, 26, 28, 19)), run(50.7, (30, 24, 25, 17)), run(77.5, (44, 35, 35, 24))]
    # When the report looks for a slowed machine
    text = _same_work_slower(runs)
    # Then it names the third run, with its ratios against the fastest (the second)
    assert text is not None and "run 3 (1.40x to 1.47x, 12.9/s)" in text and "run 1" not in text
    assert "fastest run (19.7/s)" in text


def test_a_run_slower_in_some_processes_only_is_not_blamed_on_the_machine() -> None:
    # Given a run where only the emulators spent more (the stack's own work changed, not the machine)
    runs = [run(50.0, (30, 24, 25, 17)), run(70.0, (45, 36, 25, 17))]
    # Then nothing is blamed on the machine; nor without CPU figures
    assert _same_work_slower(runs) is None
    assert _same_work_slower([LatenessRun(1000, 50.0), LatenessRun(1000, 70.0)]) is None


def trace_line(capsys: pytest.CaptureFixture[str], got: float, timers: list[tuple[str, float, float]]) -> str:
    """What a local worker prints for one batch (LOCAL_WORKER_TRACE=1): (incident, due, sent) each."""
    received = [
        {
            "Body": json.dumps({"incident_id": incident, "token": "t", "due_at": to_iso(due)}),
            "Attributes": {"SentTimestamp": str(round(sent * 1000))},
        }
        for incident, due, sent in timers
    ]
    _trace_batch(received, got)
    return capsys.readouterr().out


def test_the_workers_trace_splits_each_timers_lateness_into_rounding_waiting_and_fire(
    capsys: pytest.CaptureFixture[str],
) -> None:
    due = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
    at = due.timestamp()
    # Given a level-1 timer sent 5.9 s before it was due (SQS delays it 6 s: 100 ms late by design),
    # received 400 ms after its due time; a level-0 timer; another run's timer; a line cut short
    lines = [
        trace_line(capsys, at + 0.4, [("mine", due, at - 5.9)]),
        trace_line(capsys, at + 0.05, [("mine-level-0", due, at - 0.02)]),
        trace_line(capsys, at + 0.2, [("theirs", due, at - 5.9)]),
        '[worker 7] timer trace {"received_at": 1',
    ]
    # When the bench reads them for its run's incidents
    path = TimerPath.from_trace(lines, {"mine", "mine-level-0"})
    # Then only the delayed timer of this run counts, its 400 ms split into SQS's 100 and 300 waiting
    assert [round(v) for v in path.rounding] == [100]
    assert [round(v) for v in path.waiting] == [300]
    assert len(path.fire) == 1 and path.fire[0] >= 0
    assert path.due_at == [pytest.approx(at, abs=0.01)] and len(path.workers) == 1


def test_a_late_run_is_explained_by_the_part_of_the_timers_path_that_took_longest() -> None:
    # Given a run whose timers waited up to a second for six workers firing in 250 ms each,
    # while 40 came due within one second
    path = TimerPath(
        rounding=[100.0] * 100,
        waiting=[50.0] * 90 + [1000.0] * 10,
        fire=[250.0] * 100,
        due_at=[1000.5] * 40 + [1001.0 + n / 10 for n in range(60)],
        workers={f"[worker {n}]" for n in range(6)},
    )
    late = LatenessRun(1000, 50.0, lateness_ms={1: [1600.0]}, machine_busy=0.9, timer_path=path)
    # When the report explains it
    reason = _timer_path_reason(late)
    # Then it names the wait, the arrival peak against the workers' capacity, and the machine
    assert reason is not None
    assert "waited up to 1000 ms (p99)" in reason
    assert "up to 40 timers came due in one second while its 6 workers" in reason
    assert "could fire 24 a second" in reason and "the machine 90% busy" in reason
    # And a run without a trace gets no made-up reason
    assert _timer_path_reason(LatenessRun(1000, 50.0)) is None


def test_timers_that_waited_with_workers_to_spare_are_blamed_on_the_receive_not_on_the_workers() -> None:
    # Given timers that waited up to 900 ms although at most 10 came due in any second, while six
    # workers firing in 100 ms could fire 60 a second
    path = TimerPath(
        rounding=[100.0] * 50,
        waiting=[900.0] * 50,
        fire=[100.0] * 50,
        due_at=[1000.0 + n / 10 for n in range(50)],
        workers={f"[worker {n}]" for n in range(6)},
    )
    reason = _timer_path_reason(LatenessRun(1000, 50.0, machine_busy=0.85, timer_path=path))
    # Then the reason is the receive's wait for a core, not a shortage of workers
    assert reason is not None
    assert "no more than 10 timers came due in a second" in reason
    assert "could fire at the fire's p50 (60 a second)" in reason
    assert "the wait was the receive's own" in reason and "queued for a core" in reason
