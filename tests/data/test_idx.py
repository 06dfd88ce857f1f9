import gzip

import numpy as np
import pytest

from dlbench.data.idx import read_idx, write_idx
from dlbench.errors import DataError


@pytest.mark.parametrize("name", ["x-images-idx3-ubyte", "x-images-idx3-ubyte.gz"])
def test_round_trip_raw_and_gz(tmp_path, name):
    arr = np.random.default_rng(1).integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    path = write_idx(tmp_path / name, arr)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    back = read_idx(path)
    assert back.dtype == np.uint8 and back.shape == (7, 28, 28)
    np.testing.assert_array_equal(back, arr)


def test_labels_round_trip(tmp_path):
    labels = np.arange(10, dtype=np.uint8)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "l-idx1-ubyte", labels)), labels)


def test_wrong_magic_names_file(tmp_path):
    p = tmp_path / "bad-idx3-ubyte"
    p.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(DataError, match=r"bad-idx3-ubyte: wrong magic number 0x504b0304"):
        read_idx(p)


def test_truncated_data(tmp_path):
    p = write_idx(tmp_path / "t-idx3-ubyte", np.zeros((5, 28, 28), np.uint8))
    p.write_bytes(p.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"t-idx3-ubyte: truncated: header says 5x28x28"):
        read_idx(p)


def test_trailing_bytes(tmp_path):
    p = write_idx(tmp_path / "t-idx1-ubyte", np.zeros(5, np.uint8))
    p.write_bytes(p.read_bytes() + b"\x00")
    with pytest.raises(DataError, match="has trailing bytes"):
        read_idx(p)


def test_truncated_header(tmp_path):
    p = tmp_path / "h-idx3-ubyte"
    p.write_bytes(b"\x00\x00\x08\x03\x00\x00")
    with pytest.raises(DataError, match="truncated header"):
        read_idx(p)


def test_truncated_gzip(tmp_path):
    p = write_idx(tmp_path / "g-idx3-ubyte.gz", np.ones((50, 28, 28), np.uint8))
    p.write_bytes(p.read_bytes()[:40])
    with pytest.raises(DataError, match=r"g-idx3-ubyte.gz: corrupt or truncated gzip"):
        read_idx(p)


def test_corrupt_gzip_payload(tmp_path):
    blob = bytearray(gzip.compress(bytes(5000)))
    blob[20:30] = b"\xff" * 10
    p = tmp_path / "c-idx1-ubyte.gz"
    p.write_bytes(bytes(blob))
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        read_idx(p)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope-idx1-ubyte: file not found"):
        read_idx(tmp_path / "nope-idx1-ubyte")
