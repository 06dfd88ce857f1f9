"""Reader and writer for the IDX format of MNIST / Fashion-MNIST (optionally gzip-compressed).

Layout: two zero bytes, a type code (0x08 = uint8), the number of dimensions, then each dimension as a
big-endian uint32, then the raw data. Every problem is a :class:`DataError` naming the file.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from dlbench.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
DTYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09}


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if raw[:2] == GZIP_MAGIC:
        try:
            return gzip.decompress(raw)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise DataError(
                f"{path}: corrupt or truncated gzip stream ({exc})", "re-download or reinstall the data file"
            ) from None
    return raw


KIND_NDIM = {"labels": 1, "images": 3}


def read_idx(path: str | os.PathLike, with_sha256: bool = False, kind: str | None = None):
    """Read one IDX file (raw or .gz) into a numpy array; with ``with_sha256`` also return the SHA-256 of
    its (uncompressed) content, the same for a file and its gzip whatever the compressor. With ``kind``
    (``images`` or ``labels``) a file of the other kind is refused by its magic number."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path}: too short to be an IDX file ({len(data)} bytes)")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or code not in DTYPES or ndim == 0:
        raise DataError(
            f"{path}: wrong magic number 0x{data[:4].hex()} (not an IDX file)",
            "expected 0x00000801 for labels or 0x00000803 for images",
        )
    if kind is not None and ndim != KIND_NDIM[kind]:
        other = {v: k for k, v in KIND_NDIM.items()}.get(ndim)
        raise DataError(
            f"{path}: wrong magic number 0x{data[:4].hex()} "
            + (f"(an IDX {other} file)" if other else f"({ndim} dimensions)")
            + f", not {kind}",
            f"expected 0x0000080{KIND_NDIM[kind]} for {kind}: the file under this name is another "
            "part of the dataset; restore the right one",
        )
    if kind is not None and code != 0x08:
        raise DataError(
            f"{path}: element type 0x{code:02x} ({np.dtype(DTYPES[code]).name}), not unsigned bytes (0x08)",
            "MNIST and Fashion-MNIST files hold unsigned bytes; restore the original file",
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated header ({len(data)} bytes, need {header})")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(DTYPES[code])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    got = len(data) - header
    if got != expected:
        kind = "truncated" if got < expected else "has trailing bytes"
        raise DataError(
            f"{path}: {kind}: header says {'x'.join(map(str, dims))} "
            f"({expected} data bytes) but the file holds {got}"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    arr = arr.astype(dtype.newbyteorder("=")) if dtype.byteorder == ">" else arr.copy()
    if with_sha256:
        import hashlib

        return arr, hashlib.sha256(data).hexdigest()
    return arr


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` (uint8 or int8) as IDX; gzip when ``compress`` or the name ends in .gz."""
    path = Path(path)
    arr = np.ascontiguousarray(array)
    if arr.dtype not in CODES:
        raise ValueError(f"write_idx supports uint8/int8, not {arr.dtype}")
    blob = struct.pack(">HBB", 0, CODES[arr.dtype], arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    blob += arr.tobytes()
    if compress or (compress is None and path.suffix == ".gz"):
        blob = gzip.compress(blob, mtime=0)
    path.write_bytes(blob)
    return path
