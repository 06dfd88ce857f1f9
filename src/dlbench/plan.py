"""A study spec as a plan of typed tasks: what runs, with which config, on which input, in which stage.

The spec's schema and loading are :mod:`dlbench.spec`; this module turns a loaded spec into runs:
``expand_train`` / ``expand_svm`` give the concrete per-run configs, each with a stable ``run_id`` (hash of
its resolved config) so re-runs and caches can match them; ``smoke_spec`` makes the same study a wiring
test on a CPU; ``train_tasks`` fuses compatible GPU runs into one task.

Both runners walk the same plan. ``dlbench study`` (:mod:`dlbench.study`) runs its tasks one after another
in this process, each into the folder :class:`dlbench.layout.StudyLayout` names; the KFP pipeline
(``pipelines/study.py``) turns each stage into one task or one ``ParallelFor`` over its tasks, and the
components run each task with the same code (:mod:`dlbench.runner`)::

    data (one task per dataset) ──> train_cpu / train_gpu / train_gpu_fused / svm_cpu / svm_gpu ──┐
                                    profile (no input) ──────── onnx (best checkpoint per model) ─┴─> report

A train task of one config trains solo; a task of several trains them as one fused model
(:func:`train_tasks`). GPU stages are the ones whose tasks need a GPU node.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from dlbench.configs import OnnxConfig, OnnxSettings, Stem, SvmConfig, SvmSettings, TrainConfig
from dlbench.devices import BUILTIN_NAMES, device_name_of
from dlbench.errors import SpecError
from dlbench.spec import GRID_AXES, TRAIN_SETTINGS, DataSpec, StudySpec, SvmSpec, TrainGrid

GPU_PROVIDERS = frozenset({"cuda", "tensorrt"})
# The stages of run tasks (each a loop of the pipeline), in the order the pipeline lays out its loops.
RUN_STAGES = ("train_cpu", "train_gpu", "train_gpu_fused", "svm_cpu", "svm_gpu")


# --------------------------------------------------------------------------- expansion


def expand_train(spec: StudySpec) -> list[TrainConfig]:
    """Every training run of the spec: the union of each grid's product, deduplicated, in order."""
    runs: dict[str, TrainConfig] = {}
    for configs in expand_grids(spec).values():
        for cfg in configs:
            runs.setdefault(cfg.run_id, cfg)
    return list(runs.values())


# A spec expanding to more runs than this is refused before any run is built (a typo in a grid can ask for
# millions); $DLBENCH_MAX_RUNS raises (or lowers) the limit.
MAX_RUNS = 10_000


def _grid_axes(spec: StudySpec, g: TrainGrid) -> dict[str, list]:
    return {
        "dataset": g.datasets or spec.data.datasets,
        **{name: getattr(g, axis) for axis, name in GRID_AXES.items()},
    }


def check_run_count(spec: StudySpec) -> int:
    """The number of runs the spec's grids and SVM settings ask for (before deduplication), refused in one
    line above the limit (:data:`MAX_RUNS`, or ``$DLBENCH_MAX_RUNS``) before any run is built."""
    from dlbench.settings import settings

    limit = settings().max_runs or MAX_RUNS
    n = sum(math.prod(len(v) for v in _grid_axes(spec, g).values()) for g in spec.train.grids)
    n += len(spec.data.datasets) * sum(len(b) * len(k) for b, k in svm_axes(spec.svm))
    if n > limit:
        raise SpecError(
            f"spec {spec.name!r} asks for {n:,} runs, more than the limit of {limit:,}",
            "shorten the grids, or raise the limit with DLBENCH_MAX_RUNS=N if you mean it",
        )
    return n


def expand_grids(spec: StudySpec) -> dict[str, list[TrainConfig]]:
    """The runs of each grid, by grid name (a run in two grids is in both lists). Linear in the runs: each
    run id is computed once and looked up in a set."""
    check_run_count(spec)
    out: dict[str, list[TrainConfig]] = {}
    t = spec.train
    shared = {name: getattr(t, name) for name in TRAIN_SETTINGS}
    for g in t.grids:
        runs = out.setdefault(g.name, [])
        seen = {r.run_id for r in runs}
        axes = _grid_axes(spec, g)
        cat = spec.catalog()
        for values in itertools.product(*axes.values()):
            v = dict(zip(axes, values, strict=True))
            name = v["device"]
            v["device"] = cat[name].kind
            if name not in BUILTIN_NAMES:
                v["device_name"] = name
            for seed in spec.train_seeds():
                cfg = TrainConfig(**v, **shared, seed=seed)
                if spec.smoke:
                    cfg = _smoke_train(cfg)
                run_id = cfg.run_id
                if run_id not in seen:
                    seen.add(run_id)
                    runs.append(cfg)
    return out


# A smoke run: the CPU, AMP off where the plan used the GPU's (fp16 autocast is emulated on a CPU, and bf16
# without hardware support took minutes for eight ResNet-50 steps on a 2-core machine), and at most
# SMOKE_EPOCHS epochs (two still pass best.pt and last.pt from one epoch to the next; the planned count is
# kept in ``planned``, so a 4- and a 10-epoch run stay two runs at their two cells).
SMOKE_IMAGES = 300
SMOKE_STEPS = 2
SMOKE_EPOCHS = 2


def _smoke_train(cfg: TrainConfig) -> TrainConfig:
    planned: dict[str, Any] = {}
    changes: dict[str, Any] = {"smoke": True}
    if cfg.epochs > SMOKE_EPOCHS:
        planned["epochs"], changes["epochs"] = cfg.epochs, SMOKE_EPOCHS
    if cfg.device != "cpu":
        planned["device"], changes["device"] = cfg.device, "cpu"
        if cfg.amp != "off":
            planned["amp"], changes["amp"] = cfg.amp, "off"
    if cfg.device_name:
        planned["device_name"], changes["device_name"] = cfg.device_name, None
    if planned:
        changes["planned"] = planned
    return cfg.model_copy(update=changes)


def smoke_spec(spec: StudySpec, images: int = SMOKE_IMAGES, steps: int = SMOKE_STEPS) -> StudySpec:
    """The same study as a wiring test on a CPU: every run kept (at most SMOKE_EPOCHS epochs each), ``images``
    images per dataset (stratified subsample before the 70/10/20 split), ``steps`` steps per epoch, no
    data-loader workers,
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
FUSE_MEMBER_FIELDS = (
    "dataset",
    "lr",
    "momentum",
    "weight_decay",
    "seed",
    "engine",
    "pin_memory",
    "num_workers",
)


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
    (CPU runs: fusion is slower there; the dataloader engine: the reference loop is timed as such; a
    model whose registry entry is not fusable)."""
    from dlbench.models import is_fusable

    if config.device != "cuda" or config.engine not in ("resident", "fused") or not is_fusable(config.model):
        return None
    return tuple((k, v) for k, v in sorted(config.model_dump().items()) if k not in FUSE_MEMBER_FIELDS)


def train_tasks(
    spec: StudySpec, fuse: bool | None = None, max_members: int | None = None
) -> list[list[TrainConfig]]:
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


def svm_axes(s: SvmSpec) -> list[tuple[list[str], list[str]]]:
    """Per estimator of ``svm.estimators``: the backends of ``svm.backends`` it has (``auto`` always) and
    its kernels (the svm estimator's ``svm.kernels``; the default kernel for the others, which have none)."""
    from dlbench.svm.estimators import get_estimator

    out = []
    for name in s.estimators:
        have = {*get_estimator(name).backend_names(), "auto"}
        kernels = s.kernels if name == "svm" else [SvmConfig.model_fields["kernel"].default]
        out.append(([b for b in s.backends if b in have], kernels))
    return out


def skipped_svm(spec: StudySpec) -> list[str]:
    """The estimator / backend pairs of the spec that run nowhere: the estimator has no such backend."""
    from dlbench.svm.estimators import get_estimator

    s = spec.svm
    return [
        f"{name} has no {b} backend"
        for name in s.estimators
        for b in s.backends
        if b != "auto" and b not in get_estimator(name).backend_names()
    ]


def expand_svm(spec: StudySpec) -> list[SvmConfig]:
    """Every classical run: per dataset, per estimator of ``svm.estimators`` and backend it has (the svm
    estimator: per kernel too), per device of ``svm.devices``. The svm runs keep the ids they had before
    estimators could be listed (``estimator`` at its default stays out of the id)."""
    s = spec.svm
    out: dict[str, SvmConfig] = {}
    combos = [
        (ds, est, backend, kernel)
        for ds in spec.data.datasets
        for est, (backends, kernels) in zip(s.estimators, svm_axes(s), strict=True)
        for backend in backends
        for kernel in kernels
    ]
    for ds, est, backend, kernel in combos:
        default = "cuda" if backend == "cuml" else "cpu"
        for name in (s.devices or {}).get(backend) or [default]:
            cfg = SvmConfig(
                dataset=ds,
                backend=backend,
                kernel=kernel,
                **({"estimator": est} if est != "svm" else {}),
                seed=spec.seed,
                **s.model_dump(include=set(SvmSettings.model_fields)),
                **({"device_name": name} if name != default else {}),
            )
            if spec.smoke:
                planned = {"backend": backend} if backend != "sklearn" else {}
                if cfg.device_name:
                    planned["device_name"] = cfg.device_name
                cfg = cfg.model_copy(
                    update={
                        "smoke": True,
                        "backend": "sklearn",
                        "device_name": None,
                        **({"planned": planned} if planned else {}),
                    }
                )
            out.setdefault(cfg.run_id, cfg)
    return list(out.values())


def require_runs(spec: StudySpec) -> tuple[list[TrainConfig], list[SvmConfig]]:
    """The spec's train and SVM runs; a SpecError when there are none, checked before any work."""
    train, svm = expand_train(spec), expand_svm(spec)
    if not train and not svm:
        raise SpecError(
            f"spec {spec.name!r} expands to zero train runs and zero SVM runs",
            "give train.grids at least one grid, or svm.backends, svm.estimators and svm.kernels at least "
            "one entry",
        )
    return train, svm


# --------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class DataTask:
    """Split one dataset."""

    dataset: str
    settings: DataSpec
    seed: int
    smoke: bool = False
    step: ClassVar[str] = "data"

    @property
    def label(self) -> str:
        return self.dataset

    @property
    def config(self) -> dict[str, Any]:
        """The config its record holds (a refusal's record too)."""
        s = self.settings
        return {
            "dataset": self.dataset,
            "source": s.source,
            "root": s.root,
            "seed": self.seed,
            "subsample": s.subsample,
            "fractions": list(s.fractions),
            **({"size": list(s.size)} if s.size else {}),
        }


@dataclass(frozen=True)
class TrainTask:
    """Train one config solo, or several compatible ones as one fused model."""

    configs: tuple[TrainConfig, ...]
    step: ClassVar[str] = "train"

    @property
    def fused(self) -> bool:
        return len(self.configs) > 1

    @property
    def gpu(self) -> bool:
        return self.configs[0].device == "cuda"

    @property
    def device_name(self) -> str:
        """The catalog device the task is scheduled on (dlbench.devices)."""
        return device_name_of(self.configs[0])

    @property
    def stage(self) -> str:
        return "train_gpu_fused" if self.fused else "train_gpu" if self.gpu else "train_cpu"

    @property
    def run_ids(self) -> list[str]:
        return [c.run_id for c in self.configs]

    @property
    def label(self) -> str:
        return ("fused group " if self.fused else "") + ", ".join(self.run_ids)


@dataclass(frozen=True)
class SvmTask:
    """Fit and evaluate one SVM config."""

    config: SvmConfig
    step: ClassVar[str] = "svm"
    fused: ClassVar[bool] = False

    @property
    def configs(self) -> tuple[SvmConfig]:
        return (self.config,)

    @property
    def gpu(self) -> bool:
        return self.config.backend == "cuml"

    @property
    def device_name(self) -> str:
        return device_name_of(self.config)

    @property
    def stage(self) -> str:
        return "svm_gpu" if self.gpu else "svm_cpu"

    @property
    def label(self) -> str:
        return self.config.run_id


@dataclass(frozen=True)
class ProfileTask:
    """FLOPs and parameters of every model at every input size and channel count."""

    models: tuple[str, ...]
    stem: str
    input_sizes: tuple[int, ...]
    in_channels: tuple[int, ...]
    batch_size: int
    step: ClassVar[str] = "profile"
    label: ClassVar[str] = "profile"


class OnnxTaskSettings(OnnxSettings):
    """The settings of the ONNX task: the spec's ``onnx`` section less its models (the task's), and the stem
    the models were trained with, which the exported model must have."""

    stem: Stem = TrainConfig.model_fields["stem"].default

    def config(self, model: str) -> OnnxConfig:
        """The typed settings of one model's ``onnx`` step."""
        return OnnxConfig(model=model, **self.model_dump())


@dataclass(frozen=True)
class OnnxTask:
    """Export and time every model, one after another (timings of models sharing a machine would disturb each
    other), each from the best finished train run of it at the exported input."""

    models: tuple[str, ...]
    settings: OnnxTaskSettings
    device_name: str = "cpu"  # the catalog device the task is scheduled on
    step: ClassVar[str] = "onnx"

    @property
    def gpu(self) -> bool:
        return bool(GPU_PROVIDERS & set(self.settings.providers))


@dataclass(frozen=True)
class Plan:
    spec: StudySpec
    data: tuple[DataTask, ...]
    train: tuple[TrainTask, ...]
    svm: tuple[SvmTask, ...]
    profile: ProfileTask
    onnx: OnnxTask

    def stage(self, name: str) -> list[TrainTask | SvmTask]:
        """The run tasks of one of :data:`RUN_STAGES`, in plan order."""
        return [t for t in (*self.train, *self.svm) if t.stage == name]

    def counts(self) -> dict[str, int]:
        """Runs per step (a fused group counts its members)."""
        return {
            "data": len(self.data),
            "train": sum(len(t.configs) for t in self.train),
            "svm": len(self.svm),
        }

    def describe(self) -> str:
        """One line: how many runs go where."""
        parts = [
            f"{len(self.stage(g))} {g.replace('_', ' ')}"
            for g in ("train_cpu", "train_gpu", "svm_cpu", "svm_gpu")
            if self.stage(g)
        ]
        fused = self.stage("train_gpu_fused")
        if fused:
            runs = sum(len(t.configs) for t in fused)
            parts.insert(2, f"{runs} train gpu in {len(fused)} fused groups")
        parts.append(f"profile {len(self.profile.models)} models")
        parts.append(f"onnx {len(self.onnx.models)} models on {'GPU' if self.onnx.gpu else 'CPU'}")
        return ", ".join(parts)


def build_plan(spec: StudySpec, fuse: bool | None = None) -> Plan:
    """The plan of ``spec``; a SpecError for a spec with no runs (before any work). ``fuse`` overrides the
    spec's ``train.fuse``."""
    require_runs(spec)
    models = tuple(dict.fromkeys(spec.model_names()))
    p, o = spec.profile, spec.onnx
    return Plan(
        spec=spec,
        data=tuple(DataTask(ds, spec.data, spec.seed, spec.smoke) for ds in spec.data.datasets),
        train=tuple(TrainTask(tuple(t)) for t in train_tasks(spec, fuse=fuse)),
        svm=tuple(SvmTask(c) for c in expand_svm(spec)),
        profile=ProfileTask(
            tuple(dict.fromkeys(p.models or models)),
            spec.train.stem,
            tuple(p.input_sizes),
            tuple(p.in_channels),
            p.batch_size,
        ),
        onnx=OnnxTask(
            tuple(dict.fromkeys(o.models or models)),
            OnnxTaskSettings(**o.model_dump(exclude={"models", "device"}), stem=spec.train.stem),
            o.device or ("cuda" if GPU_PROVIDERS & set(o.providers) else "cpu"),
        ),
    )


__all__ = [
    "FUSE_MAX_MEMBERS",
    "FUSE_MEMBER_FIELDS",
    "GPU_PROVIDERS",
    "MAX_RUNS",
    "RUN_STAGES",
    "SMOKE_EPOCHS",
    "SMOKE_IMAGES",
    "SMOKE_STEPS",
    "DataTask",
    "OnnxTask",
    "OnnxTaskSettings",
    "Plan",
    "ProfileTask",
    "SvmTask",
    "TrainTask",
    "build_plan",
    "check_run_count",
    "expand_grids",
    "expand_svm",
    "expand_train",
    "fuse_key",
    "require_runs",
    "skipped_svm",
    "smoke_spec",
    "svm_axes",
    "train_tasks",
    "with_fuse",
]
