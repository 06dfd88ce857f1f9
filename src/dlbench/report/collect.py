"""Read every record of a run and index it for the report: by step, ok or failed, with reasons.

Records are plain dicts (``record.json``); every accessor here tolerates missing optional keys, so a
record written by an older or newer step still reports what it has.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dlbench.io import read_json
from dlbench.record import find_records
from dlbench.report import reference as ref
from dlbench.spec import TrainConfig

STEPS = ("data", "train", "svm", "profile", "onnx")
STEP_TITLES = {
    "data": "data",
    "train": "ResNet training",
    "svm": "SVM",
    "profile": "FLOPs profile",
    "onnx": "ONNX Runtime inference",
}

DEVICE_LABELS = {"cpu": "CPU", "cuda": "GPU"}


@dataclass(frozen=True)
class NotRun:
    """A cell (or a whole table) whose numbers do not exist, and why. Never shown as a zero."""

    reason: str

    def __str__(self) -> str:
        return "not run"


def cfg(rec: dict, key: str, default: Any = None) -> Any:
    return (rec.get("config") or {}).get(key, default)


def met(rec: dict, key: str, default: Any = None) -> Any:
    v = (rec.get("metrics") or {}).get(key, default)
    return default if v is None else v


def is_ok(rec: dict) -> bool:
    return rec.get("status") == "ok"


def error_of(rec: dict) -> str:
    err = rec.get("error") or f"status {rec.get('status', 'unknown')}"
    return " ".join(str(err).split())


def failed_reason(rec: dict) -> NotRun:
    return NotRun(f"{rec.get('step', 'step')} {rec.get('run_id', '?')} failed: {error_of(rec)}")


def num(v: Any) -> float | None:
    """A finite number, else None (strings, NaN, booleans are not numbers here)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if f == f and f not in (float("inf"), float("-inf")) else None


def pct(v: Any) -> float | None:
    """An accuracy recorded as a fraction (0..1) in percent."""
    f = num(v)
    return None if f is None else f * 100.0


def dataset_label(v: Any) -> str:
    from dlbench.data.registry import DATASETS  # the registry holds each dataset's title

    entry = DATASETS.get(str(v))
    return entry.title if entry else str(v)


def model_label(v: Any) -> str:
    from dlbench.models import model_label as label  # the registry holds each model family's label

    return label(str(v))


def device_label(v: Any) -> str:
    return DEVICE_LABELS.get(str(v), str(v))


@dataclass
class Records:
    """Every record below a folder (the report's own records left out), deduplicated by (step, run id)."""

    root: Path
    all: list[dict] = field(default_factory=list)
    spec_text: str | None = None

    @classmethod
    def load(cls, root: str | os.PathLike, exclude: str | os.PathLike | None = None) -> Records:
        root = Path(root)
        excl = Path(exclude).resolve() if exclude else None
        chosen: dict[tuple[str, str], dict] = {}
        for rec in find_records(root):
            d = Path(rec["_dir"]).resolve()
            if rec.get("step") == "report" or (excl is not None and (d == excl or excl in d.parents)):
                continue
            if rec.get("step") == "data":
                manifest = Path(rec["_dir"]) / "manifest.json"
                if manifest.is_file():
                    try:
                        rec["_manifest"] = read_json(manifest)
                    except (OSError, ValueError):
                        rec["_manifest"] = None
            if rec.get("step") == "train" and isinstance(rec.get("config"), dict):
                rec["config"] = TrainConfig.as_recorded(rec["config"])
            key = (str(rec.get("step")), str(rec.get("run_id") or rec["_dir"]))
            old = chosen.get(key)
            if old is None or _rank(rec) > _rank(old):
                chosen[key] = rec
        spec = root / "spec.yaml"
        out = cls(root=root, all=sorted(chosen.values(), key=lambda r: (str(r.get("step")), r["_dir"])))
        if spec.is_file():
            out.spec_text = spec.read_text()
        return out

    def step(self, step: str) -> list[dict]:
        return [r for r in self.all if r.get("step") == step]

    def ok(self, step: str) -> list[dict]:
        return [r for r in self.step(step) if is_ok(r)]

    def failed(self, step: str) -> list[dict]:
        return [r for r in self.step(step) if not is_ok(r)]

    def reason(self, step: str) -> NotRun:
        """Why a step has no usable result (call when ``ok(step)`` is empty)."""
        failed = self.failed(step)
        if failed:
            more = f" (and {len(failed) - 1} more failed)" if len(failed) > 1 else ""
            return NotRun(
                f"every {STEP_TITLES.get(step, step)} run failed; {failed_reason(failed[0]).reason}{more}"
            )
        return NotRun(
            f"no {step} records under {self.root}: the {STEP_TITLES.get(step, step)} step was not run "
            f"(not in the spec, or the run stopped before it)"
        )

    def data_for(self, dataset: str) -> dict | None:
        for r in self.ok("data"):
            if cfg(r, "dataset") == dataset or (r.get("_manifest") or {}).get("dataset") == dataset:
                return r
        return None

    def classes_for(self, rec: dict) -> list[str]:
        classes = met(rec, "classes")
        if not classes:
            data = self.data_for(cfg(rec, "dataset"))
            classes = ((data or {}).get("_manifest") or {}).get("classes")
        return [str(c) for c in classes] if classes else [str(i) for i in range(10)]


def _rank(rec: dict) -> tuple:
    return (is_ok(rec), str(rec.get("ended") or ""))


# --------------------------------------------------------------------------- grouping


def frozen(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def group_by_axis(runs: list[dict], axis: str, value_fn=None) -> list[tuple[dict, dict[Any, dict]]]:
    """Group runs whose configs are equal except ``axis``: [(shared config, {axis value: record})].

    Within a group an ok record wins over a failed one for the same axis value. Groups keep the
    order of their first run.
    """
    value_fn = value_fn or (lambda r: cfg(r, axis))
    groups: dict[str, tuple[dict, dict[Any, dict]]] = {}
    for r in runs:
        base = {k: v for k, v in (r.get("config") or {}).items() if k != axis}
        g = groups.setdefault(frozen(base), (base, {}))
        v = value_fn(r)
        old = g[1].get(v)
        if old is None or _rank(r) > _rank(old):
            g[1][v] = r
    return list(groups.values())


def varying_keys(configs: list[dict], keys: list[str]) -> list[str]:
    """The keys (in the given order) whose value is not the same in every config."""
    out = []
    for k in keys:
        if len({frozen(c.get(k)) for c in configs}) > 1:
            out.append(k)
    return out


def most_common(values: list[Any]) -> Any:
    """The most common value; ties go to the smallest."""
    counts = Counter(values)
    best = max(counts.values())
    return min(v for v, n in counts.items() if n == best)


# --------------------------------------------------------------------------- frames


def grid_membership(spec_text: str | None) -> dict[str, list[str]]:
    """run id -> the names of the spec's grids that hold it (empty without a readable spec.yaml)."""
    if not spec_text:
        return {}
    import yaml

    from dlbench.errors import DlbenchError
    from dlbench.spec import expand_grids, parse_spec

    try:
        spec = parse_spec(yaml.safe_load(spec_text) or {}, "spec.yaml")
    except (yaml.YAMLError, DlbenchError):
        return {}
    out: dict[str, list[str]] = {}
    for name, configs in expand_grids(spec).items():
        for c in configs:
            out.setdefault(c.run_id, []).append(name)
    return out


def train_frame(R: Records) -> pd.DataFrame:
    """One row per training record: its config as planned (a smoke run's ``planned`` applied), what it ran on,
    status, and its numbers in the report's units (accuracy in %, seconds)."""
    grids = grid_membership(R.spec_text)
    rows = []
    for r in R.step("train"):
        c = dict(r.get("config") or {})
        planned = c.get("planned") or {}
        row = {
            **c,
            **planned,
            "ran_on": c.get("device"),
            "amp_ran": c.get("amp"),
            "run_id": r.get("run_id"),
            "ok": is_ok(r),
            "error": None if is_ok(r) else error_of(r),
            "smoke": bool(c.get("smoke")),
            "grids": grids.get(str(r.get("run_id")), []),
            "fused": (met(r, "fused_members") or 1) > 1,
            "test_accuracy_pct": pct(met(r, "test_accuracy")) if is_ok(r) else None,
            "best_val_accuracy_pct": pct(met(r, "best_val_accuracy")) if is_ok(r) else None,
            "train_seconds": num(met(r, "train_seconds")) if is_ok(r) else None,
            "images_per_second": num(met(r, "images_per_second")) if is_ok(r) else None,
            "_rec": r,
        }
        row.pop("planned", None)
        rows.append(row)
    return pd.DataFrame(rows)


def svm_frame(R: Records) -> pd.DataFrame:
    rows = []
    for r in R.step("svm"):
        c = dict(r.get("config") or {})
        planned = c.get("planned") or {}
        rows.append(
            {
                **c,
                **planned,
                "ran_backend": met(r, "backend") or c.get("backend"),
                "run_id": r.get("run_id"),
                "ok": is_ok(r),
                "error": None if is_ok(r) else error_of(r),
                "smoke": bool(c.get("smoke")),
                "accuracy_pct": pct(met(r, "accuracy")) if is_ok(r) else None,
                "fit_seconds": num(met(r, "fit_seconds")) if is_ok(r) else None,
                "predict_seconds": num(met(r, "predict_seconds")) if is_ok(r) else None,
                "n_train_used": met(r, "n_train") if met(r, "n_train") is not None else c.get("n_train"),
                "_rec": r,
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- inference and profile results


def precision(result: dict) -> str:
    """The precision of one inference timing (an ONNX record's ``results`` entry); fp32 when not recorded."""
    return str(result.get("precision") or "fp32")


def profile_rows(R: Records) -> list[dict]:
    """Every row of the finished FLOPs profiles (one per model, input and batch counted)."""
    return [x for r in R.ok("profile") for x in met(r, "rows", []) or [] if isinstance(x, dict)]


def our_gflops(R: Records) -> dict[str, float | None]:
    """Forward GFLOPs per image at the setting the study's published GFLOPs match, per model."""
    out: dict[str, float | None] = {}
    for x in profile_rows(R):
        if ref.gflops(x) is not None:
            out[str(x.get("model"))] = num(x.get("forward_gflops"))
    return out
