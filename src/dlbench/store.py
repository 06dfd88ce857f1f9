"""The artifact store: one interface, a local-folder backend here, an S3 backend at the edge.

A store holds objects under string keys (``report/report.html``), relative to its base: a folder
(``runs/pipeline``) or an S3 bucket and prefix (``s3://dlbench/runs``). Every backend gives:

- ``put_file(path, key)``: upload, then verify that the stored object has the local file's size and
  checksum (the S3 backend compares the server's ETag with the MD5 / multipart ETag of the local bytes);
  a mismatch deletes the object and raises :class:`ChecksumMismatch`.
- ``get_file(key, path)``: download into ``path.part`` (resumed from where an interrupted download
  stopped), verify the SHA-256 the object was stored with, then rename onto ``path``. (S3 keeps it as
  metadata; a folder keeps none and computes it from the bytes it holds, so there only an expected
  SHA-256, a manifest's as in ``get_tree``, catches bytes changed at rest.)
- ``list(prefix)``, ``exists(key)``, ``info(key)``, ``delete(key)``.

``tests/store/test_contract.py`` runs one suite of what every backend must do against each of them.

A *tree* (a run's report and records) is uploaded file by file and then ``MANIFEST.json`` (every path
with its size and SHA-256) is written **last**: an upload that stops half-way leaves no manifest, so no
reader mistakes it for a complete run. Single objects rely on S3's own atomicity: a PUT or a multipart
upload becomes visible at its key only when complete; the local backend writes a temp file and renames.

Backends register themselves by URL scheme (:func:`register_store_backend`, as SVM backends do in
``dlbench.svm.backends``). The S3 backend (``stores.s3``, minio SDK) lives outside ``src/``;
:func:`store_backend` imports it when an ``s3://`` URL is first opened, so this module imports neither
minio nor kfp.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from dlbench.errors import DlbenchError
from dlbench.io import CHUNK, sha256_file

MANIFEST_NAME = "MANIFEST.json"
MANIFEST_FORMAT = "dlbench-manifest/1"
PART_SUFFIX = ".part"

# Files that are not part of a run's "report and records" bundle by default (data arrays, weights).
BINARY_SUFFIXES = (".npz", ".pt", ".pth", ".onnx", ".joblib", ".pkl", ".bin")

Progress = Callable[[int], None]  # called with the number of bytes just moved


class StoreError(DlbenchError):
    """The artifact store cannot be reached, refuses us, or holds something other than expected."""


class ChecksumMismatch(StoreError):
    """An object's bytes differ from what was written (size, ETag or SHA-256)."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    sha256: str | None = None  # as stored with the object (S3 metadata) or computed (local)


@dataclass(frozen=True)
class FileDigest:
    """Checksums of a local file, computed in one pass."""

    size: int
    sha256: str
    md5: str
    multipart_etag: str | None  # the S3 ETag of a multipart upload with ``part_size`` parts

    @classmethod
    def of(cls, path: str | os.PathLike, part_size: int | None = None) -> FileDigest:
        sha, md5 = hashlib.sha256(), hashlib.md5()
        part_md5s: list[bytes] = []
        size = 0
        with open(path, "rb") as f:
            while True:
                block = f.read(part_size or CHUNK)
                if not block:
                    break
                size += len(block)
                sha.update(block)
                md5.update(block)
                if part_size:
                    part_md5s.append(hashlib.md5(block).digest())
        mp = None
        if part_size and len(part_md5s) > 1:
            mp = f"{hashlib.md5(b''.join(part_md5s)).hexdigest()}-{len(part_md5s)}"
        return cls(size=size, sha256=sha.hexdigest(), md5=md5.hexdigest(), multipart_etag=mp)


def join_key(*parts: str) -> str:
    """Keys joined with ``/``, empty parts and stray slashes dropped: ``join_key("runs/", "a")`` is
    ``runs/a``."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


class Store(ABC):
    """Objects under keys relative to one base (a folder, or a bucket + prefix)."""

    scheme: ClassVar[str]  # the URL scheme it serves, its key in :data:`BACKENDS`
    url: str  # where the store points, for messages (never holds credentials)

    @classmethod
    @abstractmethod
    def from_url(cls, url: str, create_bucket: bool = False) -> Store:
        """The store ``url`` names; ``create_bucket`` makes a missing bucket (backends that have buckets)."""

    # ------------------------------------------------------------------ primitives (per backend)
    @abstractmethod
    def put_file(self, path: str | os.PathLike, key: str, progress: Progress | None = None) -> ObjectInfo:
        """Upload ``path`` to ``key``; verified after writing (size and checksum)."""

    @abstractmethod
    def info(self, key: str) -> ObjectInfo | None:
        """Size and stored SHA-256 of ``key``, or None when there is no such object."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Every object under ``prefix`` (recursive), sorted by key."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key`` (no error when it is absent)."""

    @abstractmethod
    def _read(self, key: str, offset: int = 0) -> Iterator[bytes]:
        """The object's bytes from ``offset`` on, in chunks."""

    # ------------------------------------------------------------------ built on the primitives
    def exists(self, key: str) -> bool:
        return self.info(key) is not None

    def describe(self, key: str = "") -> str:
        return f"{self.url.rstrip('/')}/{key}" if key else self.url

    def get_file(
        self,
        key: str,
        path: str | os.PathLike,
        sha256: str | None = None,
        size: int | None = None,
        progress: Progress | None = None,
    ) -> Path:
        """Download ``key`` to ``path`` and verify it; an interrupted download resumes from its ``.part``.

        The expected SHA-256 is ``sha256`` if given (e.g. from a manifest), else the one stored with the
        object. Nothing appears at ``path`` unless the checksum matches.
        """
        path = Path(path)
        meta = self.info(key)
        if meta is None:
            raise StoreError(f"{self.describe(key)} does not exist")
        expected = sha256 or meta.sha256
        if size is not None and meta.size != size:
            raise ChecksumMismatch(
                f"{self.describe(key)} has {meta.size:,} bytes, expected {size:,}",
                "the object changed or was not fully written; upload it again",
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(path.name + PART_SUFFIX)
        for attempt in (1, 2):
            offset = part.stat().st_size if part.exists() else 0
            if offset > meta.size:
                part.unlink()
                offset = 0
            if progress and offset:
                progress(offset)
            if offset < meta.size:
                with open(part, "ab") as f:
                    for chunk in self._read(key, offset):
                        f.write(chunk)
                        if progress:
                            progress(len(chunk))
            elif not part.exists():
                part.touch()
            got_size = part.stat().st_size
            got = sha256_file(part)
            if got_size == meta.size and (expected is None or got == expected):
                os.replace(part, path)
                return path
            part.unlink()
            if attempt == 1 and offset:
                continue  # the resumed part may have come from an older object: once more from scratch
            raise ChecksumMismatch(
                f"{self.describe(key)}: downloaded bytes do not match "
                + (
                    f"SHA-256 {expected[:12]}… (got {got[:12]}…)"
                    if got_size == meta.size
                    else f"size {meta.size:,} (got {got_size:,})"
                ),
                "the stored object is corrupt or changed while reading; upload it again",
            )
        raise AssertionError("unreachable")

    def read_bytes(self, key: str) -> bytes:
        if not self.exists(key):
            raise StoreError(f"{self.describe(key)} does not exist")
        return b"".join(self._read(key, 0))

    def put_tree(
        self,
        local_dir: str | os.PathLike,
        prefix: str,
        progress: bool | None = None,
        log: Callable[[str], Any] | None = None,
    ) -> dict[str, Any]:
        """Upload every file below ``local_dir`` to ``prefix/``, then ``prefix/MANIFEST.json`` last."""
        root = Path(local_dir)
        if not root.is_dir():
            raise StoreError(f"{root} is not a folder")
        manifest = build_manifest(root)
        total = manifest["total_bytes"]
        with _bar(total, f"upload {self.describe(prefix)}", progress) as tick:
            for entry in manifest["files"]:
                info = self.put_file(root / entry["path"], join_key(prefix, entry["path"]), progress=tick)
                if info.size != entry["bytes"] or (info.sha256 and info.sha256 != entry["sha256"]):
                    raise ChecksumMismatch(f"{self.describe(info.key)} changed while uploading")
        blob = json.dumps(manifest, indent=2, allow_nan=False).encode() + b"\n"
        tmp = root.parent / f".{root.name}.{MANIFEST_NAME}.upload"
        try:
            tmp.write_bytes(blob)
            self.put_file(tmp, join_key(prefix, MANIFEST_NAME))
        finally:
            tmp.unlink(missing_ok=True)
        if log:
            log(f"uploaded {len(manifest['files'])} files ({total:,} bytes) to {self.describe(prefix)}")
        return manifest

    def read_manifest(self, prefix: str) -> dict[str, Any]:
        key = join_key(prefix, MANIFEST_NAME)
        if not self.exists(key):
            raise StoreError(
                f"{self.describe(key)} does not exist",
                "the upload did not finish, or this is not a run folder",
            )
        try:
            manifest = json.loads(self.read_bytes(key))
        except ValueError as exc:
            raise StoreError(f"{self.describe(key)} is not valid JSON: {exc}") from None
        return checked_manifest(manifest, self.describe(key))

    def get_tree(
        self,
        prefix: str,
        local_dir: str | os.PathLike,
        select: Callable[[str], bool] | None = None,
        progress: bool | None = None,
        log: Callable[[str], Any] | None = None,
    ) -> dict[str, Any]:
        """Download the files of ``prefix/MANIFEST.json`` (those ``select`` keeps) into ``local_dir``.

        Resumable: files already there with the right SHA-256 are skipped, partial ``.part`` files
        continue where they stopped. Every file is verified against the manifest. Returns a summary.
        """
        manifest = self.read_manifest(prefix)
        out = Path(local_dir)
        files = [e for e in manifest["files"] if select is None or select(e["path"])]
        for e in files:
            _check_relative(e["path"])
        _check_tree_fits(out, files)
        todo, skipped = [], 0
        for e in files:
            dest = out / e["path"]
            if dest.is_file() and dest.stat().st_size == e["bytes"] and sha256_file(dest) == e["sha256"]:
                skipped += 1
            else:
                todo.append(e)
        total = sum(e["bytes"] for e in todo)
        with _bar(total, f"fetch {self.describe(prefix)}", progress) as tick:
            for e in todo:
                self.get_file(
                    join_key(prefix, e["path"]),
                    out / e["path"],
                    sha256=e["sha256"],
                    size=e["bytes"],
                    progress=tick,
                )
        out.mkdir(parents=True, exist_ok=True)
        kept = {e["path"] for e in files}
        local = {
            **manifest,
            "files": files,
            "total_bytes": sum(e["bytes"] for e in files),
            "left_out": [e["path"] for e in manifest["files"] if e["path"] not in kept],
        }
        (out / MANIFEST_NAME).write_text(json.dumps(local, indent=2, allow_nan=False) + "\n")
        summary = {
            "downloaded": len(todo),
            "skipped": skipped,
            "bytes": total,
            "files": len(files),
            "left_out": len(manifest["files"]) - len(files),
        }
        if log:
            log(
                f"fetched {len(todo)} files ({total:,} bytes), {skipped} already present and verified, "
                f"into {out}"
            )
        return summary


def _check_relative(path: str) -> None:
    p = Path(path)
    if p.is_absolute() or ".." in p.parts:
        raise StoreError(f"manifest path {path!r} escapes the download folder")


class _bar:
    """A byte progress bar on a TTY (tqdm); silent otherwise. Yields a ``tick(n)`` callable."""

    def __init__(self, total: int, desc: str, enabled: bool | None):
        from dlbench.log import use_bar

        self.enabled = use_bar() if enabled is None else enabled
        self.total, self.desc, self._tqdm = total, desc, None

    def __enter__(self) -> Progress:
        if self.enabled and self.total:
            from tqdm import tqdm

            self._tqdm = tqdm(
                total=self.total,
                desc=self.desc,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                leave=False,
                dynamic_ncols=True,
            )
            return self._tqdm.update
        return lambda n: None

    def __exit__(self, *exc) -> None:
        if self._tqdm is not None:
            self._tqdm.close()


def build_manifest(root: str | os.PathLike, files: Iterable[Path] | None = None) -> dict[str, Any]:
    """Manifest of every file below ``root`` (or of ``files``), skipping an old manifest and .part files."""
    from dlbench.record import now_iso

    root = Path(root)
    paths = sorted(files) if files is not None else sorted(p for p in root.rglob("*") if p.is_file())
    entries = []
    for p in paths:
        rel = p.relative_to(root).as_posix()
        if rel == MANIFEST_NAME or rel.endswith(PART_SUFFIX):
            continue
        entries.append({"path": rel, "bytes": p.stat().st_size, "sha256": sha256_file(p)})
    return {
        "format": MANIFEST_FORMAT,
        "created": now_iso(),
        "files": entries,
        "total_bytes": sum(e["bytes"] for e in entries),
    }


def write_manifest(root: str | os.PathLike) -> Path:
    """Write ``root/MANIFEST.json`` (atomically) describing every other file below ``root``."""
    from dlbench.io import write_json

    return write_json(Path(root) / MANIFEST_NAME, build_manifest(root))


def checked_manifest(manifest: Any, where: str) -> dict[str, Any]:
    """``manifest`` (read from ``where``) checked against :class:`dlbench.schemas.StoreManifest`: one
    StoreError line naming the file and the field (a list, a missing ``sha256``, a path leaving the tree)."""
    from dlbench.errors import DataError
    from dlbench.schemas import StoreManifest, check_file

    if isinstance(manifest, dict) and manifest.get("format") != MANIFEST_FORMAT:
        raise StoreError(f"{where} is not a dlbench manifest (format {MANIFEST_FORMAT!r})")
    try:
        check_file(manifest, StoreManifest, where, "dlbench manifest")
    except DataError as exc:
        raise StoreError(exc.message, "upload the tree again (dlbench publish / data push)") from None
    return manifest


def verify_tree(root: str | os.PathLike) -> list[str]:
    """Problems of a local tree against its ``MANIFEST.json`` (missing files, wrong size or SHA-256)."""
    from dlbench.io import read_json

    root = Path(root)
    manifest = checked_manifest(read_json(root / MANIFEST_NAME), str(root / MANIFEST_NAME))
    problems = []
    for e in manifest["files"]:
        p = root / e["path"]
        if not p.is_file():
            problems.append(f"{e['path']}: missing")
        elif p.stat().st_size != e["bytes"] or sha256_file(p) != e["sha256"]:
            problems.append(f"{e['path']}: checksum mismatch")
    return problems


# ---------------------------------------------------------------------------------------------- backends

BACKENDS: dict[str, type[Store]] = {}  # URL scheme -> backend class (register_store_backend)

# Backends outside src/, imported when their scheme is first opened (they register themselves):
# URL scheme -> (module, what it needs, how to install that).
BACKEND_MODULES = {"s3": ("dlbench_kfp.stores.s3", "the minio SDK", "pip install 'dlbench[kfp]'")}


def register_store_backend(cls: type[Store]) -> type[Store]:
    """Class decorator: add ``cls`` to :data:`BACKENDS` under ``cls.scheme``."""
    BACKENDS[cls.scheme] = cls
    return cls


def store_backend(scheme: str) -> type[Store] | None:
    """The backend class for URL scheme ``scheme`` (None when no backend serves it); a backend of
    :data:`BACKEND_MODULES` is imported on first use, a missing SDK raises one clear StoreError."""
    if scheme not in BACKENDS and scheme in BACKEND_MODULES:
        module, needs, install = BACKEND_MODULES[scheme]
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise StoreError(
                f"the {scheme}:// store needs {needs} ({exc.name} is not importable)", install
            ) from None
    return BACKENDS.get(scheme)


def open_store(url: str | os.PathLike, create_bucket: bool = False) -> Store:
    """A folder path (or ``file://``) gives a :class:`LocalStore`; ``s3://bucket/prefix`` the S3 backend.

    The S3 backend reads its endpoint and keys from the environment (see ``stores/s3.py``).
    """
    text = str(url)
    backend = store_backend(text.split("://", 1)[0] if "://" in text else "file")
    if backend is None:
        raise StoreError(f"unsupported store URL {text!r}", "use a folder path or s3://bucket/prefix")
    return backend.from_url(text, create_bucket=create_bucket)


# ---------------------------------------------------------------------------------------------- local


@register_store_backend
class LocalStore(Store):
    """A folder. Writes go to a temp file beside the target, are verified, then renamed into place."""

    scheme = "file"

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().absolute()
        self.url = str(self.root)

    @classmethod
    def from_url(cls, url: str, create_bucket: bool = False) -> LocalStore:
        return cls(url.removeprefix("file://"))

    def _path(self, key: str) -> Path:
        _check_relative(key)
        return self.root / key

    def put_file(self, path, key, progress=None) -> ObjectInfo:
        src = Path(path)
        if not src.is_file():
            raise StoreError(f"{src} is not a file")
        dest = self._path(key)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.upload")
        want = sha256_file(src)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(src, "rb") as fi, open(tmp, "wb") as fo:
                while block := fi.read(CHUNK):
                    fo.write(block)
                    if progress:
                        progress(len(block))
                fo.flush()
                os.fsync(fo.fileno())
            got = sha256_file(tmp)
            if got != want:
                raise ChecksumMismatch(
                    f"{self.describe(key)}: written bytes do not match {src} "
                    f"(SHA-256 {got[:12]}… vs {want[:12]}…)"
                )
            os.replace(tmp, dest)
        except OSError as exc:
            raise StoreError(f"could not write {self.describe(key)}: {exc.strerror or exc}") from None
        finally:
            with contextlib.suppress(OSError):  # no temp file below a parent that is no folder of ours
                tmp.unlink(missing_ok=True)
        return ObjectInfo(key, dest.stat().st_size, want)

    def info(self, key) -> ObjectInfo | None:
        p = self._path(key)
        if not p.is_file():
            return None
        return ObjectInfo(key, p.stat().st_size, sha256_file(p))

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        base = self._path(prefix) if prefix else self.root
        if base.is_file():
            return [ObjectInfo(prefix, base.stat().st_size)]
        if not base.is_dir():
            return []
        out = []
        for p in sorted(base.rglob("*")):
            if p.is_file() and not p.name.endswith(".upload"):
                out.append(ObjectInfo(p.relative_to(self.root).as_posix(), p.stat().st_size))
        return out

    def delete(self, key) -> None:
        self._path(key).unlink(missing_ok=True)

    def _read(self, key, offset=0) -> Iterator[bytes]:
        with open(self._path(key), "rb") as f:
            f.seek(offset)
            while block := f.read(CHUNK):
                yield block


# ---------------------------------------------------------------------------------------------- runs


def find_run(store: Store, run: str) -> str:
    """The prefix of a run's bundle (the folder holding its MANIFEST.json) in ``store``.

    ``run`` is a run name (``dlbench run --local`` uploads to ``<store>/<run>/``, the report task of a
    cluster run publishes to ``<publish_to>/<KFP run id>/``) or a KFP run id under a pipeline root, where
    the bundle is the report task's ``study`` artifact somewhere below ``.../<run id>/``.
    """
    run = run.strip("/")
    if not run:
        raise StoreError("empty run name")
    if store.exists(join_key(run, MANIFEST_NAME)):
        return run
    hits = sorted(
        {
            o.key[: -len(MANIFEST_NAME) - 1]
            for o in store.list()
            if o.key.endswith("/" + MANIFEST_NAME) and f"/{run}/" in f"/{o.key}"
        }
    )
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise StoreError(
            f"no run {run!r} in {store.describe()}: no {run}/{MANIFEST_NAME} and no bundle below "
            f"a folder named {run}",
            "check the run name (dlbench run --local prints it) and the store URL",
        )
    raise StoreError(
        f"run {run!r} matches {len(hits)} bundles in {store.describe()}: {', '.join(hits[:5])}",
        "pass the full prefix of the one you want",
    )


def is_model_path(path: str) -> bool:
    return path.startswith("models/") or path.endswith(BINARY_SUFFIXES)


# Written into a fetch's --to before the first file and removed once every file is there and verified: a
# folder holding it is a partial copy (dlbench runs says so), whatever else it holds.
PARTIAL_NAME = "FETCH-PARTIAL.json"


def _check_tree_fits(out: Path, files: list[dict[str, Any]]) -> None:
    """Every file of a manifest can be written below ``out``: no file where one of its folders must go and
    no folder where it must go. Checked before the first download, so a refusal changes nothing."""
    for e in files:
        dest = out / e["path"]
        if dest.is_dir() and not dest.is_symlink():
            raise StoreError(
                f"{dest}: a folder is where the file {e['path']} must go",
                "move it away, or choose another --to",
            )
        for parent in dest.relative_to(out).parents:
            p = out / parent
            if str(parent) != "." and p.exists() and not p.is_dir():
                raise StoreError(
                    f"{p}: a file is where a folder must go (for {e['path']})",
                    "move it away, or choose another --to",
                )


def fetch_run(
    store: Store,
    run: str,
    to: str | os.PathLike,
    models: bool = False,
    progress: bool | None = None,
    log: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """Download a run's report and records (and with ``models`` its weights) into ``to``, verified."""
    from dlbench.io import write_json
    from dlbench.record import now_iso

    prefix = find_run(store, run)
    select = None if models else (lambda p: not is_model_path(p))
    manifest = store.read_manifest(prefix)
    _check_tree_fits(Path(to), [e for e in manifest["files"] if select is None or select(e["path"])])
    mark = Path(to) / PARTIAL_NAME
    write_json(mark, {"run": run, "store": store.describe(prefix), "started": now_iso()})
    summary = store.get_tree(prefix, to, select=select, progress=progress, log=log)
    mark.unlink()
    summary["prefix"] = prefix
    return summary
