"""The report's figures (matplotlib, Agg, no pyplot state), each made only when its data exists."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator

from dlbench.report import reference as ref
from dlbench.report.collect import (
    NotRun,
    Records,
    cfg,
    dataset_label,
    device_label,
    is_ok,
    met,
    model_label,
    most_common,
    num,
    pct,
    varying_keys,
)
from dlbench.report.tables import Item, _paired, _run_ids, fmt, precision, profile_gflops, svm_backend

STYLE = {
    "font.size": 11, "axes.titlesize": 13, "axes.titleweight": "bold", "axes.labelsize": 11,
    "legend.fontsize": 9, "xtick.labelsize": 10, "ytick.labelsize": 10, "axes.grid": True,
    "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False, "figure.titlesize": 14,
    "figure.titleweight": "bold",
}
MODEL_COLORS = {"resnet18": "#1f77b4", "resnet34": "#ff7f0e", "resnet50": "#2ca02c"}
KERNEL_COLORS = {"rbf": "#d62728", "poly": "#9467bd"}
BACKEND_COLORS = {"sklearn": "#1f77b4", "cuml": "#76b900"}
DATASET_MARKERS = {"mnist": "o", "fashion-mnist": "D"}
DPI = 110


def _new(w: float, h: float, ncols: int = 1, nrows: int = 1, **kw) -> tuple[Figure, Any]:
    fig = Figure(figsize=(w, h), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, facecolor="white", metadata={"Software": None})
    return path


def _color(key: str) -> str:
    return MODEL_COLORS.get(key) or KERNEL_COLORS.get(key) or "#555555"


def _ok_train(R: Records) -> list[dict]:
    return R.ok("train")


def _short(rec: dict, keys: list[str]) -> str:
    """A short label of a training run from the config keys that vary."""
    parts = [model_label(cfg(rec, "model"))]
    for k in keys:
        v = cfg(rec, k)
        if k == "model":
            continue
        if k == "dataset":
            parts.append(dataset_label(v))
        elif k == "batch_size":
            parts.append(f"bs {v}")
        elif k == "lr":
            parts.append(f"lr {fmt(v, 'lr')}")
        elif k == "epochs":
            parts.append(f"{v} ep")
        elif k == "device":
            parts.append(device_label(v))
        elif k == "pin_memory":
            parts.append("pin" if v else "no pin")
        elif k == "amp":
            parts.append(f"AMP {v}")
        else:
            parts.append(str(v))
    return " · ".join(parts)


def _log_axis(ax, which: str = "x", base: float = 10) -> None:
    """Log scale with plain-number tick labels (1, 2, 5, 10, 20, ...), no minor-tick clutter."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    (ax.set_xscale if which == "x" else ax.set_yscale)("log", base=base)
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_locator(LogLocator(base=base, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    axis.set_minor_formatter(NullFormatter())


LABEL_KEYS = ["dataset", "model", "batch_size", "optimizer", "lr", "epochs", "device", "engine", "pin_memory",
              "amp", "stem"]


# --------------------------------------------------------------------------- Figure 1

def fig_accuracy(R: Records, out: Path) -> Item:
    item = Item("fig1", "figure", "Figure 1: best test accuracy per model and dataset",
                caption="Best test accuracy of each ResNet and SVM kernel on each dataset (filled); hollow markers "
                        f"are the {ref.LABEL}'s best published numbers (full dataset, ResNets trained 4-10 epochs): "
                        "compare them with runs of similar size and length only.")
    best: dict[tuple[str, str], tuple[float, dict]] = {}
    for r in _ok_train(R):
        a = pct(met(r, "test_accuracy"))
        key = (str(cfg(r, "dataset")), model_label(cfg(r, "model")))
        if a is not None and (key not in best or a > best[key][0]):
            best[key] = (a, r)
    svm_best: dict[tuple[str, str], tuple[float, dict]] = {}
    for r in R.ok("svm"):
        a = pct(met(r, "accuracy"))
        key = (str(cfg(r, "dataset")), f"SVM {str(cfg(r, 'kernel')).upper() if cfg(r, 'kernel') == 'rbf' else cfg(r, 'kernel')}")
        if a is not None and (key not in svm_best or a > svm_best[key][0]):
            svm_best[key] = (a, r)
    best.update(svm_best)
    if not best:
        item.not_run = NotRun("no finished training or SVM run has a test accuracy "
                              f"({R.reason('train').reason}; {R.reason('svm').reason})"
                              if not R.ok("train") and not R.ok("svm") else "no run recorded a test accuracy")
        return item
    labels = sorted({k[1] for k in best}, key=lambda s: (s.startswith("SVM"), s))
    datasets = sorted({k[0] for k in best})
    with matplotlib.rc_context(STYLE):
        fig, axes = _new(10, 1.8 + 0.9 * len(labels))
        ax = axes[0][0]
        offsets = np.linspace(-0.18, 0.18, len(datasets)) if len(datasets) > 1 else [0.0]
        xs = []
        for di, ds in enumerate(datasets):
            color = f"C{di}"
            for li, lab in enumerate(labels):
                y = li + offsets[di]
                if (ds, lab) in best:
                    a = best[(ds, lab)][0]
                    xs.append(a)
                    ax.plot([a], [y], marker=DATASET_MARKERS.get(ds, "o"), color=color, markersize=10, ls="none")
                    ax.annotate(f"{a:.2f}", (a, y), xytext=(0, 8), textcoords="offset points", ha="center",
                                va="bottom", fontsize=9)
                reference = _ref_best(ds, lab)
                if reference is not None:
                    xs.append(reference)
                    ax.plot([reference], [y], marker=DATASET_MARKERS.get(ds, "o"), markerfacecolor="none",
                            markeredgecolor=color, markersize=11, markeredgewidth=1.6, ls="none")
        ax.set_yticks(range(len(labels)), labels)
        lo = min(xs)
        ax.set_xlim(max(0.0, math.floor(lo - 2)), 100.5)
        ax.set_ylim(len(labels) - 0.5, -0.6)
        ax.set_xlabel("test accuracy (%)")
        ax.set_title("Best test accuracy per model and dataset")
        handles = [Line2D([], [], marker=DATASET_MARKERS.get(ds, "o"), color=f"C{i}", ls="none", markersize=9,
                          label=f"{dataset_label(ds)} (this run)") for i, ds in enumerate(datasets)]
        if any(_ref_best(ds, lab) is not None for ds in datasets for lab in labels):
            handles.append(Line2D([], [], marker="o", color="gray", markerfacecolor="none", ls="none",
                                  markersize=9, label=ref.LABEL))
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
        item.image = _save(fig, out / "fig1_accuracy.png")
    item.sources = _run_ids(r for _, r in best.values())
    return item


def _ref_best(dataset: str, label: str) -> float | None:
    if label.startswith("SVM"):
        kernel = label.split()[1].lower()
        hit = ref.svm(dataset, kernel, "sklearn")
        return hit[0] if hit else None
    for key, name in (("resnet18", "ResNet-18"), ("resnet34", "ResNet-34"), ("resnet50", "ResNet-50")):
        if name == label:
            return ref.best_train(dataset, key)
    return None


# --------------------------------------------------------------------------- Figure 2

def fig_heatmap(R: Records, out: Path) -> Item:
    item = Item("fig2", "figure", "Figure 2: optimizer and learning-rate stability",
                caption="Test accuracy per optimizer and learning rate (mean over the runs in a cell) at the "
                        "grid's epoch count; low or blank cells show unstable or failed settings.")
    runs = R.step("train")
    if not R.ok("train"):
        item.not_run = R.reason("train")
        return item
    epochs = most_common([cfg(r, "epochs") for r in runs])
    runs = [r for r in runs if cfg(r, "epochs") == epochs]
    combos = {(cfg(r, "optimizer"), cfg(r, "lr")) for r in runs}
    if len(combos) < 2:
        (opt, lr), = combos
        item.not_run = NotRun(f"the grid has a single optimizer and learning rate ({opt}, {fmt(lr, 'lr')}); "
                              "the heatmap needs two or more")
        return item
    datasets = sorted({str(cfg(r, "dataset")) for r in runs})
    lrs = sorted({cfg(r, "lr") for r in runs if num(cfg(r, "lr")) is not None}, reverse=True)
    multi_bs = len({cfg(r, "batch_size") for r in runs}) > 1
    with matplotlib.rc_context(STYLE):
        row_keys_all = {}
        for ds in datasets:
            keys = sorted({(str(cfg(r, "model")), str(cfg(r, "optimizer")), cfg(r, "batch_size") if multi_bs else None)
                           for r in runs if cfg(r, "dataset") == ds}, key=str)
            row_keys_all[ds] = keys
        height = 1.6 + 0.5 * max(len(k) for k in row_keys_all.values())
        fig, axes = _new(max(6.0, 1.5 + 1.6 * len(lrs)) * len(datasets), height, ncols=len(datasets))
        cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#dddddd")
        for ax, ds in zip(axes[0], datasets, strict=True):
            keys = row_keys_all[ds]
            grid = np.full((len(keys), len(lrs)), np.nan)
            failed = np.zeros_like(grid, dtype=bool)
            for i, key in enumerate(keys):
                for j, lr in enumerate(lrs):
                    cell = [r for r in runs if cfg(r, "dataset") == ds and (str(cfg(r, "model")),
                            str(cfg(r, "optimizer")), cfg(r, "batch_size") if multi_bs else None) == key
                            and cfg(r, "lr") == lr]
                    accs = [pct(met(r, "test_accuracy")) for r in cell if is_ok(r)]
                    accs = [a for a in accs if a is not None]
                    if accs:
                        grid[i, j] = float(np.mean(accs))
                    failed[i, j] = any(not is_ok(r) for r in cell) and not accs
            finite = grid[np.isfinite(grid)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 100.0)
            im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=max(0.0, lo - 0.5), vmax=min(100.0, hi + 0.5),
                           aspect="auto")
            for i in range(len(keys)):
                for j in range(len(lrs)):
                    v = grid[i, j]
                    text = f"{v:.1f}" if np.isfinite(v) else ("failed" if failed[i, j] else "not run")
                    light = np.isfinite(v) and im.norm(v) < 0.55
                    ax.text(j, i, text, ha="center", va="center", fontsize=10,
                            color="white" if light else "black")
            ax.set_xticks(range(len(lrs)), [fmt(lr, "lr") for lr in lrs])
            ax.set_yticks(range(len(keys)), [f"{model_label(m)} · {o}" + (f" · bs {b}" if b else "")
                                             for m, o, b in keys])
            ax.set_xlabel("learning rate")
            ax.set_title(dataset_label(ds))
            ax.grid(False)
            fig.colorbar(im, ax=ax, label="test accuracy (%)", shrink=0.9)
        fig.suptitle(f"Optimizer / learning-rate stability ({epochs} epochs)")
        item.image = _save(fig, out / "fig2_optimizer_lr_heatmap.png")
    item.sources = _run_ids(runs)
    return item


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


def fig_pareto(R: Records, out: Path) -> Item:
    item = Item("fig5", "figure", "Figure 5: accuracy vs training time (Pareto front)",
                caption="Every finished ResNet and SVM run: test accuracy against training time (ResNet: sum of "
                        "epoch times; SVM: fit time). The line joins the Pareto front: no other run is both "
                        "faster and more accurate.")
    pts: dict[str, list[tuple[float, float, str, str, dict]]] = defaultdict(list)
    for r in _ok_train(R):
        t, a = num(met(r, "train_seconds")), pct(met(r, "test_accuracy"))
        if t and a is not None:
            pts[str(cfg(r, "dataset"))].append((t, a, "resnet", str(cfg(r, "model")), r))
    for r in R.ok("svm"):
        t, a = num(met(r, "fit_seconds")), pct(met(r, "accuracy"))
        if t and a is not None:
            pts[str(cfg(r, "dataset"))].append((t, a, "svm", str(cfg(r, "kernel")), r))
    if sum(len(v) for v in pts.values()) < 2:
        item.not_run = NotRun("fewer than two finished runs with a time and an accuracy")
        return item
    datasets = sorted(pts)
    keys = varying_keys([r.get("config") or {} for v in pts.values() for *_, kind, _, r in v if kind == "resnet"],
                        LABEL_KEYS)
    keys = [k for k in keys if k != "dataset"]
    with matplotlib.rc_context(STYLE):
        fig, axes = _new(6.8 * len(datasets) + 1.6, 6.6, ncols=len(datasets))
        for ax, ds in zip(axes[0], datasets, strict=True):
            p = pts[ds]
            for t, a, kind, sub, _ in p:
                ax.plot([t], [a], marker="o" if kind == "resnet" else "s", color=_color(sub), markersize=8,
                        ls="none", alpha=0.85)
            front = pareto_front([(t, a) for t, a, *_ in p])
            fx, fy = [p[i][0] for i in front], [p[i][1] for i in front]
            ax.step(fx, fy, where="post", color="black", ls="--", lw=1.2, zorder=1)
            ax.plot(fx, fy, marker="o", markersize=14, markerfacecolor="none", markeredgecolor="black", ls="none")
            lines = []
            for n, i in enumerate(front, 1):
                t, a, kind, sub, r = p[i]
                label = _short(r, keys) if kind == "resnet" else f"SVM {sub} ({svm_backend(r)})"
                ax.annotate(str(n), (t, a), xytext=(7, 5), textcoords="offset points", fontsize=10,
                            fontweight="bold")
                lines.append(f"{n}: {label}: {a:.2f} % in {fmt(t, 's')} s")
            ax.text(0.0, -0.17, "Pareto front\n" + "\n".join(lines), transform=ax.transAxes, va="top",
                    ha="left", fontsize=9)
            _log_axis(ax, "x")
            ax.margins(x=0.08, y=0.1)
            ax.set_xlabel("training time (s, log scale)")
            ax.set_ylabel("test accuracy (%)")
            ax.set_title(dataset_label(ds))
        seen = {(kind, sub) for v in pts.values() for _, _, kind, sub, _ in v}
        handles = [Line2D([], [], marker="o" if kind == "resnet" else "s", color=_color(sub), ls="none",
                          markersize=8, label=model_label(sub) if kind == "resnet" else f"SVM {sub}")
                   for kind, sub in sorted(seen)]
        handles.append(Line2D([], [], color="black", ls="--", marker="o", markerfacecolor="none", markersize=10,
                              label="Pareto front"))
        fig.legend(handles=handles, loc="outside right upper")
        fig.suptitle("Accuracy vs training time")
        item.image = _save(fig, out / "fig5_pareto.png")
    item.sources = _run_ids(r for v in pts.values() for *_, r in v)
    return item


# --------------------------------------------------------------------------- Figure 4

def fig_convergence(R: Records, out: Path) -> Item:
    item = Item("fig3", "figure", "Figure 3: convergence",
                caption="Training loss and validation accuracy after each epoch, from each run's history.")
    def epochs_recorded(r: dict) -> int:
        return len([h for h in met(r, "history", []) or [] if isinstance(h, dict)])

    runs = [r for r in _ok_train(R) if epochs_recorded(r) >= 2]
    if not runs:
        if not R.ok("train"):
            item.not_run = R.reason("train")
        elif any(epochs_recorded(r) for r in _ok_train(R)):
            item.not_run = NotRun("every training run recorded a single epoch; curves need two or more")
        else:
            item.not_run = NotRun("no training run recorded a history")
        return item
    keys = varying_keys([r.get("config") or {} for r in runs], LABEL_KEYS)
    per_run = len(runs) <= 10
    with matplotlib.rc_context(STYLE):
        fig, axes = _new(13, 5, ncols=2)
        ax_loss, ax_acc = axes[0]
        styles = ["-", "--", ":", "-."]
        groups: dict[str, int] = {}
        for i, r in enumerate(sorted(runs, key=lambda r: _short(r, keys))):
            hist = sorted((h for h in met(r, "history", []) if isinstance(h, dict)), key=lambda h: h.get("epoch", 0))
            ep = [h.get("epoch") for h in hist]
            loss = [num(h.get("train_loss")) for h in hist]
            acc = [pct(h.get("val_accuracy")) for h in hist]
            ds = str(cfg(r, "dataset"))
            if per_run:
                color, ls, label = f"C{i % 10}", styles[0], _short(r, keys)
            else:
                color = _color(str(cfg(r, "model")))
                ls = styles[sorted({str(cfg(x, "dataset")) for x in runs}).index(ds) % len(styles)]
                label = f"{model_label(cfg(r, 'model'))} · {dataset_label(ds)}"
                if label in groups:
                    label = None
                else:
                    groups[label] = 1
            kw = {"color": color, "ls": ls, "marker": "o", "markersize": 4, "alpha": 0.9 if per_run else 0.6}
            ax_loss.plot(ep, [np.nan if v is None else v for v in loss], label=label, **kw)
            ax_acc.plot(ep, [np.nan if v is None else v for v in acc], label=label, **kw)
        ax_loss.set_xlabel("epoch")
        ax_loss.set_ylabel("training loss (cross-entropy)")
        ax_loss.set_title("Training loss")
        ax_acc.set_xlabel("epoch")
        ax_acc.set_ylabel("validation accuracy (%)")
        ax_acc.set_title("Validation accuracy")
        for ax in (ax_loss, ax_acc):
            ax.xaxis.get_major_locator().set_params(integer=True)
        ax_acc.legend(loc="lower right")
        item.image = _save(fig, out / "fig3_convergence.png")
    item.sources = _run_ids(runs)
    return item


# --------------------------------------------------------------------------- Figure 5

def fig_confusion(R: Records, out: Path) -> Item:
    item = Item("fig4", "figure", "Figure 4: confusion matrices of the best models",
                caption="Row-normalised confusion matrices (rows: true class, % of that class) of the most "
                        "accurate ResNet and SVM on each dataset.")
    panels = []
    datasets = sorted({str(cfg(r, "dataset")) for r in R.ok("train") + R.ok("svm")})
    for ds in datasets:
        for step, key, what in (("train", "test_accuracy", "ResNet"), ("svm", "accuracy", "SVM")):
            cands = [r for r in R.ok(step) if cfg(r, "dataset") == ds and _matrix(r) is not None
                     and num(met(r, key)) is not None]
            if cands:
                best = max(cands, key=lambda r: met(r, key))
                name = model_label(cfg(best, "model")) if step == "train" else \
                    f"SVM {cfg(best, 'kernel')} ({svm_backend(best)})"
                panels.append((ds, f"{dataset_label(ds)}: best {what}, {name}\n"
                                   f"test accuracy {pct(met(best, key)):.2f} %", best))
    if not panels:
        item.not_run = NotRun("no finished ResNet or SVM run recorded a confusion matrix") \
            if R.ok("train") or R.ok("svm") else NotRun(f"{R.reason('train').reason}; {R.reason('svm').reason}")
        return item
    ncols = min(2, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    with matplotlib.rc_context(STYLE):
        fig, axes = _new(7.2 * ncols, 6.6 * nrows, ncols=ncols, nrows=nrows)
        flat = [a for row in axes for a in row]
        for ax, (_, title, r) in zip(flat, panels, strict=False):
            cm = _matrix(r)
            rows = cm.sum(axis=1, keepdims=True)
            norm = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0) * 100
            ax.imshow(norm, cmap="Blues", vmin=0, vmax=100)
            n = cm.shape[0]
            for i in range(n):
                for j in range(n):
                    if cm[i, j]:
                        ax.text(j, i, f"{norm[i, j]:.0f}", ha="center", va="center", fontsize=8,
                                color="white" if norm[i, j] > 55 else "black")
            classes = R.classes_for(r)[:n]
            classes += [str(i) for i in range(len(classes), n)]
            ax.set_xticks(range(n), classes, rotation=45, ha="right", fontsize=9)
            ax.set_yticks(range(n), classes, fontsize=9)
            ax.set_xlabel("predicted class")
            ax.set_ylabel("true class")
            ax.set_title(title, fontsize=11)
            ax.grid(False)
        for ax in flat[len(panels):]:
            ax.set_visible(False)
        item.image = _save(fig, out / "fig4_confusion.png")
    item.sources = _run_ids(r for *_, r in panels)
    return item


def _matrix(rec: dict) -> np.ndarray | None:
    cm = met(rec, "confusion_matrix")
    try:
        a = np.asarray(cm, dtype=float)
    except (TypeError, ValueError):
        return None
    return a if a.ndim == 2 and a.shape[0] == a.shape[1] and a.shape[0] > 0 else None


# --------------------------------------------------------------------------- Figure 6

def fig_svm(R: Records, out: Path) -> Item:
    item = Item("fig7", "figure", "Figure 7: SVM accuracy vs fit time",
                caption=f"Each SVM run (filled) and the {ref.LABEL}'s scikit-learn results (hollow); colour: "
                        "backend, marker: kernel.")
    runs = [r for r in R.ok("svm") if num(met(r, "fit_seconds")) and pct(met(r, "accuracy")) is not None]
    if not runs:
        item.not_run = R.reason("svm") if not R.ok("svm") else NotRun("no SVM run recorded fit time and accuracy")
        return item
    markers = {"rbf": "o", "poly": "^"}
    with matplotlib.rc_context(STYLE):
        fig, axes = _new(10.5, 5.5)
        ax = axes[0][0]
        for r in runs:
            t, a, b, k = met(r, "fit_seconds"), pct(met(r, "accuracy")), svm_backend(r), str(cfg(r, "kernel"))
            ax.plot([t], [a], marker=markers.get(k, "s"), color=BACKEND_COLORS.get(b, "#555555"), markersize=10,
                    ls="none")
            n = met(r, "n_train") or cfg(r, "n_train")
            ax.annotate(f"{dataset_label(cfg(r, 'dataset'))}" + (f", {int(n):,} img" if num(n) else ""), (t, a),
                        xytext=(8, 4), textcoords="offset points", fontsize=8)
        shown_ref, labelled = False, set()
        for (ds, k), (a, t) in sorted(ref.SVM_SKLEARN.items(), key=lambda kv: -kv[1][0]):
            if any(cfg(r, "dataset") == ds for r in runs):
                shown_ref = True
                ax.plot([t], [a], marker=markers.get(k, "s"), markerfacecolor="none", markeredgecolor="gray",
                        markersize=10, markeredgewidth=1.5, ls="none")
                if ds not in labelled:
                    labelled.add(ds)
                    ax.annotate(f"{dataset_label(ds)} (A30)", (t, a), xytext=(0, 9), textcoords="offset points",
                                fontsize=8, color="gray", ha="center")
        _log_axis(ax, "x")
        ax.set_xlabel("fit time (s, log scale)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title("SVM accuracy vs fit time")
        handles = [Line2D([], [], color=BACKEND_COLORS.get(b, "#555555"), marker="o", ls="none", label=b)
                   for b in sorted({svm_backend(r) for r in runs})]
        handles += [Line2D([], [], color="black", marker=markers.get(k, "s"), markerfacecolor="none", ls="none",
                           label=f"kernel {k}") for k in sorted({str(cfg(r, "kernel")) for r in runs})]
        if shown_ref:
            handles.append(Line2D([], [], color="gray", marker="o", markerfacecolor="none", ls="none",
                                  label=ref.LABEL))
        fig.legend(handles=handles, loc="outside right upper")
        item.image = _save(fig, out / "fig7_svm_accuracy_vs_fit_time.png")
    item.sources = _run_ids(runs)
    return item


# --------------------------------------------------------------------------- Figure 7

def fig_speedup(R: Records, out: Path) -> Item:
    item = Item("fig6", "figure", "Figure 6: GPU speedup vs model complexity",
                caption="CPU time / GPU time of each configuration trained on both, against the forward "
                        "GFLOPs per image of its model at its input (1x28x28 unless the run resized it).")
    found = _paired(R, item, "device", ("cpu", "cuda"),
                    lambda _runs: "no configuration was trained on both CPU and GPU (see Table 4)")
    if found is None:
        return item
    groups = found[0]
    pts = []
    for base, by in groups:
        cpu, gpu = by["cpu"], by["cuda"]
        if not (is_ok(cpu) and is_ok(gpu)):
            continue
        a, b = num(met(cpu, "train_seconds")), num(met(gpu, "train_seconds"))
        g = profile_gflops(R, str(base.get("model")), base.get("stem"), base["input_size"], base["in_channels"])
        if isinstance(g, NotRun):
            item.not_run = g
            return item
        if a and b and g:
            pts.append((g, a / b, base, (cpu, gpu)))
    if not pts:
        item.not_run = NotRun("no configuration has both a CPU and a GPU time and a GFLOPs count")
        return item
    keys = [k for k in varying_keys([p[2] for p in pts], LABEL_KEYS) if k not in ("model", "device")]
    with matplotlib.rc_context(STYLE):
        fig, axes = _new(8.5, 5.2)
        ax = axes[0][0]
        for g, s, base, _ in pts:
            ax.plot([g], [s], marker="o", color=_color(str(base.get("model"))), markersize=10, ls="none")
            ax.annotate(_short({"config": base}, keys), (g, s), xytext=(8, 4), textcoords="offset points",
                        fontsize=8)
        ax.axhline(1.0, color="gray", lw=1, ls=":")
        ax.set_xlabel("forward GFLOPs per image (at its input, 2 FLOPs per multiply-add)")
        ax.set_ylabel("GPU speedup (CPU time / GPU time)")
        ax.set_ylim(bottom=0)
        ax.set_title("GPU speedup vs model complexity")
        handles = [Line2D([], [], color=_color(m), marker="o", ls="none", label=model_label(m))
                   for m in sorted({str(p[2].get("model")) for p in pts})]
        ax.legend(handles=handles, loc="best")
        item.image = _save(fig, out / "fig6_speedup_vs_gflops.png")
    item.sources = _run_ids([r for *_, pair in pts for r in pair] + R.ok("profile"))
    return item


# --------------------------------------------------------------------------- Figure 8

def fig_latency(R: Records, out: Path) -> Item:
    item = Item("fig8", "figure", "Figure 8: inference latency and throughput vs batch size",
                caption="Median latency per batch and throughput of ONNX Runtime (per provider) and PyTorch eager, "
                        "log-log axes.")
    series: dict[tuple[str, str, str, str], list[tuple[int, float, float | None]]] = defaultdict(list)
    for r in R.ok("onnx"):
        model = str(met(r, "model") or cfg(r, "model"))
        for x in met(r, "results", []) or []:
            if not isinstance(x, dict):
                continue
            b, p50 = num(x.get("batch_size")), num(x.get("p50_ms"))
            if b and p50:
                series[(model, str(x.get("runtime")), str(x.get("provider")), precision(x))].append(
                    (int(b), p50, num(x.get("throughput_ips"))))
    if not series:
        item.not_run = R.reason("onnx") if not R.ok("onnx") else NotRun("no inference timings recorded")
        return item
    styles = {"onnxruntime": "-", "pytorch": "--"}
    markers = {"cpu": "o", "cuda": "s", "tensorrt": "^"}
    with matplotlib.rc_context(STYLE):
        fig, axes = _new(13, 5.2 + 0.3 * math.ceil(len(series) / 4), ncols=2)
        ax_l, ax_t = axes[0]
        for (model, runtime, provider, prec), pts in sorted(series.items()):
            pts.sort()
            bs = [p[0] for p in pts]
            label = f"{model_label(model)} · {'ONNX Runtime' if runtime == 'onnxruntime' else 'PyTorch'} " \
                    f"{device_label(provider) if provider in ('cpu', 'cuda') else provider}" \
                    + (f" {prec}" if prec != "fp32" else "")
            kw = {"color": _color(model), "ls": styles.get(runtime, ":") if prec == "fp32" else "-.",
                  "marker": markers.get(provider, "D"), "label": label}
            ax_l.plot(bs, [p[1] for p in pts], **kw)
            kw.pop("label")
            thr = [p[2] if p[2] is not None else p[0] / p[1] * 1000 for p in pts]
            ax_t.plot(bs, thr, **kw)
        batches = sorted({p[0] for pts in series.values() for p in pts})
        for ax in (ax_l, ax_t):
            _log_axis(ax, "y")
            ax.set_xscale("log", base=2)
            ax.set_xticks(batches, [str(b) for b in batches])
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xlabel("batch size (images, log scale)")
        ax_l.set_ylabel("p50 latency per batch (ms, log scale)")
        ax_l.set_title("Latency")
        ax_t.set_ylabel("throughput (images/s, log scale)")
        ax_t.set_title("Throughput")
        fig.legend(loc="outside lower center", ncols=min(4, len(series)), frameon=False)
        item.image = _save(fig, out / "fig8_inference_latency.png")
    item.sources = _run_ids(R.ok("onnx"))
    return item


FIGURES = [fig_accuracy, fig_heatmap, fig_pareto, fig_convergence, fig_confusion, fig_svm, fig_speedup, fig_latency]
