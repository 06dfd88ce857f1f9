"""What both engines share about the data: normalisation constants and the seeded batch order.

Pixels are scaled to [0, 1], then standardised with fixed per-dataset constants (for a registered
dataset its entry's published ones, computed over its training images; for the user's own data the
per-channel statistics of the split's training images, see :func:`dlbench.data.registry.split_facts`),
so every run of a dataset sees the same transform whatever its split or subsample. :func:`normalize_`
is the single implementation: the ``dataloader`` engine applies it per image on the host, the
``resident`` engine per batch on the device, and on the CPU both give bit-identical tensors.
:func:`model_input` then resizes (bilinear, as torchvision's ``Resize``) and repeats the gray channel
(as ``Grayscale(3)``) when a run asks for another input than the images' own, again one implementation
for both engines.

The batch order is one permutation of the training split per epoch, drawn from a ``torch.Generator``
seeded from ``(seed, epoch)``; it does not depend on the engine, the device or on how many epochs ran
before in this process, which is what makes ``--resume`` reproduce an uninterrupted run.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dlbench.data.registry import DATASETS, SplitFacts

# (mean, std) of pixel / 255 over the 60,000 training images of each one-channel registered dataset.
NORMALIZATION: dict[str, tuple[float, float]] = {
    name: (e.mean[0], e.std[0]) for name, e in DATASETS.items() if e.shape[0] == 1
}


def normalization(facts: SplitFacts) -> dict:
    """The record's note on how pixels were standardised (one value per channel, one channel a number)."""
    mean = facts.mean[0] if facts.channels == 1 else list(facts.mean)
    std = facts.std[0] if facts.channels == 1 else list(facts.std)
    return {"kind": "fixed", "mean": mean, "std": std, "note": facts.note}


def norm_constants(facts: SplitFacts, device: torch.device | str = "cpu"):
    """(mean, std) for :func:`normalize_`: floats for one channel (as ever), else 1 x C x 1 x 1 tensors on
    ``device`` (made once, so a captured CUDA graph reads them in place)."""
    if facts.channels == 1:
        return facts.mean[0], facts.std[0]
    shape = (1, facts.channels, 1, 1)
    return (
        torch.tensor(facts.mean, dtype=torch.get_default_dtype(), device=device).view(shape),
        torch.tensor(facts.std, dtype=torch.get_default_dtype(), device=device).view(shape),
    )


def as_nchw(x: torch.Tensor) -> torch.Tensor:
    """Split images (N x H x W for one channel, N x C x H x W for more) as N x C x H x W."""
    return x.unsqueeze(1) if x.dim() == 3 else x


def normalize_(x: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 pixels -> standardised floats of torch's default dtype (float32 unless a float64 check sets it),
    in one place for both engines (returns a new float tensor)."""
    return x.to(torch.get_default_dtype()).div_(255.0).sub_(mean).div_(std)


def model_input(x: torch.Tensor, mean, std, size: int = 28, channels: int = 1) -> torch.Tensor:
    """uint8 images (N x C x H x W) -> the model's float input (N x channels x size x size), standardised
    (``mean``/``std``: floats, or per-channel tensors from :func:`norm_constants`).

    Standardising first and interpolating after equals the other order (both are linear). Resizing is
    bilinear without corner alignment, antialiased when shrinking, as torchvision's ``Resize``.
    """
    x = normalize_(x, mean, std)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(
            x, size=(size, size), mode="bilinear", align_corners=False, antialias=size < min(x.shape[-2:])
        )
    if channels != x.shape[1]:
        x = x.expand(-1, channels, -1, -1)
    return x


def epoch_seed(seed: int, epoch: int) -> int:
    """The generator seed of epoch ``epoch`` (0-based) of a run seeded ``seed``."""
    return seed * 100_003 + epoch


def epoch_permutation(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The order of the ``n`` training images in epoch ``epoch`` (CPU int64 tensor)."""
    g = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    return torch.randperm(n, generator=g)


def steps_per_epoch(n_train: int, batch_size: int, max_steps: int | None = None) -> int:
    """Batches per epoch: every image once, the last batch possibly partial, capped by ``max_steps``."""
    steps = math.ceil(n_train / batch_size)
    return min(steps, max_steps) if max_steps else steps


def epoch_batches(seed: int, epoch: int, n: int, batch_size: int, steps: int) -> list[torch.Tensor]:
    """The index batches of one epoch (the first ``steps`` of them)."""
    return list(epoch_permutation(seed, epoch, n).split(batch_size))[:steps]
