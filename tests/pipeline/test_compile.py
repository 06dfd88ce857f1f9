"""The compiled pipeline YAML: in the repo and current, loadable by kfp, right images, GPUs, no secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dlbench_kfp.components import images, storage

REPO = Path(__file__).resolve().parents[2]
STORED = REPO / "pipelines" / "study_pipeline.yaml"
SECRET = "s3cr3t-value-that-must-never-appear-0123456789"
IMAGE_ENVS = (images.REGISTRY_ENV, images.TAG_ENV)


def compile_spec(spec: str, out: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in IMAGE_ENVS}
    return subprocess.run(
        [sys.executable, "-m", "dlbench", "compile", "--spec", spec, "--out", str(out), *extra],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**base, **(env or {})},
        timeout=300,
    )


def docs(path: Path) -> tuple[dict, dict]:
    pipeline, *rest = yaml.safe_load_all(path.read_text())
    return pipeline, (rest[0] if rest else {})


def mixed_spec(tmp_path: Path) -> Path:
    """Every kind of task: CPU and GPU training, sklearn and cuML SVMs, ONNX on the CUDA provider."""
    spec = {
        "name": "mixed",
        "data": {"datasets": ["fashion-mnist"]},
        "train": {"grids": [{"models": ["resnet18"], "device": ["cpu", "cuda"]}]},
        "svm": {"backends": ["sklearn", "cuml"], "kernels": ["rbf"]},
        "onnx": {"providers": ["cpu", "cuda"]},
    }
    path = tmp_path / "mixed.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_stored_pipeline_yaml_is_current(tmp_path):
    fresh = tmp_path / "study_pipeline.yaml"
    result = compile_spec("quick", fresh)
    assert result.returncode == 0, result.stderr
    assert fresh.read_text() == STORED.read_text(), (
        "pipelines/study_pipeline.yaml is stale: run `make compile` and commit it"
    )


def test_stored_yaml_loads_with_kfps_loader():
    from kfp import components

    comp = components.load_component_from_file(str(STORED))
    assert comp.name == "dlbench-quick"
    spec = comp.pipeline_spec
    assert set(spec.components) >= {
        "comp-data",
        "comp-train-cpu",
        "comp-svm-cpu",
        "comp-profile",
        "comp-onnx-cpu",
        "comp-report",
    }
    executors = spec.deployment_spec["executors"]
    assert {name: executors[name]["container"]["image"] for name in executors} == {
        f"exec-{n}": images.CPU_IMAGE
        for n in ("data", "train-cpu", "svm-cpu", "profile", "onnx-cpu", "report")
    }
    assert "exec-report" in comp.platform_spec.platforms["kubernetes"].deployment_spec.executors


def test_images_gpus_caching_and_retries_per_task(tmp_path):
    out = tmp_path / "mixed_pipeline.yaml"
    result = compile_spec(str(mixed_spec(tmp_path)), out, "--parallelism", "3")
    assert result.returncode == 0, result.stderr
    pipeline, platform = docs(out)
    executors = pipeline["deploymentSpec"]["executors"]
    expected_image = {
        "data": "cpu",
        "train-cpu": "cpu",
        "train-gpu": "cuda",
        "svm-cpu": "cpu",
        "svm-gpu": "rapids",
        "profile": "cpu",
        "onnx-gpu": "cuda",
        "report": "cpu",
    }
    assert set(executors) == {f"exec-{n}" for n in expected_image}
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for name, kind in expected_image.items():
        container = executors[f"exec-{name}"]["container"]
        assert container["image"] == images.image(kind), name
        gpu = name.endswith("-gpu")
        accel = (container.get("resources") or {}).get("accelerator")
        assert bool(accel) == gpu, f"{name}: GPU request {accel}"
        if gpu:
            assert accel["resourceType"] == "nvidia.com/gpu" and int(accel["resourceCount"]) == 1
            assert k8s[f"exec-{name}"]["nodeSelector"]["labels"] == {"nvidia.com/gpu.present": "true"}
            assert k8s[f"exec-{name}"]["tolerations"][0]["key"] == "nvidia.com/gpu"
        else:
            assert "nodeSelector" not in k8s.get(f"exec-{name}", {}), name
    # the store keys reach the report task only, from the Secret, by name
    assert [e for e in k8s if "secretAsEnv" in k8s[e]] == ["exec-report"]
    (secret,) = k8s["exec-report"]["secretAsEnv"]
    assert secret["secretName"] == storage.S3_SECRET
    assert {m["envVar"] for m in secret["keyToEnv"]} == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    # timing tasks never come from the cache; deterministic ones may; transient failures retry
    tasks = {}
    for comp in pipeline["components"].values():
        tasks.update((comp.get("dag") or {}).get("tasks") or {})
    tasks.update(pipeline["root"]["dag"]["tasks"])
    for name in ("train-cpu", "train-gpu", "svm-cpu", "svm-gpu", "onnx-gpu", "report"):
        assert not tasks[name].get("cachingOptions", {}).get("enableCache"), name
    for name in ("data", "profile"):
        assert tasks[name]["cachingOptions"]["enableCache"] is True, name
    for name in ("data", "train-cpu", "train-gpu", "svm-cpu", "svm-gpu", "onnx-gpu", "profile"):
        assert tasks[name]["retryPolicy"]["maxRetryCount"] == 2, name
    loops = [t for t in pipeline["root"]["dag"]["tasks"].values() if "iteratorPolicy" in t]
    assert len(loops) == 4 and all(t["iteratorPolicy"]["parallelismLimit"] == 3 for t in loops)


def test_compiled_yaml_holds_no_secret_value(tmp_path):
    out = tmp_path / "p.yaml"
    env = {
        "AWS_ACCESS_KEY_ID": "access-id-must-not-appear",
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "MINIO_SECRET_KEY": SECRET,
        "DLBENCH_S3_ENDPOINT": "http://minio.example:9000",
    }
    result = compile_spec("quick", out, env=env)
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert SECRET not in text and "access-id-must-not-appear" not in text
    assert storage.S3_SECRET in text  # the Secret is referenced by name only
    assert SECRET not in result.stdout + result.stderr


def test_grid_in_the_yaml_matches_the_spec():
    from dlbench.plan import expand_svm, expand_train
    from dlbench.spec import load_spec

    pipeline, _ = docs(STORED)
    spec = load_spec("quick")
    loops = {
        t["componentRef"]["name"]: t
        for t in pipeline["root"]["dag"]["tasks"].values()
        if "iteratorPolicy" in t
    }
    items = {name: json.loads(t["parameterIterator"]["items"]["raw"]) for name, t in loops.items()}
    train_items = next(v for k, v in items.items() if "train" in json.dumps(pipeline["components"][k]))
    assert sorted(i["engine"] for i in train_items) == sorted(c.engine for c in expand_train(spec))
    svm_items = [v for k, v in items.items() if v is not train_items][0]
    assert sorted(i["kernel"] for i in svm_items) == sorted(c.kernel for c in expand_svm(spec))


def test_spec_that_expands_to_zero_runs_is_one_line(tmp_path):
    spec = tmp_path / "empty.yaml"
    spec.write_text(yaml.safe_dump({"name": "empty", "train": {"grids": []}, "svm": {"kernels": []}}))
    out = tmp_path / "p.yaml"
    result = compile_spec(str(spec), out)
    assert result.returncode == 2 and not out.exists()
    assert result.stderr.count("\n") == 1 and "expands to zero train runs and zero SVM runs" in result.stderr


@pytest.mark.parametrize("args, message", [(["--parallelism", "0"], "parallelism must be at least 1")])
def test_bad_compile_options(tmp_path, args, message):
    result = compile_spec("quick", tmp_path / "p.yaml", *args)
    assert result.returncode == 2 and message in result.stderr


def test_each_catalog_device_gets_its_own_loop_accelerator_and_node_selector(tmp_path):
    """One submitted run fans the study over several node pools: each pool's tasks carry its selector."""
    spec = {
        "name": "pools",
        "devices": {
            "h100": {
                "kind": "cuda",
                "accelerator": "nvidia.com/gpu",
                "accelerator_limit": 2,
                "node_selector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
                "price_per_hour": 4.5,
            },
            "l4": {
                "kind": "cuda",
                "accelerator": "nvidia.com/gpu",
                "node_selector": {"nvidia.com/gpu.product": "NVIDIA-L4"},
            },
            "vm": {"kind": "cpu", "node_selector": {"pool": "cpu-small"}, "price_per_hour": 0.1},
        },
        "data": {"datasets": ["fashion-mnist"]},
        "train": {"grids": [{"models": ["resnet18"], "device": ["h100", "l4", "vm", "cpu"]}]},
        "svm": {"backends": ["sklearn", "cuml"], "kernels": ["rbf"], "devices": {"cuml": ["l4"]}},
        "onnx": {"providers": ["cpu", "cuda"], "device": "h100"},
    }
    path = tmp_path / "pools.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "pools_pipeline.yaml"
    result = compile_spec(str(path), out)
    assert result.returncode == 0, result.stderr
    pipeline, platform = docs(out)
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    tasks = {}
    for comp in pipeline["components"].values():
        for name, t in ((comp.get("dag") or {}).get("tasks") or {}).items():
            tasks[name] = t
    tasks.update(pipeline["root"]["dag"]["tasks"])

    def placement(task_name):
        executor = pipeline["components"][tasks[task_name]["componentRef"]["name"]]["executorLabel"]
        container = pipeline["deploymentSpec"]["executors"][executor]["container"]
        accel = (container.get("resources") or {}).get("accelerator")
        labels = (k8s.get(executor) or {}).get("nodeSelector", {}).get("labels")
        return (
            tasks[task_name]["taskInfo"]["name"],
            accel and (accel["resourceType"], accel["resourceCount"]),
            tuple(sorted((labels or {}).items())) or None,
        )

    placed = {
        placement(n)
        for n in tasks
        if tasks[n].get("componentRef", {}).get("name", "").startswith("comp-train")
    }
    assert placed == {
        ("train gpu h100", ("nvidia.com/gpu", "2"), (("nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3"),)),
        ("train gpu l4", ("nvidia.com/gpu", "1"), (("nvidia.com/gpu.product", "NVIDIA-L4"),)),
        ("train cpu vm", None, (("pool", "cpu-small"),)),
        ("train cpu", None, None),
    }
    svm = {
        placement(n) for n in tasks if tasks[n].get("componentRef", {}).get("name", "").startswith("comp-svm")
    }
    assert svm == {
        ("svm cpu", None, None),
        ("svm gpu l4", ("nvidia.com/gpu", "1"), (("nvidia.com/gpu.product", "NVIDIA-L4"),)),
    }
    assert placement("onnx-gpu")[1:] == (
        ("nvidia.com/gpu", "2"),
        (("nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3"),),
    )
    # every loop reaches the report: the built-in groups by name, the pools' loops as pool_N
    report_inputs = set(tasks["report"]["inputs"]["artifacts"])
    assert {"train_cpu", "svm_cpu", "pool_1", "pool_2", "pool_3", "pool_4"} <= report_inputs
    assert "pool_5" not in report_inputs
