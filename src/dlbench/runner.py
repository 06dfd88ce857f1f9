"""Run one task of a plan (:mod:`dlbench.plan`) into given folders, with the one failure policy both runners
share (``dlbench study`` and the pipeline's components).

Every step has one contract, ``run(config, inputs, out, log)`` in the module :data:`STEPS` names: the
step's config, the paths it reads (``inputs``: a split, a checkpoint, records), the folder it writes
(``out``), and where its progress lines go. A task of the plan becomes one :class:`Job` per call of its
step (an ONNX task, one per model) and :func:`run_job` runs each under the failure policy.

Failure policy: a step that fails for a reason a user can act on (a :class:`~dlbench.errors.DlbenchError`:
bad config, NaN loss, a device that is not there, a split that is missing) is logged in one line and keeps
a ``record.json`` with ``status: failed`` (one is written here when the step refused before opening its
own), so the report shows it; the caller goes on with what does not depend on it. Anything else (out of
memory, a bug) propagates: the study stops, and in a pipeline the task fails and KFP's retry policy applies.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlbench.errors import DlbenchError, StepFailed
from dlbench.layout import failed_train_runs, find_train_checkpoint, read_record
from dlbench.log import get_logger
from dlbench.plan import DataTask, OnnxTask, ProfileTask, SvmTask, TrainTask
from dlbench.record import record_refusal

_log = get_logger("dlbench.runner")
Log = Callable[[str], Any]


@dataclass
class Outcome:
    """What became of one task: the step's return value when it ran, else the one-line error."""

    ok: bool
    result: Any = None
    error: str | None = None
    failed_runs: list[str] = field(default_factory=list)


def run_task(
    step: str,
    label: str,
    fn: Callable[..., Any],
    *args: Any,
    refusals: Sequence[dict[str, Any]] = (),
    runs: list[str] | None = None,
    **kwargs: Any,
) -> Outcome:
    """``fn(*args, **kwargs)`` under the failure policy. Each of ``refusals`` (config, out_dir, run_id,
    device) is a run that, refused before opening its record, gets a failed one; ``runs`` names the runs
    the task holds (default: ``label``)."""
    try:
        return Outcome(True, fn(*args, **kwargs))
    except DlbenchError as exc:
        _log.error(f"{step} {label} failed: {exc.one_line()} (recorded; the report will show it)")
        for refusal in refusals:
            record_refusal(exc, step, **refusal)
        return Outcome(False, error=exc.one_line(), failed_runs=runs or [label])


# The steps: name -> the module whose ``run(config, inputs, out, log)`` does it, imported on first use (a
# component imports its own step only).
STEPS = {
    "data": "dlbench.data.step",
    "train": "dlbench.train.step",
    "svm": "dlbench.svm.step",
    "profile": "dlbench.profile",
    "onnx": "dlbench.onnxrt.step",
    "report": "dlbench.report.step",
}


@dataclass
class Job:
    """One call of a step: ``run(config, inputs, out, log)`` of :data:`STEPS` ``[step]``. ``refusals`` and
    ``runs`` are :func:`run_task`'s."""

    step: str
    label: str
    config: Any
    inputs: dict[str, Any]
    out: Any
    refusals: Sequence[dict[str, Any]] = ()
    runs: list[str] | None = None


def run_job(job: Job, log: Log) -> Outcome:
    """``job`` under the failure policy."""
    step = importlib.import_module(STEPS[job.step]).run
    return run_task(
        job.step, job.label, step, job.config, job.inputs, job.out, log, refusals=job.refusals, runs=job.runs
    )


def run_data_task(task: DataTask, out: Path, log: Log) -> Outcome:
    """Split ``task.dataset`` into ``out`` (split.npz, manifest.json, record.json)."""
    s = task.settings
    config = {**task.config, "fractions": s.fractions, "size": s.size, "smoke": task.smoke}
    refusals = [{"config": task.config, "out_dir": out}]
    return run_job(Job("data", task.label, config, {}, out, refusals), log)


def run_train_task(
    task: TrainTask, data_root: Path, outs: list[Path], log: Log, keep_resume_checkpoint: bool = True
) -> Outcome:
    """Train ``task`` (solo, or its configs as one fused model) on ``data_root/<dataset>/``, member ``i`` into
    ``outs[i]``. Without ``keep_resume_checkpoint`` a solo run's ``last.pt`` (optimizer state, several times
    the model) is dropped once the run ended."""
    refusals = [
        {"config": c.model_dump(), "out_dir": o, "run_id": c.run_id, "device": c.device}
        for c, o in zip(task.configs, outs, strict=True)
    ]
    if task.fused:
        configs = list(task.configs)
        splits = [data_root / c.dataset for c in configs]
        return run_job(
            Job("train", task.label, configs, {"split": splits}, outs, refusals, task.run_ids), log
        )
    (cfg,), (out,) = task.configs, outs
    outcome = run_job(Job("train", cfg.run_id, cfg, {"split": data_root / cfg.dataset}, out, refusals), log)
    if not keep_resume_checkpoint:
        _drop_resume_checkpoint(out)
    return outcome


def _drop_resume_checkpoint(out: Path) -> None:
    rec = read_record(out) or {}
    outputs = rec.get("outputs") or {}
    last = (outputs.get("last") or {}).get("path")
    best = (outputs.get("checkpoint") or {}).get("path")
    if last and (out / last).is_file() and (not best or (out / last).resolve() != (out / best).resolve()):
        (out / last).unlink()
        # the record lists what the folder holds: a run whose listed outputs are gone is not kept (--resume)
        outputs.pop("last")
        from dlbench.io import write_json
        from dlbench.record import RECORD_NAME

        write_json(out / RECORD_NAME, rec)


def run_svm_task(task: SvmTask, data_root: Path, out: Path, log: Log) -> Outcome:
    """Fit and score ``task.config`` on ``data_root/<dataset>/`` into ``out`` (record.json, model.joblib)."""
    cfg = task.config
    refusals = [{"config": cfg.model_dump(), "out_dir": out, "run_id": cfg.run_id}]
    return run_job(Job("svm", cfg.run_id, cfg, {"split": data_root / cfg.dataset}, out, refusals), log)


def run_profile_task(task: ProfileTask, out: Path, log: Log) -> Outcome:
    """FLOPs and parameters into ``out`` (profile.csv, profile.json, record.json)."""
    config = {
        "models": list(task.models),
        "stem": task.stem,
        "input_sizes": list(task.input_sizes),
        "batch_size": task.batch_size,
        "in_channels": list(task.in_channels),
    }
    return run_job(Job("profile", task.label, config, {}, out), log)


def run_onnx_task(task: OnnxTask, train_root: Path, out_root: Path, log: Log) -> dict[str, Outcome]:
    """Every model of ``task`` into ``out_root/<model>/``, exported from the best checkpoint of a finished
    train run of it in ``train_root/*/`` (at the exported input) or, when there is none, freshly initialised;
    its record says which."""
    s = task.settings
    outcomes = {}
    for model in task.models:
        found = find_train_checkpoint(train_root, model, s.stem, s.input_size, s.in_channels)
        checkpoint = found[0] if found else None
        failed = [] if found else failed_train_runs(train_root, model, s.stem, s.input_size, s.in_channels)
        if failed:  # the export depends on those runs: an untrained model timed in their place would mislead
            exc = StepFailed(
                f"onnx {model}: every train run of it at this input failed ({', '.join(failed[:3])}"
                f"{', ...' if len(failed) > 3 else ''}), so there is no trained checkpoint to export",
                "fix what stopped the train runs (see their records) and run again",
            )
            outcomes[model] = run_task(
                "onnx",
                model,
                _raise,
                exc,
                refusals=[{"config": s.config(model).model_dump(), "out_dir": out_root / model}],
            )
            continue
        log(
            f"onnx {model}: "
            + (
                f"exporting the best trained checkpoint {checkpoint} ({found[1].get('run_id')})"
                if found
                else "no finished train run of it; exporting a freshly initialised model"
            )
        )
        job = Job("onnx", model, s.config(model), {"checkpoint": checkpoint}, out_root / model)
        outcomes[model] = run_job(job, log)
    return outcomes


def run_report_task(records: Path | list[Path], out: Path, log: Log) -> Outcome:
    """The report of every record below ``records`` (a study folder, or several) into ``out``."""
    return run_job(Job("report", "report", None, {"records": records}, out), log)


def _raise(exc: BaseException) -> None:
    raise exc


__all__ = [
    "STEPS",
    "Job",
    "Outcome",
    "run_data_task",
    "run_onnx_task",
    "run_job",
    "run_profile_task",
    "run_report_task",
    "run_svm_task",
    "run_task",
    "run_train_task",
]
