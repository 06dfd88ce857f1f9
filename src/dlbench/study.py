"""Run a whole study in this process, step after step, into one folder (the ``inline`` runner).

Layout of a study folder (the same names the pipeline uses in the artifact store)::

    <out>/spec.yaml
    <out>/data/<dataset>/{split.npz, manifest.json, record.json}

Later steps add ``train/<run_id>/``, ``svm/<run_id>/``, ``profile/``, ``onnx/<model>/``, ``report/``.
A step that fails is recorded and the study goes on with the steps that do not depend on it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from dlbench.errors import DlbenchError
from dlbench.log import get_logger
from dlbench.record import record_refusal
from dlbench.spec import StudySpec

log = get_logger("dlbench.study")


def data_dir(out: Path, dataset: str) -> Path:
    return out / "data" / dataset


def run_study(spec: StudySpec, out_dir: str | os.PathLike, fuse: bool | None = None) -> dict:
    """Run every step of ``spec``; return a summary {step: {ok: n, failed: [...]}}.

    ``fuse`` (default: the spec's ``train.fuse``) trains compatible GPU runs as fused groups
    (:func:`dlbench.spec.train_tasks`); each member still gets its own ``train/<run_id>/`` folder.
    """
    from dlbench.spec import require_runs

    require_runs(spec)  # a study with no runs is refused before the data step
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "spec.yaml").write_text(yaml.safe_dump(json.loads(spec.model_dump_json()), sort_keys=False))
    summary: dict[str, dict] = {}

    def attempt(step: str, label: str, fn, *args, record: dict | None = None, **kwargs):
        """Run one step; a DlbenchError is logged and counted, and (with ``record``: the run's config,
        out_dir, run_id, device) a run refused before its record opened gets a failed record."""
        entry = summary.setdefault(step, {"ok": 0, "failed": []})
        try:
            result = fn(*args, **kwargs)
            entry["ok"] += 1
            return result
        except DlbenchError as exc:
            log.error(f"{step} {label} failed: {exc.one_line()}")
            entry["failed"].append({"run": label, "error": exc.one_line()})
            if record is not None:
                record_refusal(exc, step, **record)
            return None

    from dlbench.data.step import run_data

    data_ok: dict[str, bool] = {}
    for ds in spec.data.datasets:
        data_ok[ds] = attempt("data", ds, run_data, ds, data_dir(out, ds), source=spec.data.source,
                              root=spec.data.root, seed=spec.seed, subsample=spec.data.subsample,
                              fractions=spec.data.fractions, log=log.info) is not None
    from dlbench.spec import train_tasks
    from dlbench.train import run_train

    for task in train_tasks(spec, fuse=fuse):
        missing = sorted({c.dataset for c in task if not data_ok.get(c.dataset)})
        if missing:
            for cfg in task:
                log.warning(f"train {cfg.run_id} skipped: the data step for {', '.join(missing)} did not succeed")
            continue
        if len(task) > 1:
            run_fused_group(task, out, summary)
            continue
        cfg = task[0]
        run_out = out / "train" / cfg.run_id
        attempt("train", cfg.run_id, run_train, cfg, data_dir(out, cfg.dataset), run_out, log=log.info,
                record={"config": cfg.model_dump(), "out_dir": run_out, "run_id": cfg.run_id, "device": cfg.device})
    from dlbench.spec import expand_svm
    from dlbench.svm import run_svm

    for cfg in expand_svm(spec):
        if not data_ok.get(cfg.dataset):
            log.warning(f"svm {cfg.run_id} skipped: the data step for {cfg.dataset} did not succeed")
            continue
        run_out = out / "svm" / cfg.run_id
        attempt("svm", cfg.run_id, run_svm, cfg, data_dir(out, cfg.dataset), run_out, log=log.info,
                record={"config": cfg.model_dump(), "out_dir": run_out, "run_id": cfg.run_id})
    run_profile_and_onnx(spec, out, attempt)
    from dlbench.report import run_report

    attempt("report", "report", run_report, out, out / "report", log=log.info)
    return summary


def run_fused_group(task: list, out: Path, summary: dict) -> None:
    """Train ``task`` (compatible runs) as one fused model; count and record each member like a solo run."""
    from dlbench.train.group import run_train_group

    entry = summary.setdefault("train", {"ok": 0, "failed": []})
    outs = [out / "train" / c.run_id for c in task]
    label = "fused group " + ", ".join(c.run_id for c in task)
    try:
        run_train_group(task, [data_dir(out, c.dataset) for c in task], outs, log=log.info)
        entry["ok"] += len(task)
    except DlbenchError as exc:
        log.error(f"train {label} failed: {exc.one_line()}")
        for c, o in zip(task, outs, strict=True):
            entry["failed"].append({"run": c.run_id, "error": exc.one_line()})
            record_refusal(exc, "train", c.model_dump(), o, run_id=c.run_id, device=c.device)


def run_profile_and_onnx(spec: StudySpec, out: Path, attempt) -> None:
    """FLOPs once for every model into ``profile/``; ONNX per model into ``onnx/<model>/``.

    The ONNX step exports the best checkpoint of a finished train run of that model and stem (found in
    ``train/*/record.json``) or, when there is none, a freshly initialised model; its record says which.
    """
    from dlbench.onnxrt import find_train_checkpoint, run_onnx
    from dlbench.profile import run_profile

    stem = spec.train.stem
    p = spec.profile
    attempt("profile", "profile", run_profile, list(p.models or spec.model_names()), stem, p.input_sizes,
            p.batch_size, out / "profile", log=log.info, in_channels=p.in_channels)
    o = spec.onnx
    for model in o.models or spec.model_names():
        found = find_train_checkpoint(out / "train", model, stem, o.input_size, o.in_channels)
        checkpoint = found[0] if found else None
        log.info(f"onnx {model}: " + (f"exporting the best train checkpoint {checkpoint}" if checkpoint
                                      else "no finished train run of it; exporting a freshly initialised model"))
        attempt("onnx", model, run_onnx, model, stem, out / "onnx" / model, checkpoint=checkpoint, log=log.info,
                **o.run_kwargs())
