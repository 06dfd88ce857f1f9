"""The ``train`` step: one TrainConfig, one split folder -> record.json, best.pt, last.pt.

Everything a user can get wrong is checked before any file is written: CUDA asked for but absent,
AMP not available on the device, a batch larger than the training split, a split of another dataset.
A run that diverges (NaN/inf loss) stops with :class:`StepFailed` naming the epoch and step; the
checkpoints of earlier epochs and a record with ``status: failed`` stay.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from dlbench.configs import TrainConfig, validate_model
from dlbench.data.registry import DATASETS
from dlbench.data.step import load_checked_split
from dlbench.energy import EnergyMeter, summarize
from dlbench.errors import SpecError, StepFailed
from dlbench.layout import read_record
from dlbench.log import get_logger
from dlbench.record import step_record
from dlbench.train import checkpoint as ckpt
from dlbench.train.checks import check_model_takes, check_split_parts
from dlbench.train.data import normalization, steps_per_epoch
from dlbench.train.engines import build_engine, check_amp, resolve_device, synchronize
from dlbench.train.loop import epoch_entry, run_epoch, start_clock, wall_total

_log = get_logger("dlbench.train")


def run(
    config: TrainConfig | Sequence[TrainConfig],
    inputs: dict[str, Any],
    out: str | os.PathLike | Sequence[str | os.PathLike],
    log=_log.info,
) -> dict[str, Any] | list[dict[str, Any]]:
    """The step contract (:mod:`dlbench.runner`): one config trains solo on ``inputs["split"]`` into
    ``out``; several (a list) train as one fused model (:mod:`dlbench.train.group`), member ``i`` on
    ``inputs["split"][i]`` into ``out[i]``. Returns the record (a list of them for several)."""
    if isinstance(config, list | tuple):
        from dlbench.train.group import run_train_group

        return run_train_group(list(config), list(inputs["split"]), list(out), log=log)
    return run_train(config, inputs["split"], out, log=log)


def run_train(
    config: TrainConfig | dict,
    split_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    resume: bool = False,
    log=_log.info,
) -> dict[str, Any]:
    """Train ``config`` on the split in ``split_dir``; write ``out_dir/{record.json,best.pt,last.pt}``.

    With ``resume=True`` and an ``out_dir/last.pt`` from the same config (only ``epochs`` may grow),
    training continues after the last complete epoch and ends with the same weights and metrics as an
    uninterrupted run. Returns the record as a dict.
    """
    if not isinstance(config, TrainConfig):
        config = validate_model(TrainConfig, dict(config), "train config")
    if config.engine == "fused":  # a fused group of one: the group path writes the same files
        from dlbench.train.group import run_train_group

        held = [n for n in (ckpt.LAST_NAME, ckpt.BEST_NAME) if (Path(out_dir) / n).exists()]
        if resume and held:
            raise SpecError(
                f"--resume: the fused engine does not resume, and {out_dir} holds {', '.join(held)}, "
                "which it would replace",
                "resume with the engine that wrote them, or train without --resume into another folder",
            )
        if resume:
            log("--resume: the fused engine does not resume; training from epoch 1")
        return run_train_group([config], [split_dir], [out_dir], log=log)[0]
    out = Path(out_dir)
    device = resolve_device(config.device)
    check_amp(config.amp, device)
    arrays, manifest, split_path = _checked_split(config, split_dir, device, log)
    last_path, best_path = out / ckpt.LAST_NAME, out / ckpt.BEST_NAME
    state = None
    if resume:
        if last_path.is_file():
            state = ckpt.load_last(last_path, device, config)
        else:
            held = read_record(out) if out.is_dir() else None
            if isinstance(held, dict) and held.get("run_id") not in (None, config.run_id):
                raise SpecError(
                    f"--resume: {out} holds another run ({held.get('run_id')}) and no {ckpt.LAST_NAME}; "
                    "starting over would delete it",
                    "choose another --out, or resume with that run's options",
                )
            log(f"--resume: no {last_path}; starting from epoch 1")
    n_train = len(arrays["y_train"])
    steps = steps_per_epoch(n_train, config.batch_size, config.max_steps_per_epoch)

    out.mkdir(parents=True, exist_ok=True)
    with step_record(
        "train", config.model_dump(), out, run_id=config.run_id, device=str(device), fresh=state is None
    ) as rec:
        rec.add_input("split", split_path)
        t_start = start_clock(device)
        engine = build_engine(config, arrays, device)
        history: list[dict] = []
        best = {"val_accuracy": -1.0, "epoch": 0}
        start_epoch = 0
        if state is not None:
            ckpt.restore(engine.trainer, state)
            history, best, start_epoch = list(state["history"]), dict(state["best"]), int(state["epoch"])
            log(f"resuming {config.run_id} after epoch {start_epoch} of {config.epochs}")
        m = rec.metrics
        m.update(
            engine=config.engine,
            stem=config.stem,
            input_shape=config.input_shape,
            steps_per_epoch=steps,
            n_train=n_train,
            n_val=len(arrays["y_val"]),
            n_test=len(arrays["y_test"]),
            classes=manifest.get("classes") or list(DATASETS[config.dataset].classes),
            normalization=normalization(engine.facts),
            resumed_from_epoch=start_epoch if state else None,
            history=history,
        )
        timing = _train_epochs(config, engine, device, steps, start_epoch, history, best, out, m, log)
        _finish(config, engine, device, history, best, best_path, m, timing, t_start, log)
        rec.add_output("checkpoint", best_path)
        rec.add_output("last", last_path)
    return rec.to_dict()


def _checked_split(config: TrainConfig, split_dir, device: torch.device, log):
    """The split's arrays, refused when a batch is larger than the training part or a part is empty, or
    when the model cannot take its images."""
    arrays, manifest, split_path = load_checked_split(split_dir, config.dataset)
    check_model_takes(config, arrays)
    check_split_parts(config, arrays, split_path)
    if config.amp == "fp16" and device.type == "cpu":
        log("note: fp16 autocast on the CPU is emulated by most CPUs and slow; bf16 or off is faster")
    return arrays, manifest, split_path


def _train_epochs(
    config: TrainConfig,
    engine,
    device: torch.device,
    steps: int,
    start_epoch: int,
    history: list[dict],
    best: dict,
    out: Path,
    m: dict,
    log,
) -> dict[str, float]:
    """Set the engine up and train the remaining epochs, saving best.pt and last.pt after each; returns
    the setup time and the time to the first batch."""
    trainer = engine.trainer
    t_setup = time.perf_counter()
    engine.setup()
    timing = {"setup": time.perf_counter() - t_setup}
    meter, energy = EnergyMeter.for_device(device), []

    def on_first_batch():
        if "first_batch" not in timing:
            synchronize(device)
            timing["first_batch"] = time.perf_counter() - t_setup

    for epoch in range(start_epoch, config.epochs):
        desc = f"{config.model} {config.engine} epoch {epoch + 1}/{config.epochs}"
        t_epoch = time.perf_counter()
        try:
            with meter.measure() as joules:  # the epoch's training steps, as timed (synchronised)
                tr = run_epoch(engine, epoch, steps, desc, on_first_batch)
            energy.append(joules)
        except StepFailed as exc:
            m["failed_at"] = getattr(exc, "where", None)
            raise
        t_eval = time.perf_counter()
        val = trainer.evaluate(engine.eval_batches("val"))
        t_end = time.perf_counter()
        entry = epoch_entry(epoch, tr, tr["loss"], val, t_end - t_eval, t_end - t_epoch)
        history.append(entry)
        if val.accuracy > best["val_accuracy"]:
            best.update(val_accuracy=val.accuracy, epoch=epoch + 1)
            ckpt.save_best(out / ckpt.BEST_NAME, trainer.model)
        ckpt.save_last(
            out / ckpt.LAST_NAME, trainer=trainer, config=config, epoch=epoch + 1, history=history, best=best
        )
        log(
            f"{config.run_id} epoch {epoch + 1}/{config.epochs}: train loss {tr['loss']:.4f}, "
            f"val loss {val.loss:.4f}, val acc {val.accuracy:.2%}, {tr['seconds']:.1f} s, "
            f"{entry['images_per_second']:,.0f} img/s"
        )
    m["energy"] = summarize(energy, "epoch")
    return timing


def _finish(
    config: TrainConfig,
    engine,
    device: torch.device,
    history: list[dict],
    best: dict,
    best_path: Path,
    m: dict,
    timing: dict[str, float],
    t_start: float,
    log,
) -> None:
    """Test accuracy (of the last and of the best epoch), the summed timings and memory, into ``m``."""
    trainer = engine.trainer
    test = trainer.evaluate(engine.eval_batches("test"))
    m.update(
        test_accuracy=test.accuracy,
        test_loss=test.loss,
        confusion_matrix=test.confusion,
        best_val_accuracy=best["val_accuracy"],
        best_epoch=best["epoch"],
    )
    if best["epoch"] and best["epoch"] != config.epochs and best_path.is_file():
        trainer.model.load_state_dict(torch.load(best_path, map_location=device, weights_only=True))
        m["test_accuracy_best_checkpoint"] = trainer.evaluate(engine.eval_batches("test")).accuracy
    else:
        m["test_accuracy_best_checkpoint"] = test.accuracy
    seconds = [h["seconds"] for h in history]
    images = sum(h["images"] for h in history)
    first = timing.get("first_batch")
    m.update(
        train_seconds=round(sum(seconds), 4),
        train_wall_seconds=wall_total(history),
        epoch_seconds_mean=round(sum(seconds) / len(seconds), 4) if seconds else None,
        images_per_second=round(images / sum(seconds), 2) if seconds else None,
        time_to_first_batch=round(first, 4) if first is not None else None,
        setup_seconds=round(timing["setup"], 4),
        total_seconds=round(time.perf_counter() - t_start, 4),
        peak_memory_device_bytes=torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
        peak_memory_host_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        n_parameters=sum(p.numel() for p in trainer.model.parameters()),
        **engine.describe(),
    )
    m["timing_note"] = (
        f"at input {config.input_shape}; seconds/images_per_second: training steps only (device "
        "synchronised), validation excluded (eval_seconds); train_wall_seconds: the epochs' whole wall "
        "time (training and validation, history's wall_seconds); time_to_first_batch: from engine setup "
        "(resident: upload and CUDA-graph capture) to the first batch on the device; peak host memory is the "
        "process's maxrss"
    )
    log(f"{config.run_id}: test accuracy {test.accuracy:.2%}, {m['train_seconds']:.1f} s training")
