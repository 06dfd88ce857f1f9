"""What each component does, between KFP's artifacts and a dlbench step's folder. No kfp import here.

A component body is two lines: import this module, call one ``*_task`` with the artifacts KFP gave it.
Artifacts are duck-typed (``.path``, ``.metadata``, ``log_metric``, ``log_confusion_matrix``), so these
functions also run under a test with plain objects.

Failure policy, the same as ``dlbench study``: a step that fails for a reason a user can act on (a
:class:`~dlbench.errors.DlbenchError`: bad config, NaN loss, a device that is not there) keeps its
``record.json`` with ``status: failed`` and the task ends normally, so the report still renders and
shows the failure; the task's Metrics carry ``failed = 1``. Anything else (out of memory, a lost
node, a bug) fails the task, and KFP's retry policy applies. The data step follows the same policy: a
dataset it refuses (a data.root that is not there, files of another dataset) gets a failed record, the
runs on it then fail with "split file not found" in their own records, and the report lists them all.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from dlbench.errors import DlbenchError
from dlbench.log import get_logger

log = get_logger("dlbench.component")

# Files a study bundle (report + records) leaves out: data arrays and weights, which have artifacts of their own.
BUNDLE_SKIP = (".npz", ".pt", ".pth", ".onnx", ".joblib", ".pkl")


def _log_number(metrics: Any, name: str, value: Any) -> None:
    if metrics is not None and isinstance(value, int | float) and not isinstance(value, bool):
        metrics.log_metric(name, float(value))


def _read_record(folder: Path) -> dict[str, Any] | None:
    p = folder / "record.json"
    return json.loads(p.read_text()) if p.is_file() else None


def _run_step(what: str, fn, *args, record: dict[str, Any] | None = None, **kwargs) -> dict[str, Any] | None:
    """Run a step; a DlbenchError is logged and recorded, not raised. A step that refused its input before
    opening its record (batch or n_train larger than the split, an absent device) gets a failed record
    here, from ``record`` (step, config, out_dir, run_id, device), so the report and ``dlbench run --local``
    show the failure instead of losing it."""
    try:
        return fn(*args, **kwargs)
    except DlbenchError as exc:
        log.error(f"{what} failed: {exc.one_line()} (recorded; the report will show it)")
        if record is not None:
            from dlbench.record import record_refusal

            record_refusal(exc, **record)
        return None


def _outcome(out: Path, artifact: Any, metrics: Any) -> dict[str, Any]:
    rec = _read_record(out) or {"status": "failed", "error": "no record written"}
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
    from dlbench.data.step import run_data
    from dlbench.spec import DataSpec, validate_model

    spec = validate_model(DataSpec, data_spec, "data spec")
    root = Path(split.path)
    fingerprints = {}
    failed = 0
    for ds in spec.datasets:
        config = {"dataset": ds, "source": spec.source, "root": spec.root, "seed": seed,
                  "subsample": spec.subsample, "fractions": list(spec.fractions)}
        manifest = _run_step(f"data {ds}", run_data, ds, root / ds, source=spec.source, root=spec.root, seed=seed,
                             subsample=spec.subsample, fractions=spec.fractions, log=log.info,
                             record={"step": "data", "config": config, "out_dir": root / ds})
        rec = _read_record(root / ds) or {}
        if manifest is None:
            failed += 1
            continue
        for part in ("train", "val", "test"):
            _log_number(metrics, f"{ds}_n_{part}", manifest["parts"][part]["size"])
        fingerprints[ds] = (rec.get("metrics") or {}).get("fingerprint")
    _log_number(metrics, "failed", failed)
    split.metadata["datasets"] = list(spec.datasets)
    split.metadata["fingerprints"] = fingerprints


# ----------------------------------------------------------------------------------------- train


def train_task(split: Any, config: dict, run: Any, metrics: Any, confusion: Any) -> None:
    """One training run into ``run.path`` (record.json, best checkpoint); the resume checkpoint is dropped."""
    from dlbench.spec import TrainConfig, validate_model
    from dlbench.train import run_train

    cfg = validate_model(TrainConfig, config, "train config")
    out = Path(run.path)
    out.mkdir(parents=True, exist_ok=True)
    _run_step(f"train {cfg.run_id}", run_train, cfg, Path(split.path) / cfg.dataset, out, log=log.info,
              record={"step": "train", "config": cfg.model_dump(), "out_dir": out, "run_id": cfg.run_id,
                      "device": cfg.device})
    rec = _outcome(out, run, metrics)
    # The resume checkpoint (optimizer state, several times the model) is useless once the task ended:
    # a retried pod starts with an empty output folder anyway.
    last = ((rec.get("outputs") or {}).get("last") or {}).get("path")
    if last and (out / last).is_file() and (out / last).resolve() != _best_path(out, rec):
        (out / last).unlink()
    run.metadata.update({"model": cfg.model, "dataset": cfg.dataset, "device": cfg.device, "engine": cfg.engine})
    m = rec.get("metrics") or {}
    _log_report_units(metrics, m, {"test_accuracy": "test_accuracy_pct", "best_val_accuracy": "best_val_accuracy_pct"},
                      ("train_seconds", "images_per_second", "test_loss"))
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
    from dlbench.errors import DlbenchError
    from dlbench.record import record_refusal
    from dlbench.spec import TrainConfig, validate_model
    from dlbench.train.group import run_train_group

    configs = [validate_model(TrainConfig, c, "train config") for c in group["configs"]]
    root = Path(run.path)
    outs = [root / c.run_id for c in configs]
    try:
        run_train_group(configs, [Path(split.path) / c.dataset for c in configs], outs, log=log.info)
    except DlbenchError as exc:
        log.error(f"fused train group failed: {exc.one_line()}")
        for c, o in zip(configs, outs, strict=True):
            record_refusal(exc, "train", c.model_dump(), o, run_id=c.run_id, device=c.device)
    ok = sum(1 for o in outs if ((_read_record(o) or {}).get("status")) == "ok")
    run.metadata.update({"runs": [c.run_id for c in configs], "ok": ok, "model": configs[0].model,
                         "device": configs[0].device, "engine": "fused"})
    _log_number(metrics, "runs", len(configs))
    _log_number(metrics, "ok", ok)


def run_folders(src: Path) -> list[Path]:
    """The run folders in an artifact: itself when it holds a record, else its sub-folders that do (a
    fused group's artifact holds one folder per member)."""
    if (src / "record.json").is_file() or not src.is_dir():
        return [src]
    return [d for d in sorted(src.iterdir()) if d.is_dir() and (d / "record.json").is_file()]


def _best_path(out: Path, rec: dict) -> Path | None:
    best = ((rec.get("outputs") or {}).get("checkpoint") or {}).get("path")
    return (out / best).resolve() if best else None


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
    from dlbench.spec import SvmConfig, validate_model
    from dlbench.svm import run_svm

    cfg = validate_model(SvmConfig, config, "svm config")
    out = Path(run.path)
    out.mkdir(parents=True, exist_ok=True)
    _run_step(f"svm {cfg.run_id}", run_svm, cfg, Path(split.path) / cfg.dataset, out, log=log.info,
              record={"step": "svm", "config": cfg.model_dump(), "out_dir": out, "run_id": cfg.run_id})
    rec = _outcome(out, run, metrics)
    m = rec.get("metrics") or {}
    run.metadata.update({"dataset": cfg.dataset, "kernel": cfg.kernel, "backend": m.get("backend", cfg.backend)})
    _log_report_units(metrics, m, {"accuracy": "test_accuracy_pct"},
                      ("fit_seconds", "predict_seconds", "n_support", "n_train"))
    _log_confusion(confusion, m)


# ----------------------------------------------------------------------------------------- profile


def profile_task(models: list, stem: str, input_sizes: list, in_channels: list, batch_size: int, result: Any,
                 metrics: Any) -> None:
    """FLOPs and parameters of every model at every input size and channel count into ``result.path``."""
    from dlbench.profile import run_profile

    out = Path(result.path)
    out.mkdir(parents=True, exist_ok=True)
    _run_step("profile", run_profile, list(models), stem, [int(s) for s in input_sizes], int(batch_size), out,
              log=log.info, in_channels=[int(c) for c in in_channels])
    rec = _outcome(out, result, metrics)
    for row in (rec.get("metrics") or {}).get("rows") or []:
        channels = row.get("in_channels", 1)
        tag = f"{row.get('model')}_{row.get('input_size')}px" + ("" if channels == 1 else f"_{channels}ch")
        _log_number(metrics, f"{tag}_forward_gflops", row.get("forward_gflops"))
        _log_number(metrics, f"{tag}_params", row.get("params"))


# ----------------------------------------------------------------------------------------- onnx


def _link_runs(runs: list | None, into: Path) -> int:
    """Symlink each run folder (an input artifact) as ``into/<run_id>`` so step helpers can glob them."""
    into.mkdir(parents=True, exist_ok=True)
    n = 0
    for src in (f for a in runs or [] for f in run_folders(Path(a.path))):
        rec = _read_record(src) if src.is_dir() else None
        if rec is None:
            continue
        name = str(rec.get("run_id") or f"run-{n:04d}")
        if (into / name).exists():
            name = f"{name}-{n:04d}"
        (into / name).symlink_to(src.resolve(), target_is_directory=True)
        n += 1
    return n


def onnx_task(models: list, settings: dict, result: Any, metrics: Any, train_cpu: list | None = None,
              train_gpu: list | None = None, train_gpu_fused: list | None = None) -> None:
    """Export and time every model into ``result.path/<model>/``; uses the best trained checkpoint of each.

    One task for all models, run one after another: timings of models sharing a machine would disturb
    each other.
    """
    from dlbench.onnxrt import find_train_checkpoint, run_onnx
    from dlbench.spec import OnnxSpec, validate_model

    stem = settings.get("stem", "imagenet")
    o = validate_model(OnnxSpec, {k: v for k, v in settings.items() if k != "stem"}, "onnx settings")
    out = Path(result.path)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dlbench-train-runs-") as tmp:
        train_root = Path(tmp) / "train"
        _link_runs(list(train_cpu or []) + list(train_gpu or []) + list(train_gpu_fused or []), train_root)
        failed = 0
        for model in models:
            found = find_train_checkpoint(train_root, model, stem, o.input_size, o.in_channels)
            checkpoint = found[0] if found else None
            log.info(f"onnx {model}: " + (f"exporting the best trained checkpoint ({found[1].get('run_id')})"
                                          if found else "no finished train run of it; a freshly initialised model"))
            rec = _run_step(f"onnx {model}", run_onnx, model, stem, out / model, checkpoint=checkpoint,
                            log=log.info, **o.run_kwargs())
            rec = rec or _read_record(out / model) or {}
            if rec.get("status") != "ok":
                failed += 1
                continue
            for r in (rec.get("metrics") or {}).get("results") or []:
                if r.get("runtime") == "onnxruntime":
                    _log_number(metrics, f"{model}_{r.get('provider')}_b{r.get('batch_size')}_p50_ms", r.get("p50_ms"))
    result.metadata["models"] = list(models)
    result.metadata["failed"] = failed
    _log_number(metrics, "failed", failed)


# ----------------------------------------------------------------------------------------- report


def _copy_run(src: Path, dest: Path) -> None:
    for p in sorted(src.rglob("*")):
        if p.is_file() and not p.name.endswith(BUNDLE_SKIP):
            target = dest / p.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, target)


def assemble_study(into: Path, spec: dict, data: Any = None, profile: Any = None, runs: dict | None = None,
                   onnx: Any = None) -> dict[str, int]:
    """Lay the records out as ``dlbench study`` does (data/, train/<run_id>/, svm/<run_id>/, profile/,
    onnx/<model>/), without data arrays and weights. Returns counts per step."""
    import yaml

    from dlbench.errors import SpecError
    from dlbench.spec import parse_spec

    into.mkdir(parents=True, exist_ok=True)
    try:  # through KFP a spec comes back as a protobuf Struct: numbers as floats, keys sorted; the model
        # restores both (integers, the spec's field order)
        spec = json.loads(parse_spec(spec, "the pipeline's spec").model_dump_json())
    except SpecError as exc:
        log.warning(f"spec.yaml written as received: {exc.one_line()}")
    (into / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    counts: dict[str, int] = {}
    if data is not None:
        for d in sorted(Path(data.path).iterdir()):
            if d.is_dir() and (d / "record.json").is_file():
                _copy_run(d, into / "data" / d.name)
                counts["data"] = counts.get("data", 0) + 1
    for step, artifacts in (runs or {}).items():
        for src in (f for a in artifacts or [] for f in run_folders(Path(a.path))):
            rec = _read_record(src)
            if rec is None:
                continue
            _copy_run(src, into / step / str(rec.get("run_id") or src.name))
            counts[step] = counts.get(step, 0) + 1
    if profile is not None and _read_record(Path(profile.path)) is not None:
        _copy_run(Path(profile.path), into / "profile")
        counts["profile"] = 1
    if onnx is not None:
        for d in sorted(Path(onnx.path).iterdir()):
            if d.is_dir() and (d / "record.json").is_file():
                _copy_run(d, into / "onnx" / d.name)
                counts["onnx"] = counts.get("onnx", 0) + 1
    return counts


def report_task(spec: dict, publish_to: str, run_name: str, study: Any, html: Any, markdown: Any, metrics: Any,
                data: Any = None, profile: Any = None, onnx: Any = None, train_cpu: list | None = None,
                train_gpu: list | None = None, svm_cpu: list | None = None, svm_gpu: list | None = None,
                train_gpu_fused: list | None = None) -> None:
    """Gather every record into ``study.path`` (the run's bundle), write the report, a MANIFEST.json last,
    and with ``publish_to`` (a store URL) upload the bundle to ``<publish_to>/<run_name>/``."""
    from dlbench.report import run_report
    from dlbench.store import open_store, write_manifest

    root = Path(study.path)
    runs = {"train": list(train_cpu or []) + list(train_gpu or []) + list(train_gpu_fused or []),
            "svm": list(svm_cpu or []) + list(svm_gpu or [])}
    counts = assemble_study(root, spec, data=data, profile=profile, runs=runs, onnx=onnx)
    log.info("records: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    html_path = run_report(root, root / "report", log=log.info)
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
