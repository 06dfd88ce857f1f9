"""The one split function: stratified, seeded train/val/test (70/10/20 by default), and the split file.

The split file is an ``.npz`` (zip, deflate) written with fixed timestamps, so the same seed and input
give byte-identical output (numpy's own ``savez_compressed`` stamps the current time).
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from dlbench.errors import DataError

PART_NAMES = ("train", "val", "test")
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def part_sizes(n: int, fractions=(0.7, 0.1, 0.2)) -> list[int]:
    """Exact part totals of ``n`` items: floor of each share, the rest to the largest remainders
    (ties: earlier part first). 10,000 at 0.7/0.1/0.2 gives 7,000 / 1,000 / 2,000."""
    exact = [f * n for f in fractions]
    # shares like 0.7 * 10,000 = 7000.000000000001 are whole numbers: round away float noise first
    exact = [round(e, 6) for e in exact]
    sizes = [math.floor(e) for e in exact]
    order = sorted(range(len(exact)), key=lambda j: (-(exact[j] - sizes[j]), j))
    for j in order[: n - sum(sizes)]:
        sizes[j] += 1
    return sizes


def smallest_total(fractions, per_part: int) -> int:
    """The fewest items whose split gives every part at least ``per_part`` items."""
    n = per_part * len(fractions)
    while min(part_sizes(n, fractions)) < per_part:
        n += 1
    return n


def _class_counts(class_sizes: np.ndarray, fractions) -> np.ndarray:
    """Per class (rows) and part (columns): floor of each exact share, plus one for as many (class, part)
    pairs as the part totals of :func:`part_sizes` need, given to the parts furthest below their total
    (then to the largest fractional share). So every part total is exact and every class count is within
    one item of its exact share."""
    frac = np.asarray(fractions, dtype=np.float64)
    exact = np.round(np.outer(class_sizes, frac), 6)
    floor = np.floor(exact).astype(np.int64)
    remainder = exact - floor
    totals = np.asarray(part_sizes(int(class_sizes.sum()), fractions))
    # first choice: the extra items go only where a share has a fraction (count = floor or ceil of it);
    # should that leave a part total short, any part below its total may take one (count within one)
    for strict in (True, False):
        counts = floor.copy()
        need = totals - counts.sum(axis=0)
        for c in sorted(range(len(class_sizes)), key=lambda c: (-(class_sizes[c] - floor[c].sum()), c)):
            for _ in range(int(class_sizes[c] - floor[c].sum())):
                free = [j for j in range(len(frac)) if counts[c, j] == floor[c, j]]
                j = max(
                    free,
                    key=lambda j: (
                        ((need[j] > 0) if strict else 0, remainder[c, j] > 0, need[j], remainder[c, j], -j)
                        if strict
                        else (need[j], remainder[c, j], -j)
                    ),
                )
                counts[c, j] += 1
                need[j] -= 1
        if not need.any():
            return counts
    # cannot happen for a feasible split; never write a wrong one silently
    raise DataError(
        f"internal error: split of {class_sizes.tolist()} missed its part totals by {need.tolist()}"
    )


def stratified_indices(labels: np.ndarray, fractions=(0.7, 0.1, 0.2), seed: int = 0) -> dict[str, np.ndarray]:
    """Indices of each part. Per class: shuffle, then cut into the counts of :func:`_class_counts`.

    Part totals are exact (:func:`part_sizes`); every part's class count is within one sample of its exact
    share; parts never overlap; each part is shuffled (classes interleaved).
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    classes, sizes = np.unique(labels, return_counts=True)
    counts = _class_counts(sizes, fractions) if len(classes) else np.zeros((0, len(fractions)), np.int64)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for cls, row in zip(classes, counts, strict=True):
        idx = np.flatnonzero(labels == cls)
        idx = idx[rng.permutation(len(idx))]
        for i, chunk in enumerate(np.split(idx, np.cumsum(row)[:-1])):
            parts[i].append(chunk)
    out = {}
    for name, chunks in zip(PART_NAMES, parts, strict=True):
        idx = np.concatenate(chunks) if chunks else np.array([], dtype=np.int64)
        out[name] = idx[rng.permutation(len(idx))]
    return out


def stratified_subsample(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Indices of a stratified, seeded subsample of ``n`` items (sorted, so the original order is kept)."""
    labels = np.asarray(labels)
    if n > len(labels):
        raise DataError(f"subsample of {n} asked for, but only {len(labels)} items are there")
    if n == len(labels):
        return np.arange(n)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * n / len(labels)
    take = np.floor(exact).astype(int)
    # hand the remainder to the classes with the largest fractional parts (ties: lower class first)
    for i in np.argsort(-(exact - take), kind="stable")[: n - take.sum()]:
        take[i] += 1
    chosen = [
        np.flatnonzero(labels == c)[rng.permutation(cnt)[:k]]
        for c, cnt, k in zip(classes, counts, take, strict=True)
    ]
    return np.sort(np.concatenate(chosen))


def save_arrays(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Write arrays as a deterministic compressed .npz (loadable with ``np.load``)."""
    path = Path(path)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(arrays[name]), allow_pickle=False)
    return path


def load_split(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a split file: ``x_train, y_train, x_val, y_val, x_test, y_test`` (images uint8, N x H x W
    for one channel, N x C x H x W for more)."""
    path = Path(path)
    if path.is_dir():
        path = path / "split.npz"
    if not path.is_file():
        raise DataError(f"{path}: split file not found", "run `dlbench data` first")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable split file ({exc})", "re-run `dlbench data`") from None
    missing = [f"{a}_{p}" for p in PART_NAMES for a in "xy" if f"{a}_{p}" not in arrays]
    if missing:
        raise DataError(f"{path}: split file lacks {', '.join(missing)}", "re-run `dlbench data`")
    for part in PART_NAMES:
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.ndim not in (3, 4) or y.ndim != 1 or len(x) != len(y):
            raise DataError(
                f"{path}: {part} part has images {x.shape} but labels {y.shape}", "re-run `dlbench data`"
            )
    return arrays
