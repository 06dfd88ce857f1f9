"""The summary's pictures: ours against the study over every published cell, Table 1's differences as a
heatmap, the 10-vs-4-epoch gain, and every speedup in one chart. Same style as :mod:`figures`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from dlbench.report import claims as CL
from dlbench.report import reference as ref
from dlbench.report.collect import Records, dataset_label, model_label, num
from dlbench.report.document import Item, builder
from dlbench.report.figures import STUDY_STYLE, STYLE, _log_axis, _new, _save
from dlbench.report.study_tables import cell_runs

TABLE_COLORS = {
    "table1": "#1f77b4",
    "table2": "#ff7f0e",
    "table3": "#2ca02c",
    "table4": "#d62728",
    "svm": "#9467bd",
    "all-runs": "#8c564b",
}


@builder(
    "figure",
    "Ours against the study: every published cell",
    "Left: test accuracy, ours (y) against the study's (x) at every published cell we fill, the line y = x "
    "and a band of ±1 point; error bars: the 95 % interval of our repeats. Right: training time (whole "
    "training, s) and SVM fit time, log axes.",
    part="summary",
)
def published_vs_ours(item: Item, R: Records, C: pd.DataFrame, out: Path) -> None:
    with matplotlib.rc_context(STYLE):
        fig, axes = _new(13, 6, ncols=2)
        ax, bx = axes[0]
        has = pd.Series([num(v) is not None for v in C["ours_accuracy_pct"]], index=C.index)
        acc = C[has & (C["study_accuracy_pct"] != "")]
        for t, g in acc.groupby("table", sort=False):
            x = [float(v) for v in g["study_accuracy_pct"]]
            y = [float(v) for v in g["ours_accuracy_pct"]]
            err = [num(v) or 0.0 for v in g["ours_accuracy_ci95_pp"]]
            ax.errorbar(
                x, y, yerr=err, fmt="o", color=TABLE_COLORS[t], ms=6, alpha=0.8, label=ref.TABLE_TITLES[t]
            )
        lo = min([*(float(v) for v in C["study_accuracy_pct"] if v), *acc["ours_accuracy_pct"].astype(float)])
        grid = np.array([max(0.0, lo - 1), 100.0])
        ax.plot(grid, grid, color="black", lw=1, label="y = x")
        ax.fill_between(grid, grid - 1, grid + 1, color="gray", alpha=0.15, label="±1 point")
        ax.set_xlabel("study: test accuracy (%)")
        ax.set_ylabel("ours: test accuracy (%)")
        ax.set_title(f"accuracy ({len(acc)} of {int((C['study_accuracy_pct'] != '').sum())} cells)")
        ax.legend(fontsize=8)
        pts = []
        for _, r in C.iterrows():
            s = ref.value(r["study_seconds"]) or (ref.value(r["study_fit_ms"]) or 0) / 1000 or None
            o = num(r["ours_seconds"]) or ((num(r["ours_fit_ms"]) or 0) / 1000 or None)
            if s and o:
                pts.append((r["table"], s, o))
        for t in dict.fromkeys(p[0] for p in pts):
            xs = [p[1] for p in pts if p[0] == t]
            ys = [p[2] for p in pts if p[0] == t]
            bx.plot(xs, ys, "o", color=TABLE_COLORS[t], ms=6, alpha=0.8, label=ref.TABLE_TITLES[t])
        if pts:
            lo = min(min(p[1], p[2]) for p in pts) / 2
            hi = max(max(p[1], p[2]) for p in pts) * 2
            bx.plot([lo, hi], [lo, hi], color="black", lw=1, label="y = x")
            _log_axis(bx, "x")
            _log_axis(bx, "y")
            bx.legend(fontsize=8)
        bx.set_xlabel("study: seconds (log)")
        bx.set_ylabel("ours: seconds (log)")
        inputs = sorted({str(x) for x in C.get("time_input", pd.Series(dtype=object)) if isinstance(x, str)})
        bx.set_title(f"time ({len(pts)} cells" + (f"; ours at {' / '.join(inputs)}" if inputs else "") + ")")
        item.image = _save(fig, out / "summary_published_vs_ours.png")
    item.sources = cell_runs(C)


@builder(
    "figure",
    "Table 1's differences: ours − study (points)",
    "Each Table 1 cell's accuracy difference, ours minus the study's, in percentage points: blue where ours "
    "is higher, red where lower; grey: no run of ours.",
    part="summary",
)
def table1_difference(item: Item, R: Records, C: pd.DataFrame, out: Path) -> None:
    rows = C[C["table"] == "table1"]
    cols = list(dict.fromkeys(zip(rows["dataset"], rows["model"], strict=True)))
    keys = list(dict.fromkeys(zip(rows["batch_size"], rows["optimizer"], rows["lr"], strict=True)))
    grid = np.full((len(keys), len(cols)), np.nan)
    for _, r in rows.iterrows():
        d = num(r["accuracy_diff_pp"])
        if d is not None:
            grid[
                keys.index((r["batch_size"], r["optimizer"], r["lr"])), cols.index((r["dataset"], r["model"]))
            ] = d
    lim = max(1.0, float(np.nanmax(np.abs(grid)))) if np.isfinite(grid).any() else 1.0
    cmap = matplotlib.colormaps["RdBu"].with_extremes(bad="#dddddd")
    with matplotlib.rc_context(STYLE):
        fig, axes = _new(9, 7)
        ax = axes[0][0]
        im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=-lim, vmax=lim, aspect="auto")
        for i in range(len(keys)):
            for j in range(len(cols)):
                v = grid[i, j]
                ax.text(
                    j, i, f"{v:+.2f}" if np.isfinite(v) else "no run", ha="center", va="center", fontsize=9
                )
        ax.set_xticks(range(len(cols)), [f"{dataset_label(d)}\n{model_label(m)}" for d, m in cols])
        ax.set_yticks(
            range(len(keys)),
            [f"bs {b} · {o.upper() if o == 'sgd' else 'Adam'} · lr {lr}" for b, o, lr in keys],
        )
        ax.grid(False)
        fig.colorbar(im, ax=ax, label="ours − study (points)", shrink=0.85)
        item.image = _save(fig, out / "summary_table1_difference.png")
    item.sources = sorted({str(x) for x in rows["run_id"] if isinstance(x, str)})


def _paired_bars(ax, labels: list[str], study: list[float | None], ours: list[Any], unit: str) -> None:
    for i, (s, o) in enumerate(zip(study, ours, strict=True)):
        if s is not None:
            ax.barh(i + 0.2, s, 0.4, color="#777777", edgecolor="black", lw=0.5, **STUDY_STYLE)
        if o is not None:
            ax.barh(i - 0.2, o.mean, 0.4, color="#1f77b4", edgecolor="black", lw=0.5, xerr=o.half)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.legend(
        handles=[
            Line2D([], [], color="#1f77b4", lw=8, label="ours"),
            Line2D([], [], color="#777777", lw=8, alpha=0.45, label="study"),
        ],
        fontsize=8,
        loc="lower right",
    )


@builder(
    "figure",
    "The 10-vs-4-epoch gain (Table 2)",
    "Accuracy at 10 epochs minus at 4, per dataset and model: the study's (hatched) and ours (filled, with "
    "the 95 % interval of our repeats); the shaded band is the study's claim, 0.3-0.5 points.",
    part="summary",
)
def epochs_gain(item: Item, R: Records, C: pd.DataFrame, out: Path) -> None:
    effects = CL.epochs_gain_effects(C)
    with matplotlib.rc_context(STYLE):
        fig, axes = _new(9, 4.5)
        ax = axes[0][0]
        _paired_bars(
            ax,
            [e.where for e in effects],
            [e.study.mean if e.study else None for e in effects],
            [e.ours for e in effects],
            "pp",
        )
        ax.axvspan(0.3, 0.5, color="gold", alpha=0.3)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_xlabel("accuracy gain, 10 vs 4 epochs (points)")
        item.image = _save(fig, out / "summary_epochs_gain.png")
    item.sources = sorted({r for e in effects for r in e.runs})


@builder(
    "figure",
    "Every speedup in one chart",
    "The rows of 'Speedups in one place' as bars on a log axis: ours filled, the study's hatched; the dotted "
    "line is 1x (no speedup).",
    part="summary",
)
def all_speedups(item: Item, rows: list[dict], out: Path) -> None:
    rows = [r for r in rows if r.get("ours_x") is not None or r.get("study_x") is not None]
    from dlbench.report.uncertainty import Estimate

    with matplotlib.rc_context(STYLE):
        fig, axes = _new(11, max(3.0, 0.38 * len(rows) + 1.2))
        ax = axes[0][0]
        labels = [f"{r['speedup'].split(' (')[0]}: {r['where']}" for r in rows]
        ours = [
            Estimate(r["ours_x"], 1, r.get("ours_ci95_x")) if r.get("ours_x") is not None else None
            for r in rows
        ]
        _paired_bars(ax, labels, [r.get("study_x") for r in rows], ours, "x")
        ax.axvline(1.0, color="black", ls=":", lw=1)
        _log_axis(ax, "x")
        ax.set_xlabel("speedup (ratio of times, log scale)")
        ax.tick_params(axis="y", labelsize=8)
        item.image = _save(fig, out / "summary_speedups.png")
