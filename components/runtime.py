"""What each component does, between KFP's artifacts and a dlbench task's folders. No kfp import here.

A component body is two lines: import this module, call one ``*_task`` with the artifacts KFP gave it.
Each function maps the artifacts to folders, runs the plan's task with :mod:`dlbench.runner` (the failure
policy ``dlbench study`` has too: a step that fails for a reason a user can act on keeps a failed
``record.json`` and the task ends normally, so the report still renders and shows it; anything else fails
the task and KFP's retry policy applies), and logs the record's numbers as KFP Metrics (``failed = 1`` for
a failed step). Artifacts are duck-typed (``.path``, ``.metadata``, ``log_metric``,
``log_confusion_matrix``), so these functions also run under a test with plain objects.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from dlbench.errors import DlbenchError
from dlbench.layout import StudyLayout, assemble, link_runs, read_record, run_folders
from dlbench.log import get_logger
from dlbench.runner import (
    run_data_task,
    run_onnx_task,
    run_profile_task,
    run_svm_task,
    run_train_task,
)

log = get_logger("dlbench.component")


def _log_number(metrics: Any, name: str, value: Any) -> None:
    if metrics is not None and isinstance(value, int | float) and not isinstance(value, bool):
        metrics.log_metric(name, float(value))


def _outcome(out: Path, artifact: Any, metrics: Any) -> dict[str, Any]:
    rec = read_record(out) or {"status": "failed", "error": "no record written"}
    status = rec.get("status", "failed")
    if artifact is not None:
        artifact.metadata["status"] = status
        if rec.get("run_id"):
            artifact.metadata["run_id"] = rec["run_id"]
        if rec.get("error"):
            artifact.metadata["error"] = str(rec["error"])[:500]
    _log_number(metrics, "failed", 0 if status == "ok" else 1)
    return rec


# ----------------------------------------------------------------------------------------- data


def data_task(data_spec: dict, seed: int, split: Any, metrics: Any) -> None:
    """Every dataset of the spec into ``split.path/<dataset>/`` (split.npz, manifest.json, record.json)."""
    from dlbench.plan import DataTask
    from dlbench.spec import DataSpec, validate_model

    spec = validate_model(DataSpec, data_spec, "data spec")
    root = Path(split.path)
    fingerprints = {}
    failed = 0
    for ds in spec.datasets:
        outcome = run_data_task(DataTask(ds, spec, seed), root / ds, log.info)
        if not outcome.ok:
            failed += 1
            continue
        for part in ("train", "val", "test"):
            _log_number(metrics, f"{ds}_n_{part}", outcome.result["parts"][part]["size"])
        fingerprints[ds] = ((read_record(root / ds) or {}).get("metrics") or {}).get("fingerprint")
    _log_number(metrics, "failed", failed)
    split.metadata["datasets"] = list(spec.datasets)
    split.metadata["fingerprints"] = fingerprints


# ----------------------------------------------------------------------------------------- train


def train_task(split: Any, config: dict, run: Any, metrics: Any, confusion: Any) -> None:
    """One training run into ``run.path`` (record.json, best checkpoint); the resume checkpoint is dropped
    (a retried pod starts with an empty output folder anyway)."""
    from dlbench.plan import TrainTask
    from dlbench.spec import TrainConfig, validate_model

    cfg = validate_model(TrainConfig, config, "train config")
    out = Path(run.path)
    out.mkdir(parents=True, exist_ok=True)
    run_train_task(TrainTask((cfg,)), Path(split.path), [out], log.info, keep_resume_checkpoint=False)
    rec = _outcome(out, run, metrics)
    run.metadata.update(
        {"model": cfg.model, "dataset": cfg.dataset, "device": cfg.device, "engine": cfg.engine}
    )
    m = rec.get("metrics") or {}
    _log_report_units(
        metrics,
        m,
        {"test_accuracy": "test_accuracy_pct", "best_val_accuracy": "best_val_accuracy_pct"},
        ("train_seconds", "images_per_second", "test_loss"),
    )
    _log_confusion(confusion, m)


def _log_report_units(metrics: Any, m: dict, fractions: dict[str, str], others: tuple[str, ...]) -> None:
    """KFP Metrics in the report's units, named with the unit: accuracies as percentages (``*_pct``)."""
    for key, name in fractions.items():
        if isinstance(m.get(key), int | float) and not isinstance(m.get(key), bool):
            _log_number(metrics, name, m[key] * 100.0)
    for key in others:
        _log_number(metrics, key, m.get(key))


def train_group_task(split: Any, group: dict, run: Any, metrics: Any) -> None:
    """A fused group of runs into ``run.path/<run_id>/`` each (record.json, best checkpoint)."""
    from dlbench.plan import TrainTask
    from dlbench.spec import TrainConfig, validate_model

    task = TrainTask(tuple(validate_model(TrainConfig, c, "train config") for c in group["configs"]))
    outs = [Path(run.path) / run_id for run_id in task.run_ids]
    run_train_task(task, Path(split.path), outs, log.info)
    ok = sum(1 for o in outs if (read_record(o) or {}).get("status") == "ok")
    first = task.configs[0]
    run.metadata.update(
        {"runs": task.run_ids, "ok": ok, "model": first.model, "device": first.device, "engine": "fused"}
    )
    _log_number(metrics, "runs", len(task.configs))
    _log_number(metrics, "ok", ok)


def _log_confusion(confusion: Any, m: dict) -> None:
    cm, classes = m.get("confusion_matrix"), m.get("classes")
    if confusion is None or not cm:
        return
    classes = [str(c) for c in (classes or range(len(cm)))]
    if len(classes) == len(cm):
        confusion.log_confusion_matrix(classes, [[int(v) for v in row] for row in cm])


# ----------------------------------------------------------------------------------------- svm


def svm_task(split: Any, config: dict, run: Any, metrics: Any, confusion: Any) -> None:
    """One SVM config into ``run.path`` (record.json, model.joblib)."""
    from dlbench.plan import SvmTask
    from dlbench.spec import SvmConfig, validate_model

    cfg = validate_model(SvmConfig, config, "svm config")
    out = Path(run.path)
    out.mkdir(parents=True, exist_ok=True)
    run_svm_task(SvmTask(cfg), Path(split.path), out, log.info)
    rec = _outcome(out, run, metrics)
    m = rec.get("metrics") or {}
    run.metadata.update(
        {
            "dataset": cfg.dataset,
            "estimator": cfg.estimator,
            "kernel": cfg.kernel,
            "backend": m.get("backend", cfg.backend),
        }
    )
    _log_report_units(
        metrics,
        m,
        {"accuracy": "test_accuracy_pct"},
        ("fit_seconds", "predict_seconds", "n_support", "n_train"),
    )
    _log_confusion(confusion, m)


# ----------------------------------------------------------------------------------------- profile


def profile_task(
    models: list, stem: str, input_sizes: list, in_channels: list, batch_size: int, result: Any, metrics: Any
) -> None:
    """FLOPs and parameters of every model at every input size and channel count into ``result.path``."""
    from dlbench.plan import ProfileTask

    out = Path(result.path)
    out.mkdir(parents=True, exist_ok=True)
    task = ProfileTask(
        tuple(models),
        stem,
        tuple(int(s) for s in input_sizes),
        tuple(int(c) for c in in_channels),
        int(batch_size),
    )
    run_profile_task(task, out, log.info)
    rec = _outcome(out, result, metrics)
    for row in (rec.get("metrics") or {}).get("rows") or []:
        channels = row.get("in_channels", 1)
        tag = f"{row.get('model')}_{row.get('input_size')}px" + ("" if channels == 1 else f"_{channels}ch")
        _log_number(metrics, f"{tag}_forward_gflops", row.get("forward_gflops"))
        _log_number(metrics, f"{tag}_params", row.get("params"))


# ----------------------------------------------------------------------------------------- onnx


def _paths(*artifact_lists: list | None) -> list[Path]:
    return [Path(a.path) for artifacts in artifact_lists for a in artifacts or []]


# Fan-in inputs of the report and ONNX components for the run loops of catalog devices other than cpu and
# cuda (pipelines/study.py: one loop per device, as each device has its own node selector).
POOL_SLOTS = 6


def pool_runs(pools: list | None) -> dict[str, list]:
    """The run artifacts of the ``pool_N`` inputs by step (train or svm), told by each folder's record."""
    out: dict[str, list] = {}
    for artifacts in pools or []:
        for a in artifacts or []:
            recs = [read_record(f) for f in run_folders(Path(a.path))]
            step = next((r.get("step") for r in recs if r), None)
            if step:
                out.setdefault(str(step), []).append(a)
    return out


def onnx_task(
    models: list,
    settings: dict,
    result: Any,
    metrics: Any,
    train_cpu: list | None = None,
    train_gpu: list | None = None,
    train_gpu_fused: list | None = None,
    pools: list | None = None,
) -> None:
    """Export and time every model into ``result.path/<model>/``; uses the best trained checkpoint of each."""
    from dlbench.plan import OnnxTask, OnnxTaskSettings
    from dlbench.spec import validate_model

    task = OnnxTask(tuple(models), validate_model(OnnxTaskSettings, settings, "onnx settings"))
    out = Path(result.path)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dlbench-train-runs-") as tmp:
        train_root = Path(tmp) / "train"
        link_runs(_paths(train_cpu, train_gpu, train_gpu_fused, pool_runs(pools).get("train")), train_root)
        outcomes = run_onnx_task(task, train_root, out, log.info)
    failed = 0
    for model, outcome in outcomes.items():
        rec = outcome.result if outcome.ok else {}  # the step returns its record
        if (rec or {}).get("status") != "ok":
            failed += 1
            continue
        for r in (rec.get("metrics") or {}).get("results") or []:
            if r.get("runtime") == "onnxruntime":
                _log_number(
                    metrics, f"{model}_{r.get('provider')}_b{r.get('batch_size')}_p50_ms", r.get("p50_ms")
                )
    result.metadata["models"] = list(models)
    result.metadata["failed"] = failed
    _log_number(metrics, "failed", failed)


# ----------------------------------------------------------------------------------------- report


def assemble_study(
    into: Path, spec: dict, data: Any = None, profile: Any = None, runs: dict | None = None, onnx: Any = None
) -> dict[str, int]:
    """Lay the artifacts' records out as ``dlbench study`` does (:func:`dlbench.layout.assemble`), with the
    spec as ``spec.yaml``. Returns counts per step."""
    import yaml

    from dlbench.errors import SpecError
    from dlbench.spec import parse_spec

    lay = StudyLayout(into)
    lay.root.mkdir(parents=True, exist_ok=True)
    try:  # through KFP a spec comes back as a protobuf Struct: numbers as floats, keys sorted; the model
        # restores both (integers, the spec's field order)
        spec = json.loads(parse_spec(spec, "the pipeline's spec").model_dump_json())
    except SpecError as exc:
        log.warning(f"spec.yaml written as received: {exc.one_line()}")
    lay.spec.write_text(yaml.safe_dump(spec, sort_keys=False))
    return assemble(
        lay,
        data_root=Path(data.path) if data is not None else None,
        runs={step: _paths(artifacts) for step, artifacts in (runs or {}).items()},
        profile=Path(profile.path) if profile is not None else None,
        onnx_root=Path(onnx.path) if onnx is not None else None,
    )


def report_task(
    spec: dict,
    publish_to: str,
    run_name: str,
    study: Any,
    html: Any,
    markdown: Any,
    metrics: Any,
    data: Any = None,
    profile: Any = None,
    onnx: Any = None,
    train_cpu: list | None = None,
    train_gpu: list | None = None,
    svm_cpu: list | None = None,
    svm_gpu: list | None = None,
    train_gpu_fused: list | None = None,
    pools: list | None = None,
) -> None:
    """Gather every record into ``study.path`` (the run's bundle), write the report, a MANIFEST.json last,
    and with ``publish_to`` (a store URL) upload the bundle to ``<publish_to>/<run_name>/``."""
    from dlbench.report import run_report
    from dlbench.store import open_store, write_manifest

    root = Path(study.path)
    more = pool_runs(pools)
    runs = {
        "train": list(train_cpu or [])
        + list(train_gpu or [])
        + list(train_gpu_fused or [])
        + more.get("train", []),
        "svm": list(svm_cpu or []) + list(svm_gpu or []) + more.get("svm", []),
    }
    counts = assemble_study(root, spec, data=data, profile=profile, runs=runs, onnx=onnx)
    log.info("records: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    html_path = run_report(root, StudyLayout(root).report, log=log.info)
    shutil.copyfile(html_path, html.path)
    md = html_path.with_name("report.md")
    Path(markdown.path).write_text(md.read_text() if md.is_file() else f"[report]({html_path.name})\n")
    summary_path = html_path.with_name("summary.json")
    if summary_path.is_file():
        for key, value in (json.loads(summary_path.read_text()).get("metrics") or {}).items():
            _log_number(metrics, key, value)
    write_manifest(root)
    study.metadata.update({"run_name": run_name, "records": counts})
    if publish_to:
        # A failed upload does not fail the task: the bundle is still this task's artifact in the
        # pipeline root, where dlbench fetch finds it too.
        try:
            store = open_store(publish_to)
            store.put_tree(root, run_name, progress=False, log=log.info)
            study.metadata["published"] = store.describe(run_name)
        except DlbenchError as exc:
            log.error(f"could not publish the bundle to {publish_to}: {exc.one_line()}")
            study.metadata["publish_error"] = exc.one_line()[:500]
