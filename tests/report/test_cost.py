"""One report from two machines (dlbench report --records A B --out O): each machine named with its
provenance, the same config on both never in one unnamed cell, dollars from each spec's catalog, the
cheapest device to reach an accuracy, energy, and the cost figures."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dlbench.cli import main
from dlbench.spec import SvmConfig, TrainConfig
from tests.report.conftest import data_record, svm_record, train_record

BASE = {"dataset": "fashion-mnist", "model": "resnet18", "batch_size": 64, "optimizer": "adam", "epochs": 2}


def machine(root: Path, host: str, pool: str, price: float | None, gpu_acc: float, gpu_s: float) -> Path:
    """A study folder as one machine leaves it: a run on its GPU pool, the same CPU run as the other
    machine, an SVM."""
    devices = {pool: {"kind": "cuda", "accelerator": "nvidia.com/gpu", "price_per_hour": price}}
    devices["cpu"] = {"kind": "cpu"}  # no price: hours only
    spec = {"name": f"study-{pool}", "devices": devices}
    root.mkdir(parents=True)
    (root / "spec.yaml").write_text(yaml.safe_dump(spec))
    data_record(root, "fashion-mnist", sample=False, n=70000)
    train_record(root, TrainConfig(**BASE, device="cuda", device_name=pool), gpu_acc, gpu_s)
    train_record(root, TrainConfig(**BASE, device="cpu"), 0.90, 3000.0)  # the same config on both
    svm_record(root, SvmConfig(dataset="fashion-mnist", kernel="rbf"), "sklearn", 0.88, 90.0, 30.0)
    for rec_path in root.rglob("record.json"):  # this machine's host name in every record
        rec = json.loads(rec_path.read_text())
        rec["environment"]["host"] = host
        if rec["step"] == "train" and rec["config"]["device"] == "cuda":
            rec["metrics"]["energy"] = {"gpu_joules": [900.0, 1100.0], "gpu_joules_per_epoch": 1000.0}
        elif rec["step"] == "train" and pool == "l4":  # a record written before energy readings
            del rec["metrics"]["energy"]
        rec_path.write_text(json.dumps(rec))
    return root


@pytest.fixture(scope="module")
def merged(tmp_path_factory):
    base = tmp_path_factory.mktemp("merged")
    a = machine(base / "h100-node", "gpu-node-a", "h100", 4.5, 0.92, 360.0)
    b = machine(base / "l4-node", "gpu-node-b", "l4", 0.8, 0.915, 1800.0)
    out = base / "report"
    assert main(["report", "--records", str(a), str(b), "--out", str(out)]) == 0
    return a, b, out


def test_both_machines_are_named_with_their_provenance(merged):
    a, b, out = merged
    md = (out / "report.md").read_text()
    assert "the machines merged in this report" in md
    m = pd.read_csv(out / "tables" / "machines.csv")
    assert list(m["machine"]) == ["h100-node", "l4-node"]
    assert list(m["host"]) == ["gpu-node-a", "gpu-node-b"]
    assert list(m["spec"]) == ["study-h100", "study-l4"]
    assert set(m["devices"]) == {"cpu, h100", "cpu, l4"}


def test_the_same_config_on_two_machines_is_two_named_rows(merged):
    _, _, out = merged
    runs = pd.read_csv(out / "tables" / "cost_per_run.csv")
    cpu = runs[(runs["step"] == "train") & (runs["device"] == "cpu")]
    run_id = TrainConfig(**BASE, device="cpu").run_id
    assert sorted(cpu["run_id"]) == [f"{run_id}@h100-node", f"{run_id}@l4-node"]
    assert sorted(cpu["machine"]) == ["h100-node", "l4-node"]
    # the study's own tables name the machine too where a run of each fills a cell
    other = (out / "tables").glob("*.csv")
    assert all(f"{run_id}," not in p.read_text() for p in other), "a bare run id would not say which machine"


def test_dollars_come_from_each_machines_catalog_and_unpriced_devices_give_hours(merged):
    _, _, out = merged
    runs = pd.read_csv(out / "tables" / "cost_per_run.csv").set_index("device")
    h100, l4 = runs.loc["h100"], runs.loc["l4"]
    assert h100["dollars"] == pytest.approx(380.0 / 3600 * 4.5)  # the record spans 360 s + 20 s
    assert l4["dollars"] == pytest.approx(1820.0 / 3600 * 0.8)
    assert h100["dollars_per_point"] == pytest.approx(h100["dollars"] / 92.0)
    assert runs.loc["cpu"]["dollars"].isna().all() and runs.loc["cpu"]["hours"].notna().all()
    per_device = pd.read_csv(out / "tables" / "cost_per_device.csv")
    assert {(m, d) for m, d in zip(per_device["machine"], per_device["device"], strict=True)} >= {
        ("h100-node", "h100"),
        ("l4-node", "l4"),
        ("h100-node", "cpu"),
        ("all", "all"),
    }
    md = (out / "report.md").read_text()
    assert "No price_per_hour for cpu" in md and "hours only" in md


def test_the_cheapest_device_to_reach_an_accuracy(merged):
    _, _, out = merged
    x = pd.read_csv(out / "tables" / "cheapest_to_reach.csv").set_index("reach_pct")
    # 91.5 % (L4, $0.40) and 92 % (H100, $0.475) both reach 90 %; the CPU runs (90 %) have no price
    assert x.loc[90.0, "device"] == "l4" and x.loc[90.0, "machine"] == "l4-node"
    assert x.loc[90.0, "by"] == "dollars (cpu: no price, not compared)"
    assert 95.0 not in x.index  # no run reached it


def test_without_any_price_the_cheapest_is_the_quickest_and_says_so():
    from dlbench.report.cost import cheapest

    F = pd.DataFrame(
        {
            "dataset": ["mnist", "mnist"],
            "device": ["vm", "big-vm"],
            "machine": ["a", "b"],
            "what": ["ResNet-18", "ResNet-18"],
            "run_id": ["r1", "r2"],
            "accuracy_pct": [97.0, 98.0],
            "hours": [2.0, 0.5],
            "dollars": [None, None],
        }
    )
    x = cheapest(F).set_index("reach_pct")
    assert x.loc[95.0, "device"] == "big-vm" and x.loc[95.0, "by"] == "hours (no device has a price)"


def test_energy_and_the_cost_figures(merged):
    _, _, out = merged
    e = pd.read_csv(out / "tables" / "energy.csv")
    gpu = e[e["device"].isin(["h100", "l4"])]
    assert list(gpu["gpu_joules"]) == [1000.0, 1000.0] and (gpu["per"] == "epoch").all()
    cpu = e[e["device"] == "cpu"]
    reasons = dict(zip(cpu["machine"], cpu["not_measured"], strict=True))
    assert reasons["h100-node"].startswith("cpu: no RAPL package zone under /sys/class/powercap")
    assert reasons["l4-node"] == "all: the record predates energy readings"
    for name in ("fig9_accuracy_vs_cost.png", "fig10_time_and_cost_per_device.png"):
        assert (out / "figures" / name).stat().st_size > 5000


def test_several_folders_need_an_out_folder(merged, capsys):
    a, b, _ = merged
    assert main(["report", "--records", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert "make one merged report" in err and "--out" in err and err.count("\n") == 1
    assert not (a / "report").exists()
