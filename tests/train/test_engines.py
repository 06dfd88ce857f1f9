"""The engines: each model learns, both engines see the same data in the same order and agree on the loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlbench.data import load_split
from dlbench.train.data import (
    NORMALIZATION,
    epoch_batches,
    epoch_permutation,
    model_input,
    normalize_,
    steps_per_epoch,
)
from dlbench.train.engines import DataLoaderEngine, ResidentEngine, _restore, _snapshot, build_engine
from tests.train.conftest import make_config

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def arrays(tiny_split):
    return load_split(tiny_split)


def step_losses(engine, steps: int, epoch: int = 0) -> list[float]:
    engine.setup()
    return [float(engine.step(batch)) for batch in engine.batches(epoch, steps)]


def test_resnet18_loss_falls_over_fresh_batches(arrays):
    """Four steps of ResNet-18, each on new images: the loss falls well below its start (~ln 10)."""
    losses = step_losses(build_engine(make_config(), arrays, CPU), 4)
    assert np.isfinite(losses).all()
    assert losses[0] > 1.5
    assert np.mean(losses[-2:]) < 0.5 * losses[0], losses


@pytest.mark.parametrize("model", ["resnet34", "resnet50"])
def test_deeper_models_fit_a_batch(arrays, model):
    """ResNet-34/50 (batch 8): four steps on one batch drive its loss down (they train at all)."""
    engine = build_engine(make_config(model=model, batch_size=8), arrays, CPU)
    engine.setup()
    batch = next(iter(engine.batches(0, 1)))
    losses = [float(engine.step(batch)) for _ in range(4)]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.5 * losses[0], losses


def test_engines_same_first_losses(arrays, float64):
    """Same seed: same initial weights, batches and normalisation, so the same losses, step after step.
    In float64 the engines' only difference (the channels_last convolution order) is ~1e-15, on any CPU;
    in float32 Adam amplifies it by the host's kernels (1e-3 by step 3): that measures the CPU."""
    dl = step_losses(DataLoaderEngine(make_config(engine="dataloader"), arrays, CPU), 3)
    res = step_losses(ResidentEngine(make_config(engine="resident"), arrays, CPU), 3)
    assert res == pytest.approx(dl, rel=1e-9)
    assert len(set(res)) == 3  # the steps did train: three different losses
    other_seed = step_losses(ResidentEngine(make_config(seed=1), arrays, CPU), 1)
    assert other_seed[0] != pytest.approx(res[0], rel=1e-3)


def test_model_input_resizes_as_torchvision_and_repeats_the_gray_channel(arrays):
    from torchvision.transforms.v2 import functional as TF

    x = torch.from_numpy(arrays["x_train"][:4]).unsqueeze(1)
    mean, std = NORMALIZATION["fashion-mnist"]
    plain = normalize_(x, mean, std)
    assert torch.equal(model_input(x, mean, std), plain)  # 1x28x28: exactly the standardised images
    big = model_input(x, mean, std, 64, 3)
    assert big.shape == (4, 3, 64, 64)
    assert torch.equal(big[:, 0], big[:, 1]) and torch.equal(big[:, 0], big[:, 2])
    assert torch.allclose(big[:, :1], TF.resize(plain, [64, 64]), atol=1e-5)
    small = model_input(x, mean, std, 14, 1)
    assert torch.allclose(small, TF.resize(plain, [14, 14]), atol=1e-5)  # antialiased when shrinking


def test_engines_agree_at_the_reference_input(arrays):
    """3x64x64 (the reference study's setting): same first loss from both engines, a 3-channel stem."""
    cfg = dict(input_size=64, in_channels=3, batch_size=16)
    dl_engine = DataLoaderEngine(make_config(engine="dataloader", **cfg), arrays, CPU)
    res_engine = ResidentEngine(make_config(engine="resident", **cfg), arrays, CPU)
    res_engine.setup()
    x, _ = res_engine._gather("train", torch.arange(16))
    assert x.shape == (16, 3, 64, 64) and res_engine.trainer.model.conv1.in_channels == 3
    dl, res = step_losses(dl_engine, 2), step_losses(res_engine, 2)
    assert res[0] == pytest.approx(dl[0], rel=1e-5)
    at_28 = step_losses(ResidentEngine(make_config(batch_size=16), arrays, CPU), 1)
    assert at_28[0] != pytest.approx(res[0], rel=1e-4)


def test_engines_draw_identical_batches(arrays):
    cfg = make_config(batch_size=64)
    dl, res = DataLoaderEngine(cfg, arrays, CPU), ResidentEngine(cfg, arrays, CPU)
    res.setup()
    n = len(arrays["y_train"])
    steps = steps_per_epoch(n, 64)
    for epoch in (0, 1):
        host = list(dl.batches(epoch, steps))
        device = list(res.batches(epoch, steps))
        assert len(host) == len(device) == steps == 11  # 700 images: 10 full batches and one of 60
        assert dl.batch_len(host[-1]) == res.batch_len(device[-1]) == 60
        for (x, y), idx in zip(host, device, strict=True):
            rx, ry = res._gather("train", idx)
            assert torch.equal(x, rx) and torch.equal(y, ry)
    # each epoch is a different permutation of every image, fixed by (seed, epoch)
    p0, p1 = epoch_permutation(0, 0, n), epoch_permutation(0, 1, n)
    assert sorted(p0.tolist()) == list(range(n)) and not torch.equal(p0, p1)
    assert torch.equal(p0, epoch_permutation(0, 0, n))


def test_normalisation_is_the_datasets_constants():
    x = torch.tensor([[0, 255]], dtype=torch.uint8)
    mean, std = NORMALIZATION["fashion-mnist"]
    out = normalize_(x, mean, std)
    assert out.dtype == torch.float32
    assert out.tolist()[0] == pytest.approx([-mean / std, (1 - mean) / std])


def test_max_steps_caps_the_epoch():
    assert steps_per_epoch(700, 32) == 22
    assert steps_per_epoch(700, 32, 5) == 5
    assert len(epoch_batches(0, 0, 700, 32, 5)) == 5


@pytest.mark.parametrize("optimizer,lr", [("adam", 1e-3), ("sgd", 0.05)])
def test_warmup_then_restore_leaves_no_trace(arrays, optimizer, lr):
    """What the CUDA-graph capture relies on: snapshot, train a few steps, restore == never trained.

    Optimizer state created by the warm-up is zeroed, which must give exactly the step a fresh
    optimizer gives (Adam moments and step, SGD momentum buffer)."""
    cfg = make_config(optimizer=optimizer, lr=lr, batch_size=16)
    fresh, warmed = ResidentEngine(cfg, arrays, CPU), ResidentEngine(cfg, arrays, CPU)
    fresh.setup()
    warmed.setup()
    saved = _snapshot(warmed.trainer)
    batches = list(fresh.batches(0, 2))
    for batch in batches:
        warmed.step(batch)
    _restore(warmed.trainer, saved)
    assert [float(warmed.step(b)) for b in batches] == [float(fresh.step(b)) for b in batches]
