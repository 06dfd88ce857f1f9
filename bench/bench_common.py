"""What the bench/ scripts share: their entry point (one-line errors), JSON output, data, run configs,
the device settings of the torch benchmarks and the engine timing loop.

A script imports this module from beside itself (``import bench_common``: Python puts a script's own
folder first on ``sys.path``; the tests name ``bench/`` in pytest's ``pythonpath``); dlbench comes from the
install (``make setup``). The run configs are :class:`dlbench.spec.TrainConfig` (pydantic), the step's own
config.
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlbench.errors import DlbenchError
from dlbench.timing import Stopwatch


def main(name: str, parse_args: Callable, run: Callable[[Any], int], argv=None) -> int:
    """Parse ``argv`` and run; bad input is one line ``NAME: error: ...`` and its exit code."""
    args = parse_args(argv)
    try:
        return run(args)
    except DlbenchError as exc:
        print(f"{name}: error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code


def emit(report: dict, out: str | None) -> None:
    """Print ``report`` as strict JSON (no NaN/inf) and write it to ``out`` too when given."""
    text = json.dumps(report, indent=2, allow_nan=False)
    print(text)
    if out:
        Path(out).write_text(text + "\n")


def idx_split(dataset: str, root: str, seed: int) -> tuple[dict[str, np.ndarray], dict]:
    """A folder of IDX files split 70/10/20 stratified and seeded, as `dlbench data` does; and its source."""
    from dlbench.data.load import load_dataset
    from dlbench.data.split import stratified_indices

    raw = load_dataset(dataset, source="idx", root=root)
    parts = stratified_indices(raw.labels, (0.7, 0.1, 0.2), seed)
    return {
        f"{a}_{p}": (raw.images if a == "x" else raw.labels)[parts[p]] for p in parts for a in "xy"
    }, raw.source


def synthetic_split(rng: np.random.Generator, n_train: int, n_eval: int) -> dict[str, np.ndarray]:
    """Random uint8 28x28 images and labels of 10 classes (timing does not depend on pixel values)."""
    split = {}
    for part, n in (("train", n_train), ("val", n_eval), ("test", n_eval)):
        split[f"x_{part}"] = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        split[f"y_{part}"] = rng.integers(0, 10, size=n, dtype=np.uint8)
    return split


def train_config(**fields):
    """A :class:`dlbench.spec.TrainConfig`, validated with the step's one-line errors."""
    from dlbench.spec import TrainConfig, validate_model

    return validate_model(TrainConfig, fields, "benchmark options", flags={})


# --------------------------------------------------------------------------- torch benchmarks


@dataclass(frozen=True)
class TorchRun:
    """The device and step counts of one torch benchmark run, defaults resolved."""

    device: Any  # torch.device
    amp: str
    steps: int
    warmup: int

    @property
    def on_cuda(self) -> bool:
        return self.device.type == "cuda"


def torch_run(name: str, args, steps: tuple[int, int], warmup: tuple[int, int]) -> TorchRun:
    """``args.device`` (auto: cuda when visible), ``args.amp`` (default bf16 on cuda, off on cpu) checked on
    this torch, ``args.steps``/``args.warmup`` (defaults: ``(on cuda, on cpu)``); cudnn.benchmark on CUDA."""
    import torch

    from dlbench.train.engines import check_amp, resolve_device

    dev_name = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    device = resolve_device(dev_name)
    on_cuda = device.type == "cuda"
    amp = args.amp or ("bf16" if on_cuda else "off")
    check_amp(amp, device)
    n_steps = args.steps if args.steps is not None else steps[0 if on_cuda else 1]
    n_warmup = args.warmup if args.warmup is not None else warmup[0 if on_cuda else 1]
    if n_steps < 1 or args.repeats < 1 or n_warmup < 0:
        raise SystemExit(f"{name}: --steps and --repeats must be >= 1, --warmup >= 0")
    if on_cuda:
        torch.backends.cudnn.benchmark = True
    return TorchRun(device, amp, n_steps, n_warmup)


def time_engine(engine, device, steps: int, warmup: int, repeats: int) -> dict[str, Any]:
    """Time a training engine on full batches (epochs chained as needed) with the train step's loop.

    In order: setup (device synchronised after: ``setup_seconds``), the first batch (``time_to_first_batch``
    from the start of setup), ``warmup`` untimed steps, then ``steps`` timed steps in ``repeats`` chunks,
    the device synchronised before each chunk and at its end (dlbench.train.loop.train_steps). Returns
    s/step (mean and spread over the chunks), each chunk's s/step and losses, and the warm-up's.
    """
    from dlbench.train.engines import synchronize
    from dlbench.train.loop import train_steps

    clock = Stopwatch(lambda: synchronize(device))
    engine.setup()
    setup_seconds = clock.read()
    full = engine.n_train // engine.config.batch_size  # an epoch's partial last batch has another shape

    def batches():
        epoch = 0
        while True:
            yield from engine.batches(epoch, full)
            epoch += 1

    it = batches()
    first = next(it)
    time_to_first_batch = clock.read()
    stream = itertools.chain([first], it)
    w = train_steps(engine, stream, warmup) if warmup else {"seconds": 0.0, "losses": []}
    chunks, chunk_losses = [], []
    per = [steps // repeats + (1 if i < steps % repeats else 0) for i in range(repeats)]
    for n in (p for p in per if p):
        synchronize(device)
        r = train_steps(engine, stream, n)
        chunks.append(r["seconds"] / r["steps"])
        chunk_losses.append(r["losses"])
    return {
        "seconds_per_step": statistics.fmean(chunks),
        "seconds_per_step_std": statistics.stdev(chunks) if len(chunks) > 1 else 0.0,
        "chunk_seconds_per_step": chunks,
        "chunk_losses": chunk_losses,
        "setup_seconds": setup_seconds,
        "time_to_first_batch": time_to_first_batch,
        "warmup_seconds": w["seconds"],
        "warmup_losses": list(w["losses"]),
    }
