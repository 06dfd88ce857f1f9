"""The one record schema every step writes (``record.json``) and the report reads.

A record says what ran (step, config, run id), when (start/end, seconds), where (device, host,
library versions, git commit) and on what (input fingerprints), and what came out (outputs with
SHA-256, metrics). Steps use :func:`step_record`::

    with step_record("data", config=cfg.model_dump(), out_dir=out) as rec:
        ...
        rec.add_input("train-images", path)
        rec.add_output("split", split_path)
        rec.metrics["n_train"] = 49000

The record is written atomically when the block ends; if the block raises, the record is still
written with ``status: "failed"`` and the error, so partial results stay explained.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.metadata
import os
import platform
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dlbench import __version__
from dlbench.errors import DataError, OutputError
from dlbench.io import read_json, sha256_file, write_json

SCHEMA_VERSION = 1
RECORD_NAME = "record.json"

# Libraries whose versions every record carries (those installed; the rest are left out).
TRACKED_LIBRARIES = (
    "torch",
    "torchvision",
    "numpy",
    "scikit-learn",
    "onnx",
    "onnxruntime",
    "onnxruntime-gpu",
    "cuml-cu13",
    "cuml-cu12",
    "pandas",
    "matplotlib",
)


@dataclass
class Record:
    step: str
    run_id: str
    config: dict[str, Any]
    started: str = ""
    ended: str = ""
    seconds: float = 0.0
    status: str = "running"  # running | ok | failed
    error: str | None = None
    device: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    schema: int = SCHEMA_VERSION

    def add_input(
        self, name: str, path: str | os.PathLike | None = None, sha256: str | None = None, **extra: Any
    ) -> None:
        entry: dict[str, Any] = dict(extra)
        if path is not None:
            entry["path"] = str(path)
            if sha256 is None and Path(path).is_file():
                sha256 = sha256_file(path)
        if sha256:
            entry["sha256"] = sha256
        self.inputs[name] = entry

    def add_output(self, name: str, path: str | os.PathLike, **extra: Any) -> None:
        p = Path(path)
        entry: dict[str, Any] = {"path": p.name if self._out_dir and p.parent == self._out_dir else str(p)}
        if p.is_file():
            entry["sha256"] = sha256_file(p)
            entry["bytes"] = p.stat().st_size
        entry.update(extra)
        self.outputs[name] = entry

    _out_dir: Path | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("_out_dir", None)
        return d


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def library_versions() -> dict[str, str]:
    out = {}
    for name in TRACKED_LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def git_commit() -> str | None:
    """The code version: $DLBENCH_GIT_COMMIT (set in images), else the checkout's HEAD, else None."""
    from dlbench.settings import settings

    env = settings().git_commit
    if env:
        return env
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def git_dirty() -> bool | None:
    """Whether the checkout had uncommitted changes to tracked files (None: not a checkout, or an image)."""
    from dlbench.settings import settings

    if settings().git_commit:
        return None
    try:
        here = Path(__file__).resolve().parent
        out = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return bool(out.stdout.strip()) if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def environment() -> dict[str, Any]:
    return {
        "dlbench": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "libraries": library_versions(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def device_info(device: str = "cpu") -> dict[str, Any]:
    """What the step ran on. ``device`` is a torch-style name ("cpu", "cuda", "cuda:0")."""
    info: dict[str, Any] = {"type": device.split(":")[0], "name": _cpu_model()}
    if device.startswith("cuda"):
        try:
            import torch

            idx = torch.device(device).index or 0
            props = torch.cuda.get_device_properties(idx)
            info.update(
                name=props.name,
                memory_gib=round(props.total_memory / 2**30, 1),
                cuda=torch.version.cuda,
                cudnn=torch.backends.cudnn.version(),
                capability=f"{props.major}.{props.minor}",
            )
            info["driver"] = _nvidia_driver()
        except Exception as exc:  # recorded, not fatal: the step itself checks availability
            info["error"] = str(exc)
    return info


def _nvidia_driver() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


# The files each step writes into its folder besides record.json (and whatever a previous record lists).
STEP_OUTPUTS = {
    "data": ("split.npz", "manifest.json"),
    "train": ("best.pt", "last.pt"),
    "svm": ("model.joblib",),
    "profile": ("profile.csv", "profile.json"),
    "onnx": ("model.onnx", "model.onnx.data", "timings.csv"),
}


FAILED_RECORD_NAME = "record.failed.json"
STASH_NAME = ".previous-run"


def previous_run_files(step: str, out_dir: str | os.PathLike) -> tuple[dict | None, set[str]]:
    """(the earlier record in ``out_dir`` or None, the names of its files there: the record, the step's
    own file names and the outputs the record lists, never anything else). A record of another step there
    is refused (the folder is that step's)."""
    out = Path(out_dir)
    names = set(STEP_OUTPUTS.get(step, ()))
    old = out / RECORD_NAME
    prev = None
    if old.is_file():
        try:
            prev = read_json(old)
        except (DataError, OSError):
            prev = None
        if isinstance(prev, dict) and prev.get("step") not in (None, step):
            raise OutputError(
                f"{out} holds the record of a {prev.get('step')} step, which a {step} run there "
                f"would replace",
                "choose another output folder",
            )
        for entry in (prev.get("outputs") or {}).values() if isinstance(prev, dict) else ():
            name = str((entry or {}).get("path") or "") if isinstance(entry, dict) else ""
            if name and "/" not in name and name not in (".", ".."):
                names.add(name)
        names.add(RECORD_NAME)
    return (prev if isinstance(prev, dict) else None), names


def _restore_stash(out: Path) -> None:
    """Put back an earlier good run that a killed rerun left set aside (``.previous-run/``)."""
    stash = out / STASH_NAME
    if not stash.is_dir():
        return
    for p in stash.iterdir():
        os.replace(p, out / p.name)
    stash.rmdir()


def clear_previous_run(step: str, out_dir: str | os.PathLike) -> list[str]:
    """Remove an earlier run's record and outputs from ``out_dir`` (the step's own file names and the
    outputs its record lists, never anything else), so a new record is never beside an older run's files.
    Returns the names removed."""
    out = Path(out_dir)
    _prev, names = previous_run_files(step, out)
    removed = []
    for name in sorted(names):
        p = out / name
        if p.is_file() or p.is_symlink():
            p.unlink()
            removed.append(name)
    return removed


@contextlib.contextmanager
def step_record(
    step: str,
    config: dict[str, Any],
    out_dir: str | os.PathLike,
    run_id: str | None = None,
    device: str = "cpu",
    fresh: bool = True,
) -> Iterator[Record]:
    """Open a record for one step; write ``out_dir/record.json`` atomically when the block ends.

    With ``fresh`` (the default) an earlier run's record and outputs in ``out_dir`` are removed first
    (:func:`clear_previous_run`): the folder then holds this run only, whether it ends ok or failed.
    Steps open their record after checking their input, so a refused input leaves an earlier run intact.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stash: Path | None = None
    if fresh:
        _restore_stash(out)
        prev, names = previous_run_files(step, out)
        if prev is not None and prev.get("status") == "ok":
            # an earlier good result: set aside until this run ends ok; a failure puts it back
            stash = out / STASH_NAME
            stash.mkdir()
            for name in names:
                if (out / name).is_file() or (out / name).is_symlink():
                    os.replace(out / name, stash / name)
        else:
            clear_previous_run(step, out)
    from dlbench.configs import config_id

    rec = Record(step=step, run_id=run_id or config_id({"step": step, **config}), config=config)
    rec._out_dir = out
    rec.started = now_iso()
    rec.device = device_info(device)
    rec.environment = environment()
    t0 = time.perf_counter()
    try:
        yield rec
        rec.status = "ok"
    except BaseException as exc:
        rec.status = "failed"
        rec.error = str(exc) or type(exc).__name__
        raise
    finally:
        rec.ended = now_iso()
        rec.seconds = round(time.perf_counter() - t0, 3)
        if stash is not None and rec.status != "ok":
            # the earlier good result stays; this run's failure is written beside it
            for name in {*STEP_OUTPUTS.get(step, ()), *(str(e.get("path")) for e in rec.outputs.values())}:
                p = out / name
                if "/" not in name and (p.is_file() or p.is_symlink()):
                    p.unlink()
            _restore_stash(out)
            write_json(out / FAILED_RECORD_NAME, rec.to_dict())
        else:
            write_json(out / RECORD_NAME, rec.to_dict())
            if stash is not None:
                shutil.rmtree(stash)
            (out / FAILED_RECORD_NAME).unlink(missing_ok=True)


def record_refusal(
    exc: BaseException,
    step: str,
    config: dict[str, Any],
    out_dir: str | os.PathLike,
    run_id: str | None = None,
    device: str = "cpu",
) -> bool:
    """Write a ``failed`` record for a run its step refused before opening a record (batch or n_train
    larger than the split, an absent device), so a study's report shows the failure instead of losing it.

    A record already in ``out_dir`` (an earlier result) is left as it is; returns whether one was written.
    """
    if (Path(out_dir) / RECORD_NAME).is_file():
        return False
    with contextlib.suppress(type(exc)), step_record(step, config, out_dir, run_id=run_id, device=device):
        raise exc
    return True


def load_record(path: str | os.PathLike) -> dict[str, Any]:
    """Read a record (a file, or a folder holding record.json)."""
    from dlbench.schemas import RecordFile, read_checked

    p = Path(path)
    if p.is_dir() and not (p / RECORD_NAME).is_dir():
        p = p / RECORD_NAME
    read_checked(p, RecordFile, "record")
    return read_json(p)


def _walk_records(root: Path) -> list[Path]:
    """Every ``record.json`` below ``root`` (symlinked folders not followed: a link loop ends nothing)."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        if RECORD_NAME in filenames or RECORD_NAME in dirnames:
            found.append(Path(dirpath) / RECORD_NAME)
    return sorted(found)


def find_records(root: str | os.PathLike) -> list[dict[str, Any]]:
    """Every record under ``root`` (recursively), each with ``_dir`` set to its folder."""
    from dlbench.schemas import RecordFile, check_file, read_checked

    out = []
    for p in _walk_records(Path(root)):
        rec = read_json(p) if not p.is_dir() else read_checked(p, RecordFile)
        check_file(rec, RecordFile, p, "record")
        rec["_dir"] = str(p.parent)
        out.append(rec)
    return out
