"""Which hardware, at what cost: the machines a (merged) report holds, dollars and energy per run and per
device, the cheapest device to reach an accuracy, and their figures.

A run's cost is the time its record spans (``seconds``: the step from start to end, what the node was held
for; a fused group's members share the group's time evenly) times its device's ``price_per_hour`` from the
catalog of the spec it ran under (``devices:``, :mod:`dlbench.devices`). A device without a price gives hours
only, and the tables say so. Energy is what the records measured (:mod:`dlbench.energy`): joules per
training epoch and per 1,000 inferences, or "not measured" with the reason.

Every builder returns an :class:`~dlbench.report.document.Item` (``frame`` raw, ``view`` formatted);
:func:`cost_items` is the one call the report makes.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pandas as pd

from dlbench.devices import BUILTIN, DeviceEntry, device_name_of
from dlbench.report.collect import (
    NotRun,
    Records,
    cfg,
    classical_label,
    dataset_label,
    is_ok,
    met,
    model_label,
    num,
    pct,
)
from dlbench.report.document import Item, builder, fmt, run_ids, view_of

LEVELS = (50.0, 60.0, 70.0, 80.0, 85.0, 90.0, 95.0, 99.0)  # accuracies "cheapest to reach X %" asks about
DEVICE_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def catalog_of(spec_text: str | None) -> dict[str, DeviceEntry]:
    """The device catalog of a folder's spec.yaml (the built-in one without a spec, or one that does not
    parse)."""
    if not spec_text:
        return dict(BUILTIN)
    import yaml

    from dlbench.errors import DlbenchError
    from dlbench.spec import parse_spec

    try:
        return parse_spec(yaml.safe_load(spec_text) or {}, "spec.yaml").catalog()
    except (yaml.YAMLError, DlbenchError):
        return dict(BUILTIN)


def _what(r: dict) -> str:
    if r.get("step") == "svm":
        return f"{classical_label(r.get('config') or {})} ({met(r, 'backend') or cfg(r, 'backend')})"
    return model_label(cfg(r, "model"))


def cost_frame(R: Records) -> pd.DataFrame:
    """One row per finished train and SVM run: where it ran, its accuracy, hours, price and dollars."""
    catalogs = {s["label"]: catalog_of(s["spec_text"]) for s in R.sources} if R.sources else {}
    rows = []
    for r in R.ok("train") + R.ok("svm"):
        c = r.get("config") or {}
        device = device_name_of(c)
        cat = catalogs.get(R.source_of(r).get("label")) or dict(BUILTIN)
        entry = cat.get(device)
        seconds = num(r.get("seconds"))
        members = int(met(r, "fused_members") or 1)
        if seconds is not None:
            seconds /= members
        accuracy = pct(met(r, "test_accuracy" if r.get("step") == "train" else "accuracy"))
        price = entry.price_per_hour if entry is not None else None
        dollars = seconds / 3600 * price if seconds is not None and price is not None else None
        rows.append(
            {
                "machine": r.get("_source") or (R.sources[0]["label"] if R.sources else R.root.name),
                "device": device,
                "kind": entry.kind if entry is not None else c.get("device"),
                "step": r.get("step"),
                "run_id": r.get("run_id"),
                "dataset": c.get("dataset"),
                "what": _what(r),
                "accuracy_pct": accuracy,
                "seconds": seconds,
                "hours": seconds / 3600 if seconds is not None else None,
                "price_per_hour": price,
                "dollars": dollars,
                "dollars_per_point": dollars / accuracy if dollars is not None and accuracy else None,
            }
        )
    return pd.DataFrame(rows)


def _no_price_note(F: pd.DataFrame) -> list[str]:
    missing = sorted({str(d) for d, p in zip(F["device"], F["price_per_hour"], strict=True) if pd.isna(p)})
    if not missing:
        return []
    return [
        f"No price_per_hour for {', '.join(missing)} in its spec's devices: catalog: hours only for "
        "those runs (add e.g. devices: {" + missing[0] + ": {kind: ..., price_per_hour: 0.5}})."
    ]


COST_NOTE = (
    "$ = the seconds the run's record spans (the step from start to end) x its device's price_per_hour / "
    "3600; fused runs share their group's time evenly. $ per point = $ / test accuracy in %."
)


def _machine_cols(R: Records) -> dict[str, str]:
    return {"machine": "text"} if R.merged else {}


@builder(
    "table",
    "Table 11: cost per run, time x price",
    "Every finished ResNet and SVM run with its device (the spec's catalog name), hours and dollars.",
)
def cost_per_run(item: Item, R: Records) -> None:
    F = cost_frame(R)
    if F.empty:
        item.not_run = NotRun("no finished train or SVM run to cost")
        return
    item.frame = F
    kinds = {
        **_machine_cols(R),
        "device": "text",
        "dataset": "dataset",
        "what": "text",
        "run_id": "text",
        "accuracy_pct": "pct",
        "hours": "float",
        "price_per_hour": "s2",
        "dollars": "float",
        "dollars_per_point": "float",
    }
    labels = {
        "what": "model",
        "run_id": "run",
        "accuracy_pct": "accuracy (%)",
        "price_per_hour": "$/h",
        "dollars": "$",
        "dollars_per_point": "$ per accuracy point",
    }
    item.view = view_of(F, kinds, labels)
    item.notes = [COST_NOTE, *_no_price_note(F)]
    item.sources = sorted(str(x) for x in F["run_id"])


def device_frame(F: pd.DataFrame) -> pd.DataFrame:
    """Per machine and device: runs, hours, dollars (None when the device has no price), best accuracy; then
    the whole table's total."""
    rows = []
    for (machine, device), g in F.groupby(["machine", "device"], sort=False):
        priced = g["price_per_hour"].notna().all()
        rows.append(
            {
                "machine": machine,
                "device": device,
                "kind": g["kind"].iloc[0],
                "runs": len(g),
                "hours": g["hours"].sum(),
                "price_per_hour": g["price_per_hour"].iloc[0] if priced else None,
                "dollars": g["dollars"].sum() if priced else None,
                "best_accuracy_pct": g["accuracy_pct"].max(),
            }
        )
    out = pd.DataFrame(rows)
    if len(out) > 1:
        priced = out["dollars"].notna().all()
        out.loc[len(out)] = {
            "machine": "all",
            "device": "all",
            "kind": "",
            "runs": int(out["runs"].sum()),
            "hours": out["hours"].sum(),
            "price_per_hour": None,
            "dollars": out["dollars"].sum() if priced else None,
            "best_accuracy_pct": out["best_accuracy_pct"].max(),
        }
    return out


@builder(
    "table",
    "Table 12: time and cost per device",
    "Hardware side by side: the hours and dollars of every finished run per device (and machine), the best "
    "accuracy each reached; the last row is the whole table's.",
)
def cost_per_device(item: Item, R: Records) -> None:
    F = cost_frame(R)
    if F.empty:
        item.not_run = NotRun("no finished train or SVM run to cost")
        return
    D = device_frame(F)
    item.frame = D
    kinds = {
        **_machine_cols(R),
        "device": "text",
        "kind": "text",
        "runs": "int",
        "hours": "float",
        "price_per_hour": "s2",
        "dollars": "float",
        "best_accuracy_pct": "pct",
    }
    labels = {"price_per_hour": "$/h", "dollars": "$", "best_accuracy_pct": "best accuracy (%)"}
    item.view = view_of(D, kinds, labels)
    item.notes = [COST_NOTE, *_no_price_note(F)]
    if D["dollars"].isna().any():
        item.notes.append("$ reads — where a device has no price: its hours stand alone.")
    item.sources = sorted(str(x) for x in F["run_id"])


def cheapest(F: pd.DataFrame, levels: tuple[float, ...] = LEVELS) -> pd.DataFrame:
    """Per dataset and accuracy level some run reached: the cheapest run reaching it, by dollars among the
    runs with a price (the row names the devices without one, not compared), else by hours."""
    rows = []
    for ds, g in F[F["accuracy_pct"].notna()].groupby("dataset", sort=True):
        for level in levels:
            cands = g[g["accuracy_pct"] >= level]
            if cands.empty:
                continue
            priced = cands[cands["dollars"].notna()]
            unpriced = sorted(set(cands.loc[cands["dollars"].isna(), "device"].astype(str)))
            if priced.empty:
                best, by = cands.sort_values("hours", kind="stable").iloc[0], "hours (no device has a price)"
            else:
                best = priced.sort_values("dollars", kind="stable").iloc[0]
                by = "dollars" + (f" ({', '.join(unpriced)}: no price, not compared)" if unpriced else "")
            rows.append(
                {
                    "dataset": ds,
                    "reach_pct": level,
                    "device": best["device"],
                    "machine": best["machine"],
                    "what": best["what"],
                    "run_id": best["run_id"],
                    "accuracy_pct": best["accuracy_pct"],
                    "hours": best["hours"],
                    "dollars": best["dollars"],
                    "by": by,
                    "candidates": len(cands),
                }
            )
    return pd.DataFrame(rows)


@builder(
    "table",
    "Table 13: the cheapest device to reach an accuracy",
    "For each accuracy some run reached: the run (and its device) that reached it for the fewest dollars.",
)
def cheapest_to_reach(item: Item, R: Records) -> None:
    F = cost_frame(R)
    X = cheapest(F) if not F.empty else pd.DataFrame()
    if X.empty:
        item.not_run = NotRun("no finished train or SVM run with an accuracy")
        return
    item.frame = X
    kinds = {
        "dataset": "dataset",
        "reach_pct": "pct",
        "device": "text",
        **_machine_cols(R),
        "what": "text",
        "accuracy_pct": "pct",
        "hours": "float",
        "dollars": "float",
        "by": "text",
        "candidates": "int",
    }
    labels = {
        "reach_pct": "to reach (%)",
        "what": "model",
        "accuracy_pct": "reached (%)",
        "dollars": "$",
        "by": "cheapest by",
        "candidates": "runs that reach it",
    }
    item.view = view_of(X, kinds, labels)
    item.notes = [COST_NOTE, *_no_price_note(F)]
    item.sources = sorted({str(x) for x in X["run_id"]})


def energy_frame(R: Records) -> pd.DataFrame:
    """Joules per training epoch (each train run) and per 1,000 inferences (each ONNX timing), by kind."""
    rows = []
    for r in R.ok("train"):
        e = met(r, "energy")
        if not isinstance(e, dict):
            e = {"not_measured": {"all": "the record predates energy readings"}}
        rows.append(
            {
                "machine": r.get("_source") or "",
                "device": device_name_of(r.get("config") or {}),
                "what": f"{model_label(cfg(r, 'model'))} training epoch",
                "run_id": r.get("run_id"),
                "gpu_joules": num(e.get("gpu_joules_per_epoch")),
                "cpu_joules": num(e.get("cpu_joules_per_epoch")),
                "per": "epoch",
                "not_measured": "; ".join(f"{k}: {v}" for k, v in (e.get("not_measured") or {}).items()),
            }
        )
    for r in R.ok("onnx"):
        for x in met(r, "results", []) or []:
            e = x.get("energy") if isinstance(x, dict) else None
            if not isinstance(e, dict):
                continue
            rows.append(
                {
                    "machine": r.get("_source") or "",
                    "device": x.get("device"),
                    "what": f"{model_label(cfg(r, 'model') or met(r, 'model'))} {x.get('runtime')} "
                    f"{x.get('provider')} batch {x.get('batch_size')}",
                    "run_id": r.get("run_id"),
                    "gpu_joules": num(e.get("gpu_joules_per_1000_inferences")),
                    "cpu_joules": num(e.get("cpu_joules_per_1000_inferences")),
                    "per": "1,000 inferences",
                    "not_measured": "; ".join(f"{k}: {v}" for k, v in (e.get("not_measured") or {}).items()),
                }
            )
    return pd.DataFrame(rows)


@builder(
    "table",
    "Table 14: energy per epoch and per 1,000 inferences",
    "What the hardware's counters read around each timed region: NVML's total energy on an NVIDIA GPU, "
    "RAPL's package counters on the CPU; where neither is exposed, not measured, with the reason.",
)
def energy(item: Item, R: Records) -> None:
    E = energy_frame(R)
    if E.empty:
        item.not_run = NotRun("no finished train or ONNX run")
        return
    item.frame = E
    measured = E["gpu_joules"].notna() | E["cpu_joules"].notna()
    if not measured.any():
        reasons = sorted({x for x in E["not_measured"] if x})
        item.not_run = NotRun("not measured: " + " | ".join(reasons[:3]))
        return
    kinds = {
        **_machine_cols(R),
        "device": "text",
        "what": "text",
        "per": "text",
        "gpu_joules": "float",
        "cpu_joules": "float",
        "not_measured": "text",
    }
    labels = {"gpu_joules": "GPU J", "cpu_joules": "CPU J", "not_measured": "not measured"}
    item.view = view_of(E, kinds, labels)
    item.notes = ["J per epoch: the epoch's training steps (validation excluded), as timed."]
    item.sources = run_ids({"run_id": x} for x in E["run_id"])


# --------------------------------------------------------------------------- figures


def _colors(devices: list[str]) -> dict[str, str]:
    return {d: DEVICE_COLORS[i % len(DEVICE_COLORS)] for i, d in enumerate(devices)}


def _label(row, merged: bool) -> str:
    return f"{row['device']} ({row['machine']})" if merged else str(row["device"])


@builder(
    "figure",
    "Figure 9: accuracy against cost per device, Pareto front",
    "Every finished run: test accuracy against its dollars (hours where a device has no price), one colour "
    "per device; the dashed line joins the runs no other run beats on both cost and accuracy.",
)
def accuracy_vs_cost(item: Item, R: Records, out: Path) -> None:
    from dlbench.report.figures import STYLE, _new, _save, pareto_front

    F = cost_frame(R)
    F = F[F["accuracy_pct"].notna() & F["hours"].notna()] if not F.empty else F
    if F.empty:
        item.not_run = NotRun("no finished run with an accuracy and a time")
        return
    use_dollars = F["dollars"].notna().all()
    x_key = "dollars" if use_dollars else "hours"
    F = F.assign(_label=[_label(r, R.merged) for _, r in F.iterrows()])
    colors = _colors(list(dict.fromkeys(F["_label"])))
    datasets = sorted(set(F["dataset"]))
    with matplotlib.rc_context(STYLE):
        fig, axes = _new(6.5 * len(datasets), 5, ncols=len(datasets))
        for ax, ds in zip(axes[0], datasets, strict=True):
            g = F[F["dataset"] == ds]
            for label, h in g.groupby("_label", sort=False):
                ax.plot(h[x_key], h["accuracy_pct"], "o", color=colors[label], label=label, alpha=0.85)
            if len(g) >= 2:
                pts = list(zip(g[x_key], g["accuracy_pct"], strict=True))
                front = [pts[i] for i in pareto_front(pts)]
                ax.step(
                    [a for a, _ in front], [b for _, b in front], where="post", color="black", ls="--", lw=1
                )
            if (g[x_key] > 0).all() and g[x_key].max() / max(g[x_key].min(), 1e-12) > 20:
                ax.set_xscale("log")
            ax.set_xlabel("cost ($)" if use_dollars else "time (hours; a device has no price)")
            ax.set_ylabel("test accuracy (%)")
            ax.set_title(dataset_label(ds))
            ax.legend(frameon=False)
        item.image = _save(fig, out / "fig9_accuracy_vs_cost.png")
    if not use_dollars:
        item.notes = ["Hours, not dollars: " + " ".join(_no_price_note(F))]
    item.sources = sorted(str(x) for x in F["run_id"])


@builder(
    "figure",
    "Figure 10: time and cost per device",
    "Side by side for every device: the hours of its finished runs and what they cost (no bar where the "
    "device has no price).",
)
def time_and_cost_per_device(item: Item, R: Records, out: Path) -> None:
    from dlbench.report.figures import STYLE, _new, _save

    F = cost_frame(R)
    if F.empty:
        item.not_run = NotRun("no finished train or SVM run to cost")
        return
    D = device_frame(F)
    D = D[D["device"] != "all"]
    labels = [_label(r, R.merged) for _, r in D.iterrows()]
    colors = _colors(labels)
    with matplotlib.rc_context(STYLE):
        fig, axes = _new(max(8, 1.6 * len(D) * 2), 4.5, ncols=2)
        ax_t, ax_c = axes[0]
        ax_t.bar(labels, D["hours"], color=[colors[x] for x in labels])
        ax_t.set_ylabel("hours")
        ax_t.set_title("time")
        dollars = [num(v) for v in D["dollars"]]
        ax_c.bar(labels, [v or 0 for v in dollars], color=[colors[x] for x in labels])
        for i, v in enumerate(dollars):
            if v is None:
                ax_c.text(i, 0, "no price", ha="center", va="bottom", fontsize=9, rotation=90)
        ax_c.set_ylabel("$")
        ax_c.set_title("cost")
        for ax in (ax_t, ax_c):
            ax.tick_params(axis="x", rotation=30)
        item.image = _save(fig, out / "fig10_time_and_cost_per_device.png")
    item.notes = _no_price_note(F)
    item.sources = sorted(str(x) for x in F["run_id"])


# --------------------------------------------------------------------------- machines


@builder(
    "table",
    "Table 10: the machines merged in this report",
    "Each folder of records (one machine each) with its provenance: host, CPU, GPU and driver as its "
    "records say, the spec it ran, its devices; a run is named by its folder in every table "
    "(run id @ folder, and the machine column).",
)
def machines(item: Item, R: Records) -> None:
    rows = []
    for s in R.sources:
        recs = [r for r in R.all if r.get("_source") == s["label"]] if R.merged else R.all
        env = [r.get("environment") or {} for r in recs]
        dev = [r.get("device") or {} for r in recs]

        def joined(values) -> str:
            return ", ".join(sorted({str(v) for v in values if v})) or "—"

        spec_name = None
        if s["spec_text"]:
            import yaml

            try:
                spec_name = (yaml.safe_load(s["spec_text"]) or {}).get("name")
            except yaml.YAMLError:
                spec_name = "unreadable spec.yaml"
        rows.append(
            {
                "machine": s["label"],
                "folder": str(s["root"]),
                "host": joined(e.get("host") for e in env),
                "CPU": joined(e.get("cpu") for e in env),
                "GPU": joined(d.get("name") for d in dev if d.get("type") == "cuda"),
                "driver": joined(d.get("driver") for d in dev),
                "spec": spec_name or "—",
                "devices": joined(
                    device_name_of(r.get("config") or {}) for r in recs if r.get("step") in ("train", "svm")
                ),
                "records": s["records"],
                "ok": sum(1 for r in recs if is_ok(r)),
            }
        )
    item.frame = pd.DataFrame(rows)
    item.view = item.frame.astype(object).map(lambda v: fmt(v)).astype(str)


def cost_items(R: Records, fig_dir: Path, safe) -> list[Item]:
    """This module's tables and figures, in order, each through the report's ``safe(fn, kind, *args)``."""
    items = [safe(machines, "table", R)] if R.merged else []
    items += [
        safe(cost_per_run, "table", R),
        safe(cost_per_device, "table", R),
        safe(cheapest_to_reach, "table", R),
        safe(energy, "table", R),
        safe(accuracy_vs_cost, "figure", R, fig_dir),
        safe(time_and_cost_per_device, "figure", R, fig_dir),
    ]
    return [i for i in items if i is not None]


__all__ = ["cost_frame", "cost_items", "cheapest", "device_frame", "energy_frame", "catalog_of"]
