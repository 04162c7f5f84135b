"""The polling alternative the benchmarks compare against behaves as a poller does."""

from bench.polling import simulate


def test_a_poller_fires_at_its_next_cycle_and_reads_every_open_incident_each_cycle() -> None:
    # Given two incidents opened at 0 s and 1 s, level 1 due 6 s after level 0 fired
    result = simulate([0.0, 1.0], level1_delay_s=6.0, interval_s=5.0, seed=1)
    first_tick = result.lateness_ms[0] / 1000  # level 0 of the first incident waits for the first cycle
    assert 0 <= first_tick < 5
    # Then level 1 always waits for the cycle after it is due: 6 s is 1 s past the next cycle
    assert len(result.lateness_ms) == 4
    assert [round(x) for x in result.lateness_ms].count(4000) == 2
    # And each cycle reads every incident still open: two incidents, three cycles each
    assert result.items_read == 6
