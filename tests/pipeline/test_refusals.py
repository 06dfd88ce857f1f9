"""A run the step refuses before it starts (bad config for this split, a GPU that is not there) is not lost
in the pipeline: its task leaves a failed record, so the report shows it and ``dlbench run --local`` ends
non-zero listing it; a spec whose GPU runs cannot run on this machine is refused before any work."""

from __future__ import annotations

import pytest
import yaml

from dlbench.cli import main
from dlbench.io import read_json
from dlbench_kfp.components import runtime
from dlbench_kfp.pipelines.local_publish import failed_records


class Artifact:
    def __init__(self, path):
        self.path, self.metadata, self.metrics = str(path), {}, {}

    def log_metric(self, name, value):
        self.metrics[name] = value

    def log_confusion_matrix(self, classes, matrix):
        self.metadata["confusion"] = matrix


@pytest.fixture
def split_root(tiny_split, tmp_path):
    root = tmp_path / "split"
    root.mkdir()
    (root / "fashion-mnist").symlink_to(tiny_split, target_is_directory=True)
    return Artifact(root)


def _task(kind, split_root, config, out):
    run, metrics, confusion = Artifact(out / "run"), Artifact(out / "metrics"), Artifact(out / "confusion")
    getattr(runtime, f"{kind}_task")(split_root, config, run, metrics, confusion)
    return run, metrics


@pytest.mark.parametrize(
    "kind, config, error",
    [
        (
            "train",
            {"dataset": "fashion-mnist", "model": "resnet18", "batch_size": 100_000, "device": "cpu"},
            "batch size 100000 is larger than the training split",
        ),
        (
            "svm",
            {"dataset": "fashion-mnist", "backend": "sklearn", "kernel": "rbf", "n_train": 100_000},
            "n_train 100,000 is larger than the training split",
        ),
    ],
)
def test_a_refused_run_leaves_a_failed_record_the_run_reports(kind, config, error, split_root, tmp_path):
    run, metrics = _task(kind, split_root, config, tmp_path / "task")
    rec = read_json(tmp_path / "task" / "run" / "record.json")
    assert rec["step"] == kind and rec["status"] == "failed" and error in rec["error"]
    assert rec["config"]["dataset"] == "fashion-mnist" and rec["run_id"].startswith(("resnet18", "svm"))
    assert metrics.metrics["failed"] == 1 and run.metadata["status"] == "failed"
    [line] = failed_records(tmp_path / "task")
    assert error in line


def test_train_on_an_absent_gpu_is_recorded(split_root, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    _task(
        "train",
        split_root,
        {"dataset": "fashion-mnist", "model": "resnet18", "device": "cuda"},
        tmp_path / "task",
    )
    rec = read_json(tmp_path / "task" / "run" / "record.json")
    assert rec["status"] == "failed" and "no CUDA device is visible" in rec["error"]
    assert rec["config"]["device"] == "cuda"


def test_run_local_refuses_a_gpu_spec_without_a_gpu_before_any_work(tiny_spec, tmp_path, monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    spec = yaml.safe_load(tiny_spec.read_text())
    spec["train"]["grids"][0]["device"] = ["cuda"]
    gpu = tmp_path / "gpu.yaml"
    gpu.write_text(yaml.safe_dump(spec))
    code = main(
        [
            "run",
            "--local",
            "--spec",
            str(gpu),
            "--store",
            str(tmp_path / "store"),
            "--work",
            str(tmp_path / "kfp"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(
        "dlbench: error: the spec asks for a GPU (1 train run(s) on cuda) but no CUDA device"
    )
    assert "device [cpu]" in err[0] and "dlbench submit" in err[0]
    assert not (tmp_path / "store").exists() and not (tmp_path / "kfp").exists()


def test_task_metrics_are_in_the_reports_units_named_with_the_unit(split_root, tmp_path):
    run, metrics = _task(
        "svm",
        split_root,
        {"dataset": "fashion-mnist", "backend": "sklearn", "kernel": "rbf", "n_train": 200},
        tmp_path / "task",
    )
    rec = read_json(tmp_path / "task" / "run" / "record.json")
    assert rec["status"] == "ok"
    assert (
        metrics.metrics["test_accuracy_pct"] == rec["metrics"]["accuracy"] * 100
    )  # the report's %, not a fraction
    assert "accuracy" not in metrics.metrics


def test_a_spec_through_kfp_keeps_its_integers_and_field_order(tmp_path):
    """KFP hands a dict parameter back from a protobuf Struct: every number a float, keys sorted."""
    from dlbench.spec import StudySpec, load_spec
    from dlbench_kfp.pipelines.study import as_json

    def struct(v):
        if isinstance(v, dict):
            return {k: struct(v[k]) for k in sorted(v)}
        if isinstance(v, list):
            return [struct(x) for x in v]
        return float(v) if isinstance(v, int) and not isinstance(v, bool) else v

    through_kfp = struct(as_json(load_spec("quick")))
    assert through_kfp["train"]["grids"][0]["batch_size"] == [64.0]
    runtime.assemble_study(tmp_path / "study", through_kfp)
    spec = yaml.safe_load((tmp_path / "study" / "spec.yaml").read_text())
    assert list(spec) == list(StudySpec.model_fields)
    assert spec["train"]["grids"][0]["batch_size"] == [64] and type(spec["seed"]) is int
    assert "batch_size: 64.0" not in (tmp_path / "study" / "spec.yaml").read_text()
