"""Bad input through the real command line, every command: exit 2, exactly one line on stderr, no traceback,
and nothing changed where the command would write (the tree's hash before and after) nor in its inputs."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from tests import cli_fork
from tests.conftest import FASHION_DIR, make_idx_folder

REPO = Path(__file__).resolve().parents[1]
# Root passes permission bits through its capabilities (CAP_DAC_OVERRIDE ...). Two ways to run dlbench where
# the bits apply: root with every capability dropped (still the owner of the checkout and its venv, so it
# does not matter where the checkout lies, e.g. under a 0700 home folder), else the user nobody (who must be
# able to read the checkout and its venv).
DROP_CAPS = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"]
AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


def tree_hash(root: Path) -> str:
    """Names, kinds and contents of everything below ``root`` (mtimes left out)."""
    h = hashlib.sha256()
    if not root.exists():
        return "absent"
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            h.update(f"L {rel} {os.readlink(p)}\n".encode())
        elif p.is_dir():
            h.update(f"D {rel}\n".encode())
        else:
            h.update(f"F {rel} ".encode() + hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Shared, read-only inputs: an IDX folder, a data-step split, a tampered split, specs, a file."""
    from dlbench.data.step import run_data

    root = tmp_path_factory.mktemp("bad-input")
    idx = make_idx_folder(root / "idx", n_train=800, n_test=200)
    quiet = lambda *_: None  # noqa: E731
    run_data("fashion-mnist", root / "split", source="idx", root=str(idx), seed=0, log=quiet)
    run_data("fashion-mnist", root / "other", source="idx", root=str(idx), seed=1, log=quiet)
    shutil.copytree(root / "split", root / "tampered")
    shutil.copy(root / "other" / "split.npz", root / "tampered" / "split.npz")
    swapped = root / "swapped"
    shutil.copytree(idx, swapped)
    shutil.copy(idx / "train-labels-idx1-ubyte.gz", swapped / "train-images-idx3-ubyte.gz")
    (root / "a-file").write_text("not a folder\n")
    (root / "empty.yaml").write_text("# nothing here\n")
    good = {
        "name": "t",
        "data": {"datasets": ["fashion-mnist"], "source": "idx", "root": str(idx)},
        "train": {"grids": [{"models": ["resnet18"]}]},
    }

    def spec(name: str, **data_changes):
        d = yaml.safe_load(yaml.safe_dump(good))
        for path, value in data_changes.items():
            node = d
            *head, last = path.split("__")
            for k in head:
                node = node.setdefault(k, {})
            node[last] = value
        (root / f"{name}.yaml").write_text(yaml.safe_dump(d))

    spec("inf-c", svm__C=float("inf"))
    spec("nan-lr", train__grids=[{"models": ["resnet18"], "lr": [float("nan")]}])
    spec("no-root", data__root=str(root / "no-such-folder"))
    spec("sub5", data__subsample=5)
    spec("subhuge", data__subsample=10**9)
    spec("neg-seed", seed=-1)
    spec("inf-tol", onnx__tolerance=float("inf"))
    spec("bad-fractions", data__fractions=[0.5, 0.5, 0.5])
    spec(
        "selector-no-value",
        devices={"l4": {"kind": "cuda", "node_selector": {"nvidia.com/gpu.product": None}}},
    )
    spec("negative-price", devices={"vm": {"kind": "cpu", "price_per_hour": -0.5}})
    spec("unknown-device", train__grids=[{"models": ["resnet18"], "device": ["h100"]}])
    (root / "a-dir").mkdir()
    _image_folders(root)
    for name in ("one-class", "empty-class"):  # the same folders as a spec's data
        spec(f"folder-{name}", data={"datasets": ["pets"], "source": "folder", "root": str(root / name)})
    spec("unknown-model", train__grids=[{"models": ["resnet19"]}])
    spec("unknown-estimator", svm__estimators=["random_forrest"])
    run_data("pets", root / "pets-split", source="folder", root=str(root / "pets"), log=quiet)
    return root


def _image_folders(root: Path) -> None:
    """The user's own image folders: a good one (3 RGB classes, 32x32) and one of each mistake."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)

    def write(folder: Path, classes, n: int = 12, size=(32, 32)) -> None:
        for c in classes:
            (folder / c).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(
                    folder / c / f"{i}.png"
                )

    write(root / "pets", ["cat", "dog", "fox"])
    write(root / "one-class", ["cat"])
    write(root / "empty-class", ["cat", "dog"])
    (root / "empty-class" / "fox").mkdir()
    write(root / "unreadable", ["cat", "dog"])
    (root / "unreadable" / "dog" / "broken.png").write_bytes(b"\x89PNG not really")
    write(root / "mixed", ["cat", "dog"])
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(root / "mixed" / "dog" / "small.png")


# (id, arguments; {I} is the inputs folder, {O} the case's own output area, expected text in the one line)
CASES = [
    # ---------------------------------------------------------------- data
    ("data-unknown-dataset", "data --dataset cifar10 --out {O}/d", "unknown dataset 'cifar10'"),
    # ---------------------------------------------------------------- the user's own image folder
    (
        "folder-one-class",
        "data --source folder --root {I}/one-class --dataset pets --out {O}/d",
        "has 1 class folder (only 'cat'): a classifier needs at least 2",
    ),
    (
        "folder-empty-class",
        "data --source folder --root {I}/empty-class --dataset pets --out {O}/d",
        "empty-class/fox holds no image",
    ),
    (
        "folder-unreadable-image",
        "data --source folder --root {I}/unreadable --dataset pets --out {O}/d",
        "unreadable/dog/broken.png: unreadable image",
    ),
    (
        "folder-mixed-sizes",
        "data --source folder --root {I}/mixed --dataset pets --out {O}/d",
        "small.png is 24x20 (width x height)",
    ),
    (
        "folder-bad-name",
        "data --source folder --root {I}/pets --dataset My/Pets --out {O}/d",
        "dataset name 'My/Pets' is not a valid name",
    ),
    (
        "train-unknown-model",
        "train --split {I}/pets-split --out {O}/t --model resnet19 --in-channels 3",
        "unknown model 'resnet19' (did you mean resnet18",
    ),
    (
        "train-unknown-timm-model",
        "train --split {I}/pets-split --out {O}/t --model timm:resnet10 --in-channels 3",
        "unknown timm model 'resnet10' (did you mean timm:resnet10t",
    ),
    (
        "train-vit-patch",
        "train --split {I}/pets-split --out {O}/t --model timm:vit_tiny_patch16_224 --in-channels 3 "
        "--input-size 30",
        "its patch 16x16 does not divide the size",
    ),
    (
        "train-rgb-split-one-channel",
        "train --split {I}/pets-split --out {O}/t --model resnet18 --in-channels 1",  # stated: one line
        "the split holds 3-channel images (3x32x32) but the run asks for in_channels 1",
    ),
    (
        "classical-no-such-backend",
        "classical --split {I}/pets-split --out {O}/c --estimator hist_gradient_boosting --backend sklearnex",
        "hist_gradient_boosting has no sklearnex backend",
    ),
    ("data-no-dataset", "data --out {O}/d", "required: --dataset"),
    (
        "data-out-proc",
        "data --dataset fashion-mnist --root {I}/idx --out /proc/x",
        "--out /proc/x: cannot write",
    ),
    ("data-out-file", "data --dataset fashion-mnist --root {I}/idx --out {I}/a-file", "a file is there"),
    (
        "data-out-under-file",
        "data --dataset fashion-mnist --root {I}/idx --out {I}/a-file/d",
        "is a file, so it",
    ),
    ("data-out-empty", "data --dataset fashion-mnist --root {I}/idx --out=", "no --out folder"),
    (
        "data-root-missing",
        "data --dataset fashion-mnist --root {I}/nope --out {O}/d",
        "data folder not found",
    ),
    (
        "data-root-file",
        "data --dataset fashion-mnist --root {I}/a-file --out {O}/d",
        "a file, not a data folder",
    ),
    (
        "data-subsample-5",
        "data --dataset fashion-mnist --root {I}/idx --subsample 5 --out {O}/d",
        "fewer images than the 10 classes",
    ),
    (
        "data-subsample-0",
        "data --dataset fashion-mnist --root {I}/idx --subsample 0 --out {O}/d",
        "greater than 0",
    ),
    (
        "data-subsample-neg",
        "data --dataset fashion-mnist --root {I}/idx --subsample -3 --out {O}/d",
        "greater than 0",
    ),
    (
        "data-subsample-huge",
        "data --dataset fashion-mnist --root {I}/idx --subsample 1000000000 --out {O}/d",
        "larger than the datasets",
    ),
    (
        "data-subsample-over-data",
        "data --dataset fashion-mnist --root {I}/idx --subsample 5000 --out {O}/d",
        "larger than the data (1,000 images",
    ),
    (
        "data-fractions-sum",
        "data --dataset fashion-mnist --root {I}/idx --fractions 0.5 0.5 0.5 --out {O}/d",
        "sum to 1",
    ),
    (
        "data-fractions-nan",
        "data --dataset fashion-mnist --root {I}/idx --fractions nan 0.5 0.5 --out {O}/d",
        "finite number",
    ),
    (
        "data-fractions-inf",
        "data --dataset fashion-mnist --root {I}/idx --fractions inf 0 0 --out {O}/d",
        "finite number",
    ),
    (
        "data-fractions-two",
        "data --dataset fashion-mnist --root {I}/idx --fractions 0.7 0.3 --out {O}/d",
        "expected 3 arguments",
    ),
    (
        "data-fractions-tiny-val",
        "data --dataset fashion-mnist --root {I}/idx --fractions 0.99 0.005 0.005 --out {O}/d",
        "fewer than the 10 classes",
    ),
    (
        "data-seed-negative",
        "data --dataset fashion-mnist --root {I}/idx --seed -1 --out {O}/d",
        "--seed must be >= 0",
    ),
    ("data-source-unknown", "data --dataset fashion-mnist --source web --out {O}/d", "invalid choice: 'web'"),
    (
        "data-swapped-files",
        "data --dataset fashion-mnist --root {I}/swapped --out {O}/d",
        "(an IDX labels file), not images",
    ),
    (
        "data-other-dataset",
        f"data --dataset mnist --root {FASHION_DIR} --out {{O}}/d",
        "is Fashion-MNIST's train-images-idx3-ubyte (by its SHA-256), not MNIST",
    ),
    # ---------------------------------------------------------------- svm
    ("svm-C-inf", "svm --split {I}/split --out {O}/s --C inf", "finite number"),
    ("svm-C-nan", "svm --split {I}/split --out {O}/s --C nan", "finite number"),
    ("svm-C-zero", "svm --split {I}/split --out {O}/s --C 0", "greater than 0"),
    ("svm-C-text", "svm --split {I}/split --out {O}/s --C big", "not a number"),
    ("svm-gamma-inf", "svm --split {I}/split --out {O}/s --gamma inf", "finite number"),
    ("svm-gamma-nan", "svm --split {I}/split --out {O}/s --gamma nan", "finite number"),
    ("svm-gamma-negative", "svm --split {I}/split --out {O}/s --gamma -1", "gamma must be > 0"),
    ("svm-coef0-inf", "svm --split {I}/split --out {O}/s --kernel poly --coef0 inf", "finite number"),
    (
        "svm-degree-zero",
        "svm --split {I}/split --out {O}/s --kernel poly --degree 0",
        "greater than or equal to 1",
    ),
    ("svm-n-train-zero", "svm --split {I}/split --out {O}/s --n-train 0", "greater than 0"),
    (
        "svm-n-train-too-many",
        "svm --split {I}/split --out {O}/s --n-train 100000",
        "larger than the training split",
    ),
    ("svm-seed-negative", "svm --split {I}/split --out {O}/s --seed -1", "greater than or equal to 0"),
    ("svm-split-missing", "svm --split {I}/nope --out {O}/s", "/nope: folder not found"),
    ("svm-split-tampered", "svm --split {I}/tampered --out {O}/s", "is not the split the manifest describes"),
    (
        "svm-wrong-dataset",
        "svm --split {I}/split --dataset mnist --out {O}/s",
        "holds fashion-mnist but the run asks for mnist",
    ),
    ("svm-out-proc", "svm --split {I}/split --out /proc/x", "--out /proc/x: cannot write"),
    ("svm-out-file", "svm --split {I}/split --out {I}/a-file", "a file is there"),
    ("svm-out-is-the-split", "svm --split {I}/split --out {I}/split", "is the same folder as --split"),
    (
        "train-out-is-the-split",
        "train --split {I}/split --out {I}/split --max-steps-per-epoch 1",
        "is the same folder as --split",
    ),
    ("svm-kernel-unknown", "svm --split {I}/split --out {O}/s --kernel linear", "invalid choice: 'linear'"),
    # ---------------------------------------------------------------- train
    ("train-lr-inf", "train --split {I}/split --out {O}/t --lr inf", "finite number"),
    ("train-lr-nan", "train --split {I}/split --out {O}/t --lr nan", "finite number"),
    ("train-lr-zero", "train --split {I}/split --out {O}/t --lr 0", "--lr: Input should be greater than 0"),
    (
        "train-momentum-big",
        "train --split {I}/split --out {O}/t --momentum 1.5",
        "--momentum: Input should be less than 1",
    ),
    ("train-weight-decay-inf", "train --split {I}/split --out {O}/t --weight-decay inf", "finite number"),
    (
        "train-epochs-zero",
        "train --split {I}/split --out {O}/t --epochs 0",
        "--epochs: Input should be greater than 0",
    ),
    (
        "train-batch-zero",
        "train --split {I}/split --out {O}/t --batch-size 0",
        "--batch-size: Input should be greater than 0",
    ),
    (
        "train-batch-too-big",
        "train --split {I}/split --out {O}/t --batch-size 100000",
        "larger than the training",
    ),
    (
        "train-model-unknown",
        "train --split {I}/split --out {O}/t --model resnet99",
        "unknown model 'resnet99' (did you mean resnet50",
    ),
    (
        "train-device-unknown",
        "train --split {I}/split --out {O}/t --device tpu",
        "argument --device: invalid choice",
    ),
    (
        "train-input-size-small",
        "train --split {I}/split --out {O}/t --input-size 4",
        "greater than or equal to 8",
    ),
    ("train-seed-negative", "train --split {I}/split --out {O}/t --seed -1", "greater than or equal to 0"),
    (
        "train-max-steps-zero",
        "train --split {I}/split --out {O}/t --max-steps-per-epoch 0",
        "--max-steps-per-epoch: Input should be greater than 0",
    ),
    (
        "train-workers-negative",
        "train --split {I}/split --out {O}/t --num-workers -1",
        "--num-workers: Input should be greater than or equal to 0",
    ),
    ("train-split-missing", "train --split {I}/nope --out {O}/t", "/nope: folder not found"),
    (
        "train-split-tampered",
        "train --split {I}/tampered --out {O}/t",
        "is not the split the manifest describes",
    ),
    (
        "train-wrong-dataset",
        "train --split {I}/split --dataset mnist --out {O}/t",
        "holds fashion-mnist but the run asks for mnist",
    ),
    ("train-out-proc", "train --split {I}/split --out /proc/x", "--out /proc/x: cannot write"),
    ("train-out-file", "train --split {I}/split --out {I}/a-file", "a file is there"),
    # ---------------------------------------------------------------- profile
    (
        "profile-model-unknown",
        "profile --models resnet99 --out {O}/p",
        "--models: Value error, unknown model 'resnet99' (did you mean resnet50",
    ),
    (
        "profile-size-zero",
        "profile --models resnet18 --input-sizes 0 --out {O}/p",
        "--input-sizes: Input should be greater than 0",
    ),
    (
        "profile-batch-zero",
        "profile --models resnet18 --batch-size 0 --out {O}/p",
        "--batch-size: Input should be greater than 0",
    ),
    (
        "profile-classes-zero",
        "profile --models resnet18 --num-classes 0 --out {O}/p",
        "--num-classes: Input should be greater than 0",
    ),
    ("profile-out-proc", "profile --models resnet18 --out /proc/x", "--out /proc/x: cannot write"),
    ("profile-out-under-file", "profile --models resnet18 --out {I}/a-file/p", "is a file, so it"),
    # ---------------------------------------------------------------- onnx
    (
        "onnx-batch-zero",
        "onnx --model resnet18 --batch-sizes 0 --out {O}/o",
        "--batch-sizes: Input should be greater than 0",
    ),
    (
        "onnx-iterations-zero",
        "onnx --model resnet18 --iterations 0 --out {O}/o",
        "--iterations: Input should be greater than 0",
    ),
    (
        "onnx-warmup-negative",
        "onnx --model resnet18 --warmup -1 --out {O}/o",
        "--warmup: Input should be greater than or equal to 0",
    ),
    ("onnx-tolerance-inf", "onnx --model resnet18 --tolerance inf --out {O}/o", "finite number"),
    ("onnx-tolerance-nan", "onnx --model resnet18 --tolerance nan --out {O}/o", "finite number"),
    (
        "onnx-opset-old",
        "onnx --model resnet18 --opset 5 --out {O}/o",
        "--opset: Input should be greater than or equal to 13",
    ),
    ("onnx-opset-future", "onnx --model resnet18 --opset 99 --out {O}/o", "opset 99 is newer than"),
    (
        "onnx-input-size-huge",
        "onnx --model resnet18 --input-size 100000 --out {O}/o",
        "--input-size: Input should be less than or equal to 512",
    ),
    (
        "onnx-threads-zero",
        "onnx --model resnet18 --threads 0 --out {O}/o",
        "--threads: Input should be greater than 0",
    ),
    (
        "onnx-provider-unknown",
        "onnx --model resnet18 --providers tpu --out {O}/o",
        "argument --providers: invalid choice: 'tpu'",
    ),
    ("onnx-checkpoint-missing", "onnx --model resnet18 --checkpoint {I}/nope.pt --out {O}/o", "--checkpoint"),
    ("onnx-out-file", "onnx --model resnet18 --out {I}/a-file", "a file is there"),
    # ---------------------------------------------------------------- report
    ("report-records-missing", "report --records {I}/nope --out {O}/r", "records folder"),
    ("report-records-file", "report --records {I}/a-file --out {O}/r", "is a file, not a folder"),
    ("report-out-proc", "report --records {I}/split --out /proc/x", "--out /proc/x: cannot write"),
    ("report-out-file", "report --records {I}/split --out {I}/a-file", "a file is there"),
    # ---------------------------------------------------------------- spec and study
    ("spec-empty", "spec validate {I}/empty.yaml", "is empty"),
    (
        "study-folder-one-class",
        "study --spec {I}/folder-one-class.yaml --out {O}/s",
        "data.root: image folder",  # listed before the study folder is made
    ),
    (
        "spec-folder-empty-class",
        "spec validate {I}/folder-empty-class.yaml",
        "empty-class/fox holds no image",
    ),
    ("study-unknown-model", "study --spec {I}/unknown-model.yaml --out {O}/s", "unknown model 'resnet19'"),
    (
        "spec-unknown-estimator",
        "spec validate {I}/unknown-estimator.yaml",
        "unknown estimator 'random_forrest' (did you mean random_forest?)",
    ),
    ("spec-inf", "spec validate {I}/inf-c.yaml", "finite number"),
    ("spec-nan", "spec validate {I}/nan-lr.yaml", "finite number"),
    ("spec-root-missing", "spec validate {I}/no-root.yaml", "data.root"),
    ("spec-subsample-5", "spec validate {I}/sub5.yaml", "fewer images than the 10 classes"),
    ("spec-subsample-huge", "spec validate {I}/subhuge.yaml", "larger than the datasets"),
    (
        "spec-seed-negative",
        "spec validate {I}/neg-seed.yaml",
        "seed: Input should be greater than or equal to 0",
    ),
    ("spec-fractions", "spec validate {I}/bad-fractions.yaml", "sum to 1 (got [0.5, 0.5, 0.5])"),
    ("spec-binary-file", "spec validate {I}/idx/train-images-idx3-ubyte.gz", "not a text file"),
    ("spec-missing-file", "spec validate {I}/nope.yaml", "neither a preset"),
    ("study-empty-spec", "study --spec {I}/empty.yaml --out {O}/st", "is empty"),
    ("study-inf", "study --spec {I}/inf-tol.yaml --out {O}/st", "finite number"),
    ("study-root-missing", "study --spec {I}/no-root.yaml --out {O}/st", "data.root"),
    ("study-subsample-5", "study --spec {I}/sub5.yaml --out {O}/st", "fewer images than the 10 classes"),
    ("study-out-file", "study --spec {I}/inf-c.yaml --out {I}/a-file", "finite number"),
    ("study-out-proc", "study --spec quick --out /proc/x", "--out /proc/x: cannot write"),
    ("study-out-is-file", "study --spec quick --out {I}/a-file", "a file is there"),
    # ---------------------------------------------------------------- pipeline verbs
    ("compile-out-proc", "compile --spec quick --out /proc/x.yaml", "--out /proc/x.yaml: cannot write"),
    ("compile-out-dir", "compile --spec quick --out {I}/a-dir", "a folder is there, not a file"),
    ("compile-out-under-file", "compile --spec quick --out {I}/a-file/p.yaml", "is a file, not a folder"),
    (
        "compile-parallelism-zero",
        "compile --spec quick --parallelism 0 --out {O}/p.yaml",
        "--parallelism must be",
    ),
    ("compile-empty-spec", "compile --spec {I}/empty.yaml --out {O}/p.yaml", "is empty"),
    (
        "compile-selector-no-value",
        "compile --spec {I}/selector-no-value.yaml --out {O}/p.yaml",
        "devices.l4.node_selector: Value error, node_selector 'nvidia.com/gpu.product' has no value",
    ),
    (
        "compile-negative-price",
        "compile --spec {I}/negative-price.yaml --out {O}/p.yaml",
        "devices.vm.price_per_hour: Value error, price_per_hour must be 0 or more (got -0.5)",
    ),
    (
        "compile-unknown-device",
        "compile --spec {I}/unknown-device.yaml --out {O}/p.yaml",
        "device 'h100' is not in the catalog (known: cpu, cuda); add it under devices:",
    ),
    ("fetch-to-proc", "fetch RUN --store {O}/store --to /proc/y", "--to /proc/y: cannot write"),
    ("fetch-to-file", "fetch RUN --store {O}/store --to {I}/a-file", "a file is there"),
    ("run-no-local", "run --spec quick --work {O}/w", "add --local"),
    (
        "run-parallelism-zero",
        "run --local --spec quick --parallelism 0 --work {O}/w",
        "--parallelism must be at least 1",
    ),
    ("run-work-file", "run --local --spec quick --work {I}/a-file", "--work"),
    ("run-work-proc", "run --local --spec quick --work /proc/x", "--work /proc/x: cannot write"),
    ("run-root-missing", "run --local --spec {I}/no-root.yaml --work {O}/w", "data.root"),
    (
        "run-store-proc",
        "run --local --spec quick --work {O}/w --store /proc/s",
        "--store /proc/s: cannot write",
    ),
    ("run-store-file", "run --local --spec quick --work {O}/w --store {I}/a-file", "--store"),
    ("publish-unknown-run", "publish RUN --work {O} --store {O}/s", "no run 'RUN'"),
    ("submit-poll-zero", "submit --host http://127.0.0.1:9 --poll 0", "--poll must be > 0"),
    ("submit-timeout-nan", "submit --host http://127.0.0.1:9 --timeout nan", "finite number"),
]


def run_cli(
    args: list[str], cwd: Path, prefix: list[str] = (), env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``python -m dlbench ARGS`` as a process of its own (tests/cli_fork.py: forked from a zygote that
    imported torch and the rest once; a fresh interpreter under ``prefix``)."""
    extra = env or {}
    env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONPATH": str(REPO)}
    env.pop("DLBENCH_STORE", None)
    env.update(extra)
    return cli_fork.run(args, cwd=cwd, env=env, timeout=300, prefix=prefix)


def check_refused(result: subprocess.CompletedProcess, expect: str) -> None:
    lines = result.stderr.splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr + result.stdout
    assert len(lines) == 1, result.stderr
    assert expect in lines[0], lines[0]


@pytest.mark.parametrize("case, template, expect", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(inputs, tmp_path, case, template, expect):
    work = tmp_path / "work"
    (work / "earlier").mkdir(parents=True)
    (work / "earlier" / "record.json").write_text('{"status": "ok"}\n')
    args = [a.replace("{I}", str(inputs)).replace("{O}", str(work)) for a in template.split(" ")]
    before = (tree_hash(work), tree_hash(inputs))
    result = run_cli(args, cwd=work)
    check_refused(result, expect)
    assert (tree_hash(work), tree_hash(inputs)) == before


def test_there_are_at_least_60_cases_across_every_command():
    commands = {c[1].split(" ")[0] for c in CASES}
    assert len(CASES) >= 60
    assert commands >= {
        "data",
        "svm",
        "train",
        "profile",
        "onnx",
        "report",
        "spec",
        "study",
        "compile",
        "fetch",
        "run",
    }


# A folder without write permission for the user: run as this user, or as root where permission bits apply.
@pytest.fixture(scope="session")
def unprivileged() -> list[str]:
    """The command prefix under which a 0555 folder cannot be written and dlbench still imports: none for a
    normal user; for root the first of DROP_CAPS, AS_NOBODY that works here (probed), else a skip that says
    why (never a failure for where the checkout lies)."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: permission bits cannot be made to apply")
    top = Path(tempfile.mkdtemp(prefix="dlbench-perm-probe-"))
    try:
        top.chmod(0o755)
        (top / "ro").mkdir(mode=0o555)
        probe = f"import os, sys, dlbench; sys.exit(3 if os.access({str(top / 'ro')!r}, os.W_OK) else 0)"
        tried = []
        for prefix in (DROP_CAPS, AS_NOBODY):
            r = subprocess.run(
                [*prefix, sys.executable, "-c", probe], capture_output=True, text=True, cwd=top
            )
            if r.returncode == 0:
                return prefix
            tried.append(f"{' '.join(prefix[:2])}: exit {r.returncode} {r.stderr.strip()[-200:]}")
        pytest.skip("no way to run dlbench with permission bits applying: " + "; ".join(tried))
    finally:
        shutil.rmtree(top)


PERMISSION_CASES = [
    ("data", "data --dataset fashion-mnist --out {RO}/d"),
    ("profile", "profile --models resnet18 --out {RO}/p"),
    ("compile", "compile --spec quick --out {RO}/p.yaml"),
    ("fetch", "fetch RUN --store {RO}/store --to {RO}/f"),
    ("study", "study --spec quick --out {RO}/sub/st"),
    ("run", "run --local --spec quick --work {RO}/w"),
]


@pytest.mark.parametrize("case, template", PERMISSION_CASES, ids=[c[0] for c in PERMISSION_CASES])
def test_a_folder_without_write_permission_is_refused(case, template, unprivileged):
    prefix = unprivileged
    top = Path(tempfile.mkdtemp(prefix="dlbench-perm-"))
    try:
        top.chmod(0o755)
        ro = top / "read-only"
        ro.mkdir()
        (ro / "kept.txt").write_text("earlier result\n")
        ro.chmod(0o555)
        args = [a.replace("{RO}", str(ro)) for a in template.split(" ")]
        before = tree_hash(ro)
        result = run_cli(args, cwd=top, prefix=prefix)
        check_refused(result, "no write permission")
        assert tree_hash(ro) == before
    finally:
        (top / "read-only").chmod(0o755)
        shutil.rmtree(top)
