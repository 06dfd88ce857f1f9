"""Times compared at the study's input: a cell with a published time takes its time from a run at 3x64x64
(the input the study's GFLOPs count) where one matches, its accuracy from the 1x28x28 run; every time says
which input it used; both time definitions reach the CSV; the banner names the catalog's devices."""

from __future__ import annotations

import csv
import json

import pandas as pd

from dlbench.report import run_report
from dlbench.report.collect import Records
from dlbench.report.step import build_banner
from dlbench.report.study_tables import comparison
from dlbench.spec import SvmConfig, TrainConfig
from tests.report.conftest import T1_BASE, svm_record, train_record

AT_64 = {"input_size": 64, "in_channels": 3}


def _pin_cfg(pin: bool, **extra) -> TrainConfig:
    """Table 3's Fashion-MNIST ResNet-18 row (batch 16, Adam, 4 epochs) with pin_memory on or off."""
    return TrainConfig(
        dataset="fashion-mnist",
        model="resnet18",
        batch_size=16,
        optimizer="adam",
        lr=1e-3,
        epochs=4,
        **{**T1_BASE, "pin_memory": pin},
        **extra,
    )


def _cell(C: pd.DataFrame, table: str, **match: str) -> dict:
    rows = C[C["table"] == table]
    for k, v in match.items():
        rows = rows[rows[k] == v]
    [row] = rows.to_dict("records")
    return row


def test_a_time_comes_from_the_run_at_the_studys_input_and_the_accuracy_from_the_1x28x28_run(tmp_path):
    small = train_record(tmp_path, _pin_cfg(True), 0.9100, 120.0)
    large = train_record(tmp_path, _pin_cfg(True, **AT_64), 0.9200, 480.0)
    train_record(tmp_path, _pin_cfg(False, **AT_64), 0.9150, 600.0)
    C = comparison(Records.load(tmp_path))
    on = _cell(C, "table3", dataset="fashion-mnist", model="resnet18", pin_memory="true")
    assert on["run_id"] == small["run_id"] and on["ours_accuracy_pct"] == 91.0
    assert on["time_run_id"] == large["run_id"] and on["ours_seconds"] == 480.0
    assert (on["our_input"], on["time_input"]) == ("1x28x28", "3x64x64")
    # pin off: no 1x28x28 run with pin off, so its accuracy (pin_memory does not change it) is the pinned
    # 1x28x28 run's, and its time the 3x64x64 run's
    off = _cell(C, "table3", dataset="fashion-mnist", model="resnet18", pin_memory="false")
    assert off["ours_seconds"] == 600.0 and off["time_input"] == "3x64x64"
    # Table 1 has no published time: a 3x64x64 run never fills it, the time is the 1x28x28 run's own
    t1 = _cell(
        C, "table1", dataset="fashion-mnist", model="resnet18", batch_size="16", optimizer="adam", lr="0.001"
    )
    assert t1["run_id"] == t1["time_run_id"] == small["run_id"] and t1["ours_seconds"] == 120.0


def test_a_cell_without_a_1x28x28_run_takes_the_timed_runs_accuracy(tmp_path):
    cfg = TrainConfig(
        dataset="fashion-mnist",
        model="resnet34",
        batch_size=16,
        optimizer="sgd",
        lr=1e-3,
        epochs=10,
        **{**T1_BASE, "device": "cpu", "amp": "off"},
        **AT_64,
    )
    rec = train_record(tmp_path, cfg, 0.93, 9000.0)
    C = comparison(Records.load(tmp_path))
    row = _cell(C, "table4", model="resnet34", optimizer="sgd", device="cpu")
    assert row["run_id"] == row["time_run_id"] == rec["run_id"]
    assert row["ours_accuracy_pct"] == 93.0 and row["ours_seconds"] == 9000.0


def test_the_report_says_which_input_each_time_used_and_gives_both_time_definitions(tmp_path):
    study = tmp_path / "study"
    small = train_record(study, _pin_cfg(True), 0.9100, 120.0)
    rec = train_record(study, _pin_cfg(True, **AT_64), 0.9200, 480.0)
    # the whole epochs' wall time (training and validation) as a record now gives it, per epoch
    path = study / "train" / rec["run_id"] / "record.json"
    d = json.loads(path.read_text())
    for h in d["metrics"]["history"]:
        h["wall_seconds"] = h["seconds"] + 30.0
    path.write_text(json.dumps(d))
    run_report(study, study / "report", log=lambda *a: None)
    with (study / "report" / "tables" / "pin_memory.csv").open() as f:
        rows = list(csv.DictReader(f))
    on = next(
        r
        for r in rows
        if r["dataset"] == "fashion-mnist" and r["model"] == "resnet18" and r["pin_memory"] == "true"
    )
    assert (on["run_id"], on["time_run_id"]) == (small["run_id"], rec["run_id"])
    assert (on["our_input"], on["time_input"]) == ("1x28x28", "3x64x64")
    assert float(on["ours_seconds"]) == 480.0 and float(on["ours_wall_seconds"]) == 480.0 + 4 * 30.0
    assert abs(float(on["time_ratio_wall"]) - 600.0 / float(on["study_seconds"])) < 1e-9
    html = (study / "report" / "report.html").read_text()
    assert "Input of our times: 1 at 3x64x64" in html
    assert "the study&#39;s likely definition" in html or "the study's likely definition" in html


def test_the_banner_names_the_catalog_devices_with_their_kind(tmp_path):
    train_record(tmp_path, _pin_cfg(True, device_name="h100"), 0.91, 120.0)
    train_record(tmp_path, _pin_cfg(False, device_name="l4"), 0.91, 300.0)
    train_record(tmp_path, _pin_cfg(True), 0.91, 100.0)  # the built-in cuda device
    svm = SvmConfig(dataset="mnist", kernel="rbf", device_name="vm")
    svm_record(tmp_path, svm, "sklearn", 0.97, 30.0, 5.0)
    R = Records.load(tmp_path)
    facts = dict(build_banner(R, comparison(R))["facts"])
    assert facts["devices"] == "GPU: 1 run, h100 (GPU): 1 run, l4 (GPU): 1 run, vm (CPU): 1 run"
