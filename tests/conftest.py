"""Shared fixtures: tiny IDX datasets written by the tests themselves, and the real Fashion-MNIST folder;
the slow tier (``make check`` leaves it out). ``make test``/``make check`` share the tests out over two
pytest-xdist workers a module at a time (``--dist loadscope``), so a module's fixtures run once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dlbench.data.idx import write_idx

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def make_idx_folder(
    folder: Path, n_train: int = 300, n_test: int = 100, seed: int = 0, gz: bool = True
) -> Path:
    """Write a small, learnable MNIST-like dataset: each class is a bright bar at its own place."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for part, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        rng.shuffle(labels)
        images = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
        for i, c in enumerate(labels):
            images[i, 2 + 2 * c : 5 + 2 * c, 4:24] = 255
        ext = ".gz" if gz else ""
        write_idx(folder / f"{part}-images-idx3-ubyte{ext}", images)
        write_idx(folder / f"{part}-labels-idx1-ubyte{ext}", labels)
    return folder


@pytest.fixture
def idx_folder(tmp_path) -> Path:
    return make_idx_folder(tmp_path / "tiny")


@pytest.fixture(scope="session")
def tiny_split(tmp_path_factory) -> Path:
    """A data-step output folder (split.npz, manifest.json, record.json) over 1,000 synthetic images."""
    from dlbench.data.step import run_data

    root = tmp_path_factory.mktemp("tinydata")
    folder = make_idx_folder(root / "idx", n_train=800, n_test=200)
    out = root / "split"
    run_data("fashion-mnist", out, source="idx", root=str(folder), seed=0, log=lambda *_: None)
    return out


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    if not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.fail(f"{FASHION_DIR} is missing: `make data` installs Debian's dataset-fashion-mnist")
    return FASHION_DIR


# Modules that run a whole study or pipeline (marked slow: `make check` leaves them to `make test`).
SLOW_MODULES = {"tests/pipeline/test_local_run.py", "tests/report/test_reference_smoke.py"}


# The suite's long poles, longest first: handed out before everything else (the Makefile runs xdist with
# --no-loadscope-reorder, so modules go out in this order), so the longest module does not start last and
# leave the other worker idle at the end. The container tests wait for the image build started in the
# background, so they go out last.
FIRST_MODULES = (
    "tests/report/test_reference_smoke.py",
    "tests/train/test_fused.py",
    "tests/pipeline/test_local_run.py",
)
LAST_MODULES = ("tests/images/test_container.py", "tests/images/test_push.py")


def _module_order(item) -> int:
    module = item.nodeid.split("::", 1)[0]
    if module in FIRST_MODULES:
        return FIRST_MODULES.index(module) - len(FIRST_MODULES)
    return 1 if module in LAST_MODULES else 0


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.split("::", 1)[0] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
    items.sort(key=_module_order)  # stable: within a module and among the rest, collection order
