"""Grouping runs for fused training: which runs share a task, which stay solo, and how the pipeline and
the study see the groups."""

from __future__ import annotations

import json

import pytest
import yaml

from dlbench.plan import expand_train, fuse_key, train_tasks, with_fuse
from dlbench.spec import load_spec, parse_spec
from dlbench.train.fused import MEMBER_FIELDS


def sweep_spec(**train) -> dict:
    return {
        "name": "sweep",
        "data": {"datasets": ["mnist", "fashion-mnist"]},
        "train": {
            "grids": [
                {
                    "name": "sweep",
                    "models": ["resnet18"],
                    "batch_size": [16],
                    "optimizer": ["sgd", "adam"],
                    "lr": [1e-3, 1e-4, 1e-2],
                    "device": ["cuda"],
                    "engine": ["resident"],
                    "amp": ["bf16"],
                },
                {
                    "name": "pin",
                    "datasets": ["fashion-mnist"],
                    "models": ["resnet18"],
                    "batch_size": [16],
                    "device": ["cuda"],
                    "engine": ["dataloader"],
                    "pin_memory": [True, False],
                },
                {
                    "name": "cpu-vs-gpu",
                    "datasets": ["fashion-mnist"],
                    "models": ["resnet18"],
                    "batch_size": [16],
                    "lr": [5e-4],
                    "device": ["cpu", "cuda"],
                    "engine": ["resident"],
                    "amp": ["bf16"],
                },
            ],
            **train,
        },
    }


def test_compatible_gpu_runs_are_grouped_and_timing_runs_stay_solo():
    spec = parse_spec(sweep_spec(fuse=True))
    tasks = train_tasks(spec)
    groups = [t for t in tasks if len(t) > 1]
    # 2 datasets x 3 lr per optimizer: one group of 6 for SGD, one for Adam
    assert sorted(len(t) for t in groups) == [6, 6]
    for t in groups:
        assert len({c.optimizer for c in t}) == 1 and len({fuse_key(c) for c in t}) == 1
        assert {c.dataset for c in t} == {"mnist", "fashion-mnist"} and len({c.lr for c in t}) == 3
    solo = [t[0] for t in tasks if len(t) == 1]
    # the pin_memory pair and the CPU-vs-GPU pair: their timing is the point
    assert sorted((c.engine, c.device, c.pin_memory) for c in solo) == [
        ("dataloader", "cuda", False),
        ("dataloader", "cuda", True),
        ("resident", "cpu", False),
        ("resident", "cuda", False),
    ]
    # every run is trained exactly once
    assert sorted(c.run_id for t in tasks for c in t) == sorted(c.run_id for c in expand_train(spec))


def test_member_limit_splits_into_near_equal_groups_and_fusion_is_off_by_default():
    spec = parse_spec(sweep_spec(fuse=True, fuse_max_members=4))
    sizes = sorted(len(t) for t in train_tasks(spec) if len(t) > 1)
    assert sizes == [3, 3, 3, 3]
    assert all(len(t) == 1 for t in train_tasks(parse_spec(sweep_spec())))
    assert all(len(t) == 1 for t in train_tasks(with_fuse(parse_spec(sweep_spec(fuse=True)), False)))
    assert any(len(t) > 1 for t in train_tasks(with_fuse(parse_spec(sweep_spec()), True)))


def test_a_grid_can_force_fusion_or_keep_its_runs_solo():
    raw = sweep_spec(fuse=True)
    raw["train"]["grids"][0]["fuse"] = False
    assert all(len(t) == 1 for t in train_tasks(parse_spec(raw)))
    raw = sweep_spec(fuse=True)
    raw["train"]["grids"][2]["fuse"] = True  # the CPU run still stays solo: fusion is for GPU runs
    tasks = train_tasks(parse_spec(raw))
    assert [c.device for t in tasks if len(t) == 1 for c in t].count("cpu") == 1


def test_member_fields_agree_with_the_fused_engine():
    from dlbench.plan import FUSE_MEMBER_FIELDS

    assert set(FUSE_MEMBER_FIELDS) == set(MEMBER_FIELDS)


def test_reference_fast_fuses_the_accuracy_grids_and_keeps_the_timing_grids():
    spec = load_spec("reference-fast")
    tasks = train_tasks(spec)
    fused = [c for t in tasks if len(t) > 1 for c in t]
    solo = [t[0] for t in tasks if len(t) == 1]
    assert fused and all(c.device == "cuda" and c.engine == "resident" for c in fused)
    assert all(len(t) <= (spec.train.fuse_max_members or 8) for t in tasks)
    # Table 3 keeps the reference loop, pinned and not
    assert {
        c.pin_memory for c in solo if c.engine == "dataloader" and c.epochs == 4 and c.device == "cuda"
    } == {True, False}
    assert {c.device for c in solo if c.engine == "dataloader"} >= {"cpu", "cuda"}  # Table 4 too


def test_pipeline_runs_each_group_as_one_task(tmp_path):
    pytest.importorskip("kfp")
    from dlbench.plan import build_plan
    from dlbench_kfp.pipelines.study import compile_pipeline, describe_plan

    spec = parse_spec(sweep_spec(fuse=True))
    p = build_plan(spec)
    assert [len(t.configs) for t in p.stage("train_gpu_fused")] == [6, 6]
    assert "12 train gpu in 2 fused groups" in describe_plan(spec)
    out = compile_pipeline(spec, tmp_path / "fused.yaml")
    pipeline, *_ = yaml.safe_load_all(out.read_text())
    loops = [t for t in pipeline["root"]["dag"]["tasks"].values() if "iteratorPolicy" in t]
    items = [json.loads(t["parameterIterator"]["items"]["raw"]) for t in loops]
    group_items = [i for i in items if i and isinstance(i[0], dict) and "configs" in i[0]]
    assert len(group_items) == 1 and sorted(len(g["configs"]) for g in group_items[0]) == [6, 6]
    assert "exec-train-gpu-fused" in pipeline["deploymentSpec"]["executors"]


def test_reference_fast_fills_every_published_cell_timing_cells_by_the_studys_loop():
    from dlbench.plan import expand_svm
    from dlbench.report import reference as ref

    spec = load_spec("reference-fast")
    train = [c.model_dump() for c in expand_train(spec)]
    svm = [c.model_dump() for c in expand_svm(spec)]
    for _, cell in ref.published().iterrows():
        if cell["table"] == "svm":
            assert any(ref.matches_svm(cell, c) for c in svm), ref.describe(cell["cell"])
            continue
        strict = any(ref.matches_train(cell, c) for c in train)
        timed = [c for c in train if ref.matches_train(cell, c, time=True)]
        if cell["train_seconds"] and cell["table"] in ("table3", "table4"):
            # the timing tables: every time cell is comparable, timed at the study's input
            assert any(ref.input_of(c) == "3x64x64" for c in timed), ref.describe(cell["cell"])
        if cell["train_seconds"] and not cell["test_accuracy_pct"]:
            assert timed, ref.describe(cell["cell"])  # a time-only cell: only the study's own loop fills it
        assert strict or timed or any(ref.matches_train(cell, c, accuracy_only=True) for c in train), (
            ref.describe(cell["cell"])
        )
