"""Run a whole study in this process, step after step, into one folder (the ``inline`` runner).

Layout of a study folder (the same names the pipeline uses in the artifact store)::

    <out>/spec.yaml
    <out>/data/<dataset>/{split.npz, manifest.json, record.json}

Later steps add ``train/<run_id>/``, ``svm/<run_id>/``, ``profile/``, ``onnx/<model>/``, ``report/`` and
``index.json`` (run id -> step, config, status, folder). A step that fails is recorded and the study goes
on with the steps that do not depend on it.

A study folder is never mixed or overwritten silently (:func:`prepare_out`): the default folder is named
after the spec (``runs/<spec name>``); a folder that already holds a study is refused unless the caller
asks to ``resume`` it (the same study: runs whose record says ``ok`` are skipped, by run id) or to
``overwrite`` it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import yaml

from dlbench.errors import DlbenchError
from dlbench.log import describe_config, get_logger, task_header
from dlbench.record import record_refusal
from dlbench.spec import StudySpec

log = get_logger("dlbench.study")
SPEC_NAME = "spec.yaml"


class StudyFolderError(DlbenchError):
    """The output folder holds something a study must not mix with or overwrite silently."""


def data_dir(out: Path, dataset: str) -> Path:
    return out / "data" / dataset


def default_out(spec: StudySpec, parent: str | os.PathLike = "runs") -> Path:
    """``runs/<spec name>`` (``runs/<spec name>-smoke`` for a smoke run): every study gets a folder of its own
    unless told otherwise, and a smoke run never lands where the real study would."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", spec.name).strip("-.") or "study"
    return Path(parent) / (f"{name}-smoke" if spec.smoke else name)


def _resolved(spec: StudySpec) -> dict:
    return json.loads(spec.model_dump_json())


def _done(folder: Path) -> bool:
    try:
        return json.loads((folder / "record.json").read_text()).get("status") == "ok"
    except (OSError, ValueError):
        return False


def prepare_out(spec: StudySpec, out_dir: str | os.PathLike, resume: bool = False, overwrite: bool = False,
                flag: str = "--out") -> str:
    """Check ``out_dir`` before any work: ``"new"`` (absent or empty), ``"resume"`` (it holds this study and
    ``resume``), ``"overwrite"`` (it held a study and was emptied). Anything else raises
    :class:`StudyFolderError` and changes nothing."""
    out = Path(out_dir)
    if resume and overwrite:
        raise StudyFolderError("--resume and --overwrite exclude each other", "choose one")
    if not out.exists():
        return "new"
    if not out.is_dir():
        raise StudyFolderError(f"{flag} {out} is a file, not a folder", f"choose another {flag}")
    if not any(out.iterdir()):
        return "new"
    held = out / SPEC_NAME
    if not held.is_file():
        raise StudyFolderError(f"{flag} {out} is not empty and holds no study (no {SPEC_NAME})",
                               f"choose an empty or new folder with {flag}")
    try:
        old = yaml.safe_load(held.read_text()) or {}
    except yaml.YAMLError:
        old = {}
    old_name = old.get("name") if isinstance(old, dict) else None
    new = _resolved(spec)
    done = sum(_done(d) for step in ("train", "svm") if (out / step).is_dir() for d in (out / step).iterdir())
    if overwrite:
        shutil.rmtree(out)
        return "overwrite"
    if old_name != spec.name:
        raise StudyFolderError(f"{flag} {out} holds another study, {old_name!r}, not {spec.name!r}",
                               f"choose another {flag} (the default is {default_out(spec)}), or add --overwrite "
                               "to replace it")
    if not resume:
        raise StudyFolderError(f"{flag} {out} already holds study {spec.name!r} ({done} runs done)",
                               "add --resume to skip the runs already done, --overwrite to start again, or choose "
                               f"another {flag}")
    if old.get("data") != new["data"] or old.get("seed") != new["seed"]:
        raise StudyFolderError(f"{flag} {out} holds study {spec.name!r} with other data settings or seed; resuming "
                               "would mix two splits", "add --overwrite to start again, or choose another " + flag)
    return "resume"


def run_study(spec: StudySpec, out_dir: str | os.PathLike, resume: bool = False, fuse: bool | None = None) -> dict:
    """Run every step of ``spec``; return a summary {step: {ok: n, failed: [...], skipped: n}}.

    ``fuse`` (default: the spec's ``train.fuse``) trains compatible GPU runs as fused groups
    (:func:`dlbench.spec.train_tasks`); each member still gets its own ``train/<run_id>/`` folder.

    With ``resume``, data sets and train / SVM runs whose record in ``out_dir`` says ``ok`` are kept and
    skipped (matched by run id, the hash of the config); profile, ONNX and the report run again. The caller
    checks the folder first (:func:`prepare_out`).
    """
    from dlbench.spec import expand_svm, expand_train, require_runs, train_tasks

    require_runs(spec)  # a study with no runs is refused before the data step
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / SPEC_NAME).write_text(yaml.safe_dump(_resolved(spec), sort_keys=False))
    summary: dict[str, dict] = {}
    train_runs, svm_runs = expand_train(spec), expand_svm(spec)
    totals = {"data": len(spec.data.datasets), "train": len(train_runs), "svm": len(svm_runs)}
    position: dict[str, int] = {}

    def header(step: str, what: str = "", run_id: str | None = None, note: str = "") -> None:
        position[step] = position.get(step, 0) + 1
        log.info(task_header(step, position[step], totals.get(step, 1), what, run_id) + note)

    def skip(step: str, folder: Path) -> bool:
        if resume and _done(folder):
            summary.setdefault(step, {"ok": 0, "failed": []})
            summary[step]["skipped"] = summary[step].get("skipped", 0) + 1
            return True
        return False

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
        if skip("data", data_dir(out, ds)):
            header("data", ds, note=": done before, kept (--resume)")
            data_ok[ds] = True
            continue
        header("data", ds)
        data_ok[ds] = attempt("data", ds, run_data, ds, data_dir(out, ds), source=spec.data.source,
                              root=spec.data.root, seed=spec.seed, subsample=spec.data.subsample,
                              fractions=spec.data.fractions, log=get_logger("dlbench.data").info,
                              smoke=spec.smoke) is not None
    from dlbench.train import run_train

    for task in train_tasks(spec, fuse=fuse):
        todo = []
        for cfg in task:
            what = describe_config("train", cfg.model_dump()) + (f" (fused x{len(task)})" if len(task) > 1 else "")
            if skip("train", out / "train" / cfg.run_id):
                header("train", what, cfg.run_id, ": done before, kept (--resume)")
                continue
            header("train", what, cfg.run_id)
            todo.append(cfg)
        missing = sorted({c.dataset for c in todo if not data_ok.get(c.dataset)})
        if missing:
            for cfg in todo:
                log.warning(f"train {cfg.run_id} skipped: the data step for {', '.join(missing)} did not succeed")
            continue
        if len(todo) > 1:
            run_fused_group(todo, out, summary)
            continue
        if not todo:
            continue
        cfg = todo[0]
        run_out = out / "train" / cfg.run_id
        attempt("train", cfg.run_id, run_train, cfg, data_dir(out, cfg.dataset), run_out,
                log=get_logger("dlbench.train").info,
                record={"config": cfg.model_dump(), "out_dir": run_out, "run_id": cfg.run_id, "device": cfg.device})
        if cfg.smoke and (run_out / "record.json").is_file():
            # a smoke run ended: its resume checkpoint (weights and optimizer state, 130-280 MB) is of no use
            (run_out / "last.pt").unlink(missing_ok=True)
    from dlbench.svm import run_svm

    for cfg in svm_runs:
        run_out = out / "svm" / cfg.run_id
        what = describe_config("svm", cfg.model_dump())
        if skip("svm", run_out):
            header("svm", what, cfg.run_id, ": done before, kept (--resume)")
            continue
        header("svm", what, cfg.run_id)
        if not data_ok.get(cfg.dataset):
            log.warning(f"svm {cfg.run_id} skipped: the data step for {cfg.dataset} did not succeed")
            continue
        attempt("svm", cfg.run_id, run_svm, cfg, data_dir(out, cfg.dataset), run_out,
                log=get_logger("dlbench.svm").info,
                record={"config": cfg.model_dump(), "out_dir": run_out, "run_id": cfg.run_id})
    run_profile_and_onnx(spec, out, attempt, header=header)
    write_index(out)
    from dlbench.report import run_report

    header("report")
    attempt("report", "report", run_report, out, out / "report", log=get_logger("dlbench.report").info)
    return summary


def run_fused_group(task: list, out: Path, summary: dict) -> None:
    """Train ``task`` (compatible runs) as one fused model; count and record each member like a solo run."""
    from dlbench.train.group import run_train_group

    entry = summary.setdefault("train", {"ok": 0, "failed": []})
    outs = [out / "train" / c.run_id for c in task]
    label = "fused group " + ", ".join(c.run_id for c in task)
    try:
        run_train_group(task, [data_dir(out, c.dataset) for c in task], outs, log=get_logger("dlbench.train").info)
        entry["ok"] += len(task)
    except DlbenchError as exc:
        log.error(f"train {label} failed: {exc.one_line()}")
        for c, o in zip(task, outs, strict=True):
            entry["failed"].append({"run": c.run_id, "error": exc.one_line()})
            record_refusal(exc, "train", c.model_dump(), o, run_id=c.run_id, device=c.device)


def run_profile_and_onnx(spec: StudySpec, out: Path, attempt, header=None) -> None:
    """FLOPs once for every model into ``profile/``; ONNX per model into ``onnx/<model>/``.

    The ONNX step exports the best checkpoint of a finished train run of that model and stem (found in
    ``train/*/record.json``) or, when there is none, a freshly initialised model; its record says which.
    """
    from dlbench.onnxrt import find_train_checkpoint, run_onnx
    from dlbench.profile import run_profile

    header = header or (lambda *a, **k: None)
    stem = spec.train.stem
    p = spec.profile
    models = list(p.models or spec.model_names())
    header("profile", ", ".join(models) + " at " + ", ".join(str(s) for s in p.input_sizes) + " px")
    profile_log = get_logger("dlbench.profile").info
    attempt("profile", "profile", run_profile, models, stem, p.input_sizes,
            p.batch_size, out / "profile", log=profile_log, in_channels=p.in_channels)
    o = spec.onnx
    onnx_log = get_logger("dlbench.onnx").info
    header("onnx", ", ".join(o.models or spec.model_names()))
    for model in o.models or spec.model_names():
        found = find_train_checkpoint(out / "train", model, stem, o.input_size, o.in_channels)
        checkpoint = found[0] if found else None
        onnx_log(f"{model}: " + (f"exporting the best train checkpoint {checkpoint}" if checkpoint
                                 else "no finished train run of it; exporting a freshly initialised model"))
        attempt("onnx", model, run_onnx, model, stem, out / "onnx" / model, checkpoint=checkpoint, log=onnx_log,
                **o.run_kwargs())


INDEX_NAME = "index.json"


def write_index(root: str | os.PathLike, path: str | os.PathLike | None = None,
                exclude: str | os.PathLike | None = None) -> Path:
    """``index.json``: every train and SVM run below ``root`` by run id, with its step, a one-line label, its
    status, its folder (relative to ``root``) and its config, so that a folder of hashed ids can be read.
    Folders below ``exclude`` (a copy of the records, such as a pipeline's bundle) are left out."""
    from dlbench.io import read_json
    from dlbench.log import describe_config

    root = Path(root)
    skip = Path(exclude).resolve() if exclude else None
    runs: dict[str, dict] = {}
    for rec_path in sorted(root.rglob("record.json")):
        folder = rec_path.parent
        if skip is not None and (folder.resolve() == skip or skip in folder.resolve().parents):
            continue
        try:
            rec = read_json(rec_path)
        except (OSError, ValueError):
            continue
        step, run_id = rec.get("step"), rec.get("run_id")
        if step not in ("train", "svm") or not run_id:
            continue
        config = rec.get("config") or {}
        runs[str(run_id)] = {"step": step, "label": describe_config(step, config), "status": rec.get("status"),
                             "folder": folder.relative_to(root).as_posix(), "config": config}
    out = Path(path) if path else root / INDEX_NAME
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps({"runs": runs}, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, out)
    return out
