"""Split an image folder of PNGs with `dlbench data --source folder`, first and second (cached) run, beside
the IDX split of the same images; print JSON with the seconds and images/s.

Fashion-MNIST's 70,000 images (its IDX files, train + t10k merged as the data step reads them) are written
as 8-bit gray PNGs into a class-per-subfolder folder (``<work>/images/<label>-<class>/<index>.png``,
untimed), then split three times in this process with the data step (:func:`dlbench.data.step.run_data`,
what ``dlbench data`` runs): the IDX files (the baseline), the folder (decode + fingerprint + split), and
the folder again into the same output (the decoded images come from ``decoded.npz``).

    python bench/data_folder.py --dataset-dir /usr/share/datasets/fashion-mnist
    python bench/data_folder.py --dataset-dir DIR --images 500 --work /tmp/png   # a small run

The folder's split is checked to hold the same images as the IDX files (pixel for pixel, per class),
and the second run's split to be the first's, byte for byte.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

import bench_common
from dlbench.errors import DataError
from dlbench.record import environment, now_iso
from dlbench.timing import Stopwatch

DATASET = "fashion-mnist"


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument(
        "--dataset-dir", default="/usr/share/datasets/fashion-mnist", help="Fashion-MNIST IDX files"
    )
    p.add_argument(
        "--images", type=int, default=None, help="a stratified, seeded subsample of this many (default: all)"
    )
    p.add_argument("--work", default=None, help="folder for the PNGs and splits (default: a temporary one)")
    p.add_argument("--seed", type=int, default=0, help="seed of the subsample and the split")
    p.add_argument("--out", default=None, help="also write the JSON here")
    return p.parse_args(argv)


def _write_pngs(job: tuple[str, np.ndarray, list[int]]) -> int:
    from PIL import Image

    folder, images, index = job
    for img, i in zip(images, index, strict=True):
        Image.fromarray(img, mode="L").save(os.path.join(folder, f"{i:05d}.png"))
    return len(index)


def write_folder(images: np.ndarray, labels: np.ndarray, classes: list[str], root: Path) -> int:
    """One subfolder per class (``<label>-<name>``, sorted as the labels), one PNG per image."""
    jobs = []
    for c, name in enumerate(classes):
        folder = root / f"{c}-{re.sub(r'[^A-Za-z0-9]+', '_', name)}"
        folder.mkdir(parents=True, exist_ok=True)
        index = np.flatnonzero(labels == c)
        for chunk in np.array_split(index, max(1, len(index) // 1000)):
            jobs.append((str(folder), images[chunk], [int(i) for i in chunk]))
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return sum(pool.map(_write_pngs, jobs))


def same_images(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    """Two splits hold the same images in each class (pixel for pixel, in any order)."""

    def per_class(split):
        x = np.concatenate([split[f"x_{p}"] for p in ("train", "val", "test")])
        y = np.concatenate([split[f"y_{p}"] for p in ("train", "val", "test")])
        rows = np.ascontiguousarray(x.reshape(len(x), -1)).view(np.dtype((np.void, x[0].size)))[:, 0]
        return {int(c): np.sort(rows[y == c]) for c in np.unique(y)}

    if all(np.array_equal(a[k], b[k]) for k in a):
        return True
    pa, pb = per_class(a), per_class(b)
    return pa.keys() == pb.keys() and all(np.array_equal(pa[c], pb[c]) for c in pa)


def run(args) -> int:
    from dlbench.data.load import load_dataset
    from dlbench.data.registry import DATASETS
    from dlbench.data.split import load_split, stratified_subsample
    from dlbench.data.step import run_data

    quiet = lambda *_: None  # noqa: E731
    raw = load_dataset(DATASET, source="idx", root=args.dataset_dir)
    images, labels = raw.images, raw.labels
    if args.images is not None:
        if not 20 <= args.images <= len(labels):
            raise DataError(f"--images {args.images}: choose 20 to {len(labels):,}")
        keep = np.sort(stratified_subsample(labels, args.images, seed=args.seed))
        images, labels = images[keep], labels[keep]
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="dlbench-png-"))
    try:
        root = work / "images"
        if root.exists():
            shutil.rmtree(root)
        with Stopwatch() as write:
            n = write_folder(images, labels, list(DATASETS[DATASET].classes), root)
        runs = {}
        for name, kw, out in (
            # the baseline: the IDX files, subsampled by the data step as the folder was (same images)
            (
                "idx",
                {"source": "idx", "root": args.dataset_dir, "subsample": args.images},
                work / "split-idx",
            ),
            ("folder_first", {"source": "folder", "root": str(root)}, work / "split-folder"),
            ("folder_cached", {"source": "folder", "root": str(root)}, work / "split-folder"),
        ):
            if name != "folder_cached" and out.exists():
                shutil.rmtree(out)
            ds = DATASET if name == "idx" else "fashion-mnist-png"
            with Stopwatch() as t:
                manifest = run_data(ds, out, seed=args.seed, log=quiet, **kw)
            runs[name] = {
                "seconds": round(t.seconds, 3),
                "images_per_second": round(n / t.seconds, 1),
                "decoded_from_cache": manifest["source"].get("decoded_from_cache"),
                "split_sha256": manifest["outputs"]["split.npz"]["sha256"],
            }
        same = same_images(
            load_split(work / "split-idx" / "split.npz"), load_split(work / "split-folder" / "split.npz")
        )
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    first = runs["folder_first"]["seconds"]
    report = {
        "benchmark": "data_folder",
        "generated": now_iso(),
        "settings": {
            "dataset": DATASET,
            "images": n,
            "seed": args.seed,
            "format": "8-bit gray PNG, one subfolder per class",
            "fractions": [0.7, 0.1, 0.2],
            "workers": os.cpu_count(),
        },
        "write_png_seconds": round(write.seconds, 3),
        "runs": runs,
        "checks": {
            "folder_holds_the_idx_images": same,
            "second_run_read_the_cache": bool(runs["folder_cached"]["decoded_from_cache"]),
            "second_run_same_split": runs["folder_cached"]["split_sha256"]
            == runs["folder_first"]["split_sha256"],
        },
        "first_run_vs_idx_x": round(first / runs["idx"]["seconds"], 2),
        "cached_speedup_x": round(first / runs["folder_cached"]["seconds"], 2),
        "goal_first_run_under_60_s": first < 60 if args.images is None else None,
        "load_average": list(os.getloadavg()),
        "environment": environment(),
    }
    bench_common.emit(report, args.out)
    return 0


def main(argv=None) -> int:
    return bench_common.main("data_folder", parse_args, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
