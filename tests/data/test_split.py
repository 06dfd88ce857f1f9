import zipfile

import numpy as np
import pytest

from dlbench.data.split import load_split, save_arrays, stratified_indices, stratified_subsample
from dlbench.errors import DataError

LABELS = np.repeat(np.arange(10), [700, 650, 800, 613, 701, 999, 100, 37, 505, 1000]).astype(np.uint8)


def test_proportions_within_one_per_class():
    parts = stratified_indices(LABELS, (0.7, 0.1, 0.2), seed=3)
    for c, n in enumerate(np.bincount(LABELS)):
        for name, f in (("train", 0.7), ("val", 0.1), ("test", 0.2)):
            got = int((LABELS[parts[name]] == c).sum())
            assert abs(got - f * n) <= 1, (c, name, got, f * n)


def test_parts_disjoint_and_complete():
    parts = stratified_indices(LABELS, seed=0)
    allidx = np.concatenate(list(parts.values()))
    assert len(allidx) == len(LABELS) == len(np.unique(allidx))


def test_deterministic_and_seed_sensitive():
    a, b = stratified_indices(LABELS, seed=7), stratified_indices(LABELS, seed=7)
    c = stratified_indices(LABELS, seed=8)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["train"], c["train"])


def test_parts_are_shuffled_not_grouped_by_class():
    train = LABELS[stratified_indices(LABELS, seed=0)["train"]]
    assert len(np.unique(train[:100])) >= 5


def test_subsample_stratified_and_exact():
    keep = stratified_subsample(LABELS, 1000, seed=0)
    assert len(keep) == 1000 == len(np.unique(keep))
    expected = np.bincount(LABELS) * 1000 / len(LABELS)
    assert np.all(np.abs(np.bincount(LABELS[keep]) - expected) <= 1)


def test_subsample_too_large():
    with pytest.raises(DataError, match="subsample of 10 asked for, but only 3"):
        stratified_subsample(np.array([0, 1, 2]), 10)


def test_save_arrays_byte_identical(tmp_path):
    arrays = {"x": np.arange(100, dtype=np.uint8), "y": np.ones(3, np.uint8)}
    a, b = save_arrays(tmp_path / "a.npz", arrays), save_arrays(tmp_path / "b.npz", arrays)
    assert a.read_bytes() == b.read_bytes()
    with np.load(a) as z:
        np.testing.assert_array_equal(z["x"], arrays["x"])


def test_load_split_rejects_garbage(tmp_path):
    p = tmp_path / "split.npz"
    p.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable split file"):
        load_split(p)
    with zipfile.ZipFile(p, "w"):
        pass
    with pytest.raises(DataError, match="lacks x_train"):
        load_split(p)


def test_written_files_are_readable_by_others(tmp_path):
    import os
    import stat

    from dlbench.io import write_json

    old = os.umask(0o022)
    try:
        p = write_json(tmp_path / "r.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(p.stat().st_mode) == 0o644


def test_load_split_rejects_damaged_and_inconsistent_files(tmp_path):
    """A flipped byte inside a compressed member (zlib error, not a zip error) and labels that do not
    match the images are one-line DataErrors, not a traceback or a misleading error later on."""
    rng = np.random.default_rng(0)
    parts = {
        p: (rng.integers(0, 255, (n, 28, 28), dtype=np.uint8), np.arange(n, dtype=np.uint8) % 10)
        for p, n in (("train", 70), ("val", 10), ("test", 20))
    }
    arrays = {f"{a}_{p}": v for p, (x, y) in parts.items() for a, v in (("x", x), ("y", y))}
    good = tmp_path / "good.npz"
    save_arrays(good, arrays)
    data = good.read_bytes()
    with zipfile.ZipFile(good) as z:
        at = z.getinfo("x_train.npy").header_offset
    name_len, extra_len = (
        int.from_bytes(data[at + 26 : at + 28], "little"),
        int.from_bytes(data[at + 28 : at + 30], "little"),
    )
    start = at + 30 + name_len + extra_len  # first byte of the member's deflate stream
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(data[:start] + bytes([data[start] ^ 0xFF]) + data[start + 1 :])
    with pytest.raises(DataError, match=r"damaged.npz: not a readable split file .*re-run `dlbench data`"):
        load_split(damaged)
    short = tmp_path / "short.npz"
    save_arrays(short, {**arrays, "y_train": arrays["y_train"][:5]})
    with pytest.raises(DataError, match=r"short.npz: train part has images \(70, 28, 28\) but labels \(5,\)"):
        load_split(short)


def test_part_totals_are_exact_and_classes_within_one():
    from dlbench.data.split import part_sizes

    labels = np.random.default_rng(5).integers(0, 10, 10_000).astype(np.uint8)
    parts = stratified_indices(labels, (0.7, 0.1, 0.2), seed=0)
    assert [len(parts[k]) for k in ("train", "val", "test")] == [7000, 1000, 2000] == part_sizes(10_000)
    for c, n in enumerate(np.bincount(labels)):
        for name, f in (("train", 0.7), ("val", 0.1), ("test", 0.2)):
            assert abs(int((labels[parts[name]] == c).sum()) - f * n) <= 1
    odd = stratified_indices(LABELS, (0.33, 0.33, 0.34), seed=1)
    assert [len(odd[k]) for k in ("train", "val", "test")] == part_sizes(len(LABELS), (0.33, 0.33, 0.34))
