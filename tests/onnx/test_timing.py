"""The shared timing helper: warm-up excluded but counted, percentiles ordered, sync inside the timing."""

from __future__ import annotations

import pytest

from dlbench.timing import time_callable


def test_warmup_runs_first_and_is_excluded():
    calls, syncs = [], []
    t = time_callable(lambda: calls.append(1), warmup=3, iterations=7, batch_size=8, sync=lambda: syncs.append(1))
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
