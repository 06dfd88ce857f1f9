"""Pipeline test fixtures: a tiny study spec (smaller than quick) over synthetic images, an S3 server."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import make_idx_folder
from tests.s3server import S3Server


def tiny_spec_dict(idx_root: str) -> dict:
    """Every step, as small as it gets: 600 images, 2 training steps, 200 SVM train images, batch 1 ONNX."""
    return {
        "name": "tiny",
        "description": "pipeline test",
        "data": {"datasets": ["fashion-mnist"], "source": "idx", "root": idx_root, "subsample": 600},
        "train": {
            "stem": "imagenet",
            "max_steps_per_epoch": 2,
            "grids": [
                {
                    "name": "one",
                    "models": ["resnet18"],
                    "batch_size": [32],
                    "epochs": [1],
                    "device": ["cpu"],
                    "engine": ["resident"],
                }
            ],
        },
        "svm": {"backends": ["sklearn"], "kernels": ["rbf"], "n_train": 200},
        "profile": {"input_sizes": [28, 64], "in_channels": [1, 3]},
        "onnx": {"providers": ["cpu"], "batch_sizes": [1], "warmup": 1, "iterations": 2},
    }


@pytest.fixture(scope="session")
def tiny_spec(tmp_path_factory):
    root = tmp_path_factory.mktemp("tinyspec")
    idx = make_idx_folder(root / "idx", n_train=800, n_test=200)
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_spec_dict(str(idx)), sort_keys=False))
    return path


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    server = S3Server(tmp_path_factory.mktemp("s3") / "data", bucket="dlbench").start()
    yield server
    server.stop()
