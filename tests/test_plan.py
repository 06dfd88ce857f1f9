"""One plan for both runners: what `dlbench study` runs and what the compiled pipeline runs are the same
tasks, and a task fails the same way in both (a failed record, the rest goes on)."""

from __future__ import annotations

import json

import pytest
import yaml

from dlbench.layout import StudyLayout, read_record
from dlbench.plan import RUN_STAGES, build_plan, expand_svm, expand_train, with_fuse
from dlbench.runner import run_train_task
from dlbench.spec import load_spec, parse_spec


def _loop_items(pipeline: dict) -> dict[str, list]:
    """Loop items per component of a compiled pipeline (``train-gpu-fused`` -> [{"configs": [...]}, ...])."""
    out = {}
    for t in pipeline["root"]["dag"]["tasks"].values():
        if "iteratorPolicy" not in t:
            continue
        inner = next(iter(pipeline["components"][t["componentRef"]["name"]]["dag"]["tasks"].values()))
        out[inner["componentRef"]["name"].removeprefix("comp-")] = json.loads(
            t["parameterIterator"]["items"]["raw"]
        )
    return out


def test_the_compiled_pipeline_runs_the_plans_tasks_in_its_stages(tmp_path):
    pytest.importorskip("kfp")
    from dlbench.spec import SvmConfig, TrainConfig
    from dlbench_kfp.pipelines.study import compile_pipeline

    spec = with_fuse(load_spec("reference-fast"), True)
    plan = build_plan(spec)
    # every run of the spec is in exactly one task of the plan
    planned = [c.run_id for t in (*plan.train, *plan.svm) for c in t.configs]
    assert sorted(planned) == sorted(c.run_id for c in [*expand_train(spec), *expand_svm(spec)])
    assert plan.stage("train_gpu_fused") and plan.stage("train_cpu") and plan.stage("train_gpu")

    pipeline = next(yaml.safe_load_all(compile_pipeline(spec, tmp_path / "p.yaml").read_text()))
    items = _loop_items(pipeline)
    for stage in RUN_STAGES:
        tasks = plan.stage(stage)
        got = items.get(stage.replace("_", "-"), [])
        config = SvmConfig if stage.startswith("svm") else TrainConfig
        # a task's item: a run's config, or a fused group's configs; the ids as the study names their folders
        ids = [[config(**c).run_id for c in item.get("configs", [item])] for item in got]
        assert ids == [[c.run_id for c in t.configs] for t in tasks], stage
    (onnx,) = [t for name, t in pipeline["root"]["dag"]["tasks"].items() if name.startswith("onnx")]
    assert onnx["inputs"]["parameters"]["models"]["runtimeValue"]["constant"] == list(plan.onnx.models)


def test_a_refused_fused_group_leaves_a_failed_record_per_member(tiny_split, tmp_path):
    """The runner's failure policy for a fused group: no exception, each member's record says failed with the
    reason, and the outcome names every member."""
    spec = parse_spec(
        {
            "data": {"datasets": ["fashion-mnist"]},
            "train": {
                "fuse": True,
                "grids": [
                    {
                        "models": ["resnet18"],
                        "batch_size": [5000],
                        "lr": [1e-3, 1e-4],
                        "device": ["cuda"],
                        "engine": ["resident"],
                        "amp": ["bf16"],
                    }
                ],
            },
        }
    )
    plan = build_plan(spec)
    (task,) = plan.train
    assert task.fused and len(task.configs) == 2
    lay = StudyLayout(tmp_path / "study")
    lay.data_root.mkdir(parents=True)
    (lay.data("fashion-mnist")).symlink_to(tiny_split, target_is_directory=True)
    outcome = run_train_task(task, lay.data_root, [lay.run("train", i) for i in task.run_ids], print)
    assert not outcome.ok and outcome.failed_runs == task.run_ids
    for run_id in task.run_ids:
        rec = read_record(lay.run("train", run_id))
        assert rec["status"] == "failed" and rec["run_id"] == run_id and rec["error"] == outcome.error
