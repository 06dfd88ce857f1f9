"""The reference study's published numbers (``published.csv``, one row per published cell) and the rule
that sets a run beside a cell.

Every value is kept as printed (strings: 148.36 stays 148.36, 99.20 keeps its zero). A cell states some
settings and leaves others empty (not stated); a run matches a cell when it agrees on every stated
setting and on what the study fixes for all its runs (:data:`FIXED`). Unstated settings are never filled
in: :func:`unstated` names them for the table's note.
"""

from __future__ import annotations

import math
from functools import cache
from importlib import resources
from typing import Any

import pandas as pd

STUDY = {
    "title": "DL-Ops Assignment 1: Deep Learning & Hardware Benchmarking",
    "date": "January 2026",
    "gpu": "NVIDIA A30",
    "cpu": "dual Intel Xeon Gold 6326 (32 cores, 2.9 GHz, 256 GB)",
}
CITATION = f"\u201c{STUDY['title']}\u201d ({STUDY['date']}; {STUDY['gpu']} GPU, {STUDY['cpu']} CPU)"

SETTINGS = ["dataset", "model", "device", "batch_size", "optimizer", "lr", "epochs", "pin_memory"]
TABLES = ["table1", "table2", "table3", "table4", "svm", "all-runs"]
TABLE_TITLES = {
    "table1": "Table 1",
    "table2": "Table 2",
    "table3": "Table 3",
    "table4": "Table 4",
    "svm": "SVM table",
    "all-runs": "Results list",
}
SOURCE_LABELS = {"study": "the paper", "results-list": "the repository's results list"}

# What the study fixes for every ResNet run (not restated per cell): a run matches a cell only with these.
# AMP: fp16 autocast on the GPU; on the CPU our runs use fp32 (AMP off), since fp16 autocast is emulated
# and slow there, and the study states no CPU precision.
FIXED = {"stem": "imagenet", "engine": "dataloader", "input_size": 28, "in_channels": 1}
# The input the study most likely trained at: its published GFLOPs count 3x64x64 (GFLOPS_SETTING). A time
# is compared from a run at this input where one matches (the work per image is the study's), else from a
# run at FIXED's 1x28x28 (about 4.5x less work per image); accuracy stays with the 1x28x28 runs.
STUDY_INPUT = {"in_channels": 3, "input_size": 64}
INPUT_KEYS = ("in_channels", "input_size")
STUDY_AMP = {"cuda": "fp16", "cpu": "off"}
SVM_KERNELS = {"svm-poly": "poly", "svm-rbf": "rbf"}


@cache
def published() -> pd.DataFrame:
    """Every published cell, as printed (all columns strings; empty = not stated), with a ``cell`` id."""
    with (resources.files("dlbench.report") / "published.csv").open() as f:
        df = pd.read_csv(f, dtype=str, keep_default_na=False)
    df["cell"] = [f"{t}:{i}" for i, t in zip(range(len(df)), df["table"], strict=True)]
    return df


def value(v: str) -> float | None:
    """A printed number as a float (for differences), None when empty."""
    return float(v) if v not in ("", None) else None


def unstated(table: str) -> list[str]:
    """Settings no cell of ``table`` states."""
    df = published()
    rows = df[df["table"] == table]
    return [s for s in SETTINGS if (rows[s] == "").all()]


def _stated(cell: pd.Series) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in SETTINGS:
        v = cell[s]
        if v == "":
            continue
        if s in ("batch_size", "epochs"):
            out[s] = int(v)
        elif s == "lr":
            out[s] = float(v)
        elif s == "pin_memory":
            out[s] = v == "true"
        else:
            out[s] = v
    return out


# A run trained the fast way (the resident or fused engine, any autocast) fills a cell's accuracy when no run
# of the study's own loop does, never its time: its seconds measure another loop (see fast_match). The
# loader setting pin_memory means nothing to an engine without a DataLoader.
FAST_ENGINES = ("dataloader", "resident", "fused")


def input_of(config: dict[str, Any]) -> str:
    """A training config's model input, ``CxSxS`` (a record written before the input settings: 1x28x28)."""
    c = {**config, **(config.get("planned") or {})}
    size = c.get("input_size") or FIXED["input_size"]
    return f"{c.get('in_channels') or FIXED['in_channels']}x{size}x{size}"


STUDY_INPUT_SHAPE = input_of(STUDY_INPUT)


def matches_train(
    cell: pd.Series, config: dict[str, Any], accuracy_only: bool = False, time: bool = False
) -> bool:
    """Whether a training config (as planned: a smoke run's ``planned`` settings applied) fills ``cell``.

    ``accuracy_only``: the looser match of a run whose accuracy is comparable but whose time is not (any
    engine of :data:`FAST_ENGINES`, any AMP, pin_memory not compared). ``time``: the match of a run whose
    time is compared at a cell with a published time: the strict match, at 1x28x28 or at the study's input
    (:data:`STUDY_INPUT`)."""
    if cell["table"] == "svm" or (time and not cell["train_seconds"]):
        return False
    if time and input_of(config) == STUDY_INPUT_SHAPE:
        planned = {**config, **(config.get("planned") or {}), **{k: FIXED[k] for k in INPUT_KEYS}}
        config = {**planned, "planned": None}  # compared as a 1x28x28 run on every other setting
    c = {**config, **(config.get("planned") or {})}
    for k, v in _stated(cell).items():
        got = c.get(k)
        if k == "lr":
            if not isinstance(got, int | float) or not math.isclose(got, v, rel_tol=1e-9):
                return False
        elif got != v and not (accuracy_only and k == "pin_memory"):
            return False
    if accuracy_only:
        return c.get("engine") in FAST_ENGINES and all(
            c.get(k, v) == v for k, v in FIXED.items() if k != "engine"
        )
    if any(c.get(k, v) != v for k, v in FIXED.items()):
        return False
    return c.get("amp") == STUDY_AMP.get(str(c.get("device")))


def fast_note(run: dict[str, Any]) -> str:
    """Why a run that fills a cell by the accuracy-only match shows no time there."""
    how = f"{run.get('engine')} engine, AMP {run.get('amp')}" + (", fused" if run.get("fused") else "")
    return f"not comparable ({how})"


def matches_svm(cell: pd.Series, config: dict[str, Any]) -> bool:
    """SVM cells: the SVC (no other estimator), scikit-learn on the CPU, trained on the whole train split (the
    study's 70 %), dataset and kernel (C, gamma, degree are not stated)."""
    if cell["table"] != "svm":
        return False
    c = {**config, **(config.get("planned") or {})}
    return (
        c.get("dataset") == cell["dataset"]
        and (c.get("estimator") or "svm") == "svm"
        and c.get("kernel") == SVM_KERNELS.get(cell["model"])
        and c.get("backend") in ("sklearn", "auto")
        and c.get("n_train") is None
    )


def cells_for(
    config: dict[str, Any], step: str = "train", accuracy_only: bool = False, time: bool = False
) -> list[str]:
    """The published cells (``table:row``) a run fills; ``accuracy_only``: the accuracy cells it would fill
    by the looser match (:func:`matches_train`) when no run of the study's own loop does; ``time``: the
    cells whose time it may fill (at 1x28x28 or at the study's input)."""
    df = published()
    if step != "train":
        return [row["cell"] for _, row in df.iterrows() if matches_svm(row, config)]
    return [
        row["cell"]
        for _, row in df.iterrows()
        if (row["test_accuracy_pct"] or not accuracy_only) and matches_train(row, config, accuracy_only, time)
    ]


def describe(cell_id: str) -> str:
    """A cell in words, e.g. ``Table 1 mnist resnet18 cuda bs16 sgd lr0.001 4ep pin``."""
    row = published().set_index("cell").loc[cell_id]
    bits = [TABLE_TITLES[row["table"]], row["dataset"], row["model"], row["device"]]
    bits += [f"bs{row['batch_size']}"] if row["batch_size"] else []
    bits += [row["optimizer"]] if row["optimizer"] else []
    bits += [f"lr{row['lr']}"] if row["lr"] else []
    bits += [f"{row['epochs']}ep"] if row["epochs"] else []
    bits += [{"true": "pin on", "false": "pin off"}[row["pin_memory"]]] if row["pin_memory"] else []
    return " ".join(bits)


# --------------------------------------------------------------------------- GFLOPs

# "GFLOPs" as published (Table 4), without the tool or the input size. All three equal, to the four digits
# published, the forward FLOPs (2 per multiply-add) FlopCounterMode counts for torchvision's ResNet with
# 3 input channels, 10 outputs and the imagenet stem at 64x64, batch 1 (tests/profile checks it).
GFLOPS_SETTING: dict[str, Any] = {
    "stem": "imagenet",
    **STUDY_INPUT,
    "num_classes": 10,
    "batch_size": 1,
}


def gflops_published() -> dict[str, str]:
    df = published()
    rows = df[df["gflops"] != ""]
    return dict(zip(rows["model"], rows["gflops"], strict=False))


GFLOPS: dict[str, float] = {m: float(v) for m, v in gflops_published().items()}


def gflops(row: dict[str, Any]) -> float | None:
    """The study's published "GFLOPs" for a profile row counted in the setting they match, else None."""
    if any(row.get(k) != v for k, v in GFLOPS_SETTING.items()):
        return None
    return GFLOPS.get(str(row.get("model")))
