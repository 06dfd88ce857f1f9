"""The device catalog: catalog names on the grid's device axis, the SVM backends and the ONNX task; the
built-in cpu and cuda keep every run id; bad entries are one line."""

from __future__ import annotations

import pytest

from dlbench.errors import SpecError
from dlbench.plan import build_plan, expand_svm, expand_train, smoke_spec
from dlbench.spec import load_spec, parse_spec

POOLS = {
    "h100": {
        "kind": "cuda",
        "accelerator": "nvidia.com/gpu",
        "node_selector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
        "price_per_hour": 4.5,
    },
    "l4": {
        "kind": "cuda",
        "accelerator": "nvidia.com/gpu",
        "node_selector": {"nvidia.com/gpu.product": "NVIDIA-L4"},
        "price_per_hour": 0.8,
    },
    "vm": {"kind": "cpu", "price_per_hour": 0.1},
}


def pools_spec(**changes):
    d = {
        "name": "pools",
        "devices": POOLS,
        "train": {"grids": [{"models": ["resnet18"], "device": ["h100", "l4", "vm"]}]},
        "svm": {"backends": ["sklearn", "cuml"], "devices": {"sklearn": ["vm"], "cuml": ["l4", "h100"]}},
        "onnx": {"providers": ["cpu", "cuda"], "device": "l4"},
    }
    d.update(changes)
    return parse_spec(d, "pools.yaml")


@pytest.mark.parametrize("preset", ["quick", "reference"])
def test_a_catalog_with_the_built_in_names_keeps_every_run_id(preset):
    spec = load_spec(preset)
    priced = parse_spec(
        {**spec.model_dump(), "devices": {"cpu": {"kind": "cpu", "price_per_hour": 0.2}}}, "priced.yaml"
    )
    ids = [c.run_id for c in expand_train(spec)] + [c.run_id for c in expand_svm(spec)]
    assert ids == [c.run_id for c in expand_train(priced)] + [c.run_id for c in expand_svm(priced)]
    assert all(c.device_name is None for c in expand_train(spec))


def test_catalog_names_run_as_their_kind_and_get_their_own_run_ids():
    spec = pools_spec()
    runs = expand_train(spec)
    assert [(c.device, c.device_name) for c in runs] == [("cuda", "h100"), ("cuda", "l4"), ("cpu", "vm")]
    assert len({c.run_id for c in runs}) == 3
    plan = build_plan(spec)
    assert [t.device_name for t in plan.stage("train_gpu")] == ["h100", "l4"]
    assert [t.device_name for t in plan.stage("train_cpu")] == ["vm"]
    svm = {(c.backend, c.device_name) for c in expand_svm(spec)}
    assert svm == {("sklearn", "vm"), ("cuml", "l4"), ("cuml", "h100")}
    assert plan.onnx.device_name == "l4" and plan.onnx.gpu


def test_a_smoke_run_of_a_pool_runs_on_the_cpu_and_keeps_the_pool_as_planned():
    runs = expand_train(smoke_spec(pools_spec()))
    assert {c.device for c in runs} == {"cpu"} and all(c.device_name is None for c in runs)
    assert [c.planned.get("device_name") for c in runs] == ["h100", "l4", "vm"]


@pytest.mark.parametrize(
    "changes, words",
    [
        (
            {"train": {"grids": [{"device": ["a100"]}]}},
            "train.grids.0.device: device 'a100' is not in the catalog",
        ),
        (
            {"svm": {"backends": ["cuml"], "devices": {"cuml": ["vm"]}}},
            "svm.devices.cuml: vm is a cpu device",
        ),
        ({"onnx": {"providers": ["cuda"], "device": "vm"}}, "onnx.device: vm is a cpu device"),
        ({"devices": {"cuda": {"kind": "cpu"}}}, "the built-in cuda keeps kind cuda"),
        ({"devices": {"H100": {"kind": "cuda"}}}, "device name 'H100': use lower-case letters"),
        ({"devices": {"l4": {"kind": "cuda", "node_selector": {"gpu": ""}}}}, "'gpu' has no value"),
        ({"devices": {"vm": {"kind": "cpu", "price_per_hour": -1}}}, "price_per_hour must be 0 or more"),
    ],
)
def test_bad_catalog_entries_are_refused_in_one_line(changes, words):
    with pytest.raises(SpecError) as err:
        pools_spec(**changes)
    line = err.value.one_line()
    assert words in line and "\n" not in line


def test_the_pool_loops_runs_reach_the_report_by_the_step_their_records_name(tmp_path):
    import json
    from types import SimpleNamespace

    from dlbench_kfp.components.runtime import pool_runs

    def run(name, step):
        d = tmp_path / name
        d.mkdir()
        (d / "record.json").write_text(json.dumps({"step": step, "run_id": name, "status": "ok"}))
        return SimpleNamespace(path=str(d))

    a, b, c = run("t1", "train"), run("t2", "train"), run("s1", "svm")
    got = pool_runs([[a], None, [b, c]])
    assert {k: [x.path for x in v] for k, v in got.items()} == {"train": [a.path, b.path], "svm": [c.path]}


def test_pre_flight_names_the_node_pools_the_tasks_go_to():
    from dlbench_kfp.pipelines.preflight import device_notes

    (note,) = device_notes(pools_spec())
    assert "h100 (cuda, nvidia.com/gpu x1, nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3, $4.50/h)" in note
    assert "vm (cpu, $0.10/h)" in note and "l4 (" in note
    assert device_notes(load_spec("quick")) == []


def test_a_runs_header_names_its_catalog_device():
    from dlbench.log import describe_config

    spec = pools_spec()
    words = [describe_config("train", c.model_dump()) for c in expand_train(spec)]
    assert [w.split(" fashion-mnist ")[1] for w in words] == ["h100 (cuda)", "l4 (cuda)", "vm (cpu)"]
    svm = {describe_config("svm", c.model_dump()) for c in expand_svm(spec)}
    assert any(w.endswith("on l4") for w in svm) and any(w.endswith("on vm") for w in svm)
