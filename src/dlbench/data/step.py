"""The ``data`` step: load a dataset, optionally subsample, split 70/10/20, write split + manifest + record."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from dlbench.data.sources import CLASS_NAMES, load_dataset
from dlbench.data.split import PART_NAMES, save_arrays, stratified_indices, stratified_subsample
from dlbench.errors import DataError
from dlbench.io import atomic_path, read_json, sha256_file, write_json
from dlbench.record import step_record

SPLIT_NAME = "split.npz"
MANIFEST_NAME = "manifest.json"


def split_manifest(split: str | os.PathLike) -> dict[str, Any] | None:
    """The manifest.json beside a split (a data-step folder or its split.npz), or None if there is none."""
    split = Path(split)
    path = (split if split.is_dir() else split.parent) / MANIFEST_NAME
    return read_json(path) if path.is_file() else None


def split_dataset(split: str | os.PathLike) -> str:
    """The dataset a split holds, from its manifest; a one-line error when the manifest is missing."""
    manifest = split_manifest(split)
    if manifest is None:
        raise DataError(f"{split}: no {MANIFEST_NAME} beside the split, so the dataset is unknown",
                        "pass --split with a `dlbench data` folder, or --dataset")
    return manifest.get("dataset")


def run_data(dataset: str, out_dir: str | os.PathLike, source: str = "auto", root: str | None = None,
             seed: int = 0, subsample: int | None = None, fractions=(0.7, 0.1, 0.2),
             log=print, smoke: bool = False) -> dict[str, Any]:
    """Write ``out_dir/split.npz``, ``manifest.json`` and ``record.json``; return the manifest.

    Nothing is written at the output paths until the split is complete (temp file, then rename).
    """
    out = Path(out_dir)
    config = {"dataset": dataset, "source": source, "root": root, "seed": seed, "subsample": subsample,
              "fractions": list(fractions)}
    if smoke:  # the data of a smoke run (dlbench.spec.smoke_spec); left out otherwise, so record ids stay
        config["smoke"] = True
    raw = load_dataset(dataset, source=source, root=root)  # errors before any file is touched
    out.mkdir(parents=True, exist_ok=True)
    with step_record("data", config, out) as rec:
        images, labels = raw.images, raw.labels
        log(f"loaded {len(labels):,} {dataset} images from {raw.source['description']}")
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
        manifest = {
            "dataset": dataset,
            "source": raw.source,
            "seed": seed,
            "fractions": list(fractions),
            "subsample": subsample,
            "image_shape": list(images.shape[1:]),
            "total": int(len(labels)),
            "classes": CLASS_NAMES[dataset],
            "parts": {name: {"size": int(len(parts[name])),
                             "class_counts": np.bincount(labels[parts[name]], minlength=10).tolist()}
                      for name in PART_NAMES},
            "inputs": raw.inputs,
            "outputs": {SPLIT_NAME: {"sha256": sha256_file(split_path), "bytes": split_path.stat().st_size}},
        }
        write_json(out / MANIFEST_NAME, manifest)
        for name, meta in raw.inputs.items():
            rec.add_input(name, sha256=meta["sha256"], path=None)
        rec.add_output("split", split_path)
        rec.add_output("manifest", out / MANIFEST_NAME)
        rec.metrics.update({f"n_{name}": manifest["parts"][name]["size"] for name in PART_NAMES})
        rec.metrics["source"] = raw.source["kind"]
        rec.metrics["sample"] = bool(raw.source.get("sample", False))
        rec.metrics["fingerprint"] = manifest["outputs"][SPLIT_NAME]["sha256"]
        log("split " + " / ".join(f"{name} {manifest['parts'][name]['size']:,}" for name in PART_NAMES)
            + f" -> {split_path}")
    return manifest
