"""One schema per kind of file dlbench reads that it did not just write, and one way to check it.

Records (``record.json``), a data step's ``manifest.json``, a store's ``MANIFEST.json``, calibration files,
a study folder's ``spec.yaml`` (its name and data settings) and ``index.json`` are each read through
:func:`check_file` (or :func:`read_checked`): a file that does not have the shape its readers rely on is
refused with one line naming the file and the field, e.g.
``runs/q/train/x/record.json: field metrics: Input should be a valid dictionary (got a str)``.

The schemas check what readers rely on and leave the rest open (``extra="allow"``): records carry
step-specific metrics, and a newer dlbench may add fields. Numbers must be finite, counts whole and >= 0.
"""

from __future__ import annotations

import math
import os
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    model_validator,
)

from dlbench.data.registry import NAME_PATTERN
from dlbench.errors import DataError

M = TypeVar("M", bound=BaseModel)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


def _finite(v: float) -> float:
    if not math.isfinite(v):
        raise ValueError("must be a finite number")
    return v


Finite = Annotated[float, AfterValidator(_finite)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


def _relative_path(v: str) -> str:
    p = PurePosixPath(v)
    if not v or p.is_absolute() or ".." in p.parts or "\\" in v:
        raise ValueError(f"must be a relative path inside the folder (got {v!r})")
    return v


RelPath = Annotated[str, AfterValidator(_relative_path)]

# --------------------------------------------------------------------------- records

# Metrics with a known range: accuracies and fractions are in [0, 1] (an accuracy of 5.0 is not 500 %), times
# and counts are >= 0. Keys are matched by name, wherever a step puts them in its metrics.
FRACTION_METRICS = (
    "accuracy",
    "test_accuracy",
    "val_accuracy",
    "best_val_accuracy",
    "train_accuracy",
    "macro_f1",
    "test_macro_f1",
    "test_accuracy_best_checkpoint",
)
NON_NEGATIVE_SUFFIXES = ("_seconds", "_s", "_ms", "_bytes")


class RecordFile(_Open):
    """``record.json``: what every step writes (:class:`dlbench.record.Record`)."""

    step: str
    run_id: str = ""
    status: Literal["running", "ok", "failed"]
    config: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    seconds: Finite = 0.0
    device: dict[str, Any] = Field(default_factory=dict)
    environment: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _metrics_in_range(self):
        """An ok record's metrics are in their range (a failed one may hold placeholders)."""
        if self.status != "ok":
            return self
        for key, value in self.metrics.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if not math.isfinite(value):
                raise ValueError(f"metrics.{key} = {value} is not a finite number")
            if key in FRACTION_METRICS and not 0 <= value <= 1:
                raise ValueError(f"metrics.{key} = {value} is outside 0 to 1 (a fraction, not a percentage)")
            if key.endswith(NON_NEGATIVE_SUFFIXES) and value < 0:
                raise ValueError(f"metrics.{key} = {value} is negative")
        return self


# --------------------------------------------------------------------------- data step manifest


class PartCounts(_Open):
    size: NonNegativeInt
    class_counts: list[NonNegativeInt]


class SplitOutput(_Open):
    sha256: Sha256
    bytes: NonNegativeInt | None = None


class DataManifest(_Open):
    """``manifest.json`` beside a ``split.npz`` (the data step's)."""

    dataset: str = Field(pattern=NAME_PATTERN)  # a registry entry's name or the user's own (folder, npz)
    classes: list[str] | None = None
    shape: list[PositiveInt] | None = Field(
        default=None, min_length=3, max_length=3
    )  # channels, height, width
    parts: dict[Literal["train", "val", "test"], PartCounts] | None = None
    outputs: dict[str, SplitOutput] = Field(default_factory=dict)


# --------------------------------------------------------------------------- store manifest


class ManifestEntry(BaseModel):
    model_config = ConfigDict(extra="allow")

    path: RelPath
    bytes: NonNegativeInt
    sha256: Sha256


class StoreManifest(_Open):
    """``MANIFEST.json`` of a stored tree (a run, a dataset) and of a local copy (:mod:`dlbench.store`)."""

    format: Literal["dlbench-manifest/1"]
    files: list[ManifestEntry]
    partial: bool = False


# --------------------------------------------------------------------------- calibration


def _times(v: Any, where: str = "") -> Any:
    """Every ``*seconds*`` number is finite and >= 0, and a per-step or per-image time > 0 (a zero or a text
    step time would project a study that costs nothing, or stop the estimate half-way)."""
    if isinstance(v, dict):
        for key, value in v.items():
            name = f"{where}.{key}" if where else str(key)
            if "seconds" in str(key) and not isinstance(value, dict | type(None)):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"{name} must be a number of seconds (got {_type_name(value)})")
                strict = "per_step" in str(key) or "per_image" in str(key)
                if not math.isfinite(value) or value < 0 or (strict and value == 0):
                    raise ValueError(f"{name} must be {'> 0' if strict else '>= 0'} seconds (got {value})")
            else:
                _times(value, name)
    return v


class CalibrationFile(_Open):
    """A calibration (``dlbench spec estimate --calibrate``): measured seconds per run shape."""

    format: Any
    shapes: dict[str, dict[str, Any]]

    @model_validator(mode="after")
    def _check_times(self):
        _times({k: v for k, v in self.model_dump().items() if k != "format"})
        return self


# --------------------------------------------------------------------------- study folder


class HeldSpec(_Open):
    """``spec.yaml`` in a study folder: what :func:`dlbench.study.prepare_out` compares."""

    name: str
    data: dict[str, Any] = Field(default_factory=dict)
    seed: Any = None


class IndexEntry(_Open):
    step: str
    status: str
    folder: str


class IndexFile(_Open):
    runs: dict[str, IndexEntry] = Field(default_factory=dict)


# --------------------------------------------------------------------------- checking


def _type_name(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(
        type(v), f"a {type(v).__name__}"
    )


def check_file(data: Any, model: type[M], path: str | os.PathLike, what: str | None = None) -> M:
    """``data`` (read from ``path``) as ``model``; one :class:`DataError` line naming the file and field."""
    if not isinstance(data, dict):
        raise DataError(
            f"{path}: not a {what or 'dlbench file'} (a JSON {_type_name(data)} where an object must be)",
            "re-run the step that wrote it, or move it away",
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(x) for x in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        tail = f" (got {_type_name(got)})" if err["type"].endswith("_type") else ""
        raise DataError(
            f"{path}: field {field}: {msg}{tail}",
            "re-run the step that wrote it, or move the file away",
        ) from None


def read_checked(path: str | os.PathLike, model: type[M], what: str | None = None) -> M:
    """Read the JSON file at ``path`` and check it as ``model`` (a folder or a symlink loop: one line)."""
    from dlbench.io import read_json

    p = Path(path)
    if p.is_dir():
        raise DataError(f"{p}: a folder where a file must be", "move the folder away")
    try:
        data = read_json(p)
    except OSError as exc:
        raise DataError(
            f"{p}: cannot read ({exc.strerror or exc})", "move it away or re-run the step"
        ) from None
    return check_file(data, model, p, what)
