"""Every registry entry, timm-style: one parametrised suite over the datasets, the model families and the
classical estimators, on tiny data the tests write (an RGB 3x32x32 image folder of three classes)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dlbench.data.registry import DATASETS, split_facts
from dlbench.data.step import run_data
from dlbench.models import MODELS, create_model, model_color, model_label
from dlbench.svm.estimators import ESTIMATORS, _available
from tests.conftest import make_idx_folder

QUIET = lambda *_: None  # noqa: E731
CLASSES = ("cat", "dog", "fox")
# One model per family: a prefix family (timm:NAME, tv:NAME) by a small member of it.
MODEL_CASES = [
    *(n for n, f in MODELS.items() if not f.prefix),
    "timm:resnet10t",
    "timm:vit_tiny_patch16_224",  # a ViT: a fixed grid of patches, built for the run's 32 px
    "tv:mobilenet_v3_small",
]


def write_rgb_folder(root: Path, n: int = 16, size: int = 32, seed: int = 0) -> Path:
    """Three learnable classes of RGB PNGs (class c: channel c bright), ``size`` x ``size``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            img[..., c] += 150
            Image.fromarray(img).save(root / name / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def rgb_split(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("rgb")
    folder = write_rgb_folder(root / "images")
    run_data("pets", root / "split", source="folder", root=str(folder), log=QUIET)
    return root / "split"


def test_all_families_are_in_the_suite():
    assert {m.split(":")[0] for m in MODEL_CASES} == set(MODELS)


# --------------------------------------------------------------------------- datasets


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_dataset_entry_splits_with_its_own_facts(tmp_path, name):
    entry = DATASETS[name]
    assert len(entry.mean) == len(entry.std) == entry.shape[0]
    assert entry.num_classes == len(set(entry.classes)) >= 2
    folder = make_idx_folder(tmp_path / "idx", n_train=200, n_test=50)
    manifest = run_data(name, tmp_path / "split", source="idx", root=str(folder), log=QUIET)
    assert manifest["classes"] == list(entry.classes)
    assert manifest["image_shape"] == list(entry.shape[1:])
    arrays = dict(np.load(tmp_path / "split" / "split.npz"))
    facts = split_facts(name, arrays)
    assert (facts.num_classes, facts.shape, facts.mean, facts.std) == (
        entry.num_classes,
        entry.shape,
        entry.mean,
        entry.std,
    )


def test_an_rgb_folder_splits_stratified_with_its_shape_classes_and_statistics(rgb_split):
    manifest = json.loads((rgb_split / "manifest.json").read_text())
    assert manifest["classes"] == list(CLASSES)
    assert manifest["shape"] == [3, 32, 32] and manifest["source"]["kind"] == "folder"
    assert [p["size"] for p in manifest["parts"].values()] == [34, 5, 9]  # 48 images, 70/10/20
    assert all(min(p["class_counts"]) >= 1 for p in manifest["parts"].values())
    arrays = dict(np.load(rgb_split / "split.npz"))
    assert arrays["x_train"].shape[1:] == (3, 32, 32)
    facts = split_facts("pets", arrays)
    assert facts.num_classes == 3 and facts.shape == (3, 32, 32)
    assert list(facts.mean) == manifest["mean"]  # the facts training uses are the manifest's
    assert (rgb_split / "decoded.npz").is_file()


def test_a_second_split_of_the_same_folder_reads_the_decoded_cache(tmp_path):
    folder = write_rgb_folder(tmp_path / "images", n=10)
    first = run_data("pets", tmp_path / "split", source="folder", root=str(folder), log=QUIET)
    again = run_data("pets", tmp_path / "split", source="folder", root=str(folder), log=QUIET)
    assert not first["source"]["decoded_from_cache"] and again["source"]["decoded_from_cache"]
    assert again["outputs"] == first["outputs"]  # the same split, byte for byte
    (folder / "cat" / "000.png").unlink()  # a changed folder is decoded afresh
    third = run_data("pets", tmp_path / "split", source="folder", root=str(folder), log=QUIET)
    assert not third["source"]["decoded_from_cache"] and third["total"] == 29


def test_mixed_sizes_are_resized_when_a_size_is_given(tmp_path):
    from PIL import Image

    folder = write_rgb_folder(tmp_path / "images", n=10)
    Image.fromarray(np.zeros((20, 24), np.uint8)).save(folder / "dog" / "gray-small.png")  # gray, 24x20
    manifest = run_data(
        "pets", tmp_path / "split", source="folder", root=str(folder), size=(16, 16), log=QUIET
    )
    assert manifest["shape"] == [3, 16, 16] and manifest["total"] == 31


def test_an_npz_of_images_and_labels_is_a_dataset(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (40, 12, 10), dtype=np.uint8)  # gray, not square
    np.savez(tmp_path / "d.npz", images=images, labels=np.arange(40) % 2 + 5)
    manifest = run_data("mine", tmp_path / "split", source="npz", root=str(tmp_path / "d.npz"), log=QUIET)
    assert manifest["classes"] == ["5", "6"] and manifest["shape"] == [1, 12, 10]


# --------------------------------------------------------------------------- models


@pytest.mark.parametrize("name", MODEL_CASES)
def test_every_model_family_trains_two_steps_profiles_and_exports_with_parity(rgb_split, tmp_path, name):
    from dlbench.onnxrt import run_onnx
    from dlbench.profile import profile_model
    from dlbench.train import run_train

    assert model_label(name) and model_color(name).startswith("#")
    config = dict(
        dataset="pets",
        model=name,
        in_channels=3,
        input_size=32,
        batch_size=8,
        epochs=1,
        max_steps_per_epoch=2,
    )
    rec = run_train(config, rgb_split, tmp_path / "train", log=QUIET)
    m = rec["metrics"]
    assert m["steps_per_epoch"] == 2 and m["input_shape"] == "3x32x32"
    assert np.array(m["confusion_matrix"]).shape == (3, 3) and m["classes"] == list(CLASSES)
    assert np.isfinite(m["history"][0]["train_loss"])
    row = profile_model(name, "imagenet", 32, 1, in_channels=3, num_classes=3)
    assert row["forward_flops"] > 0 and row["params"] == m["n_parameters"]
    onnx = run_onnx(
        name,
        "imagenet",
        tmp_path / "onnx",
        checkpoint=tmp_path / "train" / "best.pt",
        log=QUIET,
        in_channels=3,
        input_size=32,
        batch_sizes=[2],
        warmup=1,
        iterations=2,
        exporter="torchscript",
    )
    assert onnx["metrics"]["export"]["outputs"]["logits"] == ["batch", 3]
    assert onnx["metrics"]["parity"]["cpu"] < 1e-3


def test_a_model_that_cannot_be_fused_trains_solo_and_expand_says_so():
    from dlbench.plan import train_tasks
    from dlbench.spec import parse_spec

    spec = parse_spec(
        {
            "train": {
                "fuse": True,
                "grids": [{"models": ["resnet18", "timm:resnet10t"], "lr": [1e-3, 1e-2], "device": ["cuda"]}],
            }
        }
    )
    sizes = {tuple(c.model for c in t): len(t) for t in train_tasks(spec)}
    assert sizes[("resnet18", "resnet18")] == 2  # the ResNets fuse
    assert sizes[("timm:resnet10t",)] == 1  # timm's does not: two solo tasks
    assert sum(1 for t in train_tasks(spec) if t[0].model == "timm:resnet10t") == 2


def test_builtin_resnets_are_built_as_before():
    torch.manual_seed(0)
    m = create_model("resnet18")
    assert m.conv1.in_channels == 1 and m.fc.out_features == 10
    assert sum(p.numel() for p in m.parameters()) == 11_175_370


# --------------------------------------------------------------------------- classical estimators


def _cases():
    for name, entry in ESTIMATORS.items():
        for backend in entry.backend_names():
            if backend != "cuml":  # the GPU path runs where cuML and a GPU are (tests/svm on a GPU box)
                yield name, backend


@pytest.mark.parametrize("estimator, backend", list(_cases()))
def test_every_estimator_fits_on_every_cpu_backend(tmp_path, estimator, backend):
    from dlbench.svm import run_svm

    if not _available(backend)[0]:
        pytest.fail(f"{backend} is a dependency of dlbench but is not installed")
    folder = make_idx_folder(tmp_path / "idx", n_train=200, n_test=50)
    run_data("fashion-mnist", tmp_path / "split", source="idx", root=str(folder), log=QUIET)
    rec = run_svm(
        {"dataset": "fashion-mnist", "estimator": estimator, "backend": backend},
        tmp_path / "split",
        tmp_path / "out",
        log=QUIET,
    )
    m = rec["metrics"]
    assert m["backend"] == backend and m["estimator"] == estimator
    assert m["accuracy"] > 0.5  # the bars are easy: far above chance (0.1)
    assert np.array(m["confusion_matrix"]).shape == (10, 10)
    assert (tmp_path / "out" / "model.joblib").is_file()


# --------------------------------------------------------------------------- a study of the user's data


def test_a_study_of_an_rgb_folder_runs_end_to_end_with_its_report(tmp_path):
    from dlbench.spec import parse_spec
    from dlbench.study import run_study

    folder = write_rgb_folder(tmp_path / "images", n=12)
    spec = parse_spec(
        {
            "name": "pets",
            "data": {"datasets": ["pets"], "source": "folder", "root": str(folder)},
            "train": {
                "max_steps_per_epoch": 2,
                "grids": [
                    {"models": ["timm:resnet10t"], "in_channels": [3], "input_size": [32], "batch_size": [8]}
                ],
            },
            "svm": {"kernels": ["rbf"]},
            "profile": {"input_sizes": [32], "in_channels": [3]},
            "onnx": {"in_channels": 3, "input_size": 32, "batch_sizes": [1], "warmup": 1, "iterations": 2},
        }
    )
    summary = run_study(spec, tmp_path / "study")
    assert all(not s.get("failed") for s in summary.values()), summary
    report = (tmp_path / "study" / "report" / "report.md").read_text()
    assert "resnet10t (timm)" in report  # the registry's label
    assert "image folder" in report and "3x32x32" in report


def test_train_onnx_and_profile_take_an_rgb_splits_channels_size_and_classes(rgb_split, tmp_path, capsys):
    from dlbench.cli import main

    train = tmp_path / "train"
    common = ["--model", "timm:resnet10t", "--batch-size", "8", "--epochs", "1", "--max-steps-per-epoch", "1"]
    assert main(["train", "--split", str(rgb_split), "--out", str(train), *common]) == 0  # no --in-channels
    rec = json.loads((train / "record.json").read_text())
    assert rec["metrics"]["input_shape"] == "3x32x32" and rec["metrics"]["classes"] == list(CLASSES)
    onnx = tmp_path / "onnx"
    args = ["--model", "timm:resnet10t", "--checkpoint", str(train / "best.pt"), "--batch-sizes", "1"]
    assert (
        main(
            ["onnx", *args, "--warmup", "0", "--iterations", "1", "--exporter", "torchscript"]
            + ["--out", str(onnx)]
        )
        == 0
    )
    cfg = json.loads((onnx / "record.json").read_text())["config"]
    assert (cfg["in_channels"], cfg["input_size"]) == (3, 32)
    profile = tmp_path / "profile"
    assert (
        main(["profile", "--models", "timm:resnet10t", "--split", str(rgb_split), "--out", str(profile)]) == 0
    )
    cfg = json.loads((profile / "record.json").read_text())["config"]
    assert (cfg["in_channels"], cfg["input_sizes"], cfg["num_classes"]) == ([3], [32], 3)
    capsys.readouterr()
    # what the user states explicitly wins, and a mismatch is one line with nothing written
    bad = tmp_path / "bad"
    assert main(["train", "--split", str(rgb_split), "--out", str(bad), "--in-channels", "1", *common]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "3-channel images" in err[0] and "--in-channels 3" in err[0]
    assert not bad.exists()
