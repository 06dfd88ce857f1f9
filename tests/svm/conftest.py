"""Fixtures of the svm tests: a small real Fashion-MNIST split (2,100 training / 600 test images)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def fashion_small(fashion_dir, tmp_path_factory) -> Path:
    """A data-step folder over a stratified 3,000-image subsample of the real Fashion-MNIST."""
    from dlbench.data.step import run_data

    out = tmp_path_factory.mktemp("fashion-small") / "split"
    run_data(
        "fashion-mnist", out, source="idx", root=str(fashion_dir), seed=0, subsample=3000, log=lambda *_: None
    )
    return out
