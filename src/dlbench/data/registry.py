"""The dataset registry: one entry per dataset, holding every fact dlbench knows about it.

An entry (:class:`DatasetEntry`) says the dataset's name and title, its class names, its image shape
(channels x height x width), the per-channel mean and spread used to standardise its pixels, how it is
loaded (``idx``: IDX files, as MNIST ships; ``folder``: a class-per-subfolder image folder; ``npz``: one
``.npz`` of images and labels), where its files are looked for, and the fingerprints that identify the
published files (content SHA-256, the mean pixel of the full set). Every other module reads these facts
from here, so adding a dataset is one :func:`register_dataset` call (and its test).

A dataset that has no entry (a user's image folder or ``.npz``, named on the command line with
``--source folder`` / ``--source npz``) gets its facts from its files: the data step writes them into the
split's manifest, and :func:`split_facts` reads the ones training needs from the split itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dlbench.errors import DataError

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    title: str
    classes: tuple[str, ...]
    shape: tuple[int, int, int]  # channels x height x width
    mean: tuple[float, ...]  # per channel, of pixel / 255 over the training images
    std: tuple[float, ...]
    loader: str = "idx"  # idx | folder | npz
    search: tuple[str, ...] = ()  # system folders the files are looked for in (after $DLBENCH_DATA, ./data)
    torchvision: str | None = None  # torchvision.datasets class that downloads it, if any
    known_content: dict[str, str] = field(default_factory=dict)  # content SHA-256 -> published file name
    mean_pixel: float | None = None  # mean pixel / 255 over the full published set (train + test)
    full_size: int | None = None  # images in the full published set

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def shape_text(self) -> str:
        return "x".join(map(str, self.shape))


DATASETS: dict[str, DatasetEntry] = {}


def register_dataset(entry: DatasetEntry) -> DatasetEntry:
    if not re.match(NAME_PATTERN, entry.name):
        raise ValueError(f"dataset name {entry.name!r} does not match {NAME_PATTERN}")
    if len(entry.mean) != entry.shape[0] or len(entry.std) != entry.shape[0]:
        raise ValueError(f"{entry.name}: mean and std need one value per channel ({entry.shape[0]})")
    DATASETS[entry.name] = entry
    return entry


register_dataset(
    DatasetEntry(
        name="mnist",
        title="MNIST",
        classes=tuple(str(i) for i in range(10)),
        shape=(1, 28, 28),
        mean=(0.1307,),  # published constants, over the 60,000 training images
        std=(0.3081,),
        search=("/usr/share/datasets/mnist",),
        torchvision="MNIST",
        mean_pixel=0.1309,
        full_size=70_000,
    )
)
register_dataset(
    DatasetEntry(
        name="fashion-mnist",
        title="Fashion-MNIST",
        classes=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        shape=(1, 28, 28),
        mean=(0.2860,),
        std=(0.3530,),
        search=("/usr/share/datasets/fashion-mnist",),
        torchvision="FashionMNIST",
        # content SHA-256 of Zalando's IDX files (uncompressed) as Debian's dataset-fashion-mnist ships them
        known_content={
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888": "train-images-idx3-ubyte",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9": "train-labels-idx1-ubyte",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b": "t10k-images-idx3-ubyte",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34": "t10k-labels-idx1-ubyte",
        },
        mean_pixel=0.2862,
        full_size=70_000,
    )
)


def check_dataset_name(name: str, source: str = "auto") -> None:
    """A registered dataset, or (``source`` folder or npz) a name for the user's own data."""
    if name in DATASETS:
        return
    if source in ("folder", "npz"):
        if not re.match(NAME_PATTERN, name):
            raise DataError(
                f"dataset name {name!r} is not a valid name",
                "use lower-case letters, digits, '.', '_' or '-' (e.g. --dataset my-images)",
            )
        return
    import difflib

    close = difflib.get_close_matches(name, list(DATASETS), n=2)
    raise DataError(
        f"unknown dataset {name!r}" + (f" (did you mean {' or '.join(close)}?)" if close else ""),
        f"choose one of {', '.join(DATASETS)}, or pass --source folder (or npz) --root with your own data",
    )


# --------------------------------------------------------------------------- facts of a split


@dataclass(frozen=True)
class SplitFacts:
    """What training needs to know of a split: classes, image shape (C x H x W), per-channel mean/std."""

    num_classes: int
    shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    note: str

    @property
    def channels(self) -> int:
        return self.shape[0]


def image_shape(images: np.ndarray) -> tuple[int, int, int]:
    """C x H x W of a stack of images stored N x H x W (one channel) or N x C x H x W."""
    if images.ndim == 3:
        return (1, int(images.shape[1]), int(images.shape[2]))
    return (int(images.shape[1]), int(images.shape[2]), int(images.shape[3]))


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of pixel / 255 (float64 sums, rounded to 4 digits)."""
    x = images[:, None] if images.ndim == 3 else images
    means, stds = [], []
    for c in range(x.shape[1]):
        if x.dtype == np.uint8 and x[:, c].size:  # from the 256 values' counts: no float copy of the images
            counts = np.bincount(x[:, c].ravel(), minlength=256).astype(np.float64)
            values = np.arange(256, dtype=np.float64) / 255.0
            mean = float(counts @ values / counts.sum())
            std = float(np.sqrt(counts @ (values - mean) ** 2 / counts.sum()))
            means.append(round(mean, 4))
            stds.append(round(max(std, 1e-3), 4))
            continue
        ch = x[:, c].astype(np.float64) / 255.0
        means.append(round(float(ch.mean()), 4) if ch.size else 0.0)
        stds.append(round(max(float(ch.std()), 1e-3), 4) if ch.size else 1.0)
    return tuple(means), tuple(stds)


def split_facts(dataset: str, arrays: dict[str, np.ndarray]) -> SplitFacts:
    """The facts of a split: a registered dataset's from its entry (its published constants); any other
    from the split itself (classes: the largest label + 1; mean and std over the training images)."""
    shape = image_shape(arrays["x_train"])
    entry = DATASETS.get(dataset)
    if entry is not None and entry.shape[0] == shape[0]:
        return SplitFacts(
            entry.num_classes,
            shape,
            entry.mean,
            entry.std,
            f"pixel/255 then (x - {_text(entry.mean)}) / {_text(entry.std)}: published {dataset} "
            "training-set constants",
        )
    labels = [arrays[f"y_{p}"] for p in ("train", "val", "test") if arrays[f"y_{p}"].size]
    k = int(max(int(y.max()) for y in labels)) + 1 if labels else 1
    mean, std = channel_stats(arrays["x_train"])
    return SplitFacts(
        max(k, 2),
        shape,
        mean,
        std,
        f"pixel/255 then (x - {_text(mean)}) / {_text(std)}: per-channel statistics of this split's "
        "training images",
    )


def _text(values: tuple[float, ...]) -> Any:
    return values[0] if len(values) == 1 else list(values)
