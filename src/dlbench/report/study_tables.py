"""The study's own tables (1-4, the SVM table, its results list), each in the study's layout, every
published number as printed with ours beside it and the differences.

:func:`comparison` is the long frame behind all of them: one row per published cell, the run that fills
it (matched on the cell's stated settings only, :mod:`dlbench.report.reference`) and the differences.
Each table is a pivot of its rows; ``tables/<key>.csv`` is those rows. A builder and its item's key are
named by what the table shows; its title carries the study's number, and its rows are the published cells
of that table (``published.csv``'s ``table`` column, e.g. ``table1``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pandas as pd

from dlbench.report import reference as ref
from dlbench.report import uncertainty as U
from dlbench.report.collect import NotRun, Records, dataset_label, model_label, svm_frame, train_frame
from dlbench.report.document import Item, builder, fmt

STUDY, OURS = "study", "ours"
KINDS = {
    "study_accuracy_pct": "pct",
    "ours_accuracy_pct": "pct",
    "accuracy_diff_pp": "pp",
    "study_seconds": "s",
    "ours_seconds": "s",
    "time_ratio": "x",
    "study_fit_ms": "ms",
    "ours_fit_ms": "ms",
    "fit_ratio": "x",
}


def _choose(cands: pd.DataFrame, table: str, time: bool = False) -> tuple[pd.Series | None, list[str]]:
    """The run shown at a cell: one of the grid named after the table first, then a finished one. ``time``:
    the run whose time is shown, one at the study's input (3x64x64) before all others."""
    if cands.empty:
        return None, []
    grids = cands.get("grids", pd.Series([[]] * len(cands), index=cands.index))
    in_grid = grids.map(lambda gs: any(g == table or g.startswith(table + "-") for g in gs))
    # Without the spec's grids: lr 0.001, the learning rate of every run of the study's results list.
    lr3 = cands["lr"].map(lambda v: abs(float(v) - 1e-3) < 1e-12) if "lr" in cands else in_grid
    at_study = [time and ref.input_of(r) == ref.STUDY_INPUT_SHAPE for r in cands.to_dict("records")]
    ranked = cands.assign(_in=at_study, _g=in_grid, _ok=cands["ok"], _lr=lr3).sort_values(
        ["_in", "_g", "_ok", "_lr"], ascending=False, kind="stable"
    )
    best = ranked.iloc[0]
    return best, [str(x) for x in ranked["run_id"].iloc[1:]]


def comparison(R: Records) -> pd.DataFrame:
    """One row per published cell: the study's values (strings, as printed), ours, differences, the run.

    Ours is the mean over the run's repeats (the runs that differ from it only in their seed); with two or
    more, ``*_ci95`` holds the half-width of the 95 % interval and ``*_n`` the number of runs; hidden
    ``_acc`` / ``_secs`` columns hold the :class:`~dlbench.report.uncertainty.Estimate` behind them."""
    pub = ref.published()
    train, svm = train_frame(R), svm_frame(R)
    rows = []
    for _, cell in pub.iterrows():
        row = {k: cell[k] for k in ["cell", "source", "table", *ref.SETTINGS]}
        row.update(
            study_accuracy_pct=cell["test_accuracy_pct"],
            study_seconds=cell["train_seconds"],
            study_fit_ms=cell["fit_ms"],
            study_gflops=cell["gflops"],
            study_note=cell["note"],
        )
        frame = svm if cell["table"] == "svm" else train
        cands, fast = _candidates(cell, frame)
        # a time: at a cell with a published time, of the runs of _time_candidates; elsewhere the run's own
        tcands = _time_candidates(cell, frame) if cell["train_seconds"] else cands[[not fast] * len(cands)]
        if cands.empty and not tcands.empty:  # no 1x28x28 run: the accuracy of the run timed here
            cands, fast = tcands, False
        run, others = _choose(cands, cell["table"])
        reps = _repeats(cands, run)
        others = [o for o in others if o not in set(reps["run_id"])]
        trun = _choose(tcands, cell["table"], time=True)[0]
        row["run_id"] = None if run is None else run["run_id"]
        row["also_matching"] = " ".join(others)
        row["smoke"] = bool(run is not None and run["smoke"])
        if run is None:
            row["why_not"] = "no run of this study matches the cell's settings"
        elif not run["ok"]:
            row["why_not"] = f"run {run['run_id']} failed: {run['error']}"
        else:
            row["why_not"] = None
        ok = run is not None and run["ok"]
        treps = _repeats(tcands, trun) if trun is not None and trun["ok"] else tcands.iloc[0:0]
        if cell["table"] == "svm":
            acc = U.estimate(list(reps["accuracy_pct"])) if ok else None
            fit = U.estimate([x * 1000 for x in reps["fit_seconds"] if x is not None]) if ok else None
            secs = None
        else:
            acc = U.estimate(list(reps["test_accuracy_pct"])) if ok else None
            secs = U.estimate(list(treps["train_seconds"])) if len(treps) else None
            fit = None
        row["ours_accuracy_pct"] = acc.mean if acc else None
        row["ours_seconds"] = secs.mean if secs else None
        row["ours_fit_ms"] = fit.mean if fit else None
        row["ours_accuracy_ci95_pp"] = acc.half if acc else None
        row["ours_seconds_ci95"] = secs.half if secs else None
        row["ours_repeats"] = len(reps) if ok else 0
        row["ours_runs"] = " ".join(str(x) for x in reps["run_id"]) if ok else ""
        row["_acc"], row["_secs"] = acc, secs
        row.update(_filled_in(run) if ok else {})
        row.update(_timed(trun, treps))
        row["time_note"] = _time_note(run, trun, fast)
        sa, ss, sf = (ref.value(cell[k]) for k in ("test_accuracy_pct", "train_seconds", "fit_ms"))
        oa, os_, of = row["ours_accuracy_pct"], row["ours_seconds"], row["ours_fit_ms"]
        row["accuracy_diff_pp"] = oa - sa if oa is not None and sa is not None else None
        row["time_ratio"] = os_ / ss if os_ is not None and ss else None
        row["time_ratio_wall"] = row["ours_wall_seconds"] / ss if row["ours_wall_seconds"] and ss else None
        row["fit_ratio"] = of / sf if of is not None and sf else None
        rows.append(row)
    out = pd.DataFrame(rows)
    out["disagrees"] = [_disagreements(out, r) for _, r in out.iterrows()]
    return out


def _repeats(cands: pd.DataFrame, run: pd.Series | None) -> pd.DataFrame:
    """The finished runs among ``cands`` that repeat ``run``'s setting (differ only in the seed), ``run``
    first."""
    if run is None or cands.empty:
        return cands.iloc[0:0]
    key = run.get("repeat_of")
    same = (
        cands[cands["ok"] & (cands["repeat_of"] == key)] if "repeat_of" in cands and key else cands.iloc[0:0]
    )
    if not len(same) and run["ok"]:
        same = cands[cands["run_id"] == run["run_id"]]
    first = same["run_id"] == run["run_id"]
    return pd.concat([same[first], same[~first]])


# The settings our run used where a cell may leave them unstated, as columns of every study table's CSV.
FILLED_IN = [
    "our_batch_size",
    "our_lr",
    "our_device",
    "our_hardware",
    "our_precision",
    "our_input",
    "our_engine",
]


def _hardware(run: pd.Series) -> str | None:
    rec = run.get("_rec") or {}
    return (rec.get("device") or {}).get("name") or (rec.get("environment") or {}).get("cpu")


def _precision(run: pd.Series) -> str:
    amp = run.get("amp_ran")
    return "fp32" if amp in (None, "off") else f"{amp} autocast"


def _filled_in(run: pd.Series) -> dict[str, Any]:
    """What the run shown at a cell used: batch, lr, the device and hardware that ran it, its precision, its
    input, its engine (an SVM: its C, gamma and degree)."""
    hw = _hardware(run)
    if "kernel" in run and "model" not in run:
        return {
            "our_device": run.get("ran_backend"),
            "our_hardware": hw,
            "our_svm_params": f"C={run.get('C')} gamma={run.get('gamma')} degree={run.get('degree')}",
        }
    return {
        "our_batch_size": run.get("batch_size"),
        "our_lr": run.get("lr"),
        "our_device": run.get("ran_on"),
        "our_hardware": hw,
        "our_precision": _precision(run),
        "our_input": ref.input_of(run.to_dict()),
        "our_engine": run.get("engine"),
    }


# What the run whose time is shown at a cell used (it may be another run than the accuracy's: a time is
# compared at the study's input where a run has it), as columns of every study table's CSV.
TIMED = [
    "time_run_id",
    "time_runs",
    "time_input",
    "time_engine",
    "time_precision",
    "time_device",
    "time_hardware",
    "ours_wall_seconds",
    "ours_epoch_seconds_sd",
]


def _timed(trun: pd.Series | None, treps: pd.DataFrame) -> dict[str, Any]:
    """The run timed at a cell, its input and settings, and its two times: ``ours_seconds`` (set by the
    caller: the training steps) and ``ours_wall_seconds`` (whole epochs with validation), means over the
    repeats."""
    if trun is None or not len(treps):
        return dict.fromkeys(TIMED)

    def mean(key: str) -> float | None:
        xs = [float(x) for x in treps[key] if _num(x) is not None] if key in treps else []
        return sum(xs) / len(xs) if xs and len(xs) == len(treps) else None

    return {
        "time_run_id": trun["run_id"],
        "time_runs": " ".join(str(x) for x in treps["run_id"]),
        "time_input": ref.input_of(trun.to_dict()),
        "time_engine": trun.get("engine"),
        "time_precision": _precision(trun),
        "time_device": trun.get("ran_on"),
        "time_hardware": _hardware(trun),
        "ours_wall_seconds": mean("wall_seconds"),
        "ours_epoch_seconds_sd": mean("epoch_seconds_sd"),
    }


def _time_note(run: pd.Series | None, trun: pd.Series | None, fast: bool) -> str | None:
    """Why a cell shows no time of ours (None: it shows one, or has no run at all): the run timed there
    failed, or only a run trained the fast way fills it."""
    if run is None:
        return None
    if trun is not None and not trun["ok"]:
        return f"run {trun['run_id']} failed: {trun['error']}"
    if trun is None and fast:
        return ref.fast_note(run.to_dict())
    return None


def _candidates(cell: pd.Series, frame: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """The runs that fill ``cell``: by the strict match; for an accuracy cell no run fills that way, the runs
    of the accuracy-only match (``True``: their times are not comparable)."""
    if frame.empty:
        return frame, False
    records = frame.to_dict("records")
    if cell["table"] == "svm":
        return frame[[ref.matches_svm(cell, r) for r in records]], False
    strict = frame[[ref.matches_train(cell, r) for r in records]]
    if not strict.empty or not cell["test_accuracy_pct"]:
        return strict, False
    loose = frame[[ref.matches_train(cell, r, accuracy_only=True) for r in records]]
    return loose, not loose.empty


def _time_candidates(cell: pd.Series, frame: pd.DataFrame) -> pd.DataFrame:
    """The runs whose time is comparable at a cell with a published time: the strict match, at 1x28x28 or
    at the study's input (:data:`dlbench.report.reference.STUDY_INPUT`)."""
    if frame.empty or cell["table"] == "svm" or not cell["train_seconds"]:
        return frame.iloc[0:0]
    return frame[[ref.matches_train(cell, r, time=True) for r in frame.to_dict("records")]]


def _disagreements(C: pd.DataFrame, row: pd.Series) -> str:
    """Other published values at the cells the same run fills (the sources disagree): 'value (source)'."""
    out = []
    same = {"study_accuracy_pct": "run_id", "study_seconds": "time_run_id"}  # the run behind each number
    for key, unit in (("study_accuracy_pct", "%"), ("study_seconds", "s")):
        rid = row.get(same[key])
        if not isinstance(rid, str):
            continue
        for _, o in C[(C[same[key]] == rid) & (C["cell"] != row["cell"])].iterrows():
            if o[key] and row[key] and o[key] != row[key]:
                out.append(
                    f"{o[key]} {unit} ({ref.SOURCE_LABELS[o['source']]}, {ref.TABLE_TITLES[o['table']]})"
                )
    return "; ".join(dict.fromkeys(out))


def _why(row: pd.Series) -> str | None:
    return row["why_not"] if isinstance(row["why_not"], str) else None


def _num(v: object) -> float | None:
    return None if v is None or (isinstance(v, float) and v != v) else float(v)


def _cell(row: pd.Series, key: str) -> object:
    """A value for the view: ours or a difference; "not run" with the reason when there is no run."""
    v = row[key]
    if key.startswith(("ours", "accuracy_diff", "time_ratio", "fit_ratio")) and _why(row):
        return NotRun(_why(row))
    if key in ("ours_seconds", "time_ratio") and isinstance(row.get("time_note"), str):
        return row["time_note"]  # filled by a run trained the fast way: its accuracy only
    half = _num(
        row.get(
            {"ours_accuracy_pct": "ours_accuracy_ci95_pp", "ours_seconds": "ours_seconds_ci95"}.get(key, "")
        )
    )
    if half is not None and _num(v) is not None:
        return f"{fmt(v, KINDS[key])} ± {fmt(half, KINDS[key])}"  # the mean of repeats and its 95 % interval
    return fmt(v, KINDS.get(key, "text")) if not isinstance(v, str) else (v or "—")


def _values(rows: pd.DataFrame, keys: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        {label: [_cell(r, k) for _, r in rows.iterrows()] for k, label in keys.items()}, index=rows.index
    )


ACC = {"study_accuracy_pct": "study %", "ours_accuracy_pct": "ours %", "accuracy_diff_pp": "Δ pp"}
TIME = {"study_seconds": "study s", "ours_seconds": "ours s", "time_ratio": "ours / study"}


def _pivot(rows: pd.DataFrame, index: list[str], columns: list[str], keys: dict[str, str]) -> pd.DataFrame:
    vals = _values(rows, keys)
    long = pd.concat([rows[index + columns], vals], axis=1)
    wide = long.set_index(index + columns)[list(keys.values())].unstack(columns)
    # (value, col...) -> (col..., value), columns in the order the study prints them
    wide.columns = wide.columns.reorder_levels([*range(1, len(columns) + 1), 0])
    order = [tuple(c) for c in rows[columns].drop_duplicates().itertuples(index=False)]
    wide = wide[[(*c, v) for c in order for v in keys.values()]]
    return (
        wide.loc[list(dict.fromkeys(rows[index].itertuples(index=False, name=None)))]
        if len(index) > 1
        else wide.loc[list(dict.fromkeys(rows[index[0]]))]
    )


def _labels(rows: pd.DataFrame) -> pd.DataFrame:
    out = rows.copy()
    out["dataset"] = out["dataset"].map(dataset_label)
    out["model"] = out["model"].map(
        lambda m: (
            model_label(m) if not m.startswith("svm") else {"svm-poly": "polynomial", "svm-rbf": "RBF"}[m]
        )
    )
    out["optimizer"] = out["optimizer"].map(lambda o: {"sgd": "SGD", "adam": "Adam", "": "not stated"}[o])
    out["lr"] = out["lr"].map(lambda v: v or "not stated")
    out["batch_size"] = out["batch_size"].map(lambda v: v or "not stated")
    out["pin_memory"] = out["pin_memory"].map(
        lambda v: {"true": "pin on", "false": "pin off", "": "not stated"}[v]
    )
    out["device"] = out["device"].map(lambda v: device_heading(v, rows))
    out["epochs"] = out["epochs"].map(lambda v: f"{v} epochs" if v else "")
    return out


STUDY_HARDWARE = {"cuda": "A30", "cpu": "Xeon Gold 6326"}


def device_heading(device: str, rows: pd.DataFrame) -> str:
    """A device column's heading: the study's hardware and ours from the records of the runs shown, e.g.
    ``GPU (study A30; ours NVIDIA H200)``; where a smoke run stood in on the CPU, ``ours ran on CPU: ...``."""
    mine = rows[rows["device"] == device] if "device" in rows else rows

    def seen(*cols: str) -> list[str]:
        none = pd.Series(dtype=object)
        return sorted({str(x) for c in cols for x in mine.get(c, none) if isinstance(x, str)})

    hw, ran = seen("our_hardware", "time_hardware"), seen("our_device", "time_device")
    label = {"cuda": "GPU", "cpu": "CPU"}.get(device, device)
    ours = ", ".join(hw) if hw else "no run"
    if ran and ran != [device]:
        ours = f"ran on {'/'.join(r.upper() if r == 'cpu' else r for r in ran)}: {ours}"
    return f"{label} (study {STUDY_HARDWARE.get(device, '?')}; ours {ours})"


def _filled_note(table: str, rows: pd.DataFrame) -> str | None:
    """The settings the study leaves unstated for this table and the values our runs at its cells used."""
    cols = {"batch_size": ("our_batch_size", "batch"), "lr": ("our_lr", "lr"), "optimizer": (None, "")}
    bits = []
    for s in ref.unstated(table):
        col, word = cols.get(s, (None, s))
        if col and col in rows:
            vals = sorted({fmt(v, "lr" if s == "lr" else "int") for v in rows[col] if _num(v) is not None})
            if vals:
                bits.append(f"{word} {' / '.join(vals)}")
    ran = [("our_precision", "precision"), ("our_input", "input"), ("our_engine", "engine")]
    ran += [("time_engine", "timed with engine"), ("time_precision", "timed at precision")]
    for col, word in ran:
        if col in rows:
            vals = sorted({str(v) for v in rows[col] if isinstance(v, str)})
            if vals:
                bits.append(f"{word} {' / '.join(vals)}")
    return (
        "Filled in by us (the study is silent or fixes it for all runs): "
        + ", ".join(bits)
        + "; per cell in "
        "the CSV's our_* columns."
        if bits
        else None
    )


TIME_NOTE = (
    "Time definitions: the study's seconds are its 'training time' of all epochs (it does not define it; "
    "probably the training loop's wall time, each epoch's validation included). Ours s: the training steps "
    "of all epochs, the device synchronised before the clock stops, validation excluded; the CSV adds "
    "ours_wall_seconds (each epoch's wall time, training and validation, summed: the study's likely "
    "definition), its ratio time_ratio_wall, and ours_epoch_seconds_sd (the spread of the epochs' times)."
)


def _input_note(rows: pd.DataFrame) -> str | None:
    """Which input our times at these cells used (a time is compared at the study's input where a run has
    it, ref.STUDY_INPUT)."""
    timed = rows[[isinstance(x, str) for x in rows.get("time_input", pd.Series(dtype=object))]]
    if timed.empty:
        return None
    counts = timed["time_input"].value_counts()
    said = ", ".join(f"{n} at {shape}" for shape, n in counts.items())
    return (
        f"Input of our times: {said} ({ref.STUDY_INPUT_SHAPE} is the input the study's published GFLOPs "
        "count, so probably its own; 1x28x28 is about 4.5x less work per image); per cell in the CSV's "
        "time_input, the run timed in time_run_id (it may differ from the accuracy's run_id)."
    )


def _notes(table: str, rows: pd.DataFrame) -> list[str]:
    fixed = (
        "Matched on the settings each cell states, and on what the study fixes for every run: the DataLoader "
        "loop, AMP (fp16 on the GPU; ours fp32 on the CPU), imagenet stem, 70/10/20 split; accuracy from "
        "runs at 1x28x28 input (else from the run timed there); a time from a run at "
        f"{ref.STUDY_INPUT_SHAPE} where the spec has one (the study's input, by its GFLOPs), else at 1x28x28."
    )
    notes = [fixed] if table != "svm" else []
    if (rows.get("ours_repeats", pd.Series(dtype=float)).fillna(0) >= 2).any():
        notes.append(
            "Ours: the mean over the repeats of a setting (spec seeds) ± the half-width of its 95 % interval "
            "(Student's t); one value alone is one run (no interval). ours_repeats in the CSV counts them."
        )
    if table != "svm":
        notes += [n for n in (_filled_note(table, rows),) if n]
    if (rows["study_seconds"] != "").any():
        notes += [n for n in (_input_note(rows), TIME_NOTE) if n]
    missing = ref.unstated(table)
    if missing:
        notes.append(
            f"Not stated by the study for this table: {', '.join(missing)}; any value matches, and the "
            "run shown is the one of the spec's grid named after the table."
        )
    for _, r in rows.iterrows():
        where = (
            f"{dataset_label(r['dataset'])} {model_label(r['model'])}"
            + (f" {r['optimizer']}" if r["optimizer"] else "")
            + (f" {r['epochs']} ep" if r["epochs"] else "")
        )
        if r["study_note"] and not r["study_note"].startswith("published speedup"):
            notes.append(f"{where}: {r['study_note']}.")
        if r["disagrees"]:
            notes.append(
                f"{where}: published values differ for this run; {ref.SOURCE_LABELS[r['source']]} prints "
                f"{r['study_accuracy_pct']} %"
                + (f" / {r['study_seconds']} s" if r["study_seconds"] else "")
                + f" here; at the other cells the same run fills: {r['disagrees']}."
            )
        if isinstance(r["also_matching"], str) and r["also_matching"]:
            notes.append(
                f"{where}: also matched by run(s) {r['also_matching']} (a setting the cell leaves unstated "
                f"differs); shown: {r['run_id']}."
            )
    return list(dict.fromkeys(notes))


def cells(C: pd.DataFrame, table: str) -> pd.DataFrame:
    """The rows of the comparison frame for one published table (``table1`` ... ``table4``, ``svm``,
    ``all-runs``)."""
    return C[C["table"] == table]


def cell_runs(rows: pd.DataFrame) -> list[str]:
    """The ids of the runs shown at these cells, each once, sorted."""
    cols = [c for c in ("run_id", "time_run_id") if c in rows]
    return sorted({str(x) for c in cols for x in rows[c] if isinstance(x, str)})


def _study_table(
    table: str, title: str, caption: str
) -> Callable[[Callable[..., pd.DataFrame]], Callable[..., Item]]:
    """Declare the builder of the study's table ``table`` (``published.csv``'s ``table`` column):
    ``fn(item, rows, lab, *args)`` returns the view of its published cells ``rows`` (``lab``: the same rows
    with the study's labels) and may add notes; the item's CSV (the cells, ours beside them), its common
    notes and the runs shown are set here. Callers call ``fn(C, *args)`` with the comparison frame."""

    def declare(fn: Callable[..., pd.DataFrame]) -> Callable[..., Item]:
        def fill(item: Item, C: pd.DataFrame, *args: Any) -> None:
            rows = cells(C, table)
            cols = [
                "cell",
                "source",
                *ref.SETTINGS,
                "study_accuracy_pct",
                "ours_accuracy_pct",
                "accuracy_diff_pp",
                "study_seconds",
                "ours_seconds",
                "time_ratio",
                "time_ratio_wall",
                "study_fit_ms",
                "ours_fit_ms",
                "fit_ratio",
                "study_gflops",
                "ours_accuracy_ci95_pp",
                "ours_seconds_ci95",
                "ours_repeats",
                *FILLED_IN,
                *TIMED,
                "our_svm_params",
                "run_id",
                "ours_runs",
                "smoke",
                "why_not",
                "also_matching",
                "study_note",
            ]
            item.frame = rows[[c for c in cols if c in rows]]
            item.notes = _notes(table, rows)
            item.notes.append("Δ pp = ours − study in percentage points; ours / study is the ratio of times.")
            item.sources = cell_runs(rows)
            item.view = fn(item, rows, _labels(rows), *args)

        fill.__name__, fill.__qualname__, fill.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
        return builder("table", title, caption, part="study")(fill)

    return declare


@_study_table(
    "table1",
    "Table 1: test accuracy (%) over batch size, optimizer and learning rate (4 epochs)",
    "The study's matrix: rows batch x optimizer x learning rate, columns dataset x model; in each cell the "
    "study's accuracy, ours, and the difference. Only runs with the cell's exact settings.",
)
def accuracy_grid(item: Item, rows: pd.DataFrame, lab: pd.DataFrame) -> pd.DataFrame:
    view = _pivot(lab, ["batch_size", "optimizer", "lr"], ["dataset", "model"], ACC)
    view.index.names = ["batch", "optimizer", "learning rate"]
    return view


@_study_table(
    "table2",
    "Table 2: 4 vs 10 epochs (best configurations, batch 16)",
    "Test accuracy and training time (whole training) at 4 and 10 epochs, as the study labels its rows.",
)
def epochs_4_vs_10(item: Item, rows: pd.DataFrame, lab: pd.DataFrame) -> pd.DataFrame:
    lab["optimizer"] = lab["optimizer"] + " (BS=" + rows["batch_size"] + ")"
    view = _pivot(lab, ["dataset", "model", "optimizer"], ["epochs"], {**ACC, **TIME})
    view.index.names = ["dataset", "model", "configuration"]
    return view


def _published_speedup(note: str) -> str:
    m = re.search(r"published speedup ([0-9.]+x)", note or "")
    return m.group(1) if m else "—"


@_study_table(
    "table3",
    "Table 3: pin_memory on vs off (4 epochs, batch 16, Adam)",
    "Training time and test accuracy with pinned host memory on and off; speedup = time off / time on (the "
    "study's printed speedups).",
)
def pin_memory(item: Item, rows: pd.DataFrame, lab: pd.DataFrame) -> pd.DataFrame:
    view = _pivot(lab, ["dataset", "model"], ["pin_memory"], {**TIME, **ACC})
    sp_study, sp_ours = [], []
    for (_ds, _m), g in rows.groupby([lab["dataset"], lab["model"]], sort=False):
        on, off = g[g["pin_memory"] == "true"].iloc[0], g[g["pin_memory"] == "false"].iloc[0]
        sp_study.append(_published_speedup(off["study_note"]))
        a, b = _num(off["ours_seconds"]), _num(on["ours_seconds"])
        sp_ours.append(fmt(a / b, "x") if a is not None and b else NotRun(_why(on) or _why(off) or "no time"))
    view[("speedup of pin on", "study")] = sp_study
    view[("speedup of pin on", "ours")] = sp_ours
    view.index.names = ["dataset", "model"]
    item.notes.append(
        'The study\'s text claims pin_memory=True is "1.5x to 2x" faster; its table prints 1.21x to 1.99x.'
    )
    return view


@_study_table(
    "table4",
    "Table 4: CPU vs GPU, Fashion-MNIST, 10 epochs",
    f"Training time and test accuracy on the CPU and the GPU ({ref.STUDY['cpu']} vs {ref.STUDY['gpu']} "
    "in the study), the models' GFLOPs and the GPU speedup (CPU time / GPU time).",
)
def cpu_vs_gpu(
    item: Item, rows: pd.DataFrame, lab: pd.DataFrame, our_gflops: dict[str, float | None] | None = None
) -> pd.DataFrame:
    view = _pivot(lab, ["model", "optimizer"], ["device"], {**TIME, **ACC})
    g_study, g_ours, sp_study, sp_ours = [], [], [], []
    for _, g in rows.groupby(["model", "optimizer"], sort=False):
        cpu, gpu = g[g["device"] == "cpu"].iloc[0], g[g["device"] == "cuda"].iloc[0]
        g_study.append(cpu["study_gflops"])
        ours_g = (our_gflops or {}).get(cpu["model"])
        g_ours.append(fmt(ours_g, "gflops") if ours_g is not None else "—")
        sp_study.append(fmt(float(cpu["study_seconds"]) / float(gpu["study_seconds"]), "x"))
        a, b = _num(cpu["ours_seconds"]), _num(gpu["ours_seconds"])
        sp_ours.append(
            fmt(a / b, "x") if a is not None and b else NotRun(_why(cpu) or _why(gpu) or "no time")
        )
    view[("GFLOPs", "study")] = g_study
    view[("GFLOPs", "ours (3x64x64)")] = g_ours
    view[("GPU speedup", "study")] = sp_study
    view[("GPU speedup", "ours")] = sp_ours
    view.index.names = ["model", "optimizer"]
    item.notes.append(
        "The study's speedup is computed here from its printed times; its text claims 4x-5x. Our "
        "GFLOPs: forward FLOPs (2 per multiply-add) at 3x64x64, the setting the study's numbers match "
        "(Table 9)."
    )
    return view


@_study_table(
    "svm",
    "SVM table: polynomial and RBF kernels (scikit-learn)",
    f"Test accuracy and fit time of each kernel; the study fitted its SVMs on its CPUs ({ref.STUDY['cpu']}), "
    "in milliseconds as printed.",
)
def svm_kernels(item: Item, rows: pd.DataFrame, lab: pd.DataFrame) -> pd.DataFrame:
    keys = {
        **ACC,
        "study_fit_ms": "study fit ms (CPU)",
        "ours_fit_ms": "ours fit ms",
        "fit_ratio": "ours / study",
    }
    view = _pivot(lab, ["dataset"], ["model"], keys)
    view.index.names = ["dataset"]
    ours = sorted({str(x) for x in rows.get("our_svm_params", pd.Series(dtype=object)) if isinstance(x, str)})
    item.notes.insert(
        0,
        "The study states no C, gamma or degree; ours: "
        + ("; ".join(ours) if ours else "no run")
        + " (degree applies to the polynomial kernel only), on the whole train split, scikit-learn "
        "(cuML runs are in Table 7).",
    )
    return view


@_study_table(
    "all-runs",
    "Results list: the study's individual runs (repository page)",
    "Every run the study's repository page lists, with its settings as listed, and ours.",
)
def results_list(item: Item, rows: pd.DataFrame, lab: pd.DataFrame) -> pd.DataFrame:
    view = _values(rows, {**ACC, **TIME})
    view.index = pd.MultiIndex.from_frame(
        lab[["dataset", "model", "batch_size", "optimizer", "lr", "epochs", "pin_memory"]]
    )
    view.index.names = ["dataset", "model", "batch", "optimizer", "learning rate", "epochs", "pin_memory"]
    return view


# The builder of each published table (``published.csv``'s ``table`` column), in the study's order.
STUDY_TABLES = {
    "table1": accuracy_grid,
    "table2": epochs_4_vs_10,
    "table3": pin_memory,
    "table4": cpu_vs_gpu,
    "svm": svm_kernels,
    "all-runs": results_list,
}
