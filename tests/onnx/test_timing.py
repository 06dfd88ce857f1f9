"""The shared timing helper: warm-up excluded but counted, percentiles ordered, sync inside the timing;
the stopwatch of one interval (SVM fit/predict, benchmark setup)."""

from __future__ import annotations

import time

import pytest

from dlbench.timing import Stopwatch, time_callable


def test_warmup_runs_first_and_is_excluded():
    calls, syncs = [], []
    t = time_callable(
        lambda: calls.append(1), warmup=3, iterations=7, batch_size=8, sync=lambda: syncs.append(1)
    )
    assert len(calls) == 10  # 3 warm-up + 7 timed
    assert len(t.samples_ms) == 7 and t.warmup == 3 and t.iterations == 7
    assert len(syncs) == 8  # once after the warm-up, once per timed call
    assert 0 < t.min_ms <= t.p50_ms <= t.p90_ms <= t.p99_ms <= t.max_ms
    assert t.throughput_ips == pytest.approx(8 * 7 / (sum(t.samples_ms) / 1e3))
    assert "samples_ms" not in t.summary()


@pytest.mark.parametrize("warmup, iterations", [(-1, 5), (0, 0)])
def test_bad_counts_are_refused(warmup, iterations):
    with pytest.raises(ValueError):
        time_callable(lambda: None, warmup=warmup, iterations=iterations)


def test_stopwatch_syncs_before_it_stops_and_reads_laps():
    queued = []  # work a device would still be doing when the call returns

    def sync():
        while queued:
            time.sleep(queued.pop())

    with Stopwatch(sync) as sw:
        queued.append(0.02)
    assert not queued and sw.seconds >= 0.02  # the sync ran inside the interval
    clock = Stopwatch(sync)
    first = clock.read()
    queued.append(0.01)
    assert clock.read() >= first + 0.01  # a later reading counts from the same start


def test_stopwatch_keeps_no_reading_when_the_block_fails():
    with pytest.raises(RuntimeError), Stopwatch() as sw:
        raise RuntimeError("fit failed")
    assert sw.seconds is None
