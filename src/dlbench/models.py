"""The model registry: one entry per model family, holding every fact dlbench knows about it.

An entry (:class:`ModelFamily`) says how a model is built for a dataset's input channels, image size and
class count (its builder: the input adaptation and the classifier), the label and colour the report
uses, and whether the fused engine can fuse it (:mod:`dlbench.train.fused`: Conv2d, BatchNorm2d and
Linear only). Looked up by name, in the spirit of timm's ``create_model``; tests are parametrised over
:data:`MODELS`.

Built in: ``resnet18``, ``resnet34``, ``resnet50`` (torchvision's ResNets, the reference study's), and two
families of names: ``timm:NAME`` (any classification model of timm, e.g. ``timm:mobilenetv3_small_050``,
``timm:resnet10t``, ``timm:vit_tiny_patch16_224``) and ``tv:NAME`` (any torchvision classification
model, e.g. ``tv:mobilenet_v3_small``). Every model is randomly initialised (nothing is downloaded).

ResNet stems:
- ``imagenet``: torchvision's 7x7 stride-2 conv + 3x3 stride-2 max-pool, first conv taking 1 channel
  (what the reference study ran: 28x28 becomes 7x7 before the first block);
- ``small``: a 3x3 stride-1 conv and no max-pool, the usual choice for 28-32 px images (about 16x the
  FLOPs of ``imagenet`` at 28x28).

This module imports torch only inside its builders, so :mod:`dlbench.configs` can check a name without it.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dlbench.errors import SpecError

STEMS = ("imagenet", "small")
PALETTE = ("#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a")


@dataclass(frozen=True)
class ModelFamily:
    name: str  # the registry key: a model's name, or a prefix ("timm") for names "timm:NAME"
    label: str  # the report's label; "{name}" is the part after the prefix
    build: Callable[..., Any]  # (name, in_channels, num_classes, input_size, stem) -> nn.Module
    adapt: str  # how the input and the classifier are adapted (for docs and --help)
    fusable: bool = False
    color: str | None = None  # None: one from PALETTE, by the name's hash
    prefix: bool = False  # a family of names "<name>:<model>"
    known: Callable[[], list[str]] | None = None  # the names a prefix family holds (for did-you-mean)

    def label_of(self, model: str) -> str:
        return self.label.format(name=model.split(":", 1)[-1])

    def color_of(self, model: str) -> str:
        if self.color:
            return self.color
        return PALETTE[int(hashlib.sha256(model.encode()).hexdigest(), 16) % len(PALETTE)]


MODELS: dict[str, ModelFamily] = {}


def register_model(family: ModelFamily) -> ModelFamily:
    MODELS[family.name] = family
    return family


# --------------------------------------------------------------------------- builders


def _resnet(name: str, in_channels: int, num_classes: int, input_size: int, stem: str):
    import torchvision
    from torch import nn

    model = getattr(torchvision.models, name)(weights=None, num_classes=num_classes)
    if stem == "imagenet":
        if in_channels != 3:
            model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    else:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    if stem != "imagenet" or in_channels != 3:
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    return model


def _timm(name: str, in_channels: int, num_classes: int, input_size: int, stem: str):
    try:
        import timm
    except ImportError:
        raise SpecError(
            "timm is not installed", "pip install timm (dlbench lists it as a dependency)"
        ) from None
    if name not in timm.list_models():
        raise SpecError(f"unknown timm model {name!r}{_near(name, timm.list_models(), 'timm:')}")
    kwargs = {"pretrained": False, "num_classes": num_classes, "in_chans": in_channels}
    try:  # models with a fixed input grid (ViTs) are built for the run's size
        return timm.create_model(name, img_size=input_size, **kwargs)
    except TypeError:
        return timm.create_model(name, **kwargs)


def _tv_names() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _tv(name: str, in_channels: int, num_classes: int, input_size: int, stem: str):
    import torchvision
    from torch import nn

    if name not in _tv_names():
        raise SpecError(f"unknown torchvision classification model {name!r}{_near(name, _tv_names(), 'tv:')}")
    kwargs: dict[str, Any] = {"weights": None, "num_classes": num_classes}
    if name.startswith("vit_"):
        kwargs["image_size"] = input_size
    model = torchvision.models.get_model(name, **kwargs)
    if in_channels != 3:  # the first convolution takes the dataset's channels
        for mod_name, mod in model.named_modules():
            if isinstance(mod, nn.Conv2d) and mod.in_channels == 3:
                new = nn.Conv2d(
                    in_channels,
                    mod.out_channels,
                    mod.kernel_size,
                    mod.stride,
                    mod.padding,
                    mod.dilation,
                    mod.groups if mod.groups == 1 else in_channels,
                    mod.bias is not None,
                )
                parent = model.get_submodule(mod_name.rsplit(".", 1)[0]) if "." in mod_name else model
                setattr(parent, mod_name.rsplit(".", 1)[-1], new)
                break
    return model


def _timm_names() -> list[str]:
    import timm

    return timm.list_models()


for _depth, _color in ((18, "#1f77b4"), (34, "#ff7f0e"), (50, "#2ca02c")):
    register_model(
        ModelFamily(
            name=f"resnet{_depth}",
            label=f"ResNet-{_depth}",
            build=_resnet,
            adapt="first conv takes the dataset's channels (imagenet or small stem); fc to the class count",
            fusable=True,
            color=_color,
        )
    )
register_model(
    ModelFamily(
        name="timm",
        label="{name} (timm)",
        build=_timm,
        adapt="timm's in_chans and num_classes (and img_size where the model has a fixed grid)",
        prefix=True,
        known=_timm_names,
    )
)
register_model(
    ModelFamily(
        name="tv",
        label="{name} (torchvision)",
        build=_tv,
        adapt="first 3-channel conv replaced for the dataset's channels; num_classes outputs",
        prefix=True,
        known=_tv_names,
    )
)


# --------------------------------------------------------------------------- lookup


def _near(name: str, names, prefix: str = "") -> str:
    close = difflib.get_close_matches(name, list(names), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(prefix + c for c in close)}?)" if close else ""


def family_of(model: str) -> ModelFamily:
    """The registry entry of ``model`` (a built-in name, or ``timm:NAME`` / ``tv:NAME``); SpecError naming
    the nearest known names otherwise. Checks the name's form only (no import of torch or timm)."""
    if model in MODELS and not MODELS[model].prefix:
        return MODELS[model]
    head, sep, tail = model.partition(":")
    if sep and head in MODELS and MODELS[head].prefix and tail:
        return MODELS[head]
    plain = [n for n, f in MODELS.items() if not f.prefix]
    prefixes = [f"{n}:NAME" for n, f in MODELS.items() if f.prefix]
    raise SpecError(
        f"unknown model {model!r}{_near(model, plain)}",
        f"choose one of {', '.join(plain)}, or {' / '.join(prefixes)} (e.g. timm:resnet10t)",
    )


def model_label(model: str) -> str:
    try:
        return family_of(str(model)).label_of(str(model))
    except SpecError:
        return str(model)


def model_color(model: str) -> str | None:
    try:
        return family_of(str(model)).color_of(str(model))
    except SpecError:
        return None


def is_fusable(model: str) -> bool:
    return family_of(model).fusable


def create_model(
    name: str,
    stem: str = "imagenet",
    in_channels: int = 1,
    num_classes: int = 10,
    input_size: int = 28,
):
    """Build a freshly initialised model. ``in_channels=3, stem="imagenet"`` is torchvision's own ResNet."""
    family = family_of(name)
    if stem not in STEMS:
        raise SpecError(f"unknown stem {stem!r}", f"choose one of {', '.join(STEMS)}")
    return family.build(
        name.split(":", 1)[1] if family.prefix else name, in_channels, num_classes, input_size, stem
    )


def check_input(
    name: str, stem: str = "imagenet", in_channels: int = 1, num_classes: int = 10, input_size: int = 28
) -> None:
    """Build ``name`` and run two zero images of the run's input through it: a model that cannot take the
    input (a ViT whose patch does not divide the size, a net that pools a small image to nothing) is
    refused in one line, before a step writes anything."""
    import torch

    model = create_model(name, stem, in_channels, num_classes, input_size)
    patch = getattr(getattr(model, "patch_embed", None), "patch_size", None)
    if patch is not None:
        ph, pw = (patch, patch) if isinstance(patch, int) else tuple(patch)[:2]
        if input_size % ph or input_size % pw:
            raise SpecError(
                f"model {name} cannot take {in_channels}x{input_size}x{input_size} input: its patch "
                f"{ph}x{pw} does not divide the size",
                f"use an input size that is a multiple of {ph} "
                f"(e.g. --input-size {-(-input_size // ph) * ph})",
            )
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, in_channels, input_size, input_size))
    except (RuntimeError, ValueError, AssertionError, TypeError) as exc:
        raise SpecError(
            f"model {name} cannot take {in_channels}x{input_size}x{input_size} input: "
            f"{' '.join(str(exc).split())[:160]}",
            "use a larger --input-size (data.size / input_size in a spec) or another model",
        ) from None
    if tuple(out.shape) != (2, num_classes):
        raise SpecError(f"model {name} gives outputs {tuple(out.shape)}, not 2 x {num_classes} classes")


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
