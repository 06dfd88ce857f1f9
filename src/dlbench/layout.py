"""The study folder: where each step writes, how a model's checkpoint is found, how a bundle is assembled.

``dlbench study`` writes this layout as it goes; a pipeline run's report task assembles the same layout
from its artifacts (records only: no data arrays, no weights), so the report, ``index.json`` and
``dlbench fetch`` read one shape::

    <root>/spec.yaml
    <root>/data/<dataset>/{split.npz, manifest.json, record.json}
    <root>/train/<run_id>/{record.json, best.pt, last.pt}
    <root>/svm/<run_id>/{record.json, model.joblib}
    <root>/profile/{record.json, profile.csv, profile.json}
    <root>/onnx/<model>/{record.json, model.onnx, timings.csv}
    <root>/report/{report.html, report.md, summary.json, ...}
    <root>/index.json   (run id -> step, label, status, folder, config)
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlbench.io import read_json
from dlbench.record import RECORD_NAME

SPEC_NAME = "spec.yaml"
INDEX_NAME = "index.json"
REPORT_HTML = "report.html"
# Files a bundle (report + records) leaves out: data arrays and weights, which have artifacts of their own.
BUNDLE_SKIP = (".npz", ".pt", ".pth", ".onnx", ".joblib", ".pkl")


@dataclass(frozen=True)
class StudyLayout:
    """The folders of one study below ``root``."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def spec(self) -> Path:
        return self.root / SPEC_NAME

    @property
    def index(self) -> Path:
        return self.root / INDEX_NAME

    @property
    def data_root(self) -> Path:
        """The folder holding one folder per dataset (what a pipeline's split artifact holds)."""
        return self.root / "data"

    def data(self, dataset: str) -> Path:
        return self.data_root / dataset

    def runs(self, step: str) -> Path:
        """``train/`` or ``svm/``: one folder per run id."""
        return self.root / step

    def run(self, step: str, run_id: str) -> Path:
        return self.runs(step) / run_id

    @property
    def profile(self) -> Path:
        return self.root / "profile"

    @property
    def onnx_root(self) -> Path:
        return self.root / "onnx"

    def onnx(self, model: str) -> Path:
        return self.onnx_root / model

    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def report_html(self) -> Path:
        return self.report / REPORT_HTML


def read_record(folder: Path) -> dict[str, Any] | None:
    """The record in ``folder``, or None when there is none (or it cannot be read)."""
    try:
        return read_json(Path(folder) / RECORD_NAME)
    except (OSError, ValueError):
        return None


def record_ok(folder: Path) -> bool:
    """The record in ``folder`` says ok and every output it lists in that folder is still there, whole (the
    size it recorded): a run whose checkpoint was deleted or cut short, or whose record does not fit its
    schema, is not a run to keep (``--resume``)."""
    from dlbench.errors import DataError
    from dlbench.schemas import RecordFile, check_file

    rec = read_record(folder)
    if not isinstance(rec, dict) or rec.get("status") != "ok":
        return False
    try:  # a damaged record (dlbench.schemas.RecordFile) is not a whole run: it is run again
        check_file(rec, RecordFile, Path(folder) / RECORD_NAME, "record")
    except DataError:
        return False
    outputs = rec.get("outputs")
    for entry in outputs.values() if isinstance(outputs, dict) else ():
        if not isinstance(entry, dict) or not entry.get("path") or "bytes" not in entry:
            continue
        p = Path(folder) / str(entry["path"])
        if not Path(str(entry["path"])).is_absolute() and (
            not p.is_file() or p.stat().st_size != entry["bytes"]
        ):
            return False
    return True


def run_folders(src: Path) -> list[Path]:
    """The run folders in ``src``: itself when it holds a record, else its sub-folders that do (a fused
    group's artifact holds one folder per member)."""
    if (src / RECORD_NAME).is_file() or not src.is_dir():
        return [src]
    return [d for d in sorted(src.iterdir()) if d.is_dir() and (d / RECORD_NAME).is_file()]


def find_train_checkpoint(
    train_root: str | os.PathLike, model: str, stem: str, input_size: int = 28, in_channels: int = 1
) -> tuple[Path, dict] | None:
    """The best checkpoint (highest ``best_val_accuracy``) of a finished train run of ``model``/``stem``
    trained on ``in_channels`` x ``input_size`` x ``input_size`` input (the input the export is timed at).

    Looks at ``train_root/*/record.json`` as the train step writes it; its ``outputs.checkpoint.path`` is
    the file name inside that folder. Returns (path, record) or None when there is none.
    """
    from dlbench.spec import TrainConfig

    best: tuple[float, Path, dict] | None = None
    for rec_path in sorted(Path(train_root).glob(f"*/{RECORD_NAME}")):
        rec = read_record(rec_path.parent)
        if rec is None:
            continue
        cfg = TrainConfig.as_recorded(rec.get("config") or {})  # a run recorded before input_size: 1x28x28
        ckpt = (rec.get("outputs") or {}).get("checkpoint") or {}
        if rec.get("status") != "ok" or cfg.get("model") != model or cfg.get("stem", "imagenet") != stem:
            continue
        if (cfg["input_size"], cfg["in_channels"]) != (input_size, in_channels) or not ckpt.get("path"):
            continue
        path = Path(ckpt["path"])
        if not path.is_absolute():
            path = rec_path.parent / path
        if not path.is_file():
            continue
        metrics = rec.get("metrics") or {}
        score = metrics.get("best_val_accuracy", metrics.get("test_accuracy"))
        score = float(score) if isinstance(score, int | float) else float("-inf")
        if best is None or score > best[0]:
            best = (score, path, rec)
    return (best[1], best[2]) if best else None


def failed_train_runs(
    train_root: str | os.PathLike, model: str, stem: str, input_size: int = 28, in_channels: int = 1
) -> list[str]:
    """The run ids of the train runs of ``model``/``stem`` at that input in ``train_root/*/`` whose record
    says failed: the runs an ONNX export of that model depends on (see :func:`find_train_checkpoint`)."""
    from dlbench.spec import TrainConfig

    failed = []
    for rec_path in sorted(Path(train_root).glob(f"*/{RECORD_NAME}")):
        rec = read_record(rec_path.parent)
        if (
            not isinstance(rec, dict)
            or rec.get("status") != "failed"
            or not isinstance(rec.get("config"), dict)
        ):
            continue
        cfg = TrainConfig.as_recorded(rec["config"])
        if (cfg.get("model"), cfg.get("stem", "imagenet"), cfg.get("input_size"), cfg.get("in_channels")) == (
            model,
            stem,
            input_size,
            in_channels,
        ):
            failed.append(str(rec.get("run_id") or rec_path.parent.name))
    return failed


def link_runs(folders: Iterable[Path], into: Path) -> int:
    """Symlink each run folder that holds a record as ``into/<run_id>`` (a train root
    :func:`find_train_checkpoint` can search); returns how many."""
    into.mkdir(parents=True, exist_ok=True)
    n = 0
    for src in (f for folder in folders for f in run_folders(Path(folder))):
        rec = read_record(src) if src.is_dir() else None
        if rec is None:
            continue
        name = str(rec.get("run_id") or f"run-{n:04d}")
        if (into / name).exists():
            name = f"{name}-{n:04d}"
        (into / name).symlink_to(src.resolve(), target_is_directory=True)
        n += 1
    return n


def copy_records(src: Path, dest: Path) -> None:
    """Copy a step's folder without its data arrays and weights (:data:`BUNDLE_SKIP`)."""
    for p in sorted(src.rglob("*")):
        if p.is_file() and not p.name.endswith(BUNDLE_SKIP):
            target = dest / p.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, target)


def _copy_subfolders(src: Path, dest: Path) -> int:
    n = 0
    for d in sorted(src.iterdir()) if src.is_dir() else []:
        if d.is_dir() and (d / RECORD_NAME).is_file():
            copy_records(d, dest / d.name)
            n += 1
    return n


def assemble(
    into: StudyLayout,
    data_root: Path | None = None,
    runs: dict[str, list[Path]] | None = None,
    profile: Path | None = None,
    onnx_root: Path | None = None,
) -> dict[str, int]:
    """Lay the records of a study's steps out in ``into`` (``data_root/<dataset>/``, run folders per step,
    ``profile``, ``onnx_root/<model>/``), without data arrays and weights. Returns counts per step."""
    counts: dict[str, int] = {}
    n = _copy_subfolders(data_root, into.data_root) if data_root is not None else 0
    if n:
        counts["data"] = n
    for step, folders in (runs or {}).items():
        for src in (f for folder in folders for f in run_folders(Path(folder))):
            rec = read_record(src)
            if rec is None:
                continue
            copy_records(src, into.run(step, str(rec.get("run_id") or src.name)))
            counts[step] = counts.get(step, 0) + 1
    if profile is not None and read_record(profile) is not None:
        copy_records(profile, into.profile)
        counts["profile"] = 1
    n = _copy_subfolders(onnx_root, into.onnx_root) if onnx_root is not None else 0
    if n:
        counts["onnx"] = n
    return counts


def check_index_path(path: str | os.PathLike) -> None:
    """``path`` can take the ``index.json`` dlbench writes: a folder there (which the write would fail on,
    at the end of a study) is refused up front, in one line."""
    from dlbench.errors import DataError

    p = Path(path)
    if p.is_dir():
        raise DataError(
            f"{p}: a folder where dlbench writes its {INDEX_NAME}", "move the folder away, or choose another"
        )


def write_index(
    root: str | os.PathLike, path: str | os.PathLike | None = None, exclude: str | os.PathLike | None = None
) -> Path:
    """``index.json``: every train and SVM run below ``root`` by run id, with its step, a one-line label, its
    status, its folder (relative to ``root``) and its config, so that a folder of hashed ids can be read.
    Folders below ``exclude`` (a copy of the records, such as a pipeline's bundle) are left out."""
    from dlbench.log import describe_config

    root = Path(root)
    skip = Path(exclude).resolve() if exclude else None
    runs: dict[str, dict] = {}
    for rec_path in sorted(root.rglob(RECORD_NAME)):
        folder = rec_path.parent
        if skip is not None and (folder.resolve() == skip or skip in folder.resolve().parents):
            continue
        rec = read_record(folder)
        if rec is None:
            continue
        step, run_id = rec.get("step"), rec.get("run_id")
        if step not in ("train", "svm") or not run_id:
            continue
        config = rec.get("config") or {}
        runs[str(run_id)] = {
            "step": step,
            "label": describe_config(step, config),
            "status": rec.get("status"),
            "folder": folder.relative_to(root).as_posix(),
            "config": config,
        }
    out = Path(path) if path else root / INDEX_NAME
    check_index_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps({"runs": runs}, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, out)
    return out


def clear_study(root: str | os.PathLike) -> list[Path]:
    """Remove what dlbench wrote in a study folder (``--overwrite``), nothing else; return what is kept.

    Removed: ``spec.yaml``, ``index.json``, and in every folder holding a ``record.json`` that record, the
    step's own file names and the outputs the record lists (inside that folder only); then the folders
    left empty. A file dlbench did not write (a note, a copy of the data) stays where it is.
    """
    from dlbench.record import STEP_OUTPUTS, _walk_records

    root = Path(root)
    for name in (SPEC_NAME, INDEX_NAME):
        p = root / name
        if p.is_file() or p.is_symlink():
            p.unlink()
    for rec_path in _walk_records(root):
        folder = rec_path.parent
        rec = read_record(folder) if rec_path.is_file() else None
        if rec is None or not isinstance(rec, dict):
            continue
        names = {RECORD_NAME, *STEP_OUTPUTS.get(str(rec.get("step")), ())}
        outputs = rec.get("outputs") if isinstance(rec.get("outputs"), dict) else {}
        for entry in outputs.values():
            if isinstance(entry, dict) and entry.get("path"):
                names.add(str(entry["path"]))
        base = folder.resolve()
        for name in names:
            p = Path(name) if Path(name).is_absolute() else folder / name
            try:
                inside = p.resolve().parent == base or base in p.resolve().parents
            except (OSError, RuntimeError):
                inside = False
            if inside and (p.is_file() or p.is_symlink()):
                p.unlink()
    for dirpath, _dirs, _files in sorted(os.walk(root, topdown=False), key=lambda t: -len(t[0])):
        d = Path(dirpath)
        if d != root and not any(d.iterdir()):
            d.rmdir()
    return sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink())
