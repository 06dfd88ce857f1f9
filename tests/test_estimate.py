"""dlbench spec expand --estimate: projections from a calibration, and the command's refusals."""

from __future__ import annotations

import json
import math

import pytest

from dlbench.cli import main
from dlbench.errors import DataError
from dlbench.estimate import estimate, load_calibration, shape_key, shape_of, split_sizes
from dlbench.plan import train_tasks
from dlbench.spec import load_spec, parse_spec


def gpu_spec() -> dict:
    return {
        "name": "g",
        "data": {"datasets": ["mnist", "fashion-mnist"], "subsample": 10_000},
        "train": {
            "fuse": True,
            "grids": [
                {
                    "models": ["resnet18"],
                    "batch_size": [16],
                    "lr": [1e-3, 1e-4],
                    "epochs": [3],
                    "device": ["cuda"],
                    "engine": ["resident"],
                    "amp": ["bf16"],
                },
                {
                    "name": "timing",
                    "datasets": ["fashion-mnist"],
                    "models": ["resnet18"],
                    "batch_size": [16],
                    "epochs": [3],
                    "device": ["cpu", "cuda"],
                    "engine": ["dataloader"],
                },
            ],
        },
        "svm": {"backends": ["sklearn"], "kernels": ["rbf"], "n_train": 2000},
    }


def calibration_for(spec, s_step: float) -> dict:
    shapes = {}
    for t in train_tasks(spec):
        sh = shape_of(t)
        shapes[shape_key(sh)] = {
            "shape": sh,
            "seconds_per_step": s_step * sh["members"],
            "eval_seconds_per_image": 1e-4,
            "setup_seconds": 2.0,
            "epoch_start_seconds": 0.5,
        }
    return {
        "format": 1,
        "shapes": shapes,
        "svm": {
            "n_fit": 500,
            "n_predict": 500,
            "kernels": {"rbf": {"fit_seconds": 1.0, "predict_seconds": 0.5}},
        },
        "onnx_cpu_seconds_per_image": {"resnet18": 1e-3},
    }


def test_projection_follows_the_formula_and_counts_a_fused_group_once():
    spec = parse_spec(gpu_spec())
    est = estimate(spec, calibration_for(spec, 0.01))
    sizes = split_sizes(spec, "mnist")
    assert sizes == {"train": 7000, "val": 1000, "test": 2000}
    steps = math.ceil(7000 / 16)
    group = next(t for t in est["tasks"] if t["shape"]["members"] == 4)
    # setup + epochs x (steps x s/step + epoch start + n_val x eval) + n_test x eval, eval for 4 members
    want = 2.0 + 3 * (steps * 0.04 + 0.5 + 1000 * 1e-4 * 4) + 2000 * 1e-4 * 4
    assert group["seconds"] == pytest.approx(want) and len(group["runs"]) == 4
    assert len(est["tasks"]) == 3  # the group, and the timing grid's two runs solo
    svm = est["svm"][0]["seconds"]
    assert svm == pytest.approx(1.0 * (2000 / 500) ** 2 + 0.5 * (2000 / 500) * (2000 / 500))
    assert est["total_seconds"] == pytest.approx(sum(est["steps"].values()))
    assert not est["not_calibrated"]


def test_shapes_missing_from_the_calibration_are_named_not_guessed():
    spec = parse_spec(gpu_spec())
    cal = calibration_for(spec, 0.01)
    cal["shapes"] = {k: v for k, v in cal["shapes"].items() if v["shape"]["device"] == "cpu"}
    est = estimate(spec, cal)
    assert [t["seconds"] is None for t in est["tasks"]].count(True) == 2
    assert len(est["not_calibrated"]) == 2 and all("device=cuda" in k for k in est["not_calibrated"])


def test_estimate_needs_step_times_and_a_readable_calibration(tmp_path, capsys):
    assert main(["spec", "expand", "quick", "--estimate"]) == 2
    assert "--calibrate" in capsys.readouterr().err
    bad = tmp_path / "cal.json"
    bad.write_text("{not json")
    assert main(["spec", "expand", "quick", "--estimate", "--calibration", str(bad)]) == 2
    assert "not a JSON calibration" in capsys.readouterr().err
    with pytest.raises(DataError, match="does not exist"):
        load_calibration(tmp_path / "absent.json")


def test_estimate_from_a_stored_calibration_prints_every_run_and_the_total(tmp_path, capsys):
    spec = load_spec("quick")
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(calibration_for(spec, 0.3)))
    assert main(["spec", "expand", "quick", "--estimate", "--calibration", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.count("\ntrain ") + out.startswith("train ") == 2 and "study quick: projected" in out
    assert "(fixed allowance)" in out


def test_the_estimate_counts_every_repeat_of_a_seeded_spec():
    one = parse_spec({**gpu_spec(), "train": {**gpu_spec()["train"], "fuse": False}})
    three = parse_spec({**gpu_spec(), "train": {**gpu_spec()["train"], "fuse": False}, "seeds": [0, 1, 2]})
    cal = calibration_for(three, 0.01)
    e1, e3 = estimate(one, cal), estimate(three, cal)
    assert len(e3["tasks"]) == 3 * len(e1["tasks"])
    assert e3["steps"]["train"] == pytest.approx(3 * e1["steps"]["train"])


def pools_spec() -> dict:
    return {
        "name": "pools",
        "devices": {
            "h100": {"kind": "cuda", "price_per_hour": 4.5},
            "l4": {"kind": "cuda", "price_per_hour": 0.8},
            "vm": {"kind": "cpu"},
        },
        "data": {"datasets": ["mnist"], "subsample": 10_000},
        "train": {"grids": [{"models": ["resnet18"], "batch_size": [64], "device": ["h100", "l4", "vm"]}]},
        "svm": {"backends": ["sklearn"], "kernels": ["rbf"], "n_train": 2000, "devices": {"sklearn": ["vm"]}},
    }


def test_the_estimate_projects_hours_and_dollars_per_catalog_device(tmp_path, capsys):
    spec = parse_spec(pools_spec())
    cal = calibration_for(spec, 0.01)
    # each pool is its own shape: a calibration from the H100 node does not stand in for the L4's
    assert sorted(sh["shape"]["device"] for sh in cal["shapes"].values()) == ["h100", "l4", "vm"]
    est = estimate(spec, cal)
    task = {t["shape"]["device"]: t["seconds"] for t in est["tasks"]}
    d = est["devices"]
    assert d["h100"]["seconds"] == pytest.approx(task["h100"])
    assert d["h100"]["dollars"] == pytest.approx(task["h100"] / 3600 * 4.5)
    assert d["l4"]["dollars"] == pytest.approx(task["l4"] / 3600 * 0.8)
    # the vm has no price: hours only; the SVM run is on the vm too
    svm = est["svm"][0]["seconds"]
    assert d["vm"]["dollars"] is None and d["vm"]["seconds"] == pytest.approx(task["vm"] + svm)
    path = tmp_path / "pools.yaml"
    path.write_text(json.dumps(pools_spec()))
    (tmp_path / "cal.json").write_text(json.dumps(cal))
    assert main(["spec", "expand", str(path), "--estimate", "--calibration", str(tmp_path / "cal.json")]) == 0
    out = capsys.readouterr().out
    assert "device h100: " in out and "at $4.50/h" in out
    assert "device vm: " in out and "no price_per_hour in the catalog: hours only" in out
    assert "cost: $" in out and "(without vm, cpu: no price, hours only)" in out


def test_calibrating_a_device_the_catalog_lacks_is_one_line(tmp_path, capsys):
    path = tmp_path / "pools.yaml"
    path.write_text(json.dumps(pools_spec()))
    assert main(["spec", "expand", str(path), "--calibrate", "--device", "a100"]) == 2
    err = capsys.readouterr().err
    assert "--device 'a100': choose cpu, cuda, h100, l4, vm" in err and err.count("\n") == 1
