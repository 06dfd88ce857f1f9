"""The study spec: one YAML file describes a study; typed and validated before any work starts.

``load_spec("quick")`` loads a preset shipped in ``dlbench/presets``; any other value is a path.
Errors name the field and the allowed values, e.g. (after ``dlbench: error:``)::

    spec quick.yaml: train.grids.0.optimizer.0: Input should be 'sgd' or 'adam' (got 'rmsprop')

This module is the schema and its loading; :mod:`dlbench.plan` expands a loaded spec into its runs
(``expand_train`` / ``expand_svm``), its smoke variant and its fused tasks.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Field, ValidationError, create_model, field_validator, model_validator

# The step configs live in dlbench.configs; their names stay importable from here.
from dlbench.configs import (  # noqa: F401
    DATASET_IMAGES,
    INPUT_SIZE_RANGE,
    NUM_CLASSES,
    Amp,
    DatasetName,
    DataSource,
    Device,
    Engine,
    Estimator,
    Exporter,
    InChannels,
    Kernel,
    ModelName,
    OnnxConfig,
    OnnxSettings,
    OnnxSpec,
    Optimizer,
    Preprocess,
    ProfileConfig,
    ProfileSpec,
    Provider,
    Stem,
    SvmBackend,
    SvmConfig,
    SvmSettings,
    TrainConfig,
    _Strict,
    config_id,
    format_validation_error,
    spec_place,
    validate_model,
)
from dlbench.devices import BUILTIN_NAMES, DeviceEntry, catalog, check_name
from dlbench.errors import SpecError


class DataSpec(_Strict):
    datasets: list[DatasetName] = Field(default=["fashion-mnist"], min_length=1)
    source: DataSource = "auto"
    root: str | None = Field(
        default=None,
        description="folder of IDX files, or the store `dlbench data push` put "
        "them in (s3://bucket/datasets); default: search known places",
    )
    subsample: int | None = Field(
        default=None, gt=0, description="stratified subsample of all images before the split"
    )
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
    size: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]] | None = Field(
        default=None,
        description="source folder / npz: resize every image to [height, width] (default: keep their "
        "size; images of mixed sizes are then refused)",
    )

    @model_validator(mode="after")
    def _datasets_known(self):
        """Registered datasets, or with source folder / npz one dataset: the user's own data at root."""
        from dlbench.data.registry import DATASETS

        if self.source in ("folder", "npz"):
            if self.root is None or len(self.datasets) != 1:
                raise ValueError(
                    f"source {self.source} reads one dataset from root: give data.root and exactly one "
                    f"name in data.datasets (got {self.datasets}, root {self.root!r})"
                )
            return self
        unknown = [d for d in self.datasets if d not in DATASETS]
        if unknown:
            raise ValueError(
                f"datasets: unknown {', '.join(map(repr, unknown))}; choose from {', '.join(DATASETS)}, "
                "or set source folder (or npz) and root to read your own data"
            )
        if self.size is not None:
            raise ValueError("size resizes folder and npz images only; leave it out for IDX data")
        return self

    @field_validator("fractions")
    @classmethod
    def _fractions(cls, v):
        if any(f <= 0 for f in v) or abs(sum(v) - 1.0) > 1e-6:
            raise ValueError(f"train/val/test fractions must be positive and sum to 1 (got {list(v)})")
        return v

    @model_validator(mode="after")
    def _parts_hold_every_class(self):
        """Known without loading: both built-in datasets have 70,000 images in 10 classes (the user's own
        data is checked by the data step, once its images are counted)."""
        from dlbench.data.split import part_sizes, smallest_total

        if self.subsample is None or self.source in ("folder", "npz"):
            return self
        if self.subsample > DATASET_IMAGES:
            raise ValueError(
                f"subsample {self.subsample:,} is larger than the datasets "
                f"({DATASET_IMAGES:,} images each); use at most {DATASET_IMAGES:,} or leave it out"
            )
        if min(part_sizes(self.subsample, self.fractions)) < NUM_CLASSES:
            least = smallest_total(self.fractions, NUM_CLASSES)
            raise ValueError(
                f"subsample {self.subsample:,} split {'/'.join(f'{f:g}' for f in self.fractions)} "
                f"leaves a part with fewer images than the {NUM_CLASSES} classes; use at least {least:,}"
            )
        return self


def _axis(field) -> tuple[Any, Any]:
    """A TrainConfig field as a grid axis: a list of its values, at least one, by default its default."""
    item = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    return list[item], Field(default=[field.default], min_length=1, description=field.description)


def _one(field) -> tuple[Any, Any]:
    """A TrainConfig field as one value for every run of the study."""
    tp = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    return tp, Field(default=field.default, description=field.description)


# Grid list name -> TrainConfig field, for every field the grids list (``in_spec="grid"``), in field order.
GRID_AXES = {
    ("models" if name == "model" else name): name
    for name, f in TrainConfig.model_fields.items()
    if spec_place(f) == "grid"
}
# TrainConfig fields set once under ``train:`` (``in_spec="train"``).
TRAIN_SETTINGS = tuple(name for name, f in TrainConfig.model_fields.items() if spec_place(f) == "train")

TrainGrid = create_model(
    "TrainGrid",
    __base__=_Strict,
    __module__=__name__,
    __doc__="One grid: every list is an axis; the runs are their Cartesian product (the axes are the "
    "TrainConfig fields marked ``grid``).",
    name=(str, "grid"),
    datasets=(list[DatasetName] | None, Field(default=None, description="default: data.datasets")),
    **{axis: _axis(TrainConfig.model_fields[name]) for axis, name in GRID_AXES.items() if axis != "device"},
    # the device axis takes catalog names (dlbench.devices): cpu, cuda, or one the spec's devices: names
    device=(
        list[str],
        Field(default=["cpu"], min_length=1, description="devices: cpu, cuda or a name under devices:"),
    ),
    fuse=(
        bool | None,
        Field(
            default=None,
            description="with train.fuse: false keeps this grid's runs solo, true fuses them even "
            "where they compare timings; default: solo when the grid varies device, "
            "engine or pin_memory (its timing is the point)",
        ),
    ),
)

TrainSpec = create_model(
    "TrainSpec",
    __base__=_Strict,
    __module__=__name__,
    __doc__="The ``train:`` section: the TrainConfig fields marked ``train``, the grids and fusion.",
    **{name: _one(TrainConfig.model_fields[name]) for name in TRAIN_SETTINGS},
    grids=(list[TrainGrid], Field(default_factory=lambda: [TrainGrid()])),
    fuse=(
        bool | None,
        Field(
            default=None,
            description="train compatible GPU runs as fused groups (one model, one task per "
            "group); default: off (dlbench study --fuse turns it on)",
        ),
    ),
    fuse_max_members=(
        int | None,
        Field(default=None, gt=0, description=f"most runs in one fused group; default {8}"),
    ),
)


class SvmSpec(SvmSettings):
    backends: list[SvmBackend] = Field(default=["sklearn"])
    kernels: list[Kernel] = Field(default=["rbf"], description="the svm estimator's kernels, one run each")
    estimators: list[Estimator] = Field(
        default=["svm"],
        description="classical estimators of the registry (dlbench.svm.estimators), one run per dataset and "
        "backend each (svm: one per kernel): svm, logistic_regression, random_forest, "
        "hist_gradient_boosting; leave svm out to fit no SVM",
    )
    devices: dict[SvmBackend, list[str]] | None = Field(
        default=None,
        description="backend -> the catalog devices it runs on, one run each (default: cuml on cuda, "
        "the others on cpu)",
    )


class StudySpec(_Strict):
    name: str = "study"
    description: str = ""
    seed: int = Field(default=0, ge=0)
    seeds: list[Annotated[int, Field(ge=0)]] | None = Field(
        default=None,
        min_length=1,
        description="repeat every training run once per seed (its weights and batch order), e.g. "
        "[0, 1, 2], so the report shows a mean and a 95 % interval; default: one run at `seed`. The "
        "data split and the SVMs keep `seed`",
    )
    smoke: bool = Field(
        default=False,
        description="a smoke run (set by --smoke, see smoke_spec): every run on the "
        "CPU, its planned settings kept in the config's `planned`",
    )
    devices: dict[str, DeviceEntry] | None = Field(
        default=None,
        description="the device catalog: name -> {kind, accelerator, node_selector, price_per_hour} "
        "(cpu and cuda are built in; see dlbench.devices)",
    )
    data: DataSpec = DataSpec()
    train: TrainSpec = TrainSpec()
    svm: SvmSpec = SvmSpec()
    profile: ProfileSpec = ProfileSpec()
    onnx: OnnxSpec = OnnxSpec()

    @field_validator("seeds")
    @classmethod
    def _seeds_distinct(cls, v):
        if v is not None and len(set(v)) != len(v):
            raise ValueError(f"seeds must be distinct (got {v}); list each seed once")
        return v

    def train_seeds(self) -> list[int]:
        """The seeds every training run repeats over: ``seeds``, else ``[seed]`` (one run, ids unchanged)."""
        return list(self.seeds) if self.seeds else [self.seed]

    @model_validator(mode="after")
    def _grid_datasets_known(self):
        for i, g in enumerate(self.train.grids):
            extra = set(g.datasets or []) - set(self.data.datasets)
            if extra:
                raise ValueError(
                    f"train.grids.{i}.datasets: {sorted(extra)} not in data.datasets {self.data.datasets}"
                )
        return self

    @field_validator("devices")
    @classmethod
    def _device_names(cls, v):
        for name, entry in (v or {}).items():
            check_name(name)
            if name in BUILTIN_NAMES and entry.kind != name:
                raise ValueError(f"devices.{name}: the built-in {name} keeps kind {name} (got {entry.kind})")
        return v

    @model_validator(mode="after")
    def _devices_known(self):
        cat = catalog(self.devices)
        known = ", ".join(cat)

        def unknown(where: str, name: str) -> ValueError:
            return ValueError(
                f"{where}: device {name!r} is not in the catalog (known: {known}); add it under devices:"
            )

        for i, g in enumerate(self.train.grids):
            for name in g.device:
                if name not in cat:
                    raise unknown(f"train.grids.{i}.device", name)
        for backend, names in (self.svm.devices or {}).items():
            for name in names:
                if name not in cat:
                    raise unknown(f"svm.devices.{backend}", name)
                if backend == "cuml" and cat[name].kind != "cuda":
                    raise ValueError(
                        f"svm.devices.cuml: {name} is a {cat[name].kind} device; cuML needs kind cuda"
                    )
        name = self.onnx.device
        if name is not None:
            if name not in cat:
                raise unknown("onnx.device", name)
            gpu = {"cuda", "tensorrt"} & set(self.onnx.providers)
            if gpu and cat[name].kind != "cuda":
                raise ValueError(
                    f"onnx.device: {name} is a {cat[name].kind} device but onnx.providers has "
                    f"{', '.join(sorted(gpu))}; choose a cuda device or the cpu provider"
                )
        return self

    @model_validator(mode="after")
    def _estimators_fit_backends(self):
        from dlbench.svm.estimators import get_estimator

        s = self.svm
        if len(set(s.estimators)) != len(s.estimators):
            raise ValueError(f"svm.estimators: list each estimator once (got {s.estimators})")
        # kernels other than the default without svm (a resolved spec, which lists the default, reloads)
        if s.kernels != SvmSpec.model_fields["kernels"].default and "svm" not in s.estimators:
            raise ValueError(
                f"svm.kernels: the kernels are the svm estimator's, but svm.estimators {s.estimators} has no "
                "svm; add svm to svm.estimators or leave svm.kernels out"
            )
        for name in s.estimators:
            have = get_estimator(name).backend_names()
            if s.backends and not set(s.backends) & {*have, "auto"}:
                raise ValueError(
                    f"svm.estimators: {name} has none of svm.backends {s.backends} (it has "
                    f"{', '.join(have)}); add one of them to svm.backends"
                )
        return self

    def catalog(self) -> dict[str, DeviceEntry]:
        """The built-in devices and the spec's ``devices:``."""
        return catalog(self.devices)

    def model_names(self) -> list[str]:
        seen: dict[str, None] = {}
        for g in self.train.grids:
            for m in g.models:
                seen[m] = None
        return list(seen)


# --------------------------------------------------------------------------- loading


def preset_names() -> list[str]:
    return sorted(
        p.name[:-5] for p in resources.files("dlbench.presets").iterdir() if p.name.endswith(".yaml")
    )


def _read_spec_text(name_or_path: str) -> tuple[str, str]:
    if name_or_path in preset_names():
        return f"{name_or_path}.yaml", (
            resources.files("dlbench.presets") / f"{name_or_path}.yaml"
        ).read_text()
    p = Path(name_or_path)
    if not p.is_file():
        raise SpecError(f"spec {name_or_path!r} is neither a preset ({', '.join(preset_names())}) nor a file")
    try:
        return str(p), p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SpecError(f"spec {p}: not a text file (not UTF-8)", "a spec is a YAML file") from None
    except OSError as exc:
        raise SpecError(f"spec {p}: cannot read ({exc.strerror or exc})") from None


def parse_spec(data: Any, source: str = "<spec>") -> StudySpec:
    if not isinstance(data, dict):
        raise SpecError(f"spec {source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return StudySpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(source, exc, StudySpec)) from None


def load_spec(name_or_path: str) -> StudySpec:
    source, text = _read_spec_text(name_or_path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"spec {source}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not data:
        raise SpecError(
            f"spec {source} is empty",
            "give at least a name and the parts to run, or use a preset: " + ", ".join(preset_names()),
        )
    return parse_spec(data, source)


def check_local_inputs(spec: StudySpec, source: str = "<spec>") -> None:
    """What can be checked of a spec on this machine without running it: a local ``data.root`` exists.

    For the verbs that run here (``spec validate``, ``study``, ``run --local``); a cluster reads its own
    paths, so ``compile`` and ``submit`` do not call this.
    """
    root = spec.data.root
    if root and "://" not in root:
        p = Path(root)
        if spec.data.source == "npz":
            if not p.is_file():
                why = "is a folder, not a file" if p.exists() else "does not exist"
                raise SpecError(
                    f"spec {source}: data.root {root!r} {why}", "give the .npz of images and labels"
                )
            return
        if not p.is_dir():
            why = "is a file, not a folder" if p.exists() else "does not exist"
            raise SpecError(
                f"spec {source}: data.root {root!r} {why}",
                "give the folder holding the IDX files, or leave data.root out to search known places",
            )
        if spec.data.source == "folder":  # its layout, listed (not decoded): 2+ class folders, none empty
            from dlbench.data.folder import _class_folders, _images_of
            from dlbench.errors import DlbenchError

            try:
                for folder in _class_folders(p):
                    _images_of(folder)
            except DlbenchError as exc:
                raise SpecError(f"spec {source}: data.root: {exc.message}", exc.hint) from None
