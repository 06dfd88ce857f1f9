"""The ``report`` step: every record of a run -> report.md, report.html, tables/*.csv, summary.json, figures."""

from __future__ import annotations

import csv
import io
import os
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlbench.errors import DataError
from dlbench.io import atomic_path, sha256_bytes, write_json
from dlbench.record import now_iso, step_record
from dlbench.report import figures as F
from dlbench.report import tables as T
from dlbench.report.collect import (
    STEPS,
    NotRun,
    Records,
    cfg,
    dataset_label,
    device_label,
    is_ok,
    met,
    model_label,
    num,
)
from dlbench.report.render import KeyValues, Section, render_html, render_markdown
from dlbench.report.tables import Col, Item, Table, csv_value, fmt

HTML_NAME = "report.html"
MD_NAME = "report.md"
SUMMARY_NAME = "summary.json"

# (section key, title, intro, builders); each builder is (kind, function).
LAYOUT: list[tuple[str, str, str, list[tuple[str, Callable]]]] = [
    ("status", "Steps and failures", "", [("table", T.table_steps), ("table", T.table_failed)]),
    ("accuracy", "Accuracy", "How accurate each model is, and how settings and training length change it.",
     [("table", T.table1), ("figure", F.fig_accuracy), ("figure", F.fig_heatmap), ("table", T.table2),
      ("figure", F.fig_convergence), ("figure", F.fig_confusion)]),
    ("cost", "Cost and speed of training", "What each run cost in time, and what the hardware and the training "
     "loop change.",
     [("figure", F.fig_pareto), ("table", T.table3), ("table", T.table4), ("figure", F.fig_speedup),
      ("table", T.table_engines)]),
    ("svm", "SVMs", "", [("table", T.table_svm), ("table", T.table_svm_backends), ("figure", F.fig_svm)]),
    ("inference", "Inference and model complexity", "",
     [("table", T.table_onnx), ("figure", F.fig_latency), ("table", T.table_flops)]),
]


def run_report(records_root: str | os.PathLike, out_dir: str | os.PathLike, log=print) -> Path:
    """Read every record below ``records_root``; write the report into ``out_dir``; return report.html's path."""
    root, out = Path(records_root), Path(out_dir)
    if not root.is_dir():
        raise DataError(f"records folder {root} does not exist", "point --records at a study folder, e.g. runs/quick")
    R = Records.load(root, exclude=out)
    if not R.all:
        raise DataError(f"no record.json below {root}", "point --records at a study folder, e.g. runs/quick")
    log(f"report: {len(R.all)} records under {root}")
    config = {"records_root": str(root), "out_dir": str(out)}
    with step_record("report", config, out) as rec:
        for r in R.all:
            rec.add_input(f"{r.get('step')}/{r.get('run_id')}", path=Path(r["_dir"]) / "record.json")
        fig_dir, table_dir = out / "figures", out / "tables"
        sections = []
        for key, title, intro, builders in LAYOUT:
            s = Section(key, title, intro)
            for kind, fn in builders:
                item = _safe(fn, kind, R, fig_dir, log)
                if item is not None:
                    s.items.append(item)
            sections.append(s)
        items = [i for s in sections for i in s.items]
        summary = build_summary(R, {i.key: i for i in items})
        environment = build_environment(R, items)

        _clean(fig_dir, "*.png", {i.image.name for i in items if i.image is not None})
        written = _write_tables(table_dir, items)
        _clean(table_dir, "*.csv", {p.name for p in written})
        write_json(out / SUMMARY_NAME, summary)

        study = _study_name(R)
        title = f"dlbench report: {study}" if study else "dlbench report"
        subtitle = (f"{len(R.all)} records from {root} · generated {summary['generated']}"
                    + (f" · code {summary['code_version'][:12]}" if summary.get("code_version") else ""))
        cards = headline_cards(summary)
        footer = ("Self-contained: every figure is embedded; nothing is fetched. Tables as CSV: tables/*.csv; "
                  "headline numbers: summary.json; this report's record: record.json.")
        _write_text(out / MD_NAME, render_markdown(title, subtitle, cards, sections, environment))
        _write_text(out / HTML_NAME, render_html(title, subtitle, cards, sections, environment, footer))

        rec.add_output("report_html", out / HTML_NAME)
        rec.add_output("report_md", out / MD_NAME)
        rec.add_output("summary", out / SUMMARY_NAME)
        for p in written:
            rec.add_output(f"tables/{p.name}", p)
        for i in items:
            if i.image is not None:
                rec.add_output(f"figures/{i.image.name}", i.image)
        rec.metrics.update(summary["metrics"])
        rec.metrics["tables"] = sum(1 for i in items if i.kind == "table" and i.table is not None)
        rec.metrics["figures"] = sum(1 for i in items if i.image is not None)
        rec.metrics["not_run"] = {i.key: i.not_run.reason for i in items if i.not_run is not None}
    made = [i.key for i in items if i.not_run is None]
    log(f"report: {len(made)} tables/figures, {len(items) - len(made)} not run -> {out / HTML_NAME}")
    return out / HTML_NAME


def _safe(fn: Callable, kind: str, R: Records, fig_dir: Path, log) -> Item | None:
    """One table or figure; a bug in one never stops the rest (it shows as not run, with the error)."""
    try:
        return fn(R, fig_dir) if kind == "figure" else fn(R)
    except Exception as exc:  # noqa: BLE001 - reported in the item and the log
        name = fn.__name__.replace("_", " ")
        log(f"report: could not build {name}: {type(exc).__name__}: {exc}")
        return Item(fn.__name__, kind, name,
                    not_run=NotRun(f"the report could not build this {kind}: {type(exc).__name__}: {exc}"))


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _clean(folder: Path, pattern: str, keep: set[str]) -> None:
    """Remove this report's own outputs from an earlier run that this run did not make again."""
    if folder.is_dir():
        for p in folder.glob(pattern):
            if p.name not in keep:
                p.unlink()


def _write_tables(folder: Path, items: list[Item]) -> list[Path]:
    written = []
    for i in items:
        if i.table is None:
            continue
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([c.key for c in i.table.columns])
        for row in i.table.rows:
            w.writerow([csv_value(row.get(c.key)) for c in i.table.columns])
        path = folder / f"{i.key}.csv"
        _write_text(path, buf.getvalue())
        written.append(path)
    return written


def _study_name(R: Records) -> str | None:
    if R.spec_text:
        import yaml

        try:
            return str((yaml.safe_load(R.spec_text) or {}).get("name") or "") or None
        except yaml.YAMLError:
            return None
    return None


# --------------------------------------------------------------------------- summary

def _best(recs: list[dict], key: str) -> dict[str, dict]:
    best: dict[str, dict] = {}
    for r in recs:
        a = num(met(r, key))
        ds = str(cfg(r, "dataset"))
        if a is not None and (ds not in best or a > best[ds]["accuracy"]):
            best[ds] = {"accuracy": a, "run_id": r.get("run_id")}
            if r.get("step") == "train":
                best[ds].update(model=cfg(r, "model"), device=cfg(r, "device"), epochs=cfg(r, "epochs"),
                                train_seconds=num(met(r, "train_seconds")))
            else:
                best[ds].update(kernel=cfg(r, "kernel"), backend=met(r, "backend") or cfg(r, "backend"),
                                fit_seconds=num(met(r, "fit_seconds")), n_train=met(r, "n_train"))
    return best


def _max_in(item: Item | None, key: str, fields: tuple[str, ...]) -> dict | None:
    """The row with the largest ``key``; rows marked ``low_confidence`` (too few timed iterations) are left out."""
    if item is None or item.table is None:
        return None
    best = None
    for row in item.table.rows:
        if row.get("low_confidence"):
            continue
        v = num(row.get(key))
        if v is not None and (best is None or v > best["ratio"]):
            best = {"ratio": v, **{f: row.get(f) for f in fields if f in row}}
    return best


def _slug(s: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in s)


def build_summary(R: Records, items: dict[str, Item]) -> dict[str, Any]:
    """Headline numbers (also what a pipeline logs as KFP Metrics: ``summary["metrics"]``, numbers only)."""
    from dlbench.record import git_commit

    commits = sorted({(r.get("environment") or {}).get("git_commit") for r in R.all} - {None})
    s: dict[str, Any] = {
        "generated": now_iso(),
        "records_root": str(R.root),
        "code_version": commits[0] if len(commits) == 1 else (", ".join(commits) if commits else git_commit()),
        "steps": {step: {"ok": len(R.ok(step)), "failed": len(R.failed(step))} for step in STEPS},
        "best_resnet": _best(R.ok("train"), "test_accuracy"),
        "best_svm": _best(R.ok("svm"), "accuracy"),
        "engine_speedup": _max_in(items.get("table5"), "ratio", ("dataset", "model", "device", "batch_size")),
        "gpu_speedup": _max_in(items.get("table4"), "speedup_gpu", ("dataset", "model", "optimizer", "epochs")),
        "cuml_fit_speedup": _max_in(items.get("table7"), "fit_speedup", ("dataset", "kernel", "n_train")),
        "onnx_speedup_vs_pytorch": _max_in(items.get("table8"), "speedup_vs_pytorch",
                                           ("model", "provider", "batch_size")),
        "not_run": {k: i.not_run.reason for k, i in items.items() if i.not_run is not None},
    }
    low = [r for r in R.ok("onnx") if (r.get("metrics") or {}).get("low_confidence")]
    if low and not s["onnx_speedup_vs_pytorch"]:
        s["not_run"].setdefault("table8", f"low confidence: the ONNX timings of {len(low)} run(s) come from "
                                          "fewer than 20 timed iterations (see Table 8)")
    m: dict[str, float] = {}
    for ds, b in s["best_resnet"].items():
        m[f"best_resnet_accuracy_{_slug(ds)}"] = b["accuracy"]
    for ds, b in s["best_svm"].items():
        m[f"best_svm_accuracy_{_slug(ds)}"] = b["accuracy"]
    for key in ("engine_speedup", "gpu_speedup", "cuml_fit_speedup", "onnx_speedup_vs_pytorch"):
        if s[key]:
            m[f"{key}_max"] = s[key]["ratio"]
    m["runs_ok"] = float(sum(1 for r in R.all if is_ok(r)))
    m["runs_failed"] = float(sum(1 for r in R.all if not is_ok(r)))
    s["metrics"] = m
    return s


def headline_cards(summary: dict) -> list[tuple[str, str, str]]:
    cards = []
    for ds, b in sorted(summary["best_resnet"].items()):
        cards.append((f"best ResNet, {dataset_label(ds)}", f"{b['accuracy'] * 100:.2f} %",
                      f"{model_label(b.get('model'))}, {b.get('epochs')} ep on {device_label(b.get('device'))}"
                      + (f", {fmt(b['train_seconds'], 's')} s" if b.get("train_seconds") is not None else "")))
    if not summary["best_resnet"]:
        cards.append(("best ResNet", "not run", summary["not_run"].get("table1", "no finished training run")))
    for ds, b in sorted(summary["best_svm"].items()):
        cards.append((f"best SVM, {dataset_label(ds)}", f"{b['accuracy'] * 100:.2f} %",
                      f"{b.get('kernel')} kernel, {b.get('backend')}"
                      + (f", fit {fmt(b['fit_seconds'], 's')} s" if b.get("fit_seconds") is not None else "")))
    if not summary["best_svm"]:
        cards.append(("best SVM", "not run", summary["not_run"].get("table6", "no finished SVM run")))
    for key, label, table in (("engine_speedup", "resident vs dataloader engine", "table5"),
                              ("gpu_speedup", "GPU vs CPU training", "table4"),
                              ("cuml_fit_speedup", "cuML vs scikit-learn fit", "table7"),
                              ("onnx_speedup_vs_pytorch", "ONNX Runtime vs PyTorch (p50)", "table8")):
        v = summary.get(key)
        if v:
            detail = ", ".join(_detail(f, v[f]) for f in v if f != "ratio" and v[f] is not None)
            cards.append((f"fastest: {label}", f"{v['ratio']:.2f}x", detail))
        else:
            why = summary["not_run"].get(table, "no data")
            cards.append((label, "low confidence" if str(why).startswith("low confidence") else "not run", why))
    return cards


def _detail(field: str, value: Any) -> str:
    if field in ("dataset", "model", "device"):
        return fmt(value, field)
    return {"batch_size": f"batch {value}", "provider": f"provider {value}", "kernel": f"{value} kernel",
            "epochs": f"{value} epochs", "n_train": f"{fmt(value, 'int')} train images"}.get(field, str(value))


# --------------------------------------------------------------------------- environment

def build_environment(R: Records, items: list[Item]) -> list[KeyValues]:
    out = []
    # Machines: distinct (device, CPU, host) with the steps that ran on them.
    machines: dict[str, dict] = {}
    for r in R.all:
        d, e = r.get("device") or {}, r.get("environment") or {}
        row = {"device": d.get("type"), "device_name": d.get("name") if d.get("type") != "cpu" else None,
               "driver": d.get("driver"), "cuda": d.get("cuda"), "cudnn": d.get("cudnn"),
               "gpu_memory_gib": d.get("memory_gib"), "cpu": e.get("cpu") or (d.get("name") if d.get("type") == "cpu"
                                                                              else None),
               "cpu_count": e.get("cpu_count"), "host": e.get("host"), "python": e.get("python"),
               "platform": e.get("platform")}
        k = repr(sorted(row.items(), key=lambda kv: kv[0]))
        m = machines.setdefault(k, {**row, "steps": defaultdict(int)})
        m["steps"][str(r.get("step"))] += 1
    fields = [("steps", "steps (records)", "text"), ("device", "device", "device"), ("device_name", "GPU", "text"),
              ("driver", "driver", "text"), ("cuda", "CUDA", "text"), ("cudnn", "cuDNN", "text"),
              ("gpu_memory_gib", "GPU memory (GiB)", "float"), ("cpu", "CPU", "text"), ("cpu_count", "cores", "int"),
              ("host", "host", "text"), ("python", "Python", "text"), ("platform", "platform", "text")]
    ms = list(machines.values())
    for m in ms:
        m["steps"] = ", ".join(f"{s} ({n})" for s, n in sorted(m["steps"].items()))
    # One column per machine, one row per fact: reads better than a wide table.
    cols = [Col("fact", "")] + [Col(f"m{i}", f"machine {i + 1} ({device_label(m.get('device'))})")
                                for i, m in enumerate(ms)]
    rows = [{"fact": label, **{f"m{i}": fmt(m.get(k), kind) if m.get(k) is not None else None
                              for i, m in enumerate(ms)}}
            for k, label, kind in fields if any(m.get(k) is not None for m in ms)]
    out.append(KeyValues("env-machines", "Machines", Table(cols, rows)))

    # Code and libraries.
    code: dict[tuple, set] = defaultdict(set)
    libs: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for r in R.all:
        e = r.get("environment") or {}
        code[(e.get("git_commit"), e.get("dlbench"))].add(str(r.get("step")))
        for name, version in (e.get("libraries") or {}).items():
            libs[name][str(version)].add(str(r.get("step")))
        b, bv = met(r, "backend"), met(r, "backend_version")
        if r.get("step") == "svm" and b and bv:
            libs[f"{b} (SVM backend)"][str(bv)].add("svm")
    rows = [{"git_commit": c or "unknown (not a git checkout and DLBENCH_GIT_COMMIT unset)", "dlbench": v,
             "steps": ", ".join(sorted(steps))} for (c, v), steps in sorted(code.items(), key=str)]
    out.append(KeyValues("env-code", "Code version", Table([Col("git_commit", "git commit"),
                                                            Col("dlbench", "dlbench"), Col("steps", "steps")], rows)))
    rows = [{"library": name, "version": v, "steps": ", ".join(sorted(steps))}
            for name in sorted(libs) for v, steps in sorted(libs[name].items())]
    if rows:
        out.append(KeyValues("env-libraries", "Library versions",
                             Table([Col("library", "library"), Col("version", "version"), Col("steps", "steps")],
                                   rows)))

    # Data.
    data_rows = []
    for r in R.step("data"):
        man = r.get("_manifest") or {}
        src = man.get("source") or {}
        ds = cfg(r, "dataset") or man.get("dataset")
        sample = met(r, "sample", src.get("sample"))
        sub = cfg(r, "subsample") or man.get("subsample")
        if not is_ok(r):
            data_rows.append({"dataset": ds, "source": NotRun(f"data {r.get('run_id')} failed: "
                                                              f"{r.get('error') or 'unknown error'}")})
            continue
        data_rows.append({
            "dataset": ds, "source": src.get("description") or met(r, "source") or src.get("kind"),
            "sample": ("yes: a sample, not the full dataset" if sample else "no")
                      + (f"; stratified subsample of {int(sub):,} images" if sub else ""),
            "n_train": met(r, "n_train"), "n_val": met(r, "n_val"), "n_test": met(r, "n_test"),
            "fingerprint": met(r, "fingerprint"), "run_id": r.get("run_id")})
    if data_rows:
        out.append(KeyValues("env-data", "Data", Table(
            [Col("dataset", "dataset", "dataset"), Col("source", "source"), Col("sample", "sample?"),
             Col("n_train", "train", "int"), Col("n_val", "val", "int"), Col("n_test", "test", "int"),
             Col("fingerprint", "split SHA-256", "hash"), Col("run_id", "data run id")], data_rows),
            notes=["The fingerprint is the SHA-256 of the split file (split.npz) every later step read."]))
    else:
        out.append(KeyValues("env-data", "Data", text=None, notes=[f"not run: {R.reason('data').reason}"]))

    # Provenance of every table and figure.
    prov = []
    for i in items:
        if i.not_run is not None:
            what = f"not run: {i.not_run.reason}"
        else:
            shown = ", ".join(i.sources[:8]) + (f" and {len(i.sources) - 8} more" if len(i.sources) > 8 else "")
            what = f"{len(i.sources)} record(s): {shown}" if i.sources else "no records"
        prov.append({"item": i.title.split(":")[0], "from": what,
                     "file": (f"figures/{i.image.name}" if i.image is not None else
                              f"tables/{i.key}.csv" if i.table is not None else None)})
    notes = []
    if R.spec_text:
        notes.append(f"Every table and figure was produced by the study spec below (spec.yaml, SHA-256 "
                     f"{sha256_bytes(R.spec_text.encode())[:16]}...), through the records named here.")
    else:
        notes.append(f"No spec.yaml under {R.root}: the records were produced by separate step commands; "
                     "each record's config says what ran.")
    out.append(KeyValues("env-provenance", "What produced each table and figure",
                         Table([Col("item", "table / figure"), Col("from", "records (run ids)"), Col("file", "file")],
                               prov), notes=notes))
    if R.spec_text:
        out.append(KeyValues("env-spec", "Study spec (spec.yaml)", text=R.spec_text))
    return out
