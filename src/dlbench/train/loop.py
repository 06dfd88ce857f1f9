"""The epoch loop both engines run: step, keep the loss on the device, check it for NaN/inf now and then.

``bench/train_engines.py`` and ``bench/train_fused.py`` time exactly this loop.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import torch

from dlbench.errors import StepFailed
from dlbench.log import Progress
from dlbench.train.engines import synchronize


def start_clock(device: torch.device) -> float:
    """The start of a training's wall time: on a GPU, peak memory counted from here and cuDNN left to pick
    its fastest kernels (the first steps then include that search, as every run's do)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        torch.backends.cudnn.benchmark = True
    return time.perf_counter()


def run_epoch(engine, epoch: int, steps: int, desc: str = "", on_first_batch=None) -> dict[str, Any]:
    """Train one epoch (at most ``steps`` batches) with a progress bar or log lines (:func:`train_steps`)."""
    progress = Progress(engine.batches(epoch, steps), total=steps, desc=desc)
    batches = iter(progress)
    result = train_steps(engine, batches, steps, epoch, progress=progress, on_first_batch=on_first_batch)
    for _ in batches:  # let the bar close / the last log line out (there are no batches left)
        pass
    return result


def epoch_entry(
    epoch: int,
    tr: dict[str, Any],
    train_loss: float,
    val,
    eval_seconds: float,
    wall_seconds: float | None = None,
) -> dict[str, Any]:
    """One epoch of a record's ``history``: ``tr`` from :func:`run_epoch`, ``val`` an evaluation result.

    Two times: ``seconds``, the training steps (device synchronised; validation excluded), and
    ``wall_seconds``, the epoch's whole wall time from its first batch drawn to its validation done."""
    return {
        "epoch": epoch + 1,
        "train_loss": train_loss,
        "val_loss": val.loss,
        "val_accuracy": val.accuracy,
        "seconds": round(tr["seconds"], 4),
        "images_per_second": round(tr["images"] / tr["seconds"], 2),
        "images": tr["images"],
        "steps": tr["steps"],
        "eval_seconds": round(eval_seconds, 4),
        "wall_seconds": round(wall_seconds, 4) if wall_seconds is not None else None,
    }


def wall_total(history: list[dict[str, Any]]) -> float | None:
    """The epochs' whole wall time (training and validation) summed; None when an epoch lacks it (one
    recorded before it was)."""
    walls = [h.get("wall_seconds") for h in history]
    return round(sum(walls), 4) if walls and all(w is not None for w in walls) else None


def train_steps(
    engine,
    batches: Iterator,
    steps: int,
    epoch: int = 0,
    progress: Progress | None = None,
    on_first_batch=None,
    step_offset: int = 0,
) -> dict[str, Any]:
    """Run up to ``steps`` training steps on batches from ``batches``; return their losses, mean loss,
    images, steps and seconds (the device synchronised before the clock stops).

    Losses stay on the device and are read back every ``engine.sync_every`` steps and at the end; a
    NaN/inf loss raises StepFailed naming the epoch and step (1-based, counting from ``step_offset``).
    An engine that trains several members at once (``engine.members``, the fused engine) returns one
    loss per member from each step; then ``loss`` and each entry of ``losses`` are per-member lists.
    """
    device = engine.device
    members = getattr(engine, "members", None)
    losses = torch.zeros((steps, members) if members else (steps,), dtype=torch.float32, device=device)
    images, checked, n = 0, 0, 0
    total = step_offset + steps
    t0 = time.perf_counter()
    for s in range(steps):
        try:
            batch = next(batches)
        except StopIteration:
            break
        if s == 0 and on_first_batch is not None:
            on_first_batch()
        losses[s] = engine.step(batch)
        images += engine.batch_len(batch)
        n = s + 1
        if n % engine.sync_every == 0 or n == steps:
            segment = losses[checked:n].cpu()
            _check_finite(segment, epoch, step_offset + checked, total)
            checked = n
            if progress is not None:
                progress.set(loss=float(segment.double().mean()))
    synchronize(device)
    seconds = time.perf_counter() - t0
    if checked < n:
        _check_finite(losses[checked:n].cpu(), epoch, step_offset + checked, total)
    values = losses[:n].cpu()
    if members:
        mean = values.double().mean(0).tolist() if n else [float("nan")] * members
    else:
        mean = float(values.double().mean()) if n else float("nan")
    return {"loss": mean, "losses": values.tolist(), "images": images, "steps": n, "seconds": seconds}


def _check_finite(segment: torch.Tensor, epoch: int, offset: int, steps: int) -> None:
    bad = (~torch.isfinite(segment)).nonzero()
    if len(bad):
        i = int(bad[0][0])
        step = offset + i + 1
        exc = StepFailed(
            f"training loss is {float(segment[i])} at epoch {epoch + 1}, step {step} of {steps}",
            "lower --lr, or try --amp off / bf16; checkpoints of earlier epochs are kept",
        )
        exc.where = {"epoch": epoch + 1, "step": step}
        raise exc
