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
from dlbench.report.uncertainty import repeat_key
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


def classical_label(config: dict[str, Any]) -> str:
    """A classical run's label: ``SVM rbf`` for the study's SVC, else its estimator's registry label."""
    from dlbench.svm.estimators import ESTIMATORS  # the registry holds each estimator's label

    name = str(config.get("estimator") or "svm")
    if name == "svm":
        return f"SVM {config.get('kernel')}"
    entry = ESTIMATORS.get(name)
    return entry.label if entry else name


def device_label(v: Any) -> str:
    return DEVICE_LABELS.get(str(v), str(v))


@dataclass
class Records:
    """Every record below a folder (the report's own records left out), deduplicated by (step, run id)."""

    root: Path
    all: list[dict] = field(default_factory=list)
    spec_text: str | None = None
    # the folders merged (dlbench report --records A B ...): label, root, spec_text, records; see load_many
    sources: list[dict] = field(default_factory=list)

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

    @classmethod
    def load_many(cls, roots: list, exclude: str | os.PathLike | None = None) -> Records:
        """The records of several folders (study folders, pipeline runs, fetched runs: one machine each) as
        one set. With more than one folder each record is tagged with its folder's label (``_source``),
        its train or SVM config gains ``machine`` (so two runs of one config on two machines are two rows,
        and a table that tells runs apart names the machine) and its run id reads ``<run id>@<label>``."""
        roots = [Path(r) for r in roots]
        if len(roots) == 1:
            R = cls.load(roots[0], exclude=exclude)
            R.sources = [_source(R, None)]
            return R
        merged: list[dict] = []
        sources = []
        for root, label in zip(roots, machine_labels(roots), strict=True):
            R = cls.load(root, exclude=exclude)
            for r in R.all:
                r["_source"] = label
                r["_base_run_id"] = r.get("run_id")
                if r.get("run_id"):
                    r["run_id"] = f"{r['run_id']}@{label}"
                if r.get("step") in ("train", "svm") and isinstance(r.get("config"), dict):
                    r["config"] = {**r["config"], "machine": label}
            sources.append(_source(R, label))
            merged += R.all
        return cls(root=roots[0], all=merged, spec_text=sources[0]["spec_text"], sources=sources)

    @property
    def merged(self) -> bool:
        return len(self.sources) > 1

    def source_of(self, rec: dict) -> dict:
        """The folder a record came from (its label, root and spec)."""
        label = rec.get("_source")
        return next((s for s in self.sources if s["label"] == label), self.sources[0] if self.sources else {})

    def grids(self) -> dict[str, list[str]]:
        """run id -> the names of the grids of its folder's spec that hold it."""
        if not self.merged:
            return grid_membership(self.spec_text)
        out: dict[str, list[str]] = {}
        for s in self.sources:
            for run_id, names in grid_membership(s["spec_text"]).items():
                out[f"{run_id}@{s['label']}"] = names
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


def machine_labels(roots: list[Path]) -> list[str]:
    """A short, distinct label per folder: its name, else parent/name, else name#n."""
    names = [Path(os.path.abspath(r)).name or str(r) for r in roots]
    if len(set(names)) < len(names):
        names = [f"{Path(os.path.abspath(r)).parent.name}/{n}" for r, n in zip(roots, names, strict=True)]
    seen: Counter = Counter()
    out = []
    for n in names:
        seen[n] += 1
        out.append(n if seen[n] == 1 else f"{n}#{seen[n]}")
    return out


def _source(R: Records, label: str | None) -> dict:
    return {"label": label or R.root.name, "root": R.root, "spec_text": R.spec_text, "records": len(R.all)}


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


# --------------------------------------------------------------------------- frames


def grid_membership(spec_text: str | None) -> dict[str, list[str]]:
    """run id -> the names of the spec's grids that hold it (empty without a readable spec.yaml)."""
    if not spec_text:
        return {}
    import yaml

    from dlbench.errors import DlbenchError
    from dlbench.plan import expand_grids
    from dlbench.spec import parse_spec

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
    grids = R.grids()
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
            **epoch_times(r),
            "repeat_of": repeat_key({**c, **planned, "planned": None}),
            "_rec": r,
        }
        row.pop("planned", None)
        rows.append(row)
    return pd.DataFrame(rows)


def epoch_times(rec: dict) -> dict[str, float | None]:
    """A training record's time per epoch: the spread of its epochs' training-step seconds (sd), and the
    whole wall time of training with validation (each epoch's recorded ``wall_seconds``; in a record
    written before them, training steps + each epoch's evaluation), in seconds."""
    hist = [h for h in (met(rec, "history", []) or []) if isinstance(h, dict)] if is_ok(rec) else []
    secs = [x for h in hist if (x := num(h.get("seconds"))) is not None]
    evals = [num(h.get("eval_seconds")) for h in hist]
    sd = None
    if len(secs) >= 2:
        m = sum(secs) / len(secs)
        sd = (sum((x - m) ** 2 for x in secs) / (len(secs) - 1)) ** 0.5
    walls = [num(h.get("wall_seconds")) for h in hist]
    if secs and all(w is not None for w in walls):  # recorded: each epoch's whole wall time
        wall = sum(walls)
    elif secs and all(e is not None for e in evals):  # a record before it: training steps + evaluation
        wall = sum(secs) + sum(evals)
    else:
        wall = None
    return {"epoch_seconds_sd": sd, "wall_seconds": wall}


def svm_frame(R: Records) -> pd.DataFrame:
    rows = []
    for r in R.step("svm"):
        c = dict(r.get("config") or {})
        planned = c.get("planned") or {}
        rows.append(
            {
                **c,
                **planned,
                "estimator": c.get("estimator") or "svm",
                "label": classical_label(c),
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
