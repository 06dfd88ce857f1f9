"""A study spec as a plan of typed tasks: what runs, with which config, on which input, in which group.

Both runners walk the same plan. ``dlbench study`` (:mod:`dlbench.study`) runs its tasks one after another
in this process, each into the folder :class:`dlbench.layout.StudyLayout` names; the KFP pipeline
(``pipelines/study.py``) turns each group into one task or one ``ParallelFor`` over its tasks, and the
components run each task with the same code (:mod:`dlbench.runner`)::

    data (one task per dataset) ──> train_cpu / train_gpu / train_gpu_fused / svm_cpu / svm_gpu ──┐
                                    profile (no input) ──────── onnx (best checkpoint per model) ─┴─> report

A train task of one config trains solo; a task of several trains them as one fused model
(:func:`dlbench.spec.train_tasks`). GPU groups are the ones whose tasks need a GPU node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from dlbench.configs import OnnxConfig, OnnxSettings, Stem, SvmConfig, TrainConfig
from dlbench.devices import device_name_of
from dlbench.spec import DataSpec, StudySpec, expand_svm, require_runs, train_tasks

GPU_PROVIDERS = frozenset({"cuda", "tensorrt"})
# The groups of run tasks, in the order the pipeline lays out its loops.
RUN_GROUPS = ("train_cpu", "train_gpu", "train_gpu_fused", "svm_cpu", "svm_gpu")


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
    def group(self) -> str:
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
    def group(self) -> str:
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

    def group(self, name: str) -> list[TrainTask | SvmTask]:
        """The run tasks of one of :data:`RUN_GROUPS`, in plan order."""
        return [t for t in (*self.train, *self.svm) if t.group == name]

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
            f"{len(self.group(g))} {g.replace('_', ' ')}"
            for g in ("train_cpu", "train_gpu", "svm_cpu", "svm_gpu")
            if self.group(g)
        ]
        fused = self.group("train_gpu_fused")
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
    "GPU_PROVIDERS",
    "RUN_GROUPS",
    "DataTask",
    "OnnxTask",
    "OnnxTaskSettings",
    "Plan",
    "ProfileTask",
    "SvmTask",
    "TrainTask",
    "build_plan",
]
