"""The ``data`` step: load a dataset, maybe subsample, split 70/10/20, write split + manifest + record."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from dlbench.data.load import load_dataset
from dlbench.data.registry import DATASETS, channel_stats, image_shape
from dlbench.data.split import (
    PART_NAMES,
    load_split,
    part_sizes,
    save_arrays,
    smallest_total,
    stratified_indices,
    stratified_subsample,
)
from dlbench.errors import DataError
from dlbench.io import atomic_path, read_json, sha256_file, write_json
from dlbench.record import step_record

SPLIT_NAME = "split.npz"
MANIFEST_NAME = "manifest.json"


def split_manifest(split: str | os.PathLike) -> dict[str, Any] | None:
    """The manifest.json beside a split (a data-step folder or its split.npz), or None if there is none."""
    from dlbench.schemas import DataManifest, read_checked

    split = Path(split)
    path = (split if split.is_dir() and split.name != SPLIT_NAME else split.parent) / MANIFEST_NAME
    if not path.exists():
        return None
    read_checked(path, DataManifest, "data-step manifest")
    return read_json(path)


def split_dataset(split: str | os.PathLike) -> str:
    """The dataset a split holds, from its manifest; a one-line error when the manifest is missing."""
    manifest = split_manifest(split)
    if manifest is None:
        raise DataError(
            f"{split}: no {MANIFEST_NAME} beside the split, so the dataset is unknown",
            "pass --split with a `dlbench data` folder, or --dataset",
        )
    return manifest.get("dataset")


def check_split_sizes(labels: np.ndarray, subsample: int | None, fractions, what: str) -> None:
    """Refuse a subsample larger than the data, and one (or fractions) leaving a part with fewer images
    than there are classes: such a part cannot hold every class, and steps after it fail or mislead."""
    n_all = len(labels)
    if subsample is not None and subsample > n_all:
        raise DataError(
            f"subsample {subsample:,} is larger than the data ({n_all:,} images in {what})",
            f"use at most {n_all:,}, or leave the subsample out to use every image",
        )
    n = subsample or n_all
    k = len(np.unique(labels))
    sizes = part_sizes(n, fractions)
    if min(sizes) < k:
        low = ", ".join(f"{name} {size:,}" for name, size in zip(PART_NAMES, sizes, strict=True))
        least = smallest_total(fractions, k)
        fix = (
            f"use a subsample of at least {least:,}"
            if least <= n_all
            else f"give the parts larger fractions (these need {least:,} images, the data has {n_all:,})"
        )
        raise DataError(
            f"{n:,} images split {'/'.join(f'{f:g}' for f in fractions)} leave parts of {low}: "
            f"fewer than the {k} classes",
            fix,
        )


def check_labels(labels: np.ndarray, n_classes: int, what: str) -> None:
    """Every label is one of the dataset's classes, and every class has images: a label outside them (or a
    class with none) would train a model on classes the report does not know, or leave a row empty."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        bad = int(labels.min()) if labels.min() < 0 else int(labels.max())
        raise DataError(
            f"labels of {what} include {bad}, outside the dataset's {n_classes} classes "
            f"(0 to {n_classes - 1})",
            "the labels file is damaged or of another dataset; restore it",
        )
    missing = sorted(set(range(n_classes)) - {int(v) for v in np.unique(labels)})
    if missing:
        raise DataError(
            f"{what} has no images of class{'es' if len(missing) > 1 else ''} "
            f"{', '.join(map(str, missing))} (of {n_classes})",
            "use the complete dataset: every class must be in every part of the split",
        )


def check_every_class_in_every_part(
    labels: np.ndarray, subsample: int | None, fractions, seed: int, what: str
) -> None:
    """The split the data step is about to write holds every class in every part (computed from the indices
    alone, before anything is written): a class with too few images cannot reach the val or test part."""
    from dlbench.data.split import stratified_indices, stratified_subsample

    labels = np.asarray(labels)
    if subsample is not None and subsample < len(labels):
        labels = labels[stratified_subsample(labels, subsample, seed)]
    classes = set(np.unique(labels).tolist())
    for name, idx in stratified_indices(labels, fractions, seed).items():
        absent = sorted(classes - set(np.unique(labels[idx]).tolist()))
        if absent:
            counts = np.bincount(labels, minlength=max(classes) + 1)
            raise DataError(
                f"the {name} part of {what} would hold no image of class "
                f"{', '.join(map(str, absent))} (class {absent[0]} has {int(counts[absent[0]])} image(s) "
                f"in all)",
                "use a larger subsample or the complete dataset, so every class is in every part",
            )


def load_checked_split(
    split: str | os.PathLike, dataset: str | None = None
) -> tuple[dict[str, np.ndarray], dict[str, Any], Path]:
    """(arrays, manifest, path of split.npz) of a data-step split, checked before a step uses it.

    With a manifest beside it, ``split.npz`` must have the SHA-256 the manifest recorded (a split of
    another run or dataset copied beside this manifest is refused), and with ``dataset`` the manifest
    must name that dataset. Without a manifest the split is read as it is (the caller names the dataset).
    """
    split = Path(split)
    split_path = split / SPLIT_NAME if split.is_dir() and split.name != SPLIT_NAME else split
    if split_path.is_dir():
        raise DataError(f"{split_path}: a folder where the split file must be", "re-run `dlbench data`")
    manifest = split_manifest(split_path) if split_path.parent.is_dir() else None
    if manifest is not None:
        if not isinstance(manifest, dict):
            raise DataError(
                f"{split_path.parent / MANIFEST_NAME}: not a data-step manifest", "re-run `dlbench data`"
            )
        if dataset is not None and manifest.get("dataset") != dataset:
            raise DataError(
                f"{split_path.parent} holds {manifest.get('dataset')} but the run asks for {dataset}",
                f"pass the {dataset} split, or --dataset {manifest.get('dataset')}",
            )
        want = ((manifest.get("outputs") or {}).get(SPLIT_NAME) or {}).get("sha256")
        if split_path.is_file():
            got = sha256_file(split_path)
            if want != got:
                raise DataError(
                    f"{split_path}: SHA-256 {got[:12]}… is not the {(want or 'none')[:12]}… its "
                    f"{MANIFEST_NAME} recorded: the file is not the split the manifest describes",
                    "re-run `dlbench data` into this folder",
                )
    arrays = load_split(split_path)
    return arrays, manifest or {}, split_path


def run(config: dict[str, Any], inputs: dict[str, Any], out: str | os.PathLike, log=print) -> dict[str, Any]:
    """The step contract (:mod:`dlbench.runner`): ``config`` as a data task's record holds it (dataset,
    source, root, seed, subsample, fractions, size; smoke), no ``inputs`` (the images come from
    ``config["root"]`` or the known places); returns the manifest."""
    settings = dict(config)
    return run_data(settings.pop("dataset"), out, log=log, **settings)


def run_data(
    dataset: str,
    out_dir: str | os.PathLike,
    source: str = "auto",
    root: str | None = None,
    seed: int = 0,
    subsample: int | None = None,
    fractions=(0.7, 0.1, 0.2),
    log=print,
    smoke: bool = False,
    size: tuple[int, int] | list[int] | None = None,
) -> dict[str, Any]:
    """Write ``out_dir/split.npz``, ``manifest.json`` and ``record.json``; return the manifest.

    ``source`` folder or npz: the user's own images at ``root`` (any name not in the registry), resized
    to ``size`` (H, W) when given. Nothing is written at the output paths until the split is complete
    (temp file, then rename).
    """
    out = Path(out_dir)
    config = {
        "dataset": dataset,
        "source": source,
        "root": root,
        "seed": seed,
        "subsample": subsample,
        "fractions": list(fractions),
    }
    if smoke:  # the data of a smoke run (dlbench.plan.smoke_spec); left out otherwise, so record ids stay
        config["smoke"] = True
    size = tuple(int(v) for v in size) if size else None
    if size:  # left out otherwise, so record ids stay
        config["size"] = list(size)
    # errors before any file is touched
    raw = load_dataset(dataset, source=source, root=root, size=size, cache_dir=out)
    what = raw.source.get("description", dataset)
    n_classes = len(raw.classes) if raw.classes else len(DATASETS[dataset].classes)
    check_labels(raw.labels, n_classes, what)
    check_split_sizes(raw.labels, subsample, fractions, what)
    check_every_class_in_every_part(raw.labels, subsample, fractions, seed, what)
    out.mkdir(parents=True, exist_ok=True)
    with step_record("data", config, out) as rec:
        images, labels = raw.images, raw.labels
        log(
            f"loaded {len(labels):,} {dataset} images from {raw.source['description']}"
            + (" (decoded images read from the cache)" if raw.source.get("decoded_from_cache") else "")
        )
        if subsample is not None and subsample < len(labels):
            keep = stratified_subsample(labels, subsample, seed)
            images, labels = images[keep], labels[keep]
            log(f"stratified subsample: {len(labels):,} images")
        parts = stratified_indices(labels, fractions, seed)
        arrays: dict[str, np.ndarray] = {}
        for name in PART_NAMES:
            arrays[f"x_{name}"] = images[parts[name]]
            arrays[f"y_{name}"] = labels[parts[name]]
        split_path = out / SPLIT_NAME
        with atomic_path(split_path) as tmp:
            save_arrays(tmp, arrays)
        entry = DATASETS.get(dataset)
        classes = raw.classes or list(entry.classes)
        shape = image_shape(images)
        if entry is not None and raw.classes is None:
            mean, std = entry.mean, entry.std
        else:
            mean, std = channel_stats(arrays["x_train"])
        manifest = {
            "dataset": dataset,
            "source": raw.source,
            "seed": seed,
            "fractions": list(fractions),
            "subsample": subsample,
            "image_shape": list(images.shape[1:]),
            "total": int(len(labels)),
            "classes": classes,
            **({"shape": list(shape), "mean": list(mean), "std": list(std)} if raw.classes else {}),
            "parts": {
                name: {
                    "size": int(len(parts[name])),
                    "class_counts": np.bincount(labels[parts[name]], minlength=len(classes)).tolist(),
                }
                for name in PART_NAMES
            },
            "inputs": raw.inputs,
            "outputs": {SPLIT_NAME: {"sha256": sha256_file(split_path), "bytes": split_path.stat().st_size}},
        }
        if raw.cache:
            from dlbench.data.folder import write_cache

            write_cache(raw)
            manifest["decoded_cache"] = Path(raw.cache["path"]).name
        write_json(out / MANIFEST_NAME, manifest)
        for name, meta in raw.inputs.items():
            rec.add_input(name, sha256=meta["sha256"], path=None)
        rec.add_output("split", split_path)
        rec.add_output("manifest", out / MANIFEST_NAME)
        rec.metrics.update({f"n_{name}": manifest["parts"][name]["size"] for name in PART_NAMES})
        rec.metrics["source"] = raw.source["kind"]
        rec.metrics["sample"] = bool(raw.source.get("sample", False))
        rec.metrics["fingerprint"] = manifest["outputs"][SPLIT_NAME]["sha256"]
        log(
            "split "
            + " / ".join(f"{name} {manifest['parts'][name]['size']:,}" for name in PART_NAMES)
            + f" -> {split_path}"
        )
    return manifest
