"""Fixtures of the train tests: tiny configs over the session's 1,000-image synthetic split."""

from __future__ import annotations

import pytest
import torch

from dlbench.spec import TrainConfig


def make_config(**kw) -> TrainConfig:
    """ResNet-18 (imagenet stem: cheap at 28x28), batch 32, one epoch of 3 steps, unless told otherwise."""
    base = dict(
        dataset="fashion-mnist",
        model="resnet18",
        stem="imagenet",
        batch_size=32,
        epochs=1,
        max_steps_per_epoch=3,
        engine="resident",
        device="cpu",
        seed=0,
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture
def quiet():
    return lambda *_: None


@pytest.fixture
def float64():
    """Models, inputs and optimizer state in float64 while the test runs: the fusion's equivalence to the solo
    runs is then exact to ~1e-12 on any CPU, whatever kernels (AVX2, AVX-512, AMX) the host picks; in float32
    the kernels' own rounding (grouped against plain convolutions) is of the order of the tolerances."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(before)
