"""Train a group of compatible runs as one fused model (:mod:`dlbench.train.fused`); one record per member.

Each member gets what its solo ``train`` step would write in its own folder: ``record.json`` (the usual
schema: history, test accuracy, confusion matrix, timings), ``best.pt`` (its own best epoch by its own
validation accuracy, an unfused state_dict that loads into the torchvision model); no ``last.pt``: a fused
group is not resumable mid-way (run again, it retrains from the start). The record
adds ``fused_with`` (the other members' run ids), ``fused_members`` and ``time_shared: true``: the
training seconds are those of the whole group (the members trained at the same time), and
``images_per_second`` counts the member's own images.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from dlbench.configs import TrainConfig, validate_model
from dlbench.data import load_split
from dlbench.data.registry import DATASETS, split_facts
from dlbench.data.step import SPLIT_NAME, split_manifest
from dlbench.energy import EnergyMeter, summarize
from dlbench.errors import DataError, SpecError, StepFailed
from dlbench.io import atomic_path
from dlbench.log import get_logger
from dlbench.record import step_record
from dlbench.train import checkpoint as ckpt
from dlbench.train.checks import check_model_takes, check_split_parts
from dlbench.train.data import normalization, steps_per_epoch
from dlbench.train.engines import check_amp, resolve_device, synchronize
from dlbench.train.fused import (
    FusedEngine,
    check_group,
    load_member_state_dict,
    member_state_dict,
    peak_host_bytes,
)
from dlbench.train.loop import epoch_entry, run_epoch, start_clock, wall_total

_log = get_logger("dlbench.train")


def _save_state(path: Path, state: dict[str, torch.Tensor]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _load_arrays(config: TrainConfig, split_dir) -> tuple[dict, dict, Path]:
    split_dir = Path(split_dir)
    split_path = split_dir / SPLIT_NAME if split_dir.is_dir() else split_dir
    arrays = load_split(split_path)
    manifest = split_manifest(split_path) or {}
    if manifest.get("dataset", config.dataset) != config.dataset:
        raise DataError(
            f"{split_path} holds {manifest['dataset']} but the run asks for {config.dataset}",
            f"pass the {config.dataset} split",
        )
    check_model_takes(config, arrays)
    check_split_parts(config, arrays, split_path)
    return arrays, manifest, split_path


def run_train_group(
    configs: Sequence[TrainConfig | dict],
    split_dirs: Sequence[str | os.PathLike],
    out_dirs: Sequence[str | os.PathLike],
    log=_log.info,
) -> list[dict[str, Any]]:
    """Train ``configs`` (compatible: see :func:`dlbench.train.fused.check_group`) as one fused model,
    member ``i`` on the split in ``split_dirs[i]`` into ``out_dirs[i]``; return the members' records.

    Everything is checked before any file is written. A non-finite loss in any member stops the group
    (each member's record says ``failed``; checkpoints of earlier epochs stay).
    """
    configs = [
        c if isinstance(c, TrainConfig) else validate_model(TrainConfig, dict(c), "train config")
        for c in configs
    ]
    if not (len(configs) == len(split_dirs) == len(out_dirs)):
        raise SpecError(
            "run_train_group: configs, split folders and output folders differ in number",
            "pass one split folder and one output folder per run",
        )
    check_group(configs)
    first = configs[0]
    device = resolve_device(first.device)
    check_amp(first.amp, device)
    loaded = [_load_arrays(c, d) for c, d in zip(configs, split_dirs, strict=True)]
    arrays = [a for a, _, _ in loaded]
    outs = [Path(o) for o in out_dirs]
    n_train = len(arrays[0]["y_train"])
    steps = steps_per_epoch(n_train, first.batch_size, first.max_steps_per_epoch)
    ids = [c.run_id for c in configs]
    n_m = len(configs)

    for o in outs:
        o.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        recs = [
            stack.enter_context(step_record("train", c.model_dump(), o, run_id=c.run_id, device=str(device)))
            for c, o in zip(configs, outs, strict=True)
        ]
        for rec, (_, _, split_path) in zip(recs, loaded, strict=True):
            rec.add_input("split", split_path)
        t_start = start_clock(device)
        engine = FusedEngine(configs, arrays, device)
        histories: list[list[dict]] = [[] for _ in configs]
        for i, (rec, c, (a, manifest, _)) in enumerate(zip(recs, configs, loaded, strict=True)):
            rec.metrics.update(
                engine="fused",
                stem=c.stem,
                input_shape=c.input_shape,
                steps_per_epoch=steps,
                n_train=n_train,
                n_val=len(a["y_val"]),
                n_test=len(a["y_test"]),
                classes=manifest.get("classes") or list(DATASETS[c.dataset].classes),
                normalization=normalization(split_facts(c.dataset, a)),
                resumed_from_epoch=None,
                history=histories[i],
                fused_with=[r for r in ids if r != c.run_id],
                fused_members=n_m,
                time_shared=True,
            )
        fit = _fit_group(engine, configs, outs, recs, histories, steps, device, log)
        _finish_group(engine, configs, outs, recs, histories, fit, t_start, device, log)
    return [r.to_dict() for r in recs]


def _fit_group(
    engine: FusedEngine,
    configs: list[TrainConfig],
    outs: list[Path],
    recs: list,
    histories: list[list[dict]],
    steps: int,
    device: torch.device,
    log,
) -> dict[str, Any]:
    """Set the fused model up and train every epoch: each member's history, best validation accuracy (its
    ``best.pt`` saved when it improves) and the group's setup and first-batch times."""
    trainer, first, n_m = engine.trainer, configs[0], len(configs)
    bests = [{"val_accuracy": -1.0, "epoch": 0} for _ in configs]
    t_setup = time.perf_counter()
    engine.setup()
    setup_seconds = time.perf_counter() - t_setup
    first_t: dict[str, float] = {}
    meter, energy = EnergyMeter.for_device(device), []

    def on_first_batch():
        if not first_t:
            synchronize(device)
            first_t["t"] = time.perf_counter() - t_setup

    for epoch in range(first.epochs):
        desc = f"{first.model} fused x{n_m} epoch {epoch + 1}/{first.epochs}"
        t_epoch = time.perf_counter()
        try:
            with meter.measure() as joules:  # the group's epoch, as timed
                tr = run_epoch(engine, epoch, steps, desc, on_first_batch)
            energy.append(joules)
        except StepFailed as exc:
            for rec in recs:
                rec.metrics["failed_at"] = getattr(exc, "where", None)
            raise
        t_eval = time.perf_counter()
        vals = trainer.evaluate(engine.eval_batches("val"))
        t_end = time.perf_counter()
        eval_seconds = t_end - t_eval
        for i, c in enumerate(configs):
            val = vals[i]
            entry = epoch_entry(epoch, tr, tr["loss"][i], val, eval_seconds, t_end - t_epoch)
            histories[i].append(entry)
            if val.accuracy > bests[i]["val_accuracy"]:
                bests[i] = {"val_accuracy": val.accuracy, "epoch": epoch + 1}
                _save_state(outs[i] / ckpt.BEST_NAME, member_state_dict(trainer.model, i))
            log(
                f"{c.run_id} (fused x{n_m}) epoch {epoch + 1}/{c.epochs}: train loss "
                f"{entry['train_loss']:.4f}, val loss {val.loss:.4f}, val acc {val.accuracy:.2%}"
            )
        log(
            f"fused group of {n_m}: epoch {epoch + 1} {tr['seconds']:.1f} s, "
            f"{n_m * tr['images'] / tr['seconds']:,.0f} img/s over all members"
        )
    return {
        "bests": bests,
        "setup_seconds": setup_seconds,
        "first_batch": first_t.get("t"),
        "energy": {**summarize(energy, "epoch"), "shared_by": n_m},  # the whole group's joules
    }


def _finish_group(
    engine: FusedEngine,
    configs: list[TrainConfig],
    outs: list[Path],
    recs: list,
    histories: list[list[dict]],
    fit: dict[str, Any],
    t_start: float,
    device: torch.device,
    log,
) -> None:
    """Test every member (at its last epoch, and at its best checkpoint when that is another epoch) and fill
    in its record's metrics, times marked as the whole group's."""
    trainer, first, n_m, bests = engine.trainer, configs[0], len(configs), fit["bests"]
    setup_seconds, first_t = fit["setup_seconds"], fit["first_batch"]
    tests = trainer.evaluate(engine.eval_batches("test"))
    reload = [i for i in range(n_m) if bests[i]["epoch"] and bests[i]["epoch"] != first.epochs]
    best_tests = {}
    if reload:
        for i in reload:
            load_member_state_dict(
                trainer.model, i, torch.load(outs[i] / ckpt.BEST_NAME, map_location=device, weights_only=True)
            )
        again = trainer.evaluate(engine.eval_batches("test"))
        best_tests = {i: again[i].accuracy for i in reload}
    total = round(time.perf_counter() - t_start, 4)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    describe = engine.describe()
    for i, (rec, c) in enumerate(zip(recs, configs, strict=True)):
        m, h = rec.metrics, histories[i]
        seconds = [e["seconds"] for e in h]
        images = sum(e["images"] for e in h)
        m.update(
            test_accuracy=tests[i].accuracy,
            test_loss=tests[i].loss,
            confusion_matrix=tests[i].confusion,
            best_val_accuracy=bests[i]["val_accuracy"],
            best_epoch=bests[i]["epoch"],
            test_accuracy_best_checkpoint=best_tests.get(i, tests[i].accuracy),
            train_seconds=round(sum(seconds), 4),
            train_wall_seconds=wall_total(h),
            epoch_seconds_mean=round(sum(seconds) / len(seconds), 4) if seconds else None,
            images_per_second=round(images / sum(seconds), 2) if seconds else None,
            images_per_second_group=round(n_m * images / sum(seconds), 2) if seconds else None,
            time_to_first_batch=round(first_t, 4) if first_t is not None else None,
            setup_seconds=round(setup_seconds, 4),
            total_seconds=total,
            peak_memory_device_bytes=peak,
            peak_memory_host_bytes=peak_host_bytes(),
            n_parameters=sum(p.numel() for p in trainer.model.parameters()) // n_m,
            energy=fit["energy"],
            **describe,
        )
        m["timing_note"] = (
            f"shared: this run trained fused with {n_m - 1} other run(s) (fused_with) in one "
            "model; seconds, setup, time to first batch, peak memory and energy are the whole group's, "
            "images_per_second counts this run's images (images_per_second_group: all "
            f"members'); at input {c.input_shape}; validation excluded (eval_seconds; train_wall_seconds: "
            "the epochs' whole wall time, training and validation)"
        )
        rec.add_output("checkpoint", outs[i] / ckpt.BEST_NAME)
        log(
            f"{c.run_id}: test accuracy {tests[i].accuracy:.2%} (fused x{n_m}, {m['train_seconds']:.1f} s "
            "shared)"
        )
