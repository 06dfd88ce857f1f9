"""File helpers shared by every step: atomic writes, hashing, JSON."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dlbench.errors import DataError, OutputError

CHUNK = 1 << 20


class JsonFileError(DataError, ValueError):
    """A JSON file that does not parse. Also a ValueError, so callers that skip unreadable files still do."""


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    A failure (or a kill) leaves no half-written file at ``path``; an old file there stays intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp makes 0600; give the file the mode a plain open() would
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented, strict JSON (no NaN or Infinity, which JSON does not have), atomically."""
    path = Path(path)
    text = dumps_json(obj)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def dumps_json(obj: Any) -> str:
    """``obj`` as indented strict JSON; a non-finite number raises ValueError (a bug to fix, not to write)."""
    return json.dumps(obj, indent=2, sort_keys=False, default=_json_default, allow_nan=False) + "\n"


# --------------------------------------------------------------------------- output locations


def check_out_dir(
    path: str | os.PathLike,
    option: str = "--out",
    inputs: dict[str, str | os.PathLike | None] | None = None,
    may_be_inside: tuple[str, ...] = (),
) -> Path:
    """Check, before any work, that ``path`` is (or can become) a folder this user can write into, and that
    it does not overlap any of ``inputs`` (see :func:`check_no_overlap`).

    Refused with one :class:`~dlbench.errors.OutputError` line naming the path and the reason: an existing
    file where the folder should be, a file among its parents, a parent that cannot hold a new folder
    (``/proc``, a read-only file system, a folder without write permission for this user). Nothing is
    created: the nearest existing folder is probed with a temporary folder that is removed at once (a real
    attempt, so it also holds for root, for whom permission bits are no obstacle, and for mounts).
    """
    p = Path(path)
    if str(path) == "":
        raise OutputError(f"{option}: empty path", "give a folder")
    _refuse_broken_link(p, option, path)
    if p.exists() and not p.is_dir():
        raise OutputError(
            f"{option} {path}: a file is there, not a folder", "move the file away or choose another folder"
        )
    check_no_overlap(path, option, inputs or {}, may_be_inside)
    _probe_writable(p if p.is_dir() else _existing_ancestor(p, option, path), option, path)
    return p


def local_path_of(location: str | os.PathLike | None) -> Path | None:
    """The local folder a location names (a path or ``file://`` URL); None for a remote URL or nothing."""
    if location is None or str(location) == "":
        return None
    text = str(location)
    if text.startswith("file://"):
        text = text.removeprefix("file://")
    elif "://" in text:
        return None
    return Path(text)


def _real(p: Path) -> Path:
    try:
        return p.resolve()
    except (OSError, RuntimeError):  # a symlink loop: compare the path as written
        return p.absolute()


def check_no_overlap(
    out: str | os.PathLike,
    option: str,
    inputs: dict[str, str | os.PathLike | None],
    may_be_inside: tuple[str, ...] = (),
) -> None:
    """Refuse, before anything is touched, an output location that overlaps an input (or a store).

    ``inputs`` maps the option or spec field that names each input (``--root``, ``data.root``, ``--store``)
    to its location; remote URLs are skipped. The output may not be the input, hold it (a rerun or
    ``--overwrite`` would remove it), or lie inside it (the output would be written among the user's
    files), except for the inputs named in ``may_be_inside`` (``report --out`` inside ``--records``).
    Symlinks are followed, so two spellings of one folder are one folder.
    """
    o = local_path_of(out)
    if o is None:
        return
    ro = _real(o)
    for name, location in inputs.items():
        i = local_path_of(location)
        if i is None:
            continue
        ri = _real(i)
        if ro == ri:
            why = "is the same folder as"
        elif ro in ri.parents:
            why = "holds"
        elif ri in ro.parents and name not in may_be_inside:
            why = "lies inside"
        else:
            continue
        raise OutputError(
            f"{option} {out} {why} {name} {location}: the output would overwrite or mix with that input",
            f"choose a folder for {option} outside {name} and not holding it",
        )


def check_in_dir(
    path: str | os.PathLike, option: str = "", hint: str | None = None, noun: str = "folder"
) -> Path:
    """``path`` is an existing folder to read from; else one :class:`DataError` line saying which of a
    missing path, a file or a symlink that leads nowhere it is (``option`` names it: ``--split``)."""
    p = Path(path)
    where = f"{option} {path}: " if option else f"{path}: "
    if p.is_dir():
        return p
    if p.is_symlink() and not p.exists():
        raise DataError(f"{where}a symlink that leads nowhere (or round in a loop)", hint)
    if p.exists():
        raise DataError(f"{where}a file, not a {noun}", hint)
    raise DataError(f"{where}{noun} not found", hint)


def _refuse_broken_link(p: Path, option: str, path: str | os.PathLike) -> None:
    """A symlink at ``p`` or among its parents that leads nowhere, or round in a loop, is refused."""
    for q in (p, *p.parents):
        if q.is_symlink():
            try:
                q.resolve(strict=True)
            except (OSError, RuntimeError):
                raise OutputError(
                    f"{option} {path}: {q} is a symlink that leads nowhere (or round in a loop)",
                    "remove the link or choose another path",
                ) from None


def check_out_file(path: str | os.PathLike, option: str = "--out") -> Path:
    """Check, before any work, that a file can be written at ``path`` (its folder made if missing)."""
    p = Path(path)
    if str(path) == "" or str(path).endswith(os.sep):
        raise OutputError(f"{option} {path!r}: not a file name", "give a file path, e.g. out/pipeline.yaml")
    _refuse_broken_link(p, option, path)
    if p.is_dir():
        raise OutputError(f"{option} {path}: a folder is there, not a file", "give a file path inside it")
    parent = p.parent
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"{option} {path}: {parent} is a file, not a folder", "choose another path")
    _probe_writable(parent if parent.is_dir() else _existing_ancestor(parent, option, path), option, path)
    return p


def _existing_ancestor(p: Path, option: str, path: str | os.PathLike) -> Path:
    """The nearest existing ancestor of ``p``; a file on the way is refused (it cannot hold a folder)."""
    q = p.absolute()
    while True:
        q = q.parent
        if q.is_dir():
            return q
        if q.exists() or q.is_symlink():
            raise OutputError(
                f"{option} {path}: {q} is a file, so it cannot hold a folder", "choose a path below a folder"
            )
        if q == q.parent:
            return q


def _probe_writable(folder: Path, option: str, path: str | os.PathLike) -> None:
    try:
        probe = tempfile.mkdtemp(prefix=".dlbench-write-check-", dir=folder)
    except OSError as exc:
        import errno

        reason = {
            errno.EACCES: "no write permission",
            errno.EPERM: "no write permission",
            errno.EROFS: "read-only file system",
            errno.ENOENT: "this place does not take new files",
        }.get(exc.errno, exc.strerror or "OSError")
        where = "" if Path(folder).absolute() == Path(path).absolute() else f" in {folder}"
        raise OutputError(
            f"{option} {path}: cannot write{where} ({reason})", "choose a folder you can write to"
        ) from None
    os.rmdir(probe)


def read_json(path: str | os.PathLike) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise JsonFileError(
            f"{path}: not valid JSON ({exc})",
            "the file is damaged: re-run the step that wrote it, or move it away",
        ) from None


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
