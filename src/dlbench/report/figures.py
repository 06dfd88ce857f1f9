"""The report's figures (matplotlib, Agg, no pyplot state), titled with the numbers the study gives its
Figures 1-7; ours after them. Each is made only when its data exists; the study's published values are
drawn hollow (or hatched) beside ours, filled.

Every builder is named by what it shows (its item's key), takes the records, the comparison frame
(:func:`dlbench.report.study_tables.comparison`) and the figure folder, and returns an
:class:`~dlbench.report.document.Item`; its image keeps the study's number (``fig1_accuracy.png``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

from dlbench.report import reference as ref
from dlbench.report.collect import (
    NotRun,
    Records,
    cfg,
    dataset_label,
    met,
    model_label,
    num,
    our_gflops,
    pct,
    precision,
    train_frame,
)
from dlbench.report.document import Item, builder, fmt, run_ids
from dlbench.report.study_tables import cell_runs, cells

STYLE = {
    "font.size": 11,
    "axes.titlesize": 13,
    "axes.titleweight": "bold",
    "axes.labelsize": 11,
    "legend.fontsize": 9,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.titlesize": 14,
    "figure.titleweight": "bold",
}
KERNEL_COLORS = {"rbf": "#d62728", "poly": "#9467bd", "svm-rbf": "#d62728", "svm-poly": "#9467bd"}
OPTIMIZER_MARKERS = {"sgd": "o", "adam": "s"}
STUDY_STYLE = {"hatch": "///", "alpha": 0.45}
DPI = 110


def _new(w: float, h: float, ncols: int = 1, nrows: int = 1, **kw) -> tuple[Figure, Any]:
    fig = Figure(figsize=(w, h), layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kw)


# Set by the report step for a smoke run: every figure carries it, so no PNG is quoted without it.
SMOKE_MARK: ContextVar[str | None] = ContextVar("smoke_mark", default=None)


def _save(fig: Figure, path: Path) -> Path:
    mark = SMOKE_MARK.get()
    if mark:
        fig.suptitle(mark, color="#b00020", fontsize=15, fontweight="bold")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, facecolor="white", metadata={"Software": None})
    return path


def _color(key: str) -> str:
    from dlbench.models import model_color  # the registry holds each model family's colour

    return KERNEL_COLORS.get(key) or model_color(key) or "#555555"


def _log_axis(ax, which: str = "x") -> None:
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    axis.set_minor_formatter(NullFormatter())


def _f(v: Any) -> float | None:
    if isinstance(v, str):
        return ref.value(v)
    return None if v is None or (isinstance(v, float) and v != v) else float(v)


def _study_ours_legend(fig: Figure, models: list[str]) -> None:
    handles = [Patch(facecolor=_color(m), label=model_label(m)) for m in models]
    handles += [
        Patch(facecolor="white", edgecolor="black", label="ours (filled)"),
        Patch(facecolor="white", edgecolor="black", hatch="///", label="study (hatched)"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)


# --------------------------------------------------------------------------- Figure 1


@builder(
    "figure",
    "Figure 1: test accuracy of each model on each dataset, 4 epochs",
    "Table 1's cells as bars per configuration (batch, optimizer, learning rate): ours filled, "
    "the study's hatched. A missing filled bar is a cell no run of ours fills.",
    part="study",
)
def accuracy_bars(item: Item, R: Records, C: pd.DataFrame, out: Path) -> None:
    rows = cells(C, "table1")
    datasets = list(dict.fromkeys(rows["dataset"]))
    models = list(dict.fromkeys(rows["model"]))
    with matplotlib.rc_context(STYLE):
        fig, axes = _new(14, 4.2 * len(datasets), nrows=len(datasets))
        for ax, ds in zip(axes[:, 0], datasets, strict=True):
            sub = rows[rows["dataset"] == ds]
            configs = list(dict.fromkeys(zip(sub["batch_size"], sub["optimizer"], sub["lr"], strict=True)))
            width = 0.8 / (2 * len(models))
            lo = 100.0
            for mi, m in enumerate(models):
                for ci, (bs, opt, lr) in enumerate(configs):
                    r = sub[
                        (sub["model"] == m)
                        & (sub["batch_size"] == bs)
                        & (sub["optimizer"] == opt)
                        & (sub["lr"] == lr)
                    ].iloc[0]
                    x = ci - 0.4 + width * (2 * mi + 0.5)
                    s, o = _f(r["study_accuracy_pct"]), _f(r["ours_accuracy_pct"])
                    ax.bar(x, s, width, color=_color(m), **STUDY_STYLE, edgecolor="black", lw=0.5)
                    if o is not None:
                        ax.bar(x + width, o, width, color=_color(m), edgecolor="black", lw=0.5)
                    lo = min(lo, s, o if o is not None else s)
            ax.set_xticks(
                range(len(configs)),
                [f"bs {b} · {o.upper() if o == 'sgd' else 'Adam'} · lr {lr}" for b, o, lr in configs],
                rotation=15,
            )
            ax.set_ylim(max(0.0, math.floor(lo - 3)), 100.5)
            ax.set_ylabel("test accuracy (%)")
            ax.set_title(dataset_label(ds))
        _study_ours_legend(fig, models)
        item.image = _save(fig, out / "fig1_accuracy.png")
    item.sources = cell_runs(rows)


# --------------------------------------------------------------------------- Figure 2


@builder(
    "figure",
    "Figure 2: optimizer stability, accuracy over optimizer x learning rate (4 epochs)",
    "Table 1's runs only: test accuracy per optimizer and batch (rows) and learning rate "
    "(columns), ours in each cell with the study's below in brackets; colour: ours (grey: no run).",
    part="study",
)
def optimizer_lr_heatmap(item: Item, R: Records, C: pd.DataFrame, out: Path) -> None:
    rows = cells(C, "table1")
    panels = list(dict.fromkeys(zip(rows["dataset"], rows["model"], strict=True)))
    lrs = sorted(set(rows["lr"]), key=float, reverse=True)
    keys = list(dict.fromkeys(zip(rows["optimizer"], rows["batch_size"], strict=True)))
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#dddddd")
    with matplotlib.rc_context(STYLE):
        fig, axes = _new(12, 9, ncols=2, nrows=math.ceil(len(panels) / 2))
        for ax, (ds, m) in zip(axes.flat, panels, strict=False):
            sub = rows[(rows["dataset"] == ds) & (rows["model"] == m)]
            grid = np.full((len(keys), len(lrs)), np.nan)
            text = [["" for _ in lrs] for _ in keys]
            for i, (opt, bs) in enumerate(keys):
                for j, lr in enumerate(lrs):
                    r = sub[(sub["optimizer"] == opt) & (sub["batch_size"] == bs) & (sub["lr"] == lr)].iloc[0]
                    o = _f(r["ours_accuracy_pct"])
                    if o is not None:
                        grid[i, j] = o
                    failed = isinstance(r["why_not"], str) and " failed: " in r["why_not"]
                    ours = fmt(o, "pct") if o is not None else "failed" if failed else "no run"
                    text[i][j] = f"{ours}\n({r['study_accuracy_pct']})"
            vals = np.concatenate([grid[np.isfinite(grid)], [float(v) for v in sub["study_accuracy_pct"]]])
            im = ax.imshow(
                np.ma.masked_invalid(grid),
                cmap=cmap,
                vmin=vals.min() - 0.5,
                vmax=min(100, vals.max() + 0.5),
                aspect="auto",
            )
            for i in range(len(keys)):
                for j in range(len(lrs)):
                    light = np.isfinite(grid[i, j]) and im.norm(grid[i, j]) < 0.55
                    ax.text(
                        j,
                        i,
                        text[i][j],
                        ha="center",
                        va="center",
                        fontsize=10,
                        color="white" if light else "black",
                    )
            ax.set_xticks(range(len(lrs)), [f"lr {lr}" for lr in lrs])
            ax.set_yticks(range(len(keys)), [f"{'SGD' if o == 'sgd' else 'Adam'} · bs {b}" for o, b in keys])
            ax.set_title(f"{dataset_label(ds)} · {model_label(m)}")
            ax.grid(False)
            fig.colorbar(im, ax=ax, label="ours: test accuracy (%)", shrink=0.85)
        for ax in list(axes.flat)[len(panels) :]:
            ax.set_visible(False)
        item.image = _save(fig, out / "fig2_optimizer_lr_heatmap.png")
    item.sources = cell_runs(rows)


# --------------------------------------------------------------------------- Figure 3


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both time (lower) and accuracy (higher)."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


@builder(
    "figure",
    "Figure 3a: accuracy vs training time, Pareto front",
    "Every finished ResNet run of ours (filled; circle SGD, square Adam, a black edge where it ran on "
    "the GPU) and every published cell with a time (hollow): test accuracy against whole-training time; "
    "the dashed line joins our Pareto front (no run of ours both faster and more accurate).",
    part="study",
)
def accuracy_vs_time(item: Item, R: Records, C: pd.DataFrame, out: Path) -> None:
    T = train_frame(R)
    T = T[T["ok"] & T["train_seconds"].notna() & T["test_accuracy_pct"].notna()] if not T.empty else T
    pub = C[(C["study_seconds"] != "") & (C["study_accuracy_pct"] != "")]
    datasets = sorted(set(pub["dataset"]) | set(T["dataset"] if not T.empty else []))
    with matplotlib.rc_context(STYLE):
        fig, axes = _new(7 * len(datasets), 6, ncols=len(datasets))
        for ax, ds in zip(axes[0], datasets, strict=True):
            p = pub[pub["dataset"] == ds]
            for _, r in p.iterrows():
                ax.plot(
                    float(r["study_seconds"]),
                    float(r["study_accuracy_pct"]),
                    marker="o",
                    ls="none",
                    markerfacecolor="none",
                    markeredgecolor=_color(r["model"]),
                    markersize=8,
                )
            t = T[T["dataset"] == ds] if not T.empty else T
            for _, r in t.iterrows():
                ax.plot(
                    r["train_seconds"],
                    r["test_accuracy_pct"],
                    marker=OPTIMIZER_MARKERS.get(str(r.get("optimizer")), "o"),
                    ls="none",
                    color=_color(r["model"]),
                    markeredgecolor="black" if r.get("ran_on") == "cuda" else "none",
                    markersize=7,
                    alpha=0.8,
                )
            if len(t) >= 2:
                pts = list(zip(t["train_seconds"], t["test_accuracy_pct"], strict=True))
                front = [pts[i] for i in pareto_front(pts)]
                ax.step(
                    [x for x, _ in front], [y for _, y in front], where="post", color="black", ls="--", lw=1.2
                )
            _log_axis(ax, "x")
            ax.set_xlabel("training time (s, log scale)")
            ax.set_ylabel("test accuracy (%)")
            ax.set_title(dataset_label(ds))
        models = sorted(set(pub["model"]) | set(T["model"] if not T.empty else []))
        handles = [
            Line2D([], [], color=_color(m), marker="o", ls="none", label=model_label(m)) for m in models
        ]
        handles += [
            Line2D([], [], color="gray", marker="o", ls="none", label="ours: SGD (circle)"),
            Line2D([], [], color="gray", marker="s", ls="none", label="ours: Adam (square)"),
            Line2D(
                [], [], color="gray", marker="o", markeredgecolor="black", ls="none", label="ran on the GPU"
            ),
            Line2D([], [], color="gray", marker="o", markerfacecolor="none", ls="none", label="study"),
            Line2D([], [], color="black", ls="--", label="our Pareto front"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
        item.image = _save(fig, out / "fig3a_pareto.png")
    item.sources = sorted(T["run_id"]) if not T.empty else []


@builder(
    "figure",
    "Figure 3b: convergence of the best run per dataset and model",
    "Training loss and validation accuracy after each epoch of the most accurate run of each "
    "model on each dataset (one line each, so the figure stays readable at any number of runs).",
    part="study",
    needs="train",
)
def convergence(item: Item, R: Records, C: pd.DataFrame, out: Path) -> None:
    T = train_frame(R)
    T = T[T["ok"] & T["test_accuracy_pct"].notna()]
    T = T[T["_rec"].map(lambda r: len(met(r, "history", []) or []) >= 2)]
    if T.empty:
        item.not_run = NotRun("no training run recorded two or more epochs of history")
        return
    best = (
        T.sort_values("test_accuracy_pct", ascending=False).groupby(["dataset", "model"], sort=True).head(1)
    )
    styles = {"mnist": "-", "fashion-mnist": "--"}
    with matplotlib.rc_context(STYLE):
        fig, axes = _new(13, 5, ncols=2)
        for _, r in best.sort_values(["dataset", "model"]).iterrows():
            hist = sorted(
                (h for h in met(r["_rec"], "history", []) if isinstance(h, dict)), key=lambda h: h["epoch"]
            )
            ep = [h.get("epoch") for h in hist]
            label = (
                f"{dataset_label(r['dataset'])} · {model_label(r['model'])} ({r['optimizer']}, "
                f"lr {fmt(r['lr'], 'lr')}, bs {r['batch_size']}, {r['epochs']} ep)"
            )
            kw = {
                "color": _color(r["model"]),
                "ls": styles.get(r["dataset"], ":"),
                "marker": "o",
                "markersize": 4,
            }
            axes[0][0].plot(ep, [num(h.get("train_loss")) or np.nan for h in hist], label=label, **kw)
            axes[0][1].plot(ep, [pct(h.get("val_accuracy")) or np.nan for h in hist], **kw)
        axes[0][0].set(xlabel="epoch", ylabel="training loss (cross-entropy)", title="Training loss")
        axes[0][1].set(xlabel="epoch", ylabel="validation accuracy (%)", title="Validation accuracy")
        fig.legend(loc="outside lower center", ncols=2, frameon=False)
        item.image = _save(fig, out / "fig3b_convergence.png")
    item.sources = sorted(best["run_id"])


# --------------------------------------------------------------------------- Figure 4


def _matrix(rec: dict) -> np.ndarray | None:
    try:
        a = np.asarray(met(rec, "confusion_matrix"), dtype=float)
    except (TypeError, ValueError):
        return None
    return a if a.ndim == 2 and a.shape[0] == a.shape[1] and a.shape[0] > 0 else None


@builder(
    "figure",
    "Figure 4: confusion matrices of the best ResNet-18 models (4 epochs)",
    "Row-normalised confusion matrices (rows: true class, % of that class) of the most accurate "
    "ResNet-18 at 4 epochs on each dataset with the study's settings (a run at one of its published "
    "cells; else any ResNet-18 at 4 epochs, else any ResNet).",
    part="study",
    needs="train",
)
def confusion_matrices(item: Item, R: Records, C: pd.DataFrame, out: Path) -> None:
    T = train_frame(R)
    T = T[T["ok"] & T["test_accuracy_pct"].notna() & T["_rec"].map(lambda r: _matrix(r) is not None)]
    panels = []
    for _ds, g in T.groupby("dataset", sort=True):
        pref = g[(g["model"] == "resnet18") & (g["epochs"] == 4)]
        # a run with the study's settings (one that fills a published cell: its loop, input, precision) first
        study = pref[pref["run_id"].isin(set(cell_runs(C)))]
        pool = study if not study.empty else pref if not pref.empty else g
        best = pool.sort_values("test_accuracy_pct", ascending=False).iloc[0]
        panels.append(best)
    if not panels:
        item.not_run = NotRun("no finished training run recorded a confusion matrix")
        return
    with matplotlib.rc_context(STYLE):
        fig, axes = _new(7.2 * len(panels), 6.6, ncols=len(panels))
        for ax, r in zip(axes[0], panels, strict=True):
            cm = _matrix(r["_rec"])
            totals = cm.sum(axis=1, keepdims=True)
            norm = np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0) * 100
            ax.imshow(norm, cmap="Blues", vmin=0, vmax=100)
            n = cm.shape[0]
            for i in range(n):
                for j in range(n):
                    if cm[i, j]:
                        ax.text(
                            j,
                            i,
                            f"{norm[i, j]:.0f}",
                            ha="center",
                            va="center",
                            fontsize=8,
                            color="white" if norm[i, j] > 55 else "black",
                        )
            classes = (R.classes_for(r["_rec"]) + [str(i) for i in range(n)])[:n]
            ax.set_xticks(range(n), classes, rotation=45, ha="right", fontsize=9)
            ax.set_yticks(range(n), classes, fontsize=9)
            ax.set(xlabel="predicted class", ylabel="true class")
            ax.set_title(
                f"{dataset_label(r['dataset'])}: {model_label(r['model'])}, {r['epochs']} ep\n"
                f"test accuracy {r['test_accuracy_pct']:.2f} %",
                fontsize=11,
            )
            ax.grid(False)
        item.image = _save(fig, out / "fig4_confusion.png")
    item.sources = sorted(r["run_id"] for r in panels)


# --------------------------------------------------------------------------- Figure 5


@builder(
    "figure",
    "Figure 5: SVM analysis, accuracy and fit time of the polynomial and RBF kernels",
    "The SVM table as bars: ours filled, the study's hatched (scikit-learn on its CPUs). Fit time "
    "on a log scale.",
    part="study",
)
def svm_bars(item: Item, R: Records, C: pd.DataFrame, out: Path) -> None:
    rows = cells(C, "svm")
    labels = [
        f"{dataset_label(ds)}\n{'RBF' if k == 'svm-rbf' else 'polynomial'}"
        for ds, k in zip(rows["dataset"], rows["model"], strict=True)
    ]
    with matplotlib.rc_context(STYLE):
        fig, axes = _new(13, 4.8, ncols=2)
        for ax, (skey, okey, scale, ylabel) in zip(
            axes[0],
            (
                ("study_accuracy_pct", "ours_accuracy_pct", 1.0, "test accuracy (%)"),
                ("study_fit_ms", "ours_fit_ms", 1e-3, "fit time (s, log scale)"),
            ),
            strict=True,
        ):
            for i, (_, r) in enumerate(rows.iterrows()):
                c = _color(r["model"])
                ax.bar(
                    i - 0.2, float(r[skey]) * scale, 0.4, color=c, edgecolor="black", lw=0.5, **STUDY_STYLE
                )
                o = _f(r[okey])
                if o is not None:
                    ax.bar(i + 0.2, o * scale, 0.4, color=c, edgecolor="black", lw=0.5)
            ax.set_xticks(range(len(rows)), labels)
            ax.set_ylabel(ylabel)
        accs = [float(v) for v in rows["study_accuracy_pct"]] + [
            v for v in rows["ours_accuracy_pct"] if _f(v)
        ]
        axes[0][0].set_ylim(max(0, min(accs) - 5), 100)
        axes[0][0].set_title("Accuracy")
        _log_axis(axes[0][1], "y")
        axes[0][1].set_title("Fit time")
        handles = [
            Patch(facecolor=_color(k), label=n) for k, n in (("svm-poly", "polynomial"), ("svm-rbf", "RBF"))
        ]
        handles += [
            Patch(facecolor="white", edgecolor="black", label="ours (filled)"),
            Patch(facecolor="white", edgecolor="black", hatch="///", label="study (hatched)"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=4, frameon=False)
        item.image = _save(fig, out / "fig5_svm.png")
    item.sources = cell_runs(rows)


# --------------------------------------------------------------------------- Figures 6 and 7


def _cpu_gpu_pairs(C: pd.DataFrame) -> list[dict]:
    rows = cells(C, "table4")
    out = []
    for (m, opt), g in rows.groupby(["model", "optimizer"], sort=False):
        cpu, gpu = g[g["device"] == "cpu"].iloc[0], g[g["device"] == "cuda"].iloc[0]
        oc, og = _f(cpu["ours_seconds"]), _f(gpu["ours_seconds"])
        out.append(
            {
                "model": m,
                "optimizer": opt,
                "gflops": float(cpu["study_gflops"]),
                "study_cpu": float(cpu["study_seconds"]),
                "study_gpu": float(gpu["study_seconds"]),
                "ours_cpu": oc,
                "ours_gpu": og,
                "runs": [x for x in (cpu.get("time_run_id"), gpu.get("time_run_id")) if isinstance(x, str)],
                "inputs": [x for x in (cpu.get("time_input"), gpu.get("time_input")) if isinstance(x, str)],
            }
        )
    return out


def _timed_at(pairs: list[dict]) -> str:
    """The note naming the input our times of Table 4 were measured at."""
    inputs = sorted({x for p in pairs for x in p["inputs"]})
    said = " / ".join(inputs)
    return f"Ours timed at {said} input (the study's: probably 3x64x64, its GFLOPs)." if inputs else ""


@builder(
    "figure",
    "Figure 6: hardware scaling, GPU-over-CPU speedup per model (10 epochs)",
    "CPU time / GPU time of Table 4's configurations: the study's (hatched) beside ours (filled). "
    "The study claims the speedup grows with model size (4x-5x).",
    part="study",
)
def gpu_speedup(item: Item, R: Records, C: pd.DataFrame, out: Path) -> None:
    pairs = _cpu_gpu_pairs(C)
    with matplotlib.rc_context(STYLE):
        fig, axes = _new(10, 5)
        ax = axes[0][0]
        for i, p in enumerate(pairs):
            s = p["study_cpu"] / p["study_gpu"]
            ax.bar(i - 0.2, s, 0.4, color=_color(p["model"]), edgecolor="black", lw=0.5, **STUDY_STYLE)
            ax.annotate(
                fmt(s, "x"), (i - 0.2, s), xytext=(0, 3), textcoords="offset points", ha="center", fontsize=8
            )
            if p["ours_cpu"] and p["ours_gpu"]:
                o = p["ours_cpu"] / p["ours_gpu"]
                ax.bar(i + 0.2, o, 0.4, color=_color(p["model"]), edgecolor="black", lw=0.5)
                ax.annotate(
                    fmt(o, "x"),
                    (i + 0.2, o),
                    xytext=(0, 3),
                    textcoords="offset points",
                    ha="center",
                    fontsize=8,
                )
        ax.axhline(1.0, color="gray", lw=1, ls=":")
        ax.set_xticks(
            range(len(pairs)),
            [
                f"{model_label(p['model'])}\n{p['optimizer'].upper() if p['optimizer'] == 'sgd' else 'Adam'}"
                for p in pairs
            ],
        )
        ax.set_ylabel("GPU speedup (CPU time / GPU time)")
        _study_ours_legend(fig, list(dict.fromkeys(p["model"] for p in pairs)))
        item.image = _save(fig, out / "fig6_gpu_speedup.png")
    item.notes = [n for n in (_timed_at(pairs),) if n]
    item.sources = sorted({r for p in pairs for r in p["runs"]})


def _fit(x: list[float], y: list[float]) -> tuple[float, float, float] | None:
    """Least-squares line y = a x + b and its R^2; None with fewer than 3 points or no spread."""
    if len(x) < 3 or len(set(x)) < 2:
        return None
    a, b = np.polyfit(x, y, 1)
    pred = np.polyval([a, b], x)
    ss_tot = float(np.sum((np.asarray(y) - np.mean(y)) ** 2))
    r2 = 1 - float(np.sum((np.asarray(y) - pred) ** 2)) / ss_tot if ss_tot else 1.0
    return float(a), float(b), r2


@builder(
    "figure",
    "Figure 7: complexity vs cost, GFLOPs against GPU training time (10 epochs)",
    "Table 4's GPU training times against each model's GFLOPs, with a least-squares line and its "
    "R² for the study's points (hollow, its published GFLOPs) and for ours (filled, our GFLOPs "
    "counted at 3x64x64, or the study's where no profile ran). The study claims a linear relation.",
    part="study",
)
def gflops_vs_gpu_time(item: Item, R: Records, C: pd.DataFrame, out: Path) -> None:
    pairs = _cpu_gpu_pairs(C)
    ours_g = our_gflops(R)
    fits = []
    with matplotlib.rc_context(STYLE):
        fig, axes = _new(9.5, 5.5)
        ax = axes[0][0]
        xs, ys, xo, yo = [], [], [], []
        for p in pairs:
            ax.plot(
                p["gflops"],
                p["study_gpu"],
                marker="o" if p["optimizer"] == "sgd" else "s",
                ls="none",
                markerfacecolor="none",
                markeredgecolor=_color(p["model"]),
                markersize=10,
                markeredgewidth=1.6,
            )
            xs.append(p["gflops"])
            ys.append(p["study_gpu"])
            if p["ours_gpu"]:
                g = ours_g.get(p["model"]) or p["gflops"]
                ax.plot(
                    g,
                    p["ours_gpu"],
                    marker="o" if p["optimizer"] == "sgd" else "s",
                    ls="none",
                    color=_color(p["model"]),
                    markersize=9,
                )
                xo.append(g)
                yo.append(p["ours_gpu"])
        grid = np.linspace(0.25, 0.7, 20)
        for name, x, y, style in (("study", xs, ys, "--"), ("ours", xo, yo, "-")):
            f = _fit(x, y)
            if f:
                ax.plot(
                    grid,
                    f[0] * grid + f[1],
                    color="black",
                    ls=style,
                    lw=1,
                    label=f"{name}: t = {f[0]:,.0f} s/GFLOP x + {f[1]:,.0f} s, R² = {f[2]:.3f}",
                )
                fits.append(
                    f"{name}: slope {f[0]:,.1f} s per GFLOP, intercept {f[1]:,.1f} s, R² = {f[2]:.3f} "
                    f"({len(x)} points)"
                )
            else:
                fits.append(f"{name}: no fit (fewer than 3 points with a GPU time)")
        _log_axis(ax, "y")  # ours (a faster GPU) would lie flat at zero on a linear axis
        ax.set_xlabel("GFLOPs (forward, per image)")
        ax.set_ylabel("GPU training time, 10 epochs (s, log scale)")
        handles = [
            Line2D([], [], color=_color(m), marker="o", ls="none", label=model_label(m))
            for m in dict.fromkeys(p["model"] for p in pairs)
        ]
        handles += [
            Line2D([], [], color="gray", marker="o", ls="none", markerfacecolor="none", label="SGD (circle)"),
            Line2D(
                [], [], color="gray", marker="s", ls="none", markerfacecolor="none", label="Adam (square)"
            ),
        ]
        ax.legend(handles=handles + ax.get_legend_handles_labels()[0], loc="upper left", fontsize=8)
        item.image = _save(fig, out / "fig7_gflops_vs_gpu_time.png")
    item.notes = ["Linear fit, " + "; ".join(fits) + "."] + [n for n in (_timed_at(pairs),) if n]
    item.sources = sorted({r for p in pairs for r in p["runs"]})


# --------------------------------------------------------------------------- Figure 8 (ours)


@builder(
    "figure",
    "Figure 8: inference latency and throughput vs batch size",
    "Median latency per batch and throughput of ONNX Runtime (per provider) and PyTorch eager, "
    "log-log axes (a measurement the study lacks).",
    needs="onnx",
)
def latency_vs_batch(item: Item, R: Records, C: pd.DataFrame, out: Path) -> None:
    series: dict[tuple[str, str, str, str], list[tuple[int, float, float | None]]] = defaultdict(list)
    for r in R.ok("onnx"):
        model = str(met(r, "model") or cfg(r, "model"))
        for x in met(r, "results", []) or []:
            b, p50 = num(x.get("batch_size")), num(x.get("p50_ms"))
            if isinstance(x, dict) and b and p50:
                series[(model, str(x.get("runtime")), str(x.get("provider")), precision(x))].append(
                    (int(b), p50, num(x.get("throughput_ips")))
                )
    if not series:
        item.not_run = NotRun("no inference timings recorded")
        return
    markers = {"cpu": "o", "cuda": "s", "tensorrt": "^"}
    with matplotlib.rc_context(STYLE):
        fig, axes = _new(13, 5.2 + 0.3 * math.ceil(len(series) / 4), ncols=2)
        for (model, runtime, provider, prec), pts in sorted(series.items()):
            pts.sort()
            bs = [p[0] for p in pts]
            kw = {
                "color": _color(model),
                "ls": ("-" if runtime == "onnxruntime" else "--") if prec == "fp32" else "-.",
                "marker": markers.get(provider, "D"),
            }
            axes[0][0].plot(
                bs,
                [p[1] for p in pts],
                label=f"{model_label(model)} · "
                f"{'ONNX Runtime' if runtime == 'onnxruntime' else 'PyTorch'} {provider}"
                + (f" {prec}" if prec != "fp32" else ""),
                **kw,
            )
            axes[0][1].plot(bs, [p[2] if p[2] is not None else p[0] / p[1] * 1000 for p in pts], **kw)
        batches = sorted({p[0] for pts in series.values() for p in pts})
        for ax in axes[0]:
            _log_axis(ax, "y")
            ax.set_xscale("log", base=2)
            ax.set_xticks(batches, [str(b) for b in batches])
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xlabel("batch size (images, log scale)")
        axes[0][0].set(ylabel="p50 latency per batch (ms, log scale)", title="Latency")
        axes[0][1].set(ylabel="throughput (images/s, log scale)", title="Throughput")
        fig.legend(loc="outside lower center", ncols=min(4, len(series)), frameon=False)
        item.image = _save(fig, out / "fig8_inference_latency.png")
    item.sources = run_ids(R.ok("onnx"))


FIGURES = [
    accuracy_bars,
    optimizer_lr_heatmap,
    accuracy_vs_time,
    convergence,
    confusion_matrices,
    svm_bars,
    gpu_speedup,
    gflops_vs_gpu_time,
    latency_vs_batch,
]
