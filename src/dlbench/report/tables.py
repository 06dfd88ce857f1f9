"""The report's tables, each built from records only when the run has the data.

A table is columns (key, label, kind) and rows of raw values in the column's unit; the CSV keeps the
raw values, Markdown and HTML format them. A value that does not exist because a step failed or was
not run is a :class:`NotRun` (shown as "not run", its reason in the notes), never a zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlbench.report import reference as ref
from dlbench.report.collect import (
    NotRun,
    Records,
    cfg,
    dataset_label,
    device_label,
    error_of,
    failed_reason,
    frozen,
    group_by_axis,
    is_ok,
    met,
    model_label,
    most_common,
    num,
    pct,
    varying_keys,
)


@dataclass
class Col:
    key: str
    label: str
    kind: str = "text"  # text dataset model device bool int float lr pct s ms x ips gflops m mb
    ref: bool = False   # a reference-study column (styled apart)


@dataclass
class Table:
    columns: list[Col]
    rows: list[dict[str, Any]]


@dataclass
class Item:
    """One numbered table or figure of the report, or the reason it is not there."""

    key: str
    kind: str  # table | figure
    title: str
    caption: str = ""
    table: Table | None = None
    image: Path | None = None
    not_run: NotRun | None = None
    notes: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def all_notes(self) -> list[str]:
        """The item's notes plus the reason of every "not run" cell, each once."""
        out = list(self.notes)
        if self.table is not None:
            for row in self.table.rows:
                for v in row.values():
                    if isinstance(v, NotRun) and f"not run: {v.reason}" not in out:
                        out.append(f"not run: {v.reason}")
        return out


# --------------------------------------------------------------------------- formatting

def fmt(value: Any, kind: str = "text") -> str:
    """A cell as a person reads it. None is "—" (not recorded / not applicable)."""
    if isinstance(value, NotRun):
        return "not run"
    if value is None:
        return "—"
    if kind == "dataset":
        return dataset_label(value)
    if kind == "model":
        return model_label(value)
    if kind == "device":
        return device_label(value)
    if kind == "bool":
        return "on" if value else "off"
    f = num(value)
    if f is None:
        return str(value)
    if kind == "int":
        return f"{int(round(f)):,}"
    if kind == "lr":
        mant, exp = f"{f:.0e}".split("e")
        return f"{mant}e{int(exp)}" if mant != "1" else f"1e{int(exp)}"
    if kind == "pct":
        return f"{f:.2f}"
    if kind in ("s", "ms"):
        return _sig(f)
    if kind == "x":
        return f"{f:.2f}x"
    if kind == "ips":
        return f"{f:,.0f}" if f >= 100 else _sig(f)
    if kind == "gflops":
        return f"{f:.4f}"
    if kind in ("m", "mb"):
        return f"{f:.2f}"
    return _sig(f) if kind == "float" else str(value)


def _sig(f: float) -> str:
    a = abs(f)
    if a >= 100:
        return f"{f:,.0f}"
    if a >= 10:
        return f"{f:.1f}"
    if a >= 1:
        return f"{f:.2f}"
    if a == 0:
        return "0"
    return f"{f:.3g}"


def csv_value(value: Any) -> str:
    if isinstance(value, NotRun):
        return "not run"
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


# --------------------------------------------------------------------------- training axes

TRAIN_AXES: list[tuple[str, str, str]] = [
    ("dataset", "dataset", "dataset"), ("model", "model", "model"), ("stem", "stem", "text"),
    ("input_size", "input size", "int"), ("in_channels", "input channels", "int"), ("batch_size", "batch", "int"),
    ("optimizer", "optimizer", "text"), ("lr", "learning rate", "lr"),
    ("momentum", "momentum", "float"), ("weight_decay", "weight decay", "float"), ("epochs", "epochs", "int"),
    ("device", "device", "device"), ("engine", "engine", "text"), ("pin_memory", "pin_memory", "bool"),
    ("num_workers", "workers", "int"), ("amp", "AMP", "text"), ("seed", "seed", "int"),
    ("max_steps_per_epoch", "max steps/epoch", "int"),
]
_AXIS = {k: (label, kind) for k, label, kind in TRAIN_AXES}


def axis_columns(configs: list[dict], exclude: tuple[str, ...] = ()) -> tuple[list[Col], str | None]:
    """Columns for the axes that vary (dataset and model always), and a note naming the constant ones."""
    keys = [k for k, _, _ in TRAIN_AXES if k not in exclude]
    shown = ["dataset", "model"] + [k for k in varying_keys(configs, keys) if k not in ("dataset", "model")]
    shown = [k for k in keys if k in shown]
    consts = []
    for k in keys:
        if k in shown or not configs:
            continue
        v = configs[0].get(k)
        if k == "max_steps_per_epoch":
            if v is not None:
                consts.append(f"capped at {v} steps per epoch (a smoke run: accuracy is not comparable "
                              "with full epochs)")
            continue
        if v is None:
            continue
        label, kind = _AXIS[k]
        consts.append(f"{label} {fmt(v, kind)}")
    cols = [Col(k, _AXIS[k][0], _AXIS[k][1]) for k in shown]
    note = ("Same in every row: " + ", ".join(consts) + ".") if consts else None
    return cols, note


def axis_values(config: dict, cols: list[Col]) -> dict[str, Any]:
    return {c.key: config.get(c.key) for c in cols}


def sort_key(config: dict) -> tuple:
    """Order rows by the axes in TRAIN_AXES order, numbers numerically."""
    out = []
    for k, _, _ in TRAIN_AXES:
        v = config.get(k)
        out.append((0, num(v), "") if num(v) is not None else (1, 0.0, frozen(v)))
    return tuple(out)


def epoch_seconds(rec: dict) -> float | None:
    v = num(met(rec, "epoch_seconds_mean"))
    if v is None:
        total, epochs = num(met(rec, "train_seconds")), num(cfg(rec, "epochs"))
        v = total / epochs if total is not None and epochs else None
    return v


def value_or_reason(rec: dict | None, fn, missing: NotRun) -> Any:
    """``fn(rec)`` for an ok record; the failure for a failed one; ``missing`` when there is none."""
    if rec is None:
        return missing
    if not is_ok(rec):
        return failed_reason(rec)
    return fn(rec)


def _acc(r: dict) -> float | None:
    return pct(met(r, "test_accuracy"))


def _secs(r: dict) -> float | None:
    return num(met(r, "train_seconds"))


def _run_ids(recs) -> list[str]:
    return sorted({str(r.get("run_id")) for r in recs if r is not None})


# --------------------------------------------------------------------------- Table 1

def table1(R: Records) -> Item:
    item = Item("table1", "table", "Table 1: test accuracy over the training grid",
                caption="Every training run at the grid's epoch count (the reference study's Table 1 used 4).")
    runs = R.step("train")
    if not R.ok("train"):
        item.not_run = R.reason("train")
        return item
    epochs = most_common([cfg(r, "epochs") for r in runs])
    sel = sorted((r for r in runs if cfg(r, "epochs") == epochs), key=lambda r: sort_key(r["config"]))
    cols, note = axis_columns([r["config"] for r in sel], exclude=("epochs",))
    item.caption = f"Every training run at {epochs} epoch(s), the grid's most common epoch count " \
                   "(the reference study's Table 1 used 4); other epoch counts are in Table 2."
    rows = []
    for r in sel:
        row = axis_values(r["config"], cols)
        row["test_accuracy_pct"] = value_or_reason(r, _acc, NotRun(""))
        row["best_val_accuracy_pct"] = value_or_reason(r, lambda x: pct(met(x, "best_val_accuracy")), NotRun(""))
        row["train_seconds"] = value_or_reason(r, _secs, NotRun(""))
        row["images_per_second"] = value_or_reason(r, lambda x: num(met(x, "images_per_second")), NotRun(""))
        reference = ref.train_gpu(r["config"])
        row["ref_a30_accuracy_pct"], row["ref_a30_seconds"] = reference or (None, None)
        rows.append(row)
    cols += [Col("test_accuracy_pct", "test accuracy (%)", "pct"),
             Col("best_val_accuracy_pct", "best val. accuracy (%)", "pct"),
             Col("train_seconds", "training time (s)", "s"), Col("images_per_second", "images/s", "ips")]
    if any(row["ref_a30_accuracy_pct"] is not None for row in rows):
        cols += [Col("ref_a30_accuracy_pct", f"{ref.LABEL}: accuracy (%)", "pct", ref=True),
                 Col("ref_a30_seconds", f"{ref.LABEL}: time (s)", "s", ref=True)]
        item.notes.append(f"{ref.LABEL}: published GPU numbers for the same dataset, model, batch size and "
                          "optimizer; its MNIST result does not state the optimizer.")
    else:
        for row in rows:
            row.pop("ref_a30_accuracy_pct"), row.pop("ref_a30_seconds")
    if note:
        item.notes.insert(0, note)
    item.notes.append("Training time is the sum of the epoch times (data loading included, evaluation excluded "
                      "as the train step measures it).")
    item.table = Table(cols, rows)
    item.sources = _run_ids(sel)
    return item


# --------------------------------------------------------------------------- paired tables

def _pairs(runs: list[dict], axis: str, need: tuple, value_fn=None) -> list[tuple[dict, dict]]:
    groups = group_by_axis(runs, axis, value_fn)
    out = [(base, by) for base, by in groups
           if all(v in by for v in need) and any(is_ok(r) for r in by.values())]
    return sorted(out, key=lambda g: sort_key(g[0]))


def _paired(R: Records, item: Item, axis: str, need: tuple, none_reason) -> tuple[list, list[Col], str | None] | None:
    """The configurations trained at every value of ``axis`` in ``need``: (groups, axis columns, note).

    None, with ``item`` marked not run, when there are no train records or no such configuration;
    ``none_reason(runs)`` words the second case.
    """
    if not R.ok("train"):
        item.not_run = R.reason("train")
        return None
    groups = _pairs(R.step("train"), axis, need)
    if not groups:
        item.not_run = NotRun(none_reason(R.step("train")))
        return None
    cols, note = axis_columns([b for b, _ in groups], exclude=(axis,))
    return groups, cols, note


def _per_side(row: dict, by: dict, sides: dict, metrics: dict, key: str = "{metric}_{side}") -> None:
    """``row[key]`` for every metric (name -> fn of a record) and side (axis value -> its name in the key)."""
    for metric, fn in metrics.items():
        for value, side in sides.items():
            row[key.format(metric=metric, side=side)] = value_or_reason(by[value], fn, NotRun(""))


def table2(R: Records) -> Item:
    item = Item("table2", "table", "Table 2: more epochs (same config, different epoch counts)",
                caption="Test accuracy and training time of the same configuration trained for different "
                        "numbers of epochs (the reference study compared 4 and 10).")
    if not R.ok("train"):
        item.not_run = R.reason("train")
        return item
    runs = R.step("train")
    groups = [(b, by) for b, by in group_by_axis(runs, "epochs") if len(by) >= 2 and
              any(is_ok(r) for r in by.values())]
    if not groups:
        counts = sorted({cfg(r, "epochs") for r in runs}, key=str)
        item.not_run = NotRun(f"no configuration was trained at two epoch counts (epochs in this run: "
                              f"{', '.join(map(str, counts))}); add a grid with epochs [4, 10]")
        return item
    groups.sort(key=lambda g: sort_key(g[0]))
    all_epochs = sorted({e for _, by in groups for e in by})
    cols, note = axis_columns([b for b, _ in groups], exclude=("epochs",))
    rows = []
    has_ref = set()
    for base, by in groups:
        row = axis_values(base, cols)
        for e in all_epochs:
            missing = NotRun(f"this configuration was not trained for {e} epochs")
            row[f"test_accuracy_pct_{e}ep"] = value_or_reason(by.get(e), _acc, missing)
            row[f"train_seconds_{e}ep"] = value_or_reason(by.get(e), _secs, missing)
            reference = ref.train_gpu({**base, "epochs": e})
            if reference:
                has_ref.add(e)
            row[f"ref_a30_accuracy_pct_{e}ep"], row[f"ref_a30_seconds_{e}ep"] = reference or (None, None)
        lo, hi = row[f"test_accuracy_pct_{min(by)}ep"], row[f"test_accuracy_pct_{max(by)}ep"]
        row["accuracy_gain_pp"] = hi - lo if num(lo) is not None and num(hi) is not None else None
        rows.append(row)
    for e in all_epochs:
        cols += [Col(f"test_accuracy_pct_{e}ep", f"accuracy @ {e} ep (%)", "pct"),
                 Col(f"train_seconds_{e}ep", f"time @ {e} ep (s)", "s")]
    cols.append(Col("accuracy_gain_pp", "gain, most vs fewest epochs (pp)", "pct"))
    for e in all_epochs:
        if e in has_ref:
            cols += [Col(f"ref_a30_accuracy_pct_{e}ep", f"{ref.LABEL}: accuracy @ {e} ep (%)", "pct", ref=True),
                     Col(f"ref_a30_seconds_{e}ep", f"{ref.LABEL}: time @ {e} ep (s)", "s", ref=True)]
    keep = {c.key for c in cols}
    rows = [{k: v for k, v in row.items() if k in keep} for row in rows]
    if note:
        item.notes.append(note)
    item.notes.append("pp = percentage points.")
    item.table = Table(cols, rows)
    item.sources = _run_ids(r for _, by in groups for r in by.values())
    return item


def table3(R: Records) -> Item:
    item = Item("table3", "table", "Table 3: pin_memory on vs off",
                caption="The same configuration trained with and without pinned host memory.")
    found = _paired(R, item, "pin_memory", (True, False),
                    lambda _runs: "no configuration was trained with pin_memory both on and off "
                                  "(add pin_memory: [true, false] to a grid)")
    if found is None:
        return item
    groups, cols, note = found
    rows = []
    for base, by in groups:
        row = axis_values(base, cols)
        _per_side(row, by, {True: "pin_on", False: "pin_off"}, {"train_seconds": _secs, "test_accuracy_pct": _acc})
        row["speedup_pin_on"] = _ratio(row["train_seconds_pin_off"], row["train_seconds_pin_on"])
        rows.append(row)
    cols += [Col("train_seconds_pin_on", "time, pin on (s)", "s"), Col("train_seconds_pin_off", "time, pin off (s)", "s"),
             Col("speedup_pin_on", "speedup of pin on", "x"),
             Col("test_accuracy_pct_pin_on", "accuracy, pin on (%)", "pct"),
             Col("test_accuracy_pct_pin_off", "accuracy, pin off (%)", "pct")]
    if note:
        item.notes.append(note)
    item.notes += ["Speedup = time off / time on; above 1x pinned memory was faster.",
                   f"{ref.PIN_MEMORY_CLAIM}."]
    item.table = Table(cols, rows)
    item.sources = _run_ids(r for _, by in groups for r in by.values())
    return item


def _ratio(a: Any, b: Any) -> Any:
    if isinstance(a, NotRun):
        return a
    if isinstance(b, NotRun):
        return b
    fa, fb = num(a), num(b)
    return fa / fb if fa is not None and fb else None


def profile_gflops(R: Records, model: str, stem: str | None, input_size: int = 28, in_channels: int = 1) -> Any:
    """Forward GFLOPs per image at the given input (as trained) from the profile record, or why there are none."""
    if not R.ok("profile"):
        return R.reason("profile")
    best = None
    for r in R.ok("profile"):
        for row in met(r, "rows", []) or []:
            if row.get("model") != model or row.get("input_size") not in (input_size, None):
                continue
            if row.get("in_channels", 1) != in_channels:
                continue
            if stem and row.get("stem") not in (stem, None):
                continue
            if best is None or (row.get("batch_size") or 1) < (best.get("batch_size") or 1):
                best = row
    if best is None:
        return NotRun(f"the profile has no row for {model} at {in_channels}x{input_size}x{input_size}")
    g = num(best.get("forward_gflops"))
    if g is None and num(best.get("forward_flops")) is not None:
        g = best["forward_flops"] / 1e9
    return None if g is None else g / max(1, int(best.get("batch_size") or 1))


def table4(R: Records) -> Item:
    item = Item("table4", "table", "Table 4: CPU vs GPU",
                caption="The same configuration trained on the CPU and on the GPU: time, accuracy, model "
                        "complexity and speedup.")
    found = _paired(R, item, "device", ("cpu", "cuda"),
                    lambda runs: "no configuration was trained on both CPU and GPU (devices in this run: "
                                 f"{', '.join(sorted({str(cfg(r, 'device')) for r in runs}))})")
    if found is None:
        return item
    groups, cols, note = found
    rows = []
    any_ref = False
    for base, by in groups:
        row = axis_values(base, cols)
        _per_side(row, by, {"cpu": "cpu", "cuda": "gpu"}, {"seconds": _secs, "accuracy_pct": _acc},
                  key="{side}_{metric}")
        row["speedup_gpu"] = _ratio(row["cpu_seconds"], row["gpu_seconds"])
        row["forward_gflops_per_image"] = profile_gflops(R, str(base.get("model")), base.get("stem"),
                                                         base["input_size"], base["in_channels"])
        reference = ref.cpu_gpu(base)
        any_ref = any_ref or reference is not None
        row["ref_a30_cpu_seconds"], row["ref_a30_gpu_seconds"] = reference or (None, None)
        row["ref_a30_speedup"] = reference[0] / reference[1] if reference else None
        rows.append(row)
    cols += [Col("cpu_seconds", "CPU time (s)", "s"), Col("gpu_seconds", "GPU time (s)", "s"),
             Col("speedup_gpu", "GPU speedup", "x"), Col("cpu_accuracy_pct", "CPU accuracy (%)", "pct"),
             Col("gpu_accuracy_pct", "GPU accuracy (%)", "pct"),
             Col("forward_gflops_per_image", "GFLOPs / image (forward, at its input)", "gflops")]
    if any_ref:
        cols += [Col("ref_a30_cpu_seconds", f"{ref.LABEL}: CPU (s)", "s", ref=True),
                 Col("ref_a30_gpu_seconds", f"{ref.LABEL}: GPU (s)", "s", ref=True),
                 Col("ref_a30_speedup", f"{ref.LABEL}: speedup", "x", ref=True)]
        item.notes.append(f"{ref.LABEL}: Fashion-MNIST, 10 epochs, dual Xeon Gold 6326 vs A30; the optimizer of "
                          "each published time is not stated.")
    else:
        rows = [{k: v for k, v in row.items() if not k.startswith("ref_")} for row in rows]
    if note:
        item.notes.insert(0, note)
    item.notes.append("Speedup = CPU time / GPU time. GFLOPs = 1e9 floating-point operations, 2 per "
                      "multiply-add, of one forward pass (see Table 9).")
    item.table = Table(cols, rows)
    item.sources = _run_ids([r for _, by in groups for r in by.values()] + R.ok("profile"))
    return item


def table_engines(R: Records) -> Item:
    item = Item("table5", "table", "Table 5: training engines, dataloader vs resident",
                caption="The same configuration with the reference-style DataLoader loop and with the data "
                        "resident on the device (a comparison the reference study lacks).")
    found = _paired(R, item, "engine", ("dataloader", "resident"),
                    lambda runs: "no configuration was trained with both engines (engines in this run: "
                                 f"{', '.join(sorted({str(cfg(r, 'engine')) for r in runs}))}); "
                                 "add engine: [dataloader, resident] to a grid")
    if found is None:
        return item
    groups, cols, note = found
    rows = []
    for base, by in groups:
        row = axis_values(base, cols)
        _per_side(row, by, {"dataloader": "dataloader", "resident": "resident"},
                  {"epoch_seconds": epoch_seconds, "images_per_second": lambda r: num(met(r, "images_per_second")),
                   "test_accuracy_pct": _acc})
        row["ratio"] = _ratio(row["epoch_seconds_dataloader"], row["epoch_seconds_resident"])
        rows.append(row)
    cols += [Col("epoch_seconds_dataloader", "epoch, dataloader (s)", "s"),
             Col("epoch_seconds_resident", "epoch, resident (s)", "s"),
             Col("ratio", "resident speedup", "x"),
             Col("images_per_second_dataloader", "images/s, dataloader", "ips"),
             Col("images_per_second_resident", "images/s, resident", "ips"),
             Col("test_accuracy_pct_dataloader", "accuracy, dataloader (%)", "pct"),
             Col("test_accuracy_pct_resident", "accuracy, resident (%)", "pct")]
    if note:
        item.notes.insert(0, note)
    item.notes.append("Speedup = dataloader epoch time / resident epoch time (mean over epochs).")
    item.table = Table(cols, rows)
    item.sources = _run_ids(r for _, by in groups for r in by.values())
    return item


# --------------------------------------------------------------------------- SVM

def svm_backend(rec: dict) -> str:
    return str(met(rec, "backend") or cfg(rec, "backend") or "?")


SVM_AXES = [("C", "C", "float"), ("gamma", "gamma", "text"), ("degree", "degree", "int"),
            ("coef0", "coef0", "float"), ("preprocess", "preprocessing", "text"), ("seed", "seed", "int")]


def _svm_n_train(r: dict) -> Any:
    return met(r, "n_train") if met(r, "n_train") is not None else cfg(r, "n_train")


def table_svm(R: Records) -> Item:
    item = Item("table6", "table", "Table 6: SVMs",
                caption="Support vector machines on raw pixels: accuracy on the test split, fit and predict "
                        "time.")
    runs = R.step("svm")
    if not R.ok("svm"):
        item.not_run = R.reason("svm")
        return item
    runs = sorted(runs, key=lambda r: (str(cfg(r, "dataset")), str(cfg(r, "kernel")), svm_backend(r),
                                       frozen(r.get("config"))))
    extra = varying_keys([r.get("config") or {} for r in runs], [k for k, _, _ in SVM_AXES])
    cols = [Col("dataset", "dataset", "dataset"), Col("backend", "backend"), Col("kernel", "kernel")]
    cols += [Col(k, label, kind) for k, label, kind in SVM_AXES if k in extra]
    cols += [Col("n_train", "train images", "int"), Col("accuracy_pct", "accuracy (%)", "pct"),
             Col("fit_seconds", "fit (s)", "s"), Col("predict_seconds", "predict (s)", "s"),
             Col("n_support", "support vectors", "int"), Col("threads", "threads", "int")]
    rows, any_ref = [], False
    for r in runs:
        row = {"dataset": cfg(r, "dataset"), "backend": svm_backend(r), "kernel": cfg(r, "kernel")}
        if cfg(r, "backend") == "auto" and met(r, "backend"):
            row["backend"] = f"{met(r, 'backend')} (auto)"
        for k in extra:
            row[k] = cfg(r, k)
        row["n_train"] = _svm_n_train(r)
        row["accuracy_pct"] = value_or_reason(r, lambda x: pct(met(x, "accuracy")), NotRun(""))
        row["fit_seconds"] = value_or_reason(r, lambda x: num(met(x, "fit_seconds")), NotRun(""))
        row["predict_seconds"] = value_or_reason(r, lambda x: num(met(x, "predict_seconds")), NotRun(""))
        row["n_support"] = value_or_reason(r, lambda x: met(x, "n_support"), NotRun(""))
        row["threads"] = met(r, "threads")
        reference = ref.svm(str(cfg(r, "dataset")), str(cfg(r, "kernel")), svm_backend(r))
        any_ref = any_ref or reference is not None
        row["ref_a30_accuracy_pct"], row["ref_a30_fit_seconds"] = reference or (None, None)
        rows.append(row)
    if any_ref:
        cols += [Col("ref_a30_accuracy_pct", f"{ref.LABEL}: accuracy (%)", "pct", ref=True),
                 Col("ref_a30_fit_seconds", f"{ref.LABEL}: fit (s)", "s", ref=True)]
        item.notes.append(f"{ref.LABEL}: scikit-learn on the CPU, trained on its whole 70 % train split; "
                          "compare accuracy only at a similar number of training images.")
    else:
        rows = [{k: v for k, v in row.items() if not k.startswith("ref_")} for row in rows]
    consts = [f"{label} {fmt(cfg(runs[0], k), kind)}" for k, label, kind in SVM_AXES
              if k not in extra and cfg(runs[0], k) is not None]
    if consts:
        item.notes.insert(0, "Same in every row: " + ", ".join(consts) + ".")
    item.table = Table(cols, rows)
    item.sources = _run_ids(runs)
    return item


def table_svm_backends(R: Records) -> Item:
    item = Item("table7", "table", "Table 7: scikit-learn vs cuML",
                caption="The same SVM fitted by scikit-learn (CPU) and by cuML (GPU); speedups only where "
                        "both ran.")
    runs = R.step("svm")
    if not R.ok("svm"):
        item.not_run = R.reason("svm")
        return item
    backends = {svm_backend(r) for r in runs}
    for b, why in (("cuml", "cuML needs an NVIDIA GPU and the RAPIDS image; add cuml to svm.backends"),
                   ("sklearn", "add sklearn to svm.backends")):
        if b not in backends:
            item.not_run = NotRun(f"no {b} SVM run in this study ({why})")
            return item
    groups = [g for g in group_by_axis(runs, "backend", svm_backend) if "cuml" in g[1]]
    groups.sort(key=lambda g: frozen([g[0].get("dataset"), g[0].get("kernel"), g[0].get("n_train")]))
    rows = []
    for base, by in groups:
        sk, cu = by.get("sklearn"), by.get("cuml")
        row = {"dataset": base.get("dataset"), "kernel": base.get("kernel"),
               "n_train": _svm_n_train(sk or cu or {})}
        for name, r in (("sklearn", sk), ("cuml", cu)):
            missing = NotRun(f"no {name} run of this configuration")
            row[f"fit_seconds_{name}"] = value_or_reason(r, lambda x: num(met(x, "fit_seconds")), missing)
            row[f"predict_seconds_{name}"] = value_or_reason(r, lambda x: num(met(x, "predict_seconds")), missing)
            row[f"accuracy_pct_{name}"] = value_or_reason(r, lambda x: pct(met(x, "accuracy")), missing)
        row["fit_speedup"] = _ratio(row["fit_seconds_sklearn"], row["fit_seconds_cuml"])
        row["predict_speedup"] = _ratio(row["predict_seconds_sklearn"], row["predict_seconds_cuml"])
        rows.append(row)
    cols = [Col("dataset", "dataset", "dataset"), Col("kernel", "kernel"), Col("n_train", "train images", "int"),
            Col("fit_seconds_sklearn", "fit, sklearn (s)", "s"), Col("fit_seconds_cuml", "fit, cuML (s)", "s"),
            Col("fit_speedup", "fit speedup", "x"),
            Col("predict_seconds_sklearn", "predict, sklearn (s)", "s"),
            Col("predict_seconds_cuml", "predict, cuML (s)", "s"), Col("predict_speedup", "predict speedup", "x"),
            Col("accuracy_pct_sklearn", "accuracy, sklearn (%)", "pct"),
            Col("accuracy_pct_cuml", "accuracy, cuML (%)", "pct")]
    item.notes.append("Speedup = scikit-learn time / cuML time. Configurations run with scikit-learn only are in "
                      "Table 6.")
    item.table = Table(cols, rows)
    item.sources = _run_ids(runs)
    return item


# --------------------------------------------------------------------------- inference, complexity

def precision(result: dict) -> str:
    return str(result.get("precision") or "fp32")


def onnx_model(rec: dict) -> str:
    return str(met(rec, "model") or cfg(rec, "model") or "?")


def table_onnx(R: Records) -> Item:
    item = Item("table8", "table", "Table 8: inference latency and throughput",
                caption="Median (p50), p90 and p99 latency per batch and throughput, ONNX Runtime per "
                        "execution provider and PyTorch eager, at the input each model was exported at (notes).")
    if not R.ok("onnx"):
        item.not_run = R.reason("onnx")
        return item
    rows = []
    for r in sorted(R.step("onnx"), key=onnx_model):
        model = onnx_model(r)
        if not is_ok(r):
            reason = failed_reason(r)
            rows.append({"model": model, "runtime": "onnxruntime",
                         "provider": ", ".join(map(str, cfg(r, "providers") or [])) or None,
                         **{k: reason for k in ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "throughput_ips")}})
            continue
        results = [x for x in met(r, "results", []) or [] if isinstance(x, dict)]
        torch_p50 = {(x.get("device"), x.get("batch_size")): num(x.get("p50_ms"))
                     for x in results if x.get("runtime") == "pytorch" and precision(x) == "fp32"}
        for x in sorted(results, key=lambda x: (x.get("runtime") != "onnxruntime", str(x.get("provider")),
                                                 precision(x), x.get("batch_size") or 0)):
            p50 = num(x.get("p50_ms"))
            base = torch_p50.get((x.get("device"), x.get("batch_size")))
            rows.append({"model": model, "runtime": x.get("runtime"), "provider": x.get("provider"),
                         "device": x.get("device"), "precision": x.get("precision"),
                         "batch_size": x.get("batch_size"),
                         "p50_ms": p50, "p90_ms": num(x.get("p90_ms")), "p99_ms": num(x.get("p99_ms")),
                         "mean_ms": num(x.get("mean_ms")), "std_ms": num(x.get("std_ms")),
                         "throughput_ips": num(x.get("throughput_ips")),
                         "speedup_vs_pytorch": (base / p50 if x.get("runtime") == "onnxruntime" and base and p50
                                                else None),
                         "low_confidence": bool(x.get("low_confidence"))})
        for provider, why in (met(r, "providers_unavailable", {}) or {}).items():
            nr = NotRun(f"{model}: provider {provider} unavailable: {why}")
            rows.append({"model": model, "runtime": "onnxruntime", "provider": provider,
                         **{k: nr for k in ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "throughput_ips")}})
        size, channels = cfg(r, "input_size", 28), cfg(r, "in_channels", 1)
        bits = [f"input {channels}x{size}x{size}",
                f"opset {met(r, 'opset')}" if met(r, "opset") is not None else None,
                f"max |ONNX - PyTorch| = {met(r, 'max_abs_diff'):.2g}" if num(met(r, "max_abs_diff")) is not None
                else None,
                f"{met(r, 'threads')} CPU threads" if met(r, "threads") else
                f"ONNX Runtime threads: {met(r, 'ort_intra_op_threads')}" if met(r, "ort_intra_op_threads") else None,
                f"PyTorch threads: {met(r, 'torch_threads')}" if met(r, "torch_threads") else None,
                {"checkpoint": "weights from the best train checkpoint"}.get(str(met(r, "weights")),
                                                                           f"weights: {met(r, 'weights')}")
                if met(r, "weights") else None,
                f"graph optimisation {met(r, 'graph_optimization_level')}" if met(r, "graph_optimization_level")
                else None]
        first = results[0] if results else {}
        if first.get("iterations"):
            bits.append(f"{first.get('warmup', '?')} warm-up + {first['iterations']} timed iterations")
            if met(r, "low_confidence"):
                bits.append(f"LOW CONFIDENCE: fewer than {met(r, 'min_confident_iterations')} timed iterations, so "
                            "its percentiles and speedups are not headlined")
        if any(bits):
            item.notes.append(f"{model_label(model)}: " + ", ".join(b for b in bits if b) + ".")
        timing = met(r, "timing_note")
        if timing and f"Timing: {timing}." not in item.notes:
            item.notes.append(f"Timing: {timing}.")
    cols = [Col("model", "model", "model"), Col("runtime", "runtime"), Col("provider", "provider"),
            Col("device", "device", "device")]
    if any(row.get("precision") for row in rows):
        cols.append(Col("precision", "precision"))
    cols += [Col("batch_size", "batch", "int"), Col("p50_ms", "p50 (ms)", "ms"),
            Col("p90_ms", "p90 (ms)", "ms"), Col("p99_ms", "p99 (ms)", "ms"), Col("mean_ms", "mean (ms)", "ms"),
            Col("std_ms", "std (ms)", "ms"), Col("throughput_ips", "throughput (images/s)", "ips"),
            Col("speedup_vs_pytorch", "p50 speedup vs PyTorch", "x")]
    item.notes.append("Speedup vs PyTorch = PyTorch eager fp32 p50 / ONNX Runtime p50 at the same batch on the "
                      "same device type.")
    item.table = Table(cols, rows)
    item.sources = _run_ids(R.step("onnx"))
    return item


def table_flops(R: Records) -> Item:
    item = Item("table9", "table", "Table 9: model complexity (FLOPs, parameters)",
                caption="Floating-point operations of one forward pass and of one training step, "
                        "parameters and activation memory.")
    if not R.ok("profile"):
        item.not_run = R.reason("profile")
        return item
    rows, units, order = [], [], []
    for r in R.ok("profile"):
        note = met(r, "unit_note")
        if note and note not in units:
            units.append(note)
        for x in met(r, "rows", []) or []:
            if not isinstance(x, dict):
                continue
            size = x.get("input_size")
            params, act = num(x.get("params")), num(x.get("activation_bytes"))
            channels = x.get("in_channels", 1)
            rows.append({"model": x.get("model"), "stem": x.get("stem"),
                         "input": f"{channels}x{size}x{size}" if size else None, "batch_size": x.get("batch_size"),
                         "forward_gflops": num(x.get("forward_gflops")), "forward_gmacs": num(x.get("forward_gmacs")),
                         "train_step_gflops": num(x.get("train_step_gflops")),
                         "params_m": params / 1e6 if params is not None else None,
                         "activation_mb": act / 1e6 if act is not None else None,
                         "ref_a30_gflops": ref.gflops(x)})
            order.append((str(x.get("model")), str(x.get("stem")), channels or 0, size or 0, x.get("batch_size") or 0))
    rows = [row for _, row in sorted(zip(order, rows, strict=True), key=lambda p: p[0])]
    cols = [Col("model", "model", "model"), Col("stem", "stem"), Col("input", "input"),
            Col("batch_size", "batch", "int"), Col("forward_gflops", "forward GFLOPs", "gflops"),
            Col("forward_gmacs", "forward GMACs", "gflops"), Col("train_step_gflops", "train step GFLOPs", "gflops"),
            Col("params_m", "parameters (M)", "m"), Col("activation_mb", "activations (MB)", "mb")]
    s = ref.GFLOPS_SETTING
    setting = (f"{s['in_channels']}x{s['input_size']}x{s['input_size']} input, {s['num_classes']} outputs, "
               f"{s['stem']} stem, batch {s['batch_size']}")
    published = ", ".join(f"{m} {v}" for m, v in ref.GFLOPS.items())
    if any(x["ref_a30_gflops"] is not None for x in rows):
        cols.append(Col("ref_a30_gflops", f"{ref.LABEL}: \"GFLOPs\"", "gflops", ref=True))
        item.notes.append(f"{ref.LABEL}: published as \"GFLOPs\" ({published}) without the tool or the input "
                          f"size; they equal, to the four digits published, the forward GFLOPs counted here with "
                          f"{setting}, so they are shown beside those rows only. The study most likely resized "
                          "its 28x28 images to 64x64 and repeated them to 3 channels.")
    else:
        item.notes.append(f"{ref.LABEL}: its published \"GFLOPs\" ({published}) match the forward GFLOPs of "
                          f"{setting} to four digits; no row here was counted in that setting (add "
                          "in_channels [1, 3] and input size 64 to the spec's profile, or run `dlbench profile "
                          "--in-channels 3 --input-sizes 64 --out DIR`).")
    item.notes = [f"Units: {u}" for u in units] + item.notes
    if not units:
        item.notes.insert(0, "Units: GFLOPs = 1e9 floating-point operations, 2 per multiply-add; "
                             "GMACs = 1e9 multiply-adds.")
    item.notes.append("FLOPs are per batch of the given size; a train step is forward + backward.")
    item.table = Table(cols, rows)
    item.sources = _run_ids(R.ok("profile"))
    return item


# --------------------------------------------------------------------------- status

def table_steps(R: Records) -> Item:
    item = Item("steps", "table", "Steps in this run",
                caption="Which steps ran, how many of their runs succeeded, and why a step is missing.")
    rows = []
    for step in ("data", "train", "svm", "profile", "onnx"):
        ok, failed = R.ok(step), R.failed(step)
        if ok:
            status = "ok" if not failed else f"{len(failed)} failed (see Failed runs)"
        else:
            status = R.reason(step)
        rows.append({"step": step, "ok": len(ok), "failed": len(failed), "status": status})
    others = sorted({str(r.get("step")) for r in R.all} - {"data", "train", "svm", "profile", "onnx"})
    for step in others:
        rows.append({"step": step, "ok": len(R.ok(step)), "failed": len(R.failed(step)),
                     "status": "ok" if not R.failed(step) else f"{len(R.failed(step))} failed"})
    item.table = Table([Col("step", "step"), Col("ok", "runs ok", "int"), Col("failed", "runs failed", "int"),
                        Col("status", "status")], rows)
    item.sources = _run_ids(R.all)
    return item


def table_failed(R: Records) -> Item | None:
    failed = [r for r in R.all if not is_ok(r)]
    if not failed:
        return None
    item = Item("failed", "table", "Failed runs",
                caption="Every run whose record says it failed, with its error. Their numbers appear as "
                        "\"not run\" in the tables, never as zeros.")
    rows = [{"step": r.get("step"), "run_id": r.get("run_id"), "error": error_of(r),
             "folder": str(Path(r["_dir"]).relative_to(R.root)) if Path(r["_dir"]).is_relative_to(R.root)
             else r["_dir"]} for r in failed]
    item.table = Table([Col("step", "step"), Col("run_id", "run id"), Col("error", "error"),
                        Col("folder", "folder")], rows)
    item.sources = _run_ids(failed)
    return item
