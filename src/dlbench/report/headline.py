"""The report's first screen: which model, which hardware, how sure are we.

Three tables before the study's own (and their numbers in ``summary.json``): the best model per dataset,
every speedup in one place, and how closely our numbers agree with the study's 77 published cells; the
claims table (:mod:`dlbench.report.claims`) follows them. Each is a small pandas selection of frames the
report already built (the comparison frame, the runs, Tables 5, 7 and 8).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from dlbench.report import claims as CL
from dlbench.report import reference as ref
from dlbench.report.collect import NotRun, Records, dataset_label, model_label, num, svm_frame, train_frame
from dlbench.report.document import Item, builder, fmt
from dlbench.report.uncertainty import Estimate, estimate

SMOKE_NOTE = "SMOKE RUN: every number here is meaningless (a wiring test)."


def best_runs(R: Records) -> pd.DataFrame:
    """Per dataset the most accurate setting of ours (mean over its seed repeats), ResNet and SVM."""
    rows = []
    T = train_frame(R)
    if not T.empty:
        T = T[T["ok"] & T["test_accuracy_pct"].notna()]
        for (ds, _key), g in T.groupby(["dataset", "repeat_of"], sort=False):
            e = estimate(list(g["test_accuracy_pct"]))
            r = g.iloc[0]
            shape = f"{r.get('in_channels', 1)}x{r.get('input_size', 28)}x{r.get('input_size', 28)}"
            rows.append(
                {
                    "dataset": ds,
                    "family": "ResNet",
                    "model": r["model"],
                    "settings": f"{r['optimizer']} lr {fmt(r['lr'], 'lr')}, batch {r['batch_size']}, "
                    f"{r['epochs']} epochs, {r['engine']}, AMP {r['amp']}, {shape}, planned {r['device']}, "
                    f"ran on {r['ran_on']}",
                    "accuracy_pct": e.mean,
                    "accuracy_ci95_pp": e.half,
                    "repeats": e.n,
                    "seconds": estimate(list(g["train_seconds"])).mean
                    if g["train_seconds"].notna().any()
                    else None,
                    "run_ids": " ".join(g["run_id"]),
                }
            )
    S = svm_frame(R)
    if not S.empty:
        S = S[S["ok"] & S["accuracy_pct"].notna()]
        for _, r in S.iterrows():
            rows.append(
                {
                    "dataset": r["dataset"],
                    "family": "SVM" if r["estimator"] == "svm" else r["label"],
                    "model": f"svm-{r['kernel']}" if r["estimator"] == "svm" else r["label"],
                    "settings": _classical_settings(r),
                    "accuracy_pct": r["accuracy_pct"],
                    "accuracy_ci95_pp": None,
                    "repeats": 1,
                    "seconds": r["fit_seconds"],
                    "run_ids": r["run_id"],
                }
            )
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    best = (
        df.sort_values("accuracy_pct", ascending=False, kind="stable").groupby(["dataset", "family"]).head(1)
    )
    return best.sort_values(["dataset", "family"]).reset_index(drop=True)


def _classical_settings(r: pd.Series) -> str:
    """An SVM's backend, C, gamma and degree; another estimator's backend and the parameters it was built
    with (its record's ``backend_params``); and the training images."""
    if r["estimator"] == "svm":
        how = f"C {r.get('C')}, gamma {r.get('gamma')}, degree {r.get('degree')}"
    else:
        params = ((r.get("_rec") or {}).get("metrics") or {}).get("backend_params") or {}
        how = ", ".join(f"{k} {v}" for k, v in params.items() if k not in ("random_state", "n_jobs"))
    return f"{r['ran_backend']}, {how + ', ' if how else ''}n_train {_n_train(r.get('n_train_used'))}"


def _n_train(v: object) -> str:
    return fmt(v, "int") if num(v) is not None else "all"


@builder(
    "table",
    "Best model per dataset",
    "The most accurate ResNet setting and SVM of ours on each dataset (a setting's accuracy: the mean over "
    "its seed repeats, ± its 95 % interval where it has two or more), and the study's best published value.",
    part="summary",
)
def best_models(item: Item, R: Records, C: pd.DataFrame, smoke: bool) -> None:
    best = best_runs(R)
    if best.empty:
        item.not_run = NotRun("no finished training or SVM run")
        return
    study_best = {}
    for (ds, fam), g in C.assign(
        fam=C["model"].str.startswith("svm").map({True: "SVM", False: "ResNet"})
    ).groupby(["dataset", "fam"]):
        vals = [(float(v), r) for v, (_, r) in zip(g["study_accuracy_pct"], g.iterrows(), strict=True) if v]
        if vals:
            v, r = max(vals, key=lambda x: x[0])
            study_best[(ds, fam)] = (
                f"{r['study_accuracy_pct']} % ({model_label(r['model'])}, {ref.describe(r['cell'])})"
            )
    best["study_best"] = [study_best.get((r["dataset"], r["family"]), "—") for _, r in best.iterrows()]
    item.frame = best.assign(smoke=smoke)
    item.view = pd.DataFrame(
        {
            "dataset": best["dataset"].map(dataset_label),
            "family": best["family"],
            "best of ours": best["model"].map(model_label),
            "accuracy %": [
                Estimate(a, int(n), h if h == h else None).text() if a == a else "—"
                for a, h, n in zip(
                    best["accuracy_pct"], best["accuracy_ci95_pp"].astype(float), best["repeats"], strict=True
                )
            ],
            "settings": best["settings"],
            "study's best published": best["study_best"],
        }
    )
    item.notes = [SMOKE_NOTE] if smoke else []
    item.sources = sorted({x for s in best["run_ids"] for x in str(s).split()})


def speedup_rows(C: pd.DataFrame, items: dict[str, Item]) -> list[dict[str, Any]]:
    """Every speedup the report measures, one row each: what over what, where, the study's and ours."""
    rows = []
    for what, effects in (
        ("GPU over CPU (Table 4: CPU time / GPU time)", CL.gpu_speedup_effects(C)),
        ("pin_memory on over off (Table 3: time off / time on)", CL.pin_memory_effects(C)),
    ):
        for e in effects:
            rows.append(
                {
                    "speedup": what,
                    "where": e.where,
                    "study_x": e.study.mean if e.study else None,
                    "ours_x": e.ours.mean if e.ours else None,
                    "ours_ci95_x": e.ours.half if e.ours else None,
                }
            )
    eng = items.get("engines")
    if eng is not None and eng.frame is not None and eng.not_run is None:
        for _, r in eng.frame.iterrows():
            rows.append(
                {
                    "speedup": "resident engine over the study's DataLoader loop (Table 5: epoch time)",
                    "where": f"{dataset_label(r.get('dataset'))} {model_label(r.get('model'))} "
                    f"{r.get('device')} AMP {r.get('amp')}",
                    "study_x": None,
                    "ours_x": num(r.get("speedup")),
                    "ours_ci95_x": None,
                }
            )
    svm = items.get("svm_runs")
    if svm is not None and svm.frame is not None and svm.not_run is None:
        for _, r in svm.frame.iterrows():
            if num(r.get("fit_speedup_vs_sklearn")) is not None:
                rows.append(
                    {
                        "speedup": "cuML over scikit-learn (Table 7: SVM fit time)",
                        "where": f"{dataset_label(r.get('dataset'))} {r.get('label') or r.get('kernel')}",
                        "study_x": None,
                        "ours_x": num(r.get("fit_speedup_vs_sklearn")),
                        "ours_ci95_x": None,
                    }
                )
    onnx = items.get("inference_latency")
    if onnx is not None and onnx.frame is not None and onnx.not_run is None:
        f = onnx.frame[onnx.frame["speedup_vs_pytorch"].notna() & ~onnx.frame["low_confidence"].astype(bool)]
        for (m, prov), g in f.groupby(["model", "provider"], sort=False):
            best = g.loc[g["speedup_vs_pytorch"].astype(float).idxmax()]
            rows.append(
                {
                    "speedup": "ONNX Runtime over PyTorch eager (Table 8: median latency, best batch)",
                    "where": f"{model_label(m)} {prov} batch {best['batch_size']}",
                    "study_x": None,
                    "ours_x": float(best["speedup_vs_pytorch"]),
                    "ours_ci95_x": None,
                }
            )
    return rows


@builder(
    "table",
    "Speedups in one place",
    "Every speedup the report measures, the study's beside ours where it published one: the GPU over the "
    "CPU, pin_memory, the resident engine over the study's loop, cuML over scikit-learn, ONNX Runtime over "
    "PyTorch. A ratio of times: above 1x the first is faster.",
    part="summary",
)
def speedups(item: Item, C: pd.DataFrame, items: dict[str, Item], smoke: bool) -> None:
    rows = speedup_rows(C, items)
    if not rows:
        item.not_run = NotRun("no speedup was measured (no paired runs)")
        return
    frame = pd.DataFrame(rows)
    item.frame = frame.assign(smoke=smoke)
    item.view = pd.DataFrame(
        {
            "speedup": frame["speedup"],
            "where": frame["where"],
            "study": [CL._x(v) if v is not None and v == v else "—" for v in frame["study_x"]],
            "ours": [
                "not run"
                if v is None or v != v
                else (CL._x(v) + (f" ± {CL._x(h)}" if h is not None and h == h else ""))
                for v, h in zip(frame["ours_x"], frame["ours_ci95_x"], strict=True)
            ],
        }
    )
    timed = C[C["table"].isin(["table3", "table4"])].get("time_input", pd.Series(dtype=object))
    inputs = sorted({str(x) for x in timed if isinstance(x, str)})
    item.notes = ([SMOKE_NOTE] if smoke else []) + [
        "Table 3 and 4 speedups compare runs of the study's loop (DataLoader, fp16 AMP on the GPU); ours "
        + (f"timed at {' / '.join(inputs)} input" if inputs else "trained at the input named in those tables")
        + " (the study's: probably 3x64x64, its GFLOPs; the tables' notes per cell)."
    ]


def agreement_rows(C: pd.DataFrame) -> list[dict[str, Any]]:
    """Per published table and over all 77 cells: accuracy cells compared, within 0.5 / 1 point, the mean
    difference, and the mean time ratio of ours over the study's."""
    out = []
    for table in [*ref.TABLES, "all"]:
        rows = C if table == "all" else C[C["table"] == table]
        acc = rows[rows["study_accuracy_pct"] != ""]
        d = [float(x) for x in acc["accuracy_diff_pp"] if num(x) is not None]
        t = [float(x) for x in rows["time_ratio"] if num(x) is not None] + [
            float(x) for x in rows["fit_ratio"] if num(x) is not None
        ]
        out.append(
            {
                "table": "all 77 cells" if table == "all" else ref.TABLE_TITLES[table],
                "cells": len(rows),
                "accuracy_cells": len(acc),
                "accuracy_compared": len(d),
                "within_0_5_pp": sum(abs(x) <= 0.5 for x in d),
                "within_1_pp": sum(abs(x) <= 1.0 for x in d),
                "mean_diff_pp": sum(d) / len(d) if d else None,
                "mean_abs_diff_pp": sum(abs(x) for x in d) / len(d) if d else None,
                "time_cells_compared": len(t),
                "mean_time_ratio": sum(t) / len(t) if t else None,
            }
        )
    return out


@builder(
    "table",
    "How closely ours agree with the study",
    "Of the study's published accuracy cells, how many of ours lie within 0.5 and 1 point, and the mean "
    "difference (ours − study) per table; the mean ratio of our times to the study's where both exist.",
    part="summary",
)
def agreement(item: Item, C: pd.DataFrame, smoke: bool) -> None:
    frame = pd.DataFrame(agreement_rows(C))
    item.frame = frame.assign(smoke=smoke)
    item.view = pd.DataFrame(
        {
            "table": frame["table"],
            "accuracy cells (ours / published)": [
                f"{a} / {b}" for a, b in zip(frame["accuracy_compared"], frame["accuracy_cells"], strict=True)
            ],
            "within 0.5 pp": frame["within_0_5_pp"].astype(str),
            "within 1 pp": frame["within_1_pp"].astype(str),
            "mean Δ pp": [fmt(v, "pp") if v is not None and v == v else "—" for v in frame["mean_diff_pp"]],
            "mean time ours / study": [
                f"{CL._x(v)} ({n} cells)" if v is not None and v == v else "—"
                for v, n in zip(frame["mean_time_ratio"], frame["time_cells_compared"], strict=True)
            ],
        }
    )
    item.notes = ([SMOKE_NOTE] if smoke else []) + [
        "Time ratios compare unlike hardware (ours: the machines in the Environment section; the study: one "
        "A30 and dual Xeon Gold 6326) and, unless the tables' notes say 3x64x64, unlike inputs."
    ]


def summary_json(C: pd.DataFrame, items: dict[str, Item]) -> dict[str, Any]:
    """The summary's numbers for summary.json."""
    out: dict[str, Any] = {}
    for key in ("best_models", "speedups", "agreement", "claims"):
        it = items.get(key)
        if it is not None and it.frame is not None and it.not_run is None:
            out[key] = [{k: _plain(v) for k, v in r.items()} for r in it.frame.to_dict("records")]
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, float) and v != v:
        return None
    if hasattr(v, "item"):
        return v.item()
    return v
