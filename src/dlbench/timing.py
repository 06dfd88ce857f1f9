"""The one timing helper: warm-up calls (run, counted, excluded), then measured calls, then percentiles;
and :class:`Stopwatch` for one interval (a fit, a setup, a whole run).

Used by every step that reports a latency (ONNX Runtime and PyTorch inference in ``onnx``), the SVM
step's fit and predict times, and the ``bench/`` scripts. On a GPU pass ``sync=torch.cuda.synchronize``
(or an ORT IO-binding ``synchronize_outputs``, or an SVM backend's ``synchronize``): it is called after
every call, inside the timed interval, so the time covers the work and not only its launch.

Percentiles are numpy's linear interpolation over the measured calls, so ``p50 <= p90 <= p99`` always;
``throughput_ips`` is items per second over the whole measured time (``batch_size * iterations / sum``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass
class Timing:
    warmup: int
    iterations: int
    batch_size: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    throughput_ips: float
    samples_ms: list[float] = field(default_factory=list, repr=False)
    energy: Any = field(default=None, repr=False)  # dlbench.energy.Energy of the measured calls, if metered

    def summary(self) -> dict[str, Any]:
        """The figures without the per-call samples (what records and tables carry); with a meter, the
        joules per 1,000 items of the measured calls (``energy``, see :func:`dlbench.energy.summarize`)."""
        d = asdict(self)
        d.pop("samples_ms")
        d.pop("energy")
        if self.energy is not None:
            from dlbench.energy import summarize

            d["energy"] = summarize(
                [self.energy], "1000_inferences", [self.batch_size * self.iterations], 1000
            )
        return d


class Stopwatch:
    """Wall-clock seconds (``time.perf_counter``) since the start; ``sync`` runs before every reading, so
    queued device work is inside the time.

    ``with Stopwatch(sync) as sw: ...`` leaves the interval in ``sw.seconds`` (read when the block ends
    without an exception); ``sw.read()`` reads it at any point (e.g. setup, then time to first batch).
    """

    def __init__(self, sync: Callable[[], Any] | None = None):
        self.sync = sync
        self.seconds: float | None = None
        self.start = time.perf_counter()

    def read(self) -> float:
        if self.sync is not None:
            self.sync()
        self.seconds = time.perf_counter() - self.start
        return self.seconds

    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.read()


def time_callable(
    fn: Callable[[], Any],
    *,
    warmup: int = 5,
    iterations: int = 30,
    batch_size: int = 1,
    sync: Callable[[], Any] | None = None,
    meter: Any = None,
) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``iterations`` times timed one by one; with ``meter`` (a
    :class:`dlbench.energy.EnergyMeter`) its counters are read around the timed calls."""
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0 (got {warmup})")
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1 (got {iterations})")
    for _ in range(warmup):
        fn()
    if sync is not None:
        sync()
    samples = []
    clock = time.perf_counter
    before = meter.read() if meter is not None else None
    for _ in range(iterations):
        t0 = clock()
        fn()
        if sync is not None:
            sync()
        samples.append((clock() - t0) * 1e3)
    energy = meter.since(before) if meter is not None else None
    arr = np.asarray(samples, dtype=np.float64)
    p50, p90, p99 = (float(v) for v in np.percentile(arr, [50, 90, 99]))
    total_s = float(arr.sum()) / 1e3
    return Timing(
        warmup=warmup,
        iterations=iterations,
        batch_size=batch_size,
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        mean_ms=float(arr.mean()),
        std_ms=statistics.stdev(samples) if len(samples) > 1 else 0.0,
        min_ms=float(arr.min()),
        max_ms=float(arr.max()),
        throughput_ips=batch_size * iterations / max(total_s, 1e-12),
        samples_ms=samples,
        energy=energy,
    )
