"""The ``report`` step: every record of a run -> report.md, report.html, tables/*.csv, summary.json, figures.

The report opens with a banner (what kind of run this is, and the study it compares with), then the
study's own Tables 1-4, SVM table and results list, its Figures 1-7, then our extra tables and figures.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from dlbench.devices import BUILTIN_NAMES, device_name_of
from dlbench.errors import DataError
from dlbench.io import atomic_path, sha256_bytes, write_json
from dlbench.record import now_iso, step_record
from dlbench.report import claims as CL
from dlbench.report import cost
from dlbench.report import figures as F
from dlbench.report import headline as H
from dlbench.report import reference as ref
from dlbench.report import study_tables as S
from dlbench.report import summary_figures as SF
from dlbench.report import tables as T
from dlbench.report.collect import STEPS, NotRun, Records, cfg, device_label, is_ok, met, num, our_gflops, pct
from dlbench.report.document import Item, KeyValues, Section, fmt
from dlbench.report.render import render_html, render_markdown

HTML_NAME = "report.html"
MD_NAME = "report.md"
SUMMARY_NAME = "summary.json"


def _sections(R: Records, C: pd.DataFrame, fig_dir: Path, log) -> list[Section]:
    def safe(fn: Callable, kind: str, *args) -> Item | None:
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - one broken table or figure never stops the rest
            name = fn.__name__.replace("_", " ")
            log(f"report: could not build {name}: {type(exc).__name__}: {exc}")
            return Item(
                fn.__name__,
                kind,
                name,
                not_run=NotRun(f"the report could not build this {kind}: {type(exc).__name__}: {exc}"),
            )

    gflops = our_gflops(R) if R.ok("profile") else {}
    study_tables = [
        safe(fn, "table", C, gflops) if fn is S.cpu_vs_gpu else safe(fn, "table", C)
        for fn in S.STUDY_TABLES.values()
    ]
    filled = set(S.cell_runs(C))
    figs = [safe(fn, "figure", R, C, fig_dir) for fn in F.FIGURES]
    extra_tables = [
        safe(T.engines, "table", R),
        safe(T.other_runs, "table", R, filled),
        safe(T.svm_runs, "table", R),
        safe(T.inference_latency, "table", R),
        safe(T.model_complexity, "table", R),
    ]
    status = [safe(T.steps, "table", R), safe(T.failed, "table", R)]
    hardware = cost.cost_items(R, fig_dir, safe)  # machines, cost, energy (dlbench.report.cost)
    return [
        summary_section(R, C, [i for i in study_tables + figs + extra_tables if i], safe, fig_dir),
        Section(
            "study-tables",
            "The study's tables, ours beside them",
            f"Every number the study publishes, as printed, at its cell, with ours from the run whose "
            f"settings match the cell. Study: {ref.CITATION}.",
            [i for i in study_tables if i],
        ),
        Section(
            "study-figures",
            "The study's figures",
            "Numbered as the study numbers them.",
            [i for i in figs if i and i.part == "study"],
        ),
        Section(
            "ours",
            "Beyond the study",
            "Our runs the study has no cell for, and measurements it lacks.",
            [i for i in extra_tables + figs if i and i.part == "ours"],
        ),
        Section(
            "hardware",
            "Which hardware, at what cost",
            "The machines and devices the runs ran on, side by side: dollars (time x the catalog's "
            "price_per_hour), the cheapest device to reach an accuracy, and energy where it was measured.",
            hardware,
        ),
        Section("status", "Steps and failures", "", [i for i in status if i]),
    ]


def is_smoke(R: Records) -> bool:
    return bool(_spec(R).get("smoke")) or any(cfg(r, "smoke") for r in R.all)


def summary_section(R: Records, C: pd.DataFrame, items: list[Item], safe: Callable, fig_dir: Path) -> Section:
    """The first screen: the best model per dataset, every speedup, the agreement with the study's cells,
    the study's claims tested, and their pictures."""
    smoke, by_key = is_smoke(R), {i.key: i for i in items}
    parts = [
        safe(H.best_models, "table", R, C, smoke),
        safe(CL.claims, "table", C, smoke),
        safe(H.speedups, "table", C, by_key, smoke),
        safe(SF.all_speedups, "figure", H.speedup_rows(C, by_key), fig_dir),
        safe(H.agreement, "table", C, smoke),
        safe(SF.published_vs_ours, "figure", R, C, fig_dir),
        safe(SF.table1_difference, "figure", R, C, fig_dir),
        safe(SF.epochs_gain, "figure", R, C, fig_dir),
    ]
    intro = "Which model, which hardware, how sure are we: the answers first, the study's tables after."
    if smoke:
        intro = "SMOKE RUN: the numbers below are meaningless; only the wiring was tested. " + intro
    return Section("summary", "Summary", intro, [i for i in parts if i])


def run(config: None, inputs: dict[str, Any], out: str | os.PathLike, log=print) -> Path:
    """The step contract (:mod:`dlbench.runner`): no ``config`` (what the report shows follows from its
    records), every record below ``inputs["records"]`` (a folder, or a list of folders); returns
    report.html's path."""
    return run_report(inputs["records"], out, log=log)


def run_report(records_root: str | os.PathLike | list, out_dir: str | os.PathLike, log=print) -> Path:
    """Read every record below ``records_root`` (a folder, or a list of folders from several machines: one
    report with each machine named, :meth:`Records.load_many`); write the report into ``out_dir``; return
    report.html's path."""
    roots = (
        [Path(r) for r in records_root] if isinstance(records_root, list | tuple) else [Path(records_root)]
    )
    root, out = roots[0], Path(out_dir)
    for r in roots:
        if not r.is_dir():
            raise DataError(
                f"records folder {r} does not exist", "point --records at a study folder, e.g. runs/quick"
            )
    R = Records.load_many(roots, exclude=out)
    for s in R.sources:
        if not s["records"]:
            raise DataError(
                f"no record.json below {s['root']}", "point --records at a study folder, e.g. runs/quick"
            )
    where = " + ".join(str(r) for r in roots)
    log(f"report: {len(R.all)} records under {where}")
    config = {"records_root": str(root), "out_dir": str(out)}
    if R.merged:
        config["records_roots"] = [str(r) for r in roots]
    with step_record("report", config, out) as rec:
        for r in R.all:
            rec.add_input(f"{r.get('step')}/{r.get('run_id')}", path=Path(r["_dir"]) / "record.json")
        fig_dir, table_dir = out / "figures", out / "tables"
        C = S.comparison(R)
        F.SMOKE_MARK.set("SMOKE RUN: numbers meaningless" if is_smoke(R) else None)
        sections = _sections(R, C, fig_dir, log)
        items = [i for s in sections for i in s.items]
        if is_smoke(R):
            for i in items:
                i.caption = "SMOKE RUN (numbers meaningless). " + i.caption
        banner = build_banner(R, C)
        summary = build_summary(R, C, banner)
        summary["not_run"] = {i.key: i.not_run.reason for i in items if i.not_run is not None}
        summary.update(H.summary_json(C, {i.key: i for i in items}))
        summary["verdicts"] = {r["claim"]: r["verdict"] for r in summary.get("claims", [])}
        for r in summary.get("agreement", []):
            if r["table"] == "all 77 cells":
                summary["metrics"]["published_accuracy_cells_within_0_5_pp"] = float(r["within_0_5_pp"])
                summary["metrics"]["published_accuracy_cells_within_1_pp"] = float(r["within_1_pp"])
        summary["onnx_speedup_vs_pytorch"] = onnx_speedup(
            R, {i.key: i for i in items}.get("inference_latency"), summary
        )
        environment = build_environment(R, items)

        _clean(fig_dir, "*.png", {i.image.name for i in items if i.image is not None})
        written = []
        table_dir.mkdir(parents=True, exist_ok=True)
        for i in items:
            if i.frame is not None and i.not_run is None:
                path = table_dir / f"{i.key}.csv"
                _write_text(
                    path,
                    i.frame.drop(columns=[c for c in i.frame if str(c).startswith("_")]).to_csv(
                        index=False, lineterminator="\n"
                    ),
                )
                written.append(path)
        _clean(table_dir, "*.csv", {p.name for p in written})
        write_json(out / SUMMARY_NAME, summary)

        study = banner["preset"]
        title = (f"dlbench report: {study}" if study else "dlbench report") + (
            " (SMOKE RUN: numbers meaningless)" if banner["smoke"] else ""
        )
        subtitle = f"{len(R.all)} records from {where} · generated {summary['generated']}" + (
            f" · code {summary['code_version'][:12]}" if summary.get("code_version") else ""
        )
        footer = (
            "Self-contained: every figure is embedded; nothing is fetched. Tables as CSV (published values "
            "as printed, ours unrounded): tables/*.csv; headline numbers: summary.json; this report's "
            "record: record.json."
        )
        _write_text(out / MD_NAME, render_markdown(title, subtitle, banner, sections, environment))
        _write_text(out / HTML_NAME, render_html(title, subtitle, banner, sections, environment, footer))

        rec.add_output("report_html", out / HTML_NAME)
        rec.add_output("report_md", out / MD_NAME)
        rec.add_output("summary", out / SUMMARY_NAME)
        for p in written:
            rec.add_output(f"tables/{p.name}", p)
        for i in items:
            if i.image is not None:
                rec.add_output(f"figures/{i.image.name}", i.image)
        rec.metrics.update(summary["metrics"])
        rec.metrics["tables"] = sum(1 for i in items if i.kind == "table" and i.not_run is None)
        rec.metrics["figures"] = sum(1 for i in items if i.image is not None)
        rec.metrics["not_run"] = {i.key: i.not_run.reason for i in items if i.not_run is not None}
    made = [i.key for i in items if i.not_run is None]
    log(f"report: {len(made)} tables/figures, {len(items) - len(made)} not run -> {out / HTML_NAME}")
    return out / HTML_NAME


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _clean(folder: Path, pattern: str, keep: set[str]) -> None:
    """Remove this report's own outputs from an earlier run that this run did not make again."""
    if folder.is_dir():
        for p in folder.glob(pattern):
            if p.name not in keep:
                p.unlink()


def _spec(R: Records) -> dict:
    try:
        return yaml.safe_load(R.spec_text or "") or {}
    except yaml.YAMLError:
        return {}


# --------------------------------------------------------------------------- banner


def build_banner(R: Records, C: pd.DataFrame) -> dict[str, Any]:
    """What kind of run this is, and the study it is compared with."""
    spec = _spec(R)
    train = R.step("train") + R.step("svm")
    smoke = bool(spec.get("smoke")) or any(cfg(r, "smoke") for r in R.all)
    ran_on, planned = devices_ran(R)
    data = []
    subsampled = False
    for r in R.step("data"):
        man = r.get("_manifest") or {}
        sub = cfg(r, "subsample") or man.get("subsample")
        sample = met(r, "sample") or ((man.get("source") or {}).get("sample"))
        subsampled = subsampled or bool(sub) or bool(sample)
        sizes = " / ".join(fmt(met(r, f"n_{p}"), "int") for p in ("train", "val", "test"))
        data.append(
            f"{cfg(r, 'dataset') or man.get('dataset')}: {sizes} (train / val / test)"
            + (f", a stratified subsample of {int(sub):,} images" if sub else "")
            + (", from a sample, not the full dataset" if sample else "")
        )
    steps = sorted({m for r in R.step("train") if (m := cfg(r, "max_steps_per_epoch"))})
    epochs = max((cfg(r, "epochs") or 0 for r in R.step("train")), default=0)
    cut = any("epochs" in (cfg(r, "planned") or {}) for r in R.step("train"))
    filled = int(C["why_not"].map(lambda v: not isinstance(v, str)).sum())
    facts = [
        (
            "kind of run",
            ("SMOKE RUN (wiring test, numbers meaningless); " if smoke else "")
            + f"preset/spec {spec.get('name') or 'unknown (no spec.yaml)'}, {len(train)} train and SVM runs",
        ),
        ("devices", _devices_text(ran_on) or "no train or SVM records"),
        ("images per split", "; ".join(data) or "no data record"),
        (
            "subsampled",
            "yes: not comparable with full-data numbers" if subsampled else "no: the full datasets",
        ),
        ("steps per epoch", f"capped at {', '.join(map(str, steps))}" if steps else "all (no cap)"),
        ("precision", precision_line(R)),
        ("compared with", ref.CITATION),
        ("published cells", f"{len(C)} published values; {filled} have a run of ours at their cell"),
    ]
    if planned != ran_on:
        facts[1] = ("devices", f"{_devices_text(ran_on)} (the spec planned: {_devices_text(planned)})")
    return {
        "smoke": smoke,
        "preset": spec.get("name"),
        "facts": facts,
        "images": spec.get("data", {}).get("subsample") or "a few hundred",
        "steps": ", ".join(map(str, steps)) or "all",
        "epochs": f"at most {epochs} epochs (fewer than planned)" if cut else f"at most {epochs} epochs",
        "filled": filled,
    }


def devices_ran(R: Records) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    """The devices the train and SVM runs ran on and the ones the spec planned, from the records: (catalog
    name, kind) -> runs. A name is the spec's catalog device (``device_name``) or a built-in, cpu / cuda."""
    ran: dict[tuple[str, str], int] = defaultdict(int)
    planned: dict[tuple[str, str], int] = defaultdict(int)

    def kind(step: Any, x: dict, backend: Any = None) -> str:
        if step == "train":
            return str(x.get("device") or "cpu")
        return "cuda" if (backend or x.get("backend")) == "cuml" else "cpu"

    for r in R.step("train") + R.step("svm"):
        c = dict(r.get("config") or {})
        plan = {**c, **(c.get("planned") or {})}
        ran[(device_name_of(c), kind(r.get("step"), c, met(r, "backend")))] += 1
        planned[(device_name_of(plan), kind(r.get("step"), plan))] += 1
    return dict(sorted(ran.items())), dict(sorted(planned.items()))


def _devices_text(devices: dict[tuple[str, str], int]) -> str:
    """``h100 (GPU): 12 runs, vm (CPU): 4 runs``; a built-in device by its kind alone, ``GPU: 3 runs``."""
    return ", ".join(
        (device_label(name) if name in BUILTIN_NAMES else f"{name} ({device_label(kind)})")
        + f": {n} run{'s' if n != 1 else ''}"
        for (name, kind), n in devices.items()
    )


def precision_line(R: Records) -> str:
    """What precision the training runs used, from their records: per device that ran and AMP setting,
    the number of runs (and what a smoke run replaced)."""
    counts: dict[str, int] = defaultdict(int)
    for r in R.step("train"):
        amp, dev = cfg(r, "amp") or "off", device_label(cfg(r, "device"))
        planned = cfg(r, "planned") or {}
        what = "fp32 (AMP off)" if amp == "off" else f"{amp} autocast"
        if planned.get("amp"):
            what += f" (planned {planned['amp']} autocast on {device_label(planned.get('device'))})"
        counts[f"{what} on the {dev}"] += 1
    if not counts:
        return "no training records"
    return "; ".join(f"{k}: {n} run(s)" for k, n in sorted(counts.items())) + (
        " (the study: fp16 AMP on every run)"
    )


# --------------------------------------------------------------------------- summary


def build_summary(R: Records, C: pd.DataFrame, banner: dict) -> dict[str, Any]:
    """Headline numbers; ``summary["metrics"]`` is what a pipeline logs as KFP Metrics (named with their
    unit)."""
    from dlbench.record import git_commit

    commits = sorted({(r.get("environment") or {}).get("git_commit") for r in R.all} - {None})
    best = _best_per_dataset(
        R.ok("train"),
        "test_accuracy",
        lambda r: {
            "model": cfg(r, "model"),
            "epochs": cfg(r, "epochs"),
            "train_seconds": num(met(r, "train_seconds")),
        },
    )
    best_svm = _best_per_dataset(
        [r for r in R.ok("svm") if (cfg(r, "estimator") or "svm") == "svm"],  # the SVC's kernels
        "accuracy",
        lambda r: {"kernel": cfg(r, "kernel"), "fit_seconds": num(met(r, "fit_seconds"))},
    )
    s: dict[str, Any] = {
        "generated": now_iso(),
        "records_root": str(R.root),
        "smoke": banner["smoke"],
        "code_version": commits[0]
        if len(commits) == 1
        else (", ".join(commits) if commits else git_commit()),
        "steps": {step: {"ok": len(R.ok(step)), "failed": len(R.failed(step))} for step in STEPS},
        "best_resnet": best,
        "best_svm": best_svm,
        "published_cells": len(C),
        "published_cells_filled": banner["filled"],
        "compared_with": ref.STUDY,
    }
    m: dict[str, float] = {}
    for ds, b in best.items():
        m[f"best_resnet_test_accuracy_pct_{ds.replace('-', '_')}"] = b["accuracy_pct"]
    for ds, b in best_svm.items():
        m[f"best_svm_test_accuracy_pct_{ds.replace('-', '_')}"] = b["accuracy_pct"]
    m["published_cells_filled"] = float(banner["filled"])
    m["runs_ok"] = float(sum(1 for r in R.all if is_ok(r)))
    m["runs_failed"] = float(sum(1 for r in R.all if not is_ok(r)))
    s["metrics"] = m
    return s


def _best_per_dataset(runs: list[dict], metric: str, details: Callable[[dict], dict]) -> dict[str, dict]:
    """The most accurate of ``runs`` per dataset (``metric`` a fraction): its accuracy in %, its run id and
    ``details(run)``; the first of equals wins."""
    best: dict[str, dict] = {}
    for r in runs:
        a = pct(met(r, metric))
        ds = str(cfg(r, "dataset"))
        if a is not None and (ds not in best or a > best[ds]["accuracy_pct"]):
            best[ds] = {"accuracy_pct": a, "run_id": r.get("run_id"), **details(r)}
    return best


def onnx_speedup(R: Records, item: Item | None, summary: dict) -> dict | None:
    """The largest ONNX Runtime speedup over PyTorch of Table 8 (``inference_latency``); timings marked
    low-confidence (too few timed iterations) are left out, and when only those exist the summary says so."""
    best = None
    if item is not None and item.frame is not None and item.not_run is None:
        for _, row in item.frame.iterrows():
            v = num(row.get("speedup_vs_pytorch"))
            if not row.get("low_confidence") and v is not None and (best is None or v > best["ratio"]):
                best = {
                    "ratio": float(v),
                    "model": str(row["model"]),
                    "provider": str(row["provider"]),
                    "batch_size": int(row["batch_size"]) if num(row["batch_size"]) is not None else None,
                }
    low = [r for r in R.ok("onnx") if met(r, "low_confidence")]
    if low and best is None:
        summary["not_run"].setdefault(
            "inference_latency",
            f"low confidence: the ONNX timings of {len(low)} run(s) "
            "come from fewer than 20 timed iterations (see Table 8)",
        )
    if best is not None:
        summary["metrics"]["onnx_speedup_vs_pytorch_max_x"] = float(best["ratio"])
    return best


# --------------------------------------------------------------------------- environment


def _kv(key: str, title: str, rows: list[dict], notes: list[str] | None = None) -> KeyValues:
    return KeyValues(
        key,
        title,
        view=pd.DataFrame(rows).astype(object).fillna("—").astype(str) if rows else None,
        notes=notes or [],
    )


def _dirty_text(flags: set) -> str:
    if True in flags:
        return "yes: the tree had uncommitted changes (the commit alone does not reproduce it)"
    return "no" if False in flags else "not recorded"


def step_times(R: Records) -> list[dict]:
    """Per step: its records, their wall time in total and the longest (each record's ``seconds``)."""
    rows = []
    for step in (*STEPS, *sorted({str(r.get("step")) for r in R.all} - set(STEPS))):
        secs = [x for r in R.step(step) if (x := num(r.get("seconds"))) is not None]
        if secs:
            rows.append(
                {
                    "step": step,
                    "records": len(R.step(step)),
                    "wall time, total (s)": f"{sum(secs):,.1f}",
                    "longest (s)": f"{max(secs):,.1f}",
                }
            )
    return rows


def build_environment(R: Records, items: list[Item]) -> list[KeyValues]:
    machines: dict[str, dict] = {}
    for r in R.all:
        d, e = r.get("device") or {}, r.get("environment") or {}
        row = {
            "device": device_label(d.get("type")),
            "GPU": d.get("name") if d.get("type") != "cpu" else None,
            "driver": d.get("driver"),
            "CUDA": d.get("cuda"),
            "CPU": e.get("cpu"),
            "cores": e.get("cpu_count"),
            "memory GiB": e.get("memory_gib"),
            "host": e.get("host"),
            "Python": e.get("python"),
            "platform": e.get("platform"),
        }
        m = machines.setdefault(repr(sorted(row.items(), key=str)), {**row, "_steps": defaultdict(int)})
        m["_steps"][str(r.get("step"))] += 1
    rows = [
        {"steps (records)": ", ".join(f"{s} ({n})" for s, n in sorted(m.pop("_steps").items())), **m}
        for m in machines.values()
    ]
    out = [_kv("env-machines", "Machines", rows)]
    code: dict[tuple, set] = defaultdict(set)
    libs: dict[tuple, set] = defaultdict(set)
    for r in R.all:
        e = r.get("environment") or {}
        code[(e.get("git_commit") or "unknown", e.get("dlbench"))].add(str(r.get("step")))
        for name, version in (e.get("libraries") or {}).items():
            libs[(name, str(version))].add(str(r.get("step")))
    dirty: dict[tuple, set] = defaultdict(set)
    for r in R.all:
        e = r.get("environment") or {}
        dirty[(e.get("git_commit") or "unknown", e.get("dlbench"))].add(e.get("git_dirty"))
    out.append(
        _kv(
            "env-code",
            "Code version",
            [
                {
                    "git commit": c,
                    "dlbench": v,
                    "uncommitted changes": _dirty_text(dirty[(c, v)]),
                    "steps": ", ".join(sorted(st)),
                }
                for (c, v), st in sorted(code.items(), key=str)
            ],
        )
    )
    out.append(_kv("env-steps", "Wall time per step", step_times(R)))
    if libs:
        out.append(
            _kv(
                "env-libraries",
                "Library versions",
                [
                    {"library": n, "version": v, "steps": ", ".join(sorted(st))}
                    for (n, v), st in sorted(libs.items())
                ],
            )
        )
    data = []
    for r in R.step("data"):
        man = r.get("_manifest") or {}
        src = man.get("source") or {}
        data.append(
            {
                "dataset": cfg(r, "dataset") or man.get("dataset"),
                "source": src.get("description") or met(r, "source")
                if is_ok(r)
                else f"failed: {r.get('error')}",
                "sample?": "yes: a sample, not the full dataset" if met(r, "sample") else "no",
                "subsample": fmt(cfg(r, "subsample") or man.get("subsample"), "int"),
                "train": fmt(met(r, "n_train"), "int"),
                "val": fmt(met(r, "n_val"), "int"),
                "test": fmt(met(r, "n_test"), "int"),
                "split SHA-256": met(r, "fingerprint"),
                "data run id": r.get("run_id"),
            }
        )
    out.append(
        _kv(
            "env-data",
            "Data",
            data,
            ["The fingerprint is the SHA-256 of the split file every later step read."]
            if data
            else [f"not run: {R.reason('data').reason}"],
        )
    )
    prov = []
    for i in items:
        shown = ", ".join(i.sources[:8]) + (f" and {len(i.sources) - 8} more" if len(i.sources) > 8 else "")
        prov.append(
            {
                "table / figure": i.title.split(":")[0],
                "records (run ids)": f"not run: {i.not_run.reason}"
                if i.not_run is not None
                else (f"{len(i.sources)} record(s): {shown}" if i.sources else "no records"),
                "file": f"figures/{i.image.name}"
                if i.image is not None
                else f"tables/{i.key}.csv"
                if i.frame is not None and i.not_run is None
                else "—",
            }
        )
    notes = (
        [
            f"Every table and figure was produced by the study spec below (spec.yaml, SHA-256 "
            f"{sha256_bytes(R.spec_text.encode())[:16]}...), through the records named here."
        ]
        if R.spec_text
        else [f"No spec.yaml under {R.root}: the records were produced by separate step commands."]
    )
    out.append(_kv("env-provenance", "What produced each table and figure", prov, notes))
    if R.spec_text:
        out.append(KeyValues("env-spec", "Study spec (spec.yaml)", text=R.spec_text.rstrip()))
    return out
