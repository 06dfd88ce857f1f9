"""The user's own images: a class-per-subfolder image folder, or one ``.npz`` of images and labels.

Folder layout (the common one, as torchvision's ``ImageFolder``)::

    ROOT/<class name>/<any name>.png|.jpg|.jpeg     2 to 1,000 class folders, each with at least one image

Labels are the class folders in sorted order. Gray images stay one channel; a folder holding any colour
image is read as RGB (gray images repeated, alpha dropped). Every image must have one size, unless a size
is given (then each is resized, bilinear). Images are returned N x H x W (gray) or N x 3 x H x W, uint8.

The folder's fingerprint is the SHA-256 over every image's path and content SHA-256, so the manifest
names the bytes the split came from. The decoded images are cached beside the split (``decoded.npz``,
keyed by that fingerprint and the size): a second split of the same folder reads the cache instead of
decoding every image again.

``.npz``: ``images`` (N x H x W, N x H x W x C or N x C x H x W, C 1 or 3, uint8) and ``labels`` (N
integers), optionally ``classes`` (the class names, in label order; default: the label values).
"""

from __future__ import annotations

import hashlib
import os
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from dlbench.data.sources import RawData
from dlbench.errors import DataError
from dlbench.io import sha256_file

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_CLASSES = 1000
CACHE_NAME = "decoded.npz"
CACHE_VERSION = 1


def _class_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        why = "is a file, not a folder" if root.exists() else "does not exist"
        raise DataError(f"image folder {root} {why}", "pass --root with a folder of one subfolder per class")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        found = f"only {classes[0].name!r}" if classes else "none"
        raise DataError(
            f"image folder {root} has {len(classes)} class folder{'s' if len(classes) != 1 else ''} "
            f"({found}): a classifier needs at least 2",
            "put each class's images in its own subfolder: ROOT/<class>/<image>.png",
        )
    if len(classes) > MAX_CLASSES:
        raise DataError(
            f"image folder {root} has {len(classes):,} class folders, more than {MAX_CLASSES:,}",
            "merge classes, or check that --root is the folder holding the class folders",
        )
    return classes


def _images_of(folder: Path) -> list[Path]:
    files = sorted(  # by their parts: the order of sorting the paths, without Path's slower comparison
        (
            p
            for p in folder.rglob("*")
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.name.startswith(".")
        ),
        key=lambda p: p.parts,
    )
    if not files:
        raise DataError(
            f"class folder {folder} holds no image ({', '.join(IMAGE_SUFFIXES)})",
            "add its images, or remove the empty class folder",
        )
    return files


def _decode(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("L", "1", "I;16", "I", "F"):
                arr = np.asarray(im.convert("L"))
            else:
                arr = np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(
            f"{path}: unreadable image ({' '.join(str(exc).split())[:120]})",
            "replace or remove the file",
        ) from None
    return arr


def _resize(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    h, w = size
    if arr.shape[:2] == (h, w):
        return arr
    return np.asarray(Image.fromarray(arr).resize((w, h), Image.BILINEAR))


def _fingerprint(root: Path, files: list[Path]) -> tuple[str, int]:
    digest = hashlib.sha256()
    total = 0
    prefix = len(str(root).rstrip("/")) + 1
    for f in files:
        name = str(f)[prefix:] if os.sep == "/" else f.relative_to(root).as_posix()  # f is below root
        digest.update(name.encode() + b"\0")
        digest.update(sha256_file(f).encode() + b"\n")
        total += f.stat().st_size
    return digest.hexdigest(), total


def _read_cache(path: Path, key: str) -> tuple[np.ndarray, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            return z["images"], z["labels"]
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, KeyError):
        return None  # a damaged cache is decoded afresh (and rewritten), never trusted


def write_cache(raw: RawData) -> None:
    """Write a folder's decoded images beside its split (``raw.cache``), atomically."""
    if not raw.cache or raw.cache.get("hit"):
        return
    from dlbench.io import atomic_path

    path = Path(raw.cache["path"])
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, key=np.array(raw.cache["key"]), images=raw.images, labels=raw.labels)


def _stack(arrays: list[np.ndarray], files: list[Path], size: tuple[int, int] | None) -> np.ndarray:
    color = any(a.ndim == 3 for a in arrays)
    if size is None:
        first = arrays[0].shape[:2]
        for a, f in zip(arrays, files, strict=True):
            if a.shape[:2] != first:
                raise DataError(
                    f"images differ in size: {files[0]} is {first[1]}x{first[0]}, {f} is "
                    f"{a.shape[1]}x{a.shape[0]} (width x height)",
                    "pass a size to resize every image (dlbench data --size H W, or data.size in a spec)",
                )
    else:
        arrays = [_resize(a, size) for a in arrays]
    if color:
        arrays = [np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a for a in arrays]
        return np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2))
    return np.stack(arrays)


def load_image_folder(
    dataset: str,
    root: str | os.PathLike,
    size: tuple[int, int] | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> RawData:
    """Every image of a class-per-subfolder folder (a store URL it was pushed to:
    :func:`dlbench.data.remote.load_folder_from_store`)."""
    root = Path(root)
    classes = _class_folders(root)
    per_class = [_images_of(c) for c in classes]
    files = [f for fs in per_class for f in fs]
    labels = np.concatenate([np.full(len(fs), i, dtype=np.int64) for i, fs in enumerate(per_class)])
    labels = labels.astype(np.uint8 if len(classes) <= 256 else np.int64)
    key, total_bytes = _fingerprint(root, files)
    cache_key = f"v{CACHE_VERSION}:{key}:{size}"
    cache_path = Path(cache_dir) / CACHE_NAME if cache_dir is not None else None
    cached = _read_cache(cache_path, cache_key) if cache_path else None
    if cached is not None and len(cached[1]) == len(labels):
        images = cached[0]
    else:
        cached = None
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            decoded = list(pool.map(_decode, files, chunksize=64))
        images = _stack(decoded, files, size)
    shape = "x".join(map(str, images.shape[1:]))
    return RawData(
        dataset,
        images,
        labels,
        {
            "kind": "folder",
            "path": str(root),
            "description": f"image folder {root} ({len(files):,} images in {len(classes)} classes, "
            f"{shape}{', resized' if size else ''})",
            "size": list(size) if size else None,
            "verified": False,
            "verification": "the user's own images: fingerprinted (SHA-256 over every file), not checked "
            "against a published dataset",
            "decoded_from_cache": cached is not None,
        },
        {
            root.name or str(root): {
                "path": str(root),
                "sha256": key,
                "files": len(files),
                "bytes": total_bytes,
            }
        },
        classes=[c.name for c in classes],
        cache={"key": cache_key, "path": str(cache_path), "hit": cached is not None} if cache_path else None,
    )


def load_npz(dataset: str, path: str | os.PathLike, size: tuple[int, int] | None = None) -> RawData:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: .npz file not found", "pass --root with an .npz holding images and labels")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz ({exc})", "write it with numpy.savez") from None
    missing = [k for k in ("images", "labels") if k not in arrays]
    if missing:
        raise DataError(
            f"{path}: lacks {' and '.join(missing)} (has {', '.join(sorted(arrays)) or 'nothing'})",
            "save the images as `images` (N x H x W [x C], uint8) and the labels as `labels` (N)",
        )
    images, labels = arrays["images"], arrays["labels"]
    if images.dtype != np.uint8:
        raise DataError(f"{path}: images are {images.dtype}, not uint8", "store pixels 0-255 as uint8")
    if images.ndim == 4 and images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
        images = images.transpose(0, 3, 1, 2)  # N x H x W x C -> N x C x H x W
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if not (images.ndim == 3 or (images.ndim == 4 and images.shape[1] == 3)):
        raise DataError(
            f"{path}: images have shape {arrays['images'].shape}",
            "give N x H x W (gray) or N x H x W x 3 / N x 3 x H x W (RGB)",
        )
    if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"{path}: labels {labels.shape} {labels.dtype} do not match {len(images)} images",
            "give one integer label per image",
        )
    values, codes = np.unique(labels, return_inverse=True)
    if len(values) < 2:
        raise DataError(f"{path}: every label is {values[0] if len(values) else 'missing'}: one class")
    if "classes" in arrays and len(arrays["classes"]) == int(values.max()) + 1 and values.min() >= 0:
        names = [str(arrays["classes"][v]) for v in values]
    else:
        names = [str(v) for v in values]
    if size is not None:
        hw = images.shape[-2:]
        if tuple(hw) != tuple(size):
            import torch
            import torch.nn.functional as F

            t = torch.from_numpy(images[:, None] if images.ndim == 3 else images).float()
            t = F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
            images = t.round().clamp(0, 255).to(torch.uint8).numpy()
            images = images[:, 0] if images.shape[1] == 1 else images
    sha = sha256_file(path)
    return RawData(
        dataset,
        np.ascontiguousarray(images),
        codes.astype(np.uint8 if len(values) <= 256 else np.int64),
        {
            "kind": "npz",
            "path": str(path),
            "description": f"{path.name} ({len(images):,} images in {len(values)} classes, "
            f"{'x'.join(map(str, images.shape[1:]))})",
            "size": list(size) if size else None,
            "verified": False,
            "verification": "the user's own images: fingerprinted (SHA-256), not a published dataset",
        },
        {path.name: {"path": str(path), "sha256": sha}},
        classes=names,
    )
