"""Model registry: torchvision ResNets adapted to 1-channel 28x28 input.

Looked up by name (``create_model("resnet18", stem="imagenet")``), in the spirit of timm's
``create_model``; tests are parametrised over :data:`MODELS`.

Stems:
- ``imagenet``: torchvision's 7x7 stride-2 conv + 3x3 stride-2 max-pool, first conv taking 1 channel
  (what the reference study ran: 28x28 becomes 7x7 before the first block);
- ``small``: a 3x3 stride-1 conv and no max-pool, the usual choice for 28-32 px images (about 16x the
  FLOPs of ``imagenet`` at 28x28).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from dlbench.configs import NUM_CLASSES
from dlbench.errors import SpecError

STEMS = ("imagenet", "small")


def _tv(name: str) -> Callable[..., nn.Module]:
    def build(num_classes: int) -> nn.Module:
        import torchvision

        return getattr(torchvision.models, name)(weights=None, num_classes=num_classes)

    return build


MODELS: dict[str, Callable[..., nn.Module]] = {
    "resnet18": _tv("resnet18"),
    "resnet34": _tv("resnet34"),
    "resnet50": _tv("resnet50"),
}


def create_model(
    name: str, stem: str = "imagenet", in_channels: int = 1, num_classes: int = NUM_CLASSES
) -> nn.Module:
    """Build a freshly initialised model. ``in_channels=3, stem="imagenet"`` is torchvision's own."""
    if name not in MODELS:
        raise SpecError(f"unknown model {name!r}", f"choose one of {', '.join(MODELS)}")
    if stem not in STEMS:
        raise SpecError(f"unknown stem {stem!r}", f"choose one of {', '.join(STEMS)}")
    model = MODELS[name](num_classes)
    if stem == "imagenet":
        if in_channels != 3:
            model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    else:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    if stem != "imagenet" or in_channels != 3:
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def example_input(batch: int = 1, size: int = 28, in_channels: int = 1) -> torch.Tensor:
    return torch.randn(batch, in_channels, size, size)
