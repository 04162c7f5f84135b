"""The lateness report tells a run the machine slowed from one the stack could not keep up with."""

from __future__ import annotations

from bench.lateness import LatenessRun
from bench.report import _same_work_slower

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
