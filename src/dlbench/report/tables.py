"""The report's own tables, beyond the study's: runs the study has no cell for (engines, other inputs,
bf16), every SVM run with scikit-learn vs cuML, inference, model complexity, and the run's status.

Each builder is named by what it shows (its item's key) and returns an :class:`~dlbench.report.document.Item`
with ``frame`` (raw values, the CSV) and ``view`` (formatted strings). Their titles number them after the
study's Tables 1-4.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from dlbench.report import reference as ref
from dlbench.report.collect import (
    NotRun,
    Records,
    cfg,
    error_of,
    failed_reason,
    group_by_axis,
    is_ok,
    met,
    model_label,
    num,
    pct,
    precision,
    profile_rows,
    svm_frame,
    train_frame,
    varying_keys,
)
from dlbench.report.document import Item, builder, fmt, run_ids, view_of
from dlbench.spec import GRID_AXES

# The training settings a table tells runs apart by: these with their labels and formats, in this order, then
# any other grid axis of TrainConfig (a field added there reaches the tables without an edit here).
_AXIS_LABELS: list[tuple[str, str, str]] = [
    ("dataset", "dataset", "dataset"),
    ("model", "model", "model"),
    ("stem", "stem", "text"),
    ("input_size", "input size", "int"),
    ("in_channels", "input channels", "int"),
    ("batch_size", "batch", "int"),
    ("optimizer", "optimizer", "text"),
    ("lr", "learning rate", "lr"),
    ("epochs", "epochs", "int"),
    ("device", "device", "device"),
    ("device_name", "catalog device", "text"),  # dlbench.devices: the spec's devices: name
    ("machine", "machine", "text"),  # the folder of a merged report (dlbench report --records A B)
    ("engine", "engine", "text"),
    ("pin_memory", "pin_memory", "bool"),
    ("num_workers", "workers", "int"),
    ("amp", "AMP", "text"),
]
TRAIN_AXES: list[tuple[str, str, str]] = _AXIS_LABELS + [
    (name, name.replace("_", " "), "text")
    for name in GRID_AXES.values()
    if name not in {k for k, _, _ in _AXIS_LABELS}
]


def _axes(
    frame: pd.DataFrame, exclude: tuple[str, ...] = ()
) -> tuple[dict[str, str], dict[str, str], str | None]:
    """(kinds, labels) of the axes that vary (dataset and model always), and a note naming the constant
    ones."""
    keys = [k for k, _, _ in TRAIN_AXES if k not in exclude and k in frame]
    configs = frame[keys].to_dict("records")
    shown = [k for k in keys if k in ("dataset", "model") or k in varying_keys(configs, keys)]
    consts = [
        f"{label} {fmt(configs[0][k], kind)}"
        for k, label, kind in TRAIN_AXES
        if k in keys and k not in shown and configs
    ]
    kinds = {k: kind for k, _, kind in TRAIN_AXES if k in shown}
    labels = {k: label for k, label, _ in TRAIN_AXES if k in shown}
    return kinds, labels, ("Same in every row: " + ", ".join(consts) + ".") if consts else None


# --------------------------------------------------------------------------- extra training runs


@builder(
    "table",
    "Table 5: training engines, DataLoader vs data resident on the device",
    "The same configuration with the study's DataLoader loop and with the data resident on the device (a "
    "comparison the study lacks). Speedup = DataLoader epoch time / resident epoch time.",
    needs="train",
)
def engines(item: Item, R: Records) -> None:
    groups = [
        (b, by)
        for b, by in group_by_axis(R.step("train"), "engine")
        if {"dataloader", "resident"} <= set(by) and any(is_ok(r) for r in by.values())
    ]
    if not groups:
        names = sorted({str(cfg(r, "engine")) for r in R.step("train")})
        item.not_run = NotRun(
            f"no configuration was trained with both engines (engines in this run: "
            f"{', '.join(names)}); add engine: [dataloader, resident] to a grid"
        )
        return
    rows = []
    for base, by in groups:
        row = dict(base)
        for side in ("dataloader", "resident"):
            r = by[side]
            row[f"epoch_seconds_{side}"] = _epoch_seconds(r) if is_ok(r) else failed_reason(r)
            row[f"test_accuracy_pct_{side}"] = pct(met(r, "test_accuracy")) if is_ok(r) else failed_reason(r)
        a, b = num(row["epoch_seconds_dataloader"]), num(row["epoch_seconds_resident"])
        row["speedup"] = a / b if a is not None and b else None
        rows.append(row)
    frame = pd.DataFrame(rows)
    kinds, labels, note = _axes(frame, exclude=("engine",))
    kinds.update(
        epoch_seconds_dataloader="s2",
        epoch_seconds_resident="s2",
        speedup="x",
        test_accuracy_pct_dataloader="pct",
        test_accuracy_pct_resident="pct",
    )
    labels.update(
        epoch_seconds_dataloader="epoch, DataLoader (s)",
        epoch_seconds_resident="epoch, resident (s)",
        speedup="resident speedup",
        test_accuracy_pct_dataloader="accuracy, DataLoader (%)",
        test_accuracy_pct_resident="accuracy, resident (%)",
    )
    item.frame, item.view = frame.map(_raw), view_of(frame, kinds, labels)
    item.notes = [n for n in (note,) if n]
    item.sources = run_ids(r for _, by in groups for r in by.values())


def _epoch_seconds(rec: dict) -> float | None:
    v = num(met(rec, "epoch_seconds_mean"))
    if v is None:
        total, epochs = num(met(rec, "train_seconds")), num(cfg(rec, "epochs"))
        v = total / epochs if total is not None and epochs else None
    return v


def _runs_view(
    item: Item,
    frame: pd.DataFrame,
    runs: pd.DataFrame,
    kinds: dict[str, str],
    labels: dict[str, str],
    numbers: tuple[str, ...],
) -> pd.DataFrame:
    """The view of a table with a row per run: a failed run's ``numbers`` read "not run", its error a note."""
    view = view_of(frame, kinds, labels)
    for i, (_, r) in enumerate(runs.iterrows()):
        if not r["ok"]:
            for k in numbers:
                view.iloc[i, list(kinds).index(k)] = "not run"
            item.notes.append(f"not run: {r['run_id']} failed: {r['error']}")
    return view


def _raw(v: Any) -> Any:
    return "not run" if isinstance(v, NotRun) else v


@builder(
    "table",
    "Table 6: our other training runs (no published cell)",
    "Every training run that fills none of the study's cells: other engines, input sizes, precisions, or "
    "settings the study did not publish.",
)
def other_runs(item: Item, R: Records, filled: set[str]) -> None:
    T = train_frame(R)
    if T.empty:
        item.not_run = R.reason("train")
        return
    T = T[~T["run_id"].isin(filled)]
    if T.empty:
        item.not_run = NotRun("every training run of this study fills a published cell")
        return
    kinds, labels, note = _axes(T)
    if (T["ran_on"] != T["device"]).any() or (T["amp_ran"] != T["amp"]).any():
        # a smoke run: the device and AMP columns are the spec's plan; these say what ran
        kinds.update(ran_on="device", amp_ran="text")
        labels.update(ran_on="ran on", amp_ran="AMP ran", device="device planned", amp="AMP planned")
    kinds.update(test_accuracy_pct="pct", train_seconds="s2", images_per_second="ips", run_id="text")
    labels.update(
        test_accuracy_pct="test accuracy (%)",
        train_seconds="training time (s)",
        images_per_second="images/s",
        run_id="run id",
    )
    T = T.sort_values([k for k in ("dataset", "model", "device", "engine", "amp", "input_size") if k in T])
    frame = T[[k for k in kinds]].copy()
    item.frame = frame
    item.view = _runs_view(
        item, frame, T, kinds, labels, ("test_accuracy_pct", "train_seconds", "images_per_second")
    )
    item.notes = [n for n in (note,) if n] + item.notes
    item.sources = sorted(T["run_id"])


# --------------------------------------------------------------------------- SVM


@builder(
    "table",
    "Table 7: every SVM run, scikit-learn and cuML",
    "Each SVM run: accuracy on the test split, fit and predict time, and cuML's speedup over scikit-learn "
    "where both fitted the same configuration.",
)
def svm_runs(item: Item, R: Records) -> None:
    S = svm_frame(R)
    if S.empty:
        item.not_run = R.reason("svm")
        return
    S = S.sort_values(["dataset", "estimator", "kernel", "backend"])
    others = (S["estimator"] != "svm").any()  # other estimators than the SVC: a column names each row's
    if others:
        S["kernel"] = [k if e == "svm" else "" for e, k in zip(S["estimator"], S["kernel"], strict=True)]

    def key(r):
        return (r["dataset"], r["estimator"], r["kernel"], r["n_train"])

    sk = {key(r): r["fit_seconds"] for _, r in S.iterrows() if r["ran_backend"] == "sklearn" and r["ok"]}
    S["fit_speedup_vs_sklearn"] = [
        sk[key(r)] / r["fit_seconds"]
        if r["ran_backend"] == "cuml" and r["ok"] and r["fit_seconds"] and sk.get(key(r))
        else None
        for _, r in S.iterrows()
    ]
    S["planned_backend"] = S["backend"]
    kinds = {
        "dataset": "dataset",
        **({"label": "text"} if others else {}),
        "kernel": "text",
        "planned_backend": "text",
        "ran_backend": "text",
        "n_train_used": "int",
        "accuracy_pct": "pct",
        "fit_seconds": "s2",
        "predict_seconds": "s2",
        "fit_speedup_vs_sklearn": "x",
        "run_id": "text",
    }
    labels = {
        "dataset": "dataset",
        "label": "estimator",
        "kernel": "kernel",
        "planned_backend": "backend (spec)",
        "ran_backend": "backend (ran)",
        "n_train_used": "train images",
        "accuracy_pct": "accuracy (%)",
        "fit_seconds": "fit (s)",
        "predict_seconds": "predict (s)",
        "fit_speedup_vs_sklearn": "cuML fit speedup",
        "run_id": "run id",
    }
    frame = S[list(kinds)].copy()
    item.frame = frame
    item.view = _runs_view(item, frame, S, kinds, labels, ("accuracy_pct", "fit_seconds", "predict_seconds"))
    consts = [
        f"{k} {S[k].iloc[0]}"
        for k in ("C", "gamma", "degree", "preprocess")
        if k in S and S[k].nunique() == 1
    ]
    item.notes.insert(0, "Same in every row: " + ", ".join(consts) + ".")
    item.sources = sorted(S["run_id"])


# --------------------------------------------------------------------------- inference, complexity


@builder(
    "table",
    "Table 8: inference latency and throughput",
    "Median (p50), p90 and p99 latency per batch and throughput, ONNX Runtime per execution provider and "
    "PyTorch eager.",
    needs="onnx",
)
def inference_latency(item: Item, R: Records) -> None:
    rows = []
    for r in sorted(R.step("onnx"), key=lambda r: str(met(r, "model") or cfg(r, "model"))):
        model = str(met(r, "model") or cfg(r, "model"))
        if not is_ok(r):
            item.notes.append(f"not run: {failed_reason(r).reason}")
            continue
        results = [x for x in met(r, "results", []) or [] if isinstance(x, dict)]
        torch_p50 = {
            (x.get("device"), x.get("batch_size")): num(x.get("p50_ms"))
            for x in results
            if x.get("runtime") == "pytorch" and precision(x) == "fp32"
        }
        for x in sorted(
            results,
            key=lambda x: (
                x.get("runtime") != "onnxruntime",
                str(x.get("provider")),
                precision(x),
                x.get("batch_size") or 0,
            ),
        ):
            p50 = num(x.get("p50_ms"))
            base = torch_p50.get((x.get("device"), x.get("batch_size")))
            rows.append(
                {
                    "model": model,
                    "runtime": x.get("runtime"),
                    "provider": x.get("provider"),
                    "precision": precision(x),
                    "batch_size": x.get("batch_size"),
                    "p50_ms": p50,
                    "p90_ms": num(x.get("p90_ms")),
                    "p99_ms": num(x.get("p99_ms")),
                    "throughput_ips": num(x.get("throughput_ips")),
                    "speedup_vs_pytorch": base / p50
                    if x.get("runtime") == "onnxruntime" and base and p50
                    else None,
                    "low_confidence": bool(x.get("low_confidence")),
                }
            )
        for provider, why in (met(r, "providers_unavailable", {}) or {}).items():
            item.notes.append(f"not run: {model_label(model)}: provider {provider} unavailable: {why}")
        if met(r, "low_confidence"):
            item.notes.append(
                f"{model_label(model)}: LOW CONFIDENCE: fewer than {met(r, 'min_confident_iterations')} "
                "timed iterations, so its percentiles and speedups are not headlined."
            )
        size, channels = cfg(r, "input_size", 28), cfg(r, "in_channels", 1)
        item.notes.append(
            f"{model_label(model)}: input {channels}x{size}x{size}, "
            + {"checkpoint": "weights from the best train checkpoint"}.get(
                str(met(r, "weights")), f"weights: {met(r, 'weights') or 'not recorded'}"
            )
            + "."
        )
    if not rows:
        item.not_run = NotRun("no inference timings recorded")
        return
    frame = pd.DataFrame(rows)
    kinds = {
        "model": "model",
        "runtime": "text",
        "provider": "text",
        "precision": "text",
        "batch_size": "int",
        "p50_ms": "ms",
        "p90_ms": "ms",
        "p99_ms": "ms",
        "throughput_ips": "ips",
        "speedup_vs_pytorch": "x",
        "low_confidence": "bool",
    }
    labels = {
        "batch_size": "batch",
        "p50_ms": "p50 (ms)",
        "p90_ms": "p90 (ms)",
        "p99_ms": "p99 (ms)",
        "throughput_ips": "throughput (images/s)",
        "speedup_vs_pytorch": "p50 speedup vs PyTorch",
        "low_confidence": "low confidence",
    }
    item.frame, item.view = frame, view_of(frame, kinds, labels)
    item.notes.append(
        "Speedup vs PyTorch = PyTorch eager fp32 p50 / ONNX Runtime p50 at the same batch and device."
    )
    item.sources = run_ids(R.step("onnx"))


@builder(
    "table",
    "Table 9: model complexity (FLOPs, parameters)",
    "Floating-point operations of one forward pass and of one training step, parameters and activation "
    "memory, at each input counted; the study's published GFLOPs beside the rows of the setting they match.",
    needs="profile",
)
def model_complexity(item: Item, R: Records) -> None:
    rows = []
    for x in profile_rows(R):
        size, channels = x.get("input_size"), x.get("in_channels", 1)
        params, act = num(x.get("params")), num(x.get("activation_bytes"))
        published = ref.gflops(x)
        rows.append(
            {
                "model": x.get("model"),
                "input": f"{channels}x{size}x{size}",
                "batch_size": x.get("batch_size"),
                "forward_gflops": num(x.get("forward_gflops")),
                "train_step_gflops": num(x.get("train_step_gflops")),
                "params_m": params / 1e6 if params is not None else None,
                "activation_mb": act / 1e6 if act is not None else None,
                "study_gflops": ref.gflops_published()[x["model"]] if published is not None else None,
            }
        )
    frame = pd.DataFrame(rows).sort_values(["model", "input"], kind="stable")
    kinds = {
        "model": "model",
        "input": "text",
        "batch_size": "int",
        "forward_gflops": "gflops",
        "train_step_gflops": "gflops",
        "params_m": "m",
        "activation_mb": "mb",
        "study_gflops": "study",
    }
    labels = {
        "batch_size": "batch",
        "forward_gflops": "forward GFLOPs",
        "train_step_gflops": "train step GFLOPs",
        "params_m": "parameters (M)",
        "activation_mb": "activations (MB)",
        "study_gflops": 'study "GFLOPs"',
    }
    item.frame, item.view = frame, view_of(frame, kinds, labels)
    s = ref.GFLOPS_SETTING
    item.notes += [
        "GFLOPs = 1e9 floating-point operations, 2 per multiply-add, per batch of the given size; a train "
        "step is forward + backward.",
        f'The study printed "GFLOPs" without tool or input size; they equal, to the four digits printed, '
        f"the forward GFLOPs at {s['in_channels']}x{s['input_size']}x{s['input_size']} with 10 outputs "
        "(the study most likely resized its images to 64x64, 3 channels).",
    ]
    item.sources = run_ids(R.ok("profile"))


# --------------------------------------------------------------------------- status


@builder(
    "table",
    "Steps in this run",
    "Which steps ran, how many of their runs succeeded, and why a step is missing.",
)
def steps(item: Item, R: Records) -> None:
    rows = []
    names = ["data", "train", "svm", "profile", "onnx"]
    names += sorted({str(r.get("step")) for r in R.all} - set(names))
    for step in names:
        ok, failed = R.ok(step), R.failed(step)
        status = (
            ("ok" if not failed else f"{len(failed)} failed (see Failed runs)")
            if ok
            else R.reason(step).reason
        )
        rows.append({"step": step, "ok": len(ok), "failed": len(failed), "status": status})
    frame = pd.DataFrame(rows)
    item.frame = frame
    item.view = view_of(
        frame,
        {"step": "text", "ok": "int", "failed": "int", "status": "text"},
        {"ok": "runs ok", "failed": "runs failed"},
    )
    item.sources = run_ids(R.all)


def failed(R: Records) -> Item | None:
    runs = [r for r in R.all if not is_ok(r)]
    if not runs:
        return None
    item = Item(
        "failed",
        "table",
        "Failed runs",
        caption='Every run whose record says it failed, with its error. Their numbers read "not run" in '
        "the tables, never zeros.",
    )
    frame = pd.DataFrame(
        [
            {
                "step": r.get("step"),
                "run_id": r.get("run_id"),
                "error": error_of(r),
                "folder": str(Path(r["_dir"]).relative_to(R.root))
                if Path(r["_dir"]).is_relative_to(R.root)
                else r["_dir"],
            }
            for r in runs
        ]
    )
    item.frame = frame
    item.view = view_of(
        frame, {"step": "text", "run_id": "text", "error": "text", "folder": "text"}, {"run_id": "run id"}
    )
    item.sources = run_ids(runs)
    return item
