"""Publish a finished kfp.local run to a store: after ``dlbench run --local``, and by ``dlbench publish``.

The report task's ``study`` artifact (report + records, MANIFEST.json), ``index.json`` (run id -> step,
config, status, task folder) and the weights of every run (``models/<step>/<run>/``) are uploaded to
``<store>/<run name>/`` with the manifest last; ``dlbench fetch <run name>`` reads them back. A folder
store on the same file system keeps one copy of each file: the task outputs under ``--work`` become hard
links to the stored files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlbench.layout import INDEX_NAME, write_index
from dlbench.store import BINARY_SUFFIXES, MANIFEST_NAME, LocalStore, StoreError
from dlbench_kfp.pipelines import PipelineError


def _records(root: Path) -> list[tuple[Path, dict]]:
    """(folder, record) for every record below ``root``, each read through its schema
    (:class:`dlbench.schemas.RecordFile`): a damaged one is one line naming the file and the field, before
    anything is uploaded. Symlinked folders are not followed."""
    from dlbench.record import find_records

    return [(Path(rec.pop("_dir")), rec) for rec in find_records(root)]


def model_files(run_dir: Path, exclude: Path) -> list[tuple[Path, str]]:
    """(file, key) for the weights of every train / svm / onnx run below kfp.local's run folder."""
    out = []
    skip = exclude.resolve()
    for folder, rec in _records(run_dir):
        if skip == folder.resolve() or skip in folder.resolve().parents:
            continue
        step = rec["step"]  # step and status are required fields
        if step not in ("train", "svm", "onnx"):
            continue
        name = (rec.get("config") or {}).get("model") if step == "onnx" else rec.get("run_id")
        for f in sorted(folder.iterdir()):
            if f.is_file() and f.name.endswith(BINARY_SUFFIXES):
                out.append((f, f"models/{step}/{name or folder.name}/{f.name}"))
    return out


def failed_records(bundle: Path) -> list[str]:
    out = []
    for folder, rec in _records(bundle):
        if rec["status"] != "ok":
            out.append(f"{folder.relative_to(bundle)}: {rec.get('error') or rec['status']}")
    return out


def find_bundle(run_dir: Path) -> Path:
    """The report task's ``study`` artifact below a kfp.local run folder: the folder with MANIFEST.json."""
    found = sorted(p.parent for p in run_dir.rglob(MANIFEST_NAME) if (p.parent / "report").is_dir())
    if len(found) != 1:
        raise PipelineError(
            f"{run_dir}: {'no' if not found else len(found)} report bundles "
            f"({MANIFEST_NAME} beside report/) below the run folder",
            "pass the folder of a kfp.local run that reached its report task",
        )
    return found[0]


def publish_run(
    run_dir: str | os.PathLike,
    store,
    bundle: Path | None = None,
    log: Callable[[str], Any] = print,
    store_url: str | None = None,
    work_dir: str | None = None,
) -> dict[str, Any]:
    """Upload a kfp.local run (its report bundle, and the weights of every run as ``models/...``) to
    ``<store>/<run name>/``, MANIFEST.json last, then check every stored object against the manifest.

    Used after ``run --local`` and again by ``dlbench publish`` when that upload failed; a second upload
    of the same run replaces what a failed one left. A failure names the folder holding the complete run
    and the command that publishes it again. Returns a summary.
    """
    run_dir = Path(run_dir)
    bundle = bundle or find_bundle(run_dir)
    try:
        return _publish(run_dir, store, bundle, log)
    except StoreError as exc:
        again = (
            f"dlbench publish {run_dir.name} --work {work_dir or run_dir.parent} "
            f"--store {store_url or store.url}"
        )
        raise StoreError(
            f"storing run {run_dir.name} failed: {exc.message}; the complete run is in {run_dir}",
            f"{exc.hint + '; then ' if exc.hint else ''}publish it again with: {again}",
        ) from None


def _publish(run_dir: Path, store, bundle: Path, log: Callable[[str], Any]) -> dict[str, Any]:
    run_name = run_dir.name
    failed = failed_records(bundle)  # every record read and checked before the first upload
    models = model_files(run_dir, exclude=bundle)
    index = write_index(run_dir, run_dir / INDEX_NAME, exclude=bundle)
    abort = getattr(store, "abort_incomplete", None)
    if abort:  # what an upload cut short by a dead server may have left on a server that keeps it
        abort(run_name, quick=True)
    with tempfile.TemporaryDirectory(prefix="dlbench-publish-", dir=run_dir.parent) as tmp:
        stage = Path(tmp) / run_name
        shutil.copytree(bundle, stage)
        shutil.copy2(index, stage / INDEX_NAME)
        for src, key in models:
            dest = stage / key
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(src, dest)
        manifest = store.put_tree(stage, run_name, log=log)
    problems = verify_stored(store, run_name)
    if problems:
        raise StoreError(
            f"{store.describe(run_name)} does not match its {MANIFEST_NAME}: {'; '.join(problems[:3])}"
            + (f" and {len(problems) - 3} more" if len(problems) > 3 else ""),
            "publish it again",
        )
    if isinstance(store, LocalStore):
        keep_one_copy(
            store.root / run_name,
            [(bundle / f["path"], f["path"]) for f in manifest["files"]]
            + [(src, key) for src, key in models]
            + [(index, INDEX_NAME)],
        )
    return {
        "run": run_name,
        "store": store.describe(run_name),
        "report": store.describe(f"{run_name}/report/report.html"),
        "files": len(manifest["files"]),
        "bytes": manifest["total_bytes"],
        "models": len(models),
        "failed": failed,
        "index": store.describe(f"{run_name}/{INDEX_NAME}"),
    }


def verify_stored(store, prefix: str) -> list[str]:
    """Problems of a stored run against its MANIFEST.json: objects missing, or of another size or SHA-256."""
    manifest = store.read_manifest(prefix)
    problems = []
    for e in manifest["files"]:
        info = store.info(f"{prefix}/{e['path']}")
        if info is None:
            problems.append(f"{e['path']}: missing")
        elif info.size != e["bytes"] or (info.sha256 and info.sha256 != e["sha256"]):
            problems.append(f"{e['path']}: size or SHA-256 differs")
    return problems


def keep_one_copy(stored: Path, pairs: list[tuple[Path, str]]) -> int:
    """Replace each task output under the work folder with a hard link to its stored copy (same bytes, one
    copy on disk). Files on another file system, or that differ, are left as they are. Returns the count."""
    n = 0
    for src, key in pairs:
        dest = stored / key
        try:
            if not src.is_file() or src.is_symlink() or not dest.is_file() or src.samefile(dest):
                continue
            if src.stat().st_size != dest.stat().st_size:
                continue
            tmp = src.with_name(f".{src.name}.link")
            os.link(dest, tmp)
            os.replace(tmp, src)
            n += 1
        except OSError:
            continue
    return n
