"""Datasets in the artifact store: ``dlbench data push`` uploads the raw IDX files, the data step reads them.

Layout, below a store URL such as ``s3://dlbench/datasets`` (any ``dlbench.store`` URL, a folder too)::

    <store>/<dataset>/train-images-idx3-ubyte.gz   (and the three other IDX files, as they were)
    <store>/<dataset>/MANIFEST.json                every file with its size and SHA-256, written last

A spec's ``data.root`` (or ``dlbench data --root``) naming the store (``s3://dlbench/datasets``) or one
dataset's folder in it (``s3://dlbench/datasets/fashion-mnist``) makes the data step download the files
listed in the manifest, verify each against its SHA-256 (a damaged object is refused), and read them as an
IDX folder. The data manifest then names where the files came from and their hashes, so a report says
which bytes it used. Pods need no internet: only the store.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlbench.data.sources import (
    DATASETS,
    IDX_NAMES,
    PARTS,
    RawData,
    _find_file,
    check_dataset,
    load_idx_folder,
)
from dlbench.errors import DataError
from dlbench.store import MANIFEST_NAME, Store, StoreError, join_key, open_store


def is_store_url(root: str | os.PathLike | None) -> bool:
    """A root that names a store (``s3://...``, ``file:///...``) rather than a folder of IDX files."""
    return "://" in str(root or "")


def idx_files(dataset: str, folder: str | os.PathLike) -> list[Path]:
    """The four IDX files of ``folder`` (gz or raw, as found); a one-line error when one is missing."""
    from dlbench.io import check_in_dir

    folder = check_in_dir(
        folder,
        hint=f"pass --root with a folder holding the {DATASETS[dataset].title} IDX files",
        noun="data folder",
    )
    files = []
    for part in PARTS:
        for pattern in IDX_NAMES.values():
            path = _find_file(folder, pattern.format(part=part))
            if path is None:
                raise DataError(
                    f"{folder}: missing {pattern.format(part=part)}[.gz]",
                    "the folder needs train- and t10k- images and labels IDX files",
                )
            files.append(path)
    return files


def push_dataset(
    dataset: str,
    store_url: str,
    root: str | os.PathLike | None = None,
    log: Callable[[str], Any] | None = None,
    source: str = "auto",
) -> dict[str, Any]:
    """Upload the IDX files of ``dataset`` (from ``root``, else the first known folder holding them) to
    ``<store_url>/<dataset>/`` with ``MANIFEST.json`` last; return the manifest (paths, bytes, SHA-256).
    ``source="folder"``: ``root`` is an image folder, uploaded whole once it reads as one."""
    from dlbench.data.sources import has_idx, search_paths

    check_dataset(dataset, source)
    if source == "folder":
        from dlbench.data.folder import load_image_folder

        if root is None:
            raise DataError("push --source folder needs --root", "pass --root with the image folder")
        load_image_folder(dataset, root)  # refused (one line) before any upload unless it reads
        store = open_store(store_url)
        manifest = store.put_tree(Path(root), dataset, log=log)
        manifest["location"] = store.describe(dataset)
        return manifest
    if root is None:
        folder = next((p for p in search_paths(dataset) if has_idx(p)), None)
        if folder is None:
            raise DataError(
                f"no {DATASETS[dataset].title} IDX files found in "
                f"{', '.join(map(str, search_paths(dataset)))}",
                "pass --root FOLDER",
            )
    else:
        folder = Path(root)
    files = idx_files(dataset, folder)
    load_idx_folder(
        dataset, folder
    )  # a folder that does not read as the dataset is refused before any upload
    store = open_store(store_url)
    with tempfile.TemporaryDirectory(prefix="dlbench-push-") as tmp:
        stage = Path(tmp) / dataset
        stage.mkdir()
        for f in files:  # only the IDX files, under the names they have
            (stage / f.name).symlink_to(f.resolve())
        manifest = store.put_tree(stage, dataset, log=log)
    manifest["location"] = store.describe(dataset)
    return manifest


def dataset_in_store(store: Store, dataset: str, folder: bool = False) -> tuple[str, dict[str, Any]]:
    """(prefix, manifest) of ``dataset`` in ``store``: ``<dataset>/MANIFEST.json``, else the store's own
    ``MANIFEST.json`` when the URL names the dataset's folder. StoreError (one line) when neither is there.
    ``folder``: an image folder (pushed with ``--source folder``) rather than IDX files."""
    for prefix in (dataset, ""):
        if store.exists(join_key(prefix, MANIFEST_NAME)):
            manifest = store.read_manifest(prefix)
            names = {e["path"] for e in manifest["files"]}
            wanted = [pattern.format(part=part) for part in PARTS for pattern in IDX_NAMES.values()]
            if prefix == "" and not folder and not all(w in names or w + ".gz" in names for w in wanted):
                continue
            return prefix, manifest
    where = store.describe(dataset)
    title = DATASETS[dataset].title if dataset in DATASETS else dataset
    source = " --source folder --root FOLDER" if folder else ""
    raise StoreError(
        f"no {title} in the store: {where}/{MANIFEST_NAME} does not exist",
        f"dlbench data push --dataset {dataset}{source} --store {store.describe()}",
    )


def load_from_store(dataset: str, url: str, log: Callable[[str], Any] | None = None) -> RawData:
    """Download ``dataset``'s IDX files from the store at ``url``, verified by SHA-256, and read them."""
    store = open_store(url)
    prefix, manifest = dataset_in_store(store, dataset)
    location = store.describe(prefix) if prefix else store.describe()
    tmp = Path(tempfile.mkdtemp(prefix="dlbench-data-"))
    try:
        store.get_tree(prefix, tmp, progress=False)
        (tmp / MANIFEST_NAME).unlink(missing_ok=True)
        data = load_idx_folder(dataset, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name, meta in data.inputs.items():
        meta["path"] = f"{location}/{name}"
    data.source = {
        "kind": "idx",
        "path": location,
        "location": location,
        "description": f"{DATASETS[dataset].title} IDX files from {location} "
        f"(train + t10k merged; SHA-256 verified against its {MANIFEST_NAME})",
        **{k: data.source[k] for k in ("verified", "verification") if k in data.source},
    }
    if log:
        log(f"downloaded {len(manifest['files'])} files of {dataset} from {location}, SHA-256 verified")
    return data


def load_folder_from_store(dataset: str, url: str, size=None, cache_dir=None) -> RawData:
    """A folder pushed with ``dlbench data push --source folder``: downloaded, SHA-256 verified, read."""
    from dlbench.data.folder import load_image_folder

    store = open_store(url)
    prefix, _ = dataset_in_store(store, dataset, folder=True)
    location = store.describe(prefix) if prefix else store.describe()
    tmp = Path(tempfile.mkdtemp(prefix="dlbench-data-"))
    try:
        store.get_tree(prefix, tmp, progress=False)
        (tmp / MANIFEST_NAME).unlink(missing_ok=True)
        data = load_image_folder(dataset, tmp, size=size, cache_dir=cache_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for meta in data.inputs.values():
        meta["path"] = location
    data.inputs = {dataset: next(iter(data.inputs.values()))}
    data.source.update(
        path=location,
        location=location,
        description=data.source["description"].replace(str(tmp), location)
        + f" (SHA-256 verified against its {MANIFEST_NAME})",
    )
    return data
