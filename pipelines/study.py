"""The study pipeline: built from a study spec, compiled to YAML, one definition locally and on a cluster.

Shape (every train and SVM config of the spec is one task; the grid is fixed at compile time, so the
compiled YAML shows exactly what will run)::

    data ──> train_cpu ×N (ParallelFor) ──┐
         ├─> train_gpu ×N (ParallelFor) ──┼─> onnx (best checkpoint per model) ──┐
         ├─> svm_cpu ×N   (ParallelFor) ──┤                                      ├─> report (Collected fan-in)
         └─> svm_gpu ×N   (ParallelFor) ──┘   profile ───────────────────────────┘

- GPU tasks (train on cuda, cuML SVMs, ONNX with the CUDA/TensorRT providers) request one
  ``nvidia.com/gpu`` and carry the GPU node selector and toleration of ``components.gpu``.
- Tasks that time something never come from KFP's cache (``set_caching_options(False)``); data and
  profile (deterministic) may.
- Tasks that can fail for transient reasons (a lost node, a download) retry with backoff.
- ``parallelism`` bounds how many runs of a loop execute at once (default 1: runs sharing a node
  would disturb each other's timings).
- The report task publishes the run's bundle to ``publish_to`` (a store URL) under the KFP run id;
  its keys come from the Kubernetes Secret of ``components.storage`` (only the Secret's *name* is
  in the YAML). When the spec reads its datasets from the store (``data.root: s3://...``, see
  ``dlbench data push``), the data task gets the same Secret and ConfigMap.
- Images: named by ``components.images`` as the environment says when compiling
  (``DLBENCH_REGISTRY``, ``DLBENCH_IMAGE_TAG``); ``pin_digests`` replaces each by
  ``registry/name@sha256:...`` as its registry holds it now (``pipelines.registry``).
"""

# No `from __future__ import annotations` here: KFP reads the pipeline function's annotations as types.

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlbench.errors import SpecError
from dlbench.plan import RUN_STAGES, build_plan
from dlbench.spec import StudySpec, load_spec

DEFAULT_YAML = Path(__file__).with_name("study_pipeline.yaml")
RETRY = {"num_retries": 2, "backoff_duration": "60s", "backoff_factor": 2.0, "backoff_max_duration": "600s"}


def pipeline_name(spec: StudySpec) -> str:
    return "dlbench-" + (re.sub(r"[^a-z0-9-]+", "-", spec.name.lower()).strip("-") or "study")


def plain(value: Any) -> Any:
    """JSON-able value without None entries (KFP constants cannot hold null; every optional field of the
    spec defaults to None, so leaving it out means the same)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def as_json(model) -> Any:
    return plain(json.loads(model.model_dump_json()))


def _items(tasks: list) -> list[dict[str, Any]]:
    """The loop items of a stage: a run's config, or a fused group's ``{"configs": [...]}``."""
    return [{"configs": [as_json(c) for c in t.configs]} if t.fused else as_json(t.configs[0]) for t in tasks]


def build_pipeline(
    spec: StudySpec, parallelism: int = 1, publish_to: str | None = None, retries: bool = True
):
    """The KFP pipeline function for ``spec`` (kfp is imported here, not at module import).

    ``retries=False`` leaves the retry policies out: kfp 2.17's local runner honours them, backoff
    included, and on this machine a failure is rarely transient (``dlbench run --local`` uses it).
    """
    from kfp import dsl

    from dlbench_kfp.components import storage
    from dlbench_kfp.components.data_component import data
    from dlbench_kfp.components.onnx_component import onnx_cpu, onnx_gpu
    from dlbench_kfp.components.profile_component import profile
    from dlbench_kfp.components.report_component import report
    from dlbench_kfp.components.svm_component import svm_cpu, svm_gpu
    from dlbench_kfp.components.train_component import train_cpu, train_gpu, train_gpu_fused

    if parallelism < 1:
        raise SpecError(f"parallelism must be at least 1 (got {parallelism})")
    p = build_plan(spec)
    spec_json = as_json(spec)
    default_publish = storage.STORE_URL if publish_to is None else publish_to

    def retry(task, **policy):
        return task.set_retry(**(policy or RETRY)) if retries else task

    def timing(task):
        return retry(task.set_caching_options(False))

    components = {
        "train_cpu": (train_cpu, False),
        "train_gpu": (train_gpu, True),
        "train_gpu_fused": (train_gpu_fused, True),
        "svm_cpu": (svm_cpu, False),
        "svm_gpu": (svm_gpu, True),
    }

    @dsl.pipeline(
        name=pipeline_name(spec),
        description=f"dlbench study {spec.name!r}: {spec.description or 'ResNets vs SVMs'}",
    )
    def study(publish_to: str = default_publish) -> dsl.Artifact:
        d = data(data_spec=spec_json["data"], seed=spec.seed).set_display_name("data")
        retry(d)
        if is_store_url(spec.data.root):  # the datasets come from the store: the task needs its keys
            _with_store_keys(d)
        collected: dict[str, Any] = {}
        cat = spec.catalog()
        for stage, (component, needs_gpu) in components.items():
            for device, runs in by_device(p.stage(stage)).items():
                with dsl.ParallelFor(items=_items(runs), parallelism=parallelism) as item:
                    arg = "group" if stage == "train_gpu_fused" else "config"
                    t = component(split=d.outputs["split"], **{arg: item})
                    # a loop per catalog device: the built-in one keeps the stage's name
                    builtin = device in ("cpu", "cuda")
                    t.set_display_name(stage.replace("_", " ") + ("" if builtin else f" {device}"))
                    timing(t)
                    on_device(t, cat[device], needs_gpu)
                # a fresh dsl.Collected per consumer (KFP needs that)
                collected[stage if builtin else f"{stage}_{device}"] = t.outputs["run"]

        pt = p.profile
        prof = profile(
            models=list(pt.models),
            stem=pt.stem,
            input_sizes=list(pt.input_sizes),
            in_channels=list(pt.in_channels),
            batch_size=pt.batch_size,
        )
        retry(prof.set_display_name("profile"))

        onnx_component = onnx_gpu if p.onnx.gpu else onnx_cpu
        o = onnx_component(
            models=list(p.onnx.models),
            settings=as_json(p.onnx.settings),
            **fan_in(collected, dsl.Collected, "train_"),
        )
        o.set_display_name("onnx")
        timing(o)
        on_device(o, cat[p.onnx.device_name], p.onnx.gpu)

        r = report(
            spec=spec_json,
            publish_to=publish_to,
            run_name=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            data=d.outputs["split"],
            profile=prof.outputs["result"],
            onnx=o.outputs["result"],
            **fan_in(collected, dsl.Collected),
        )
        retry(r.set_display_name("report").set_caching_options(False), num_retries=1, backoff_duration="30s")
        _with_store_keys(r)
        return r.outputs["study"]

    return study


def by_device(tasks: list) -> dict[str, list]:
    """The run tasks of one stage by the catalog device they are scheduled on, in plan order."""
    out: dict[str, list] = {}
    for t in tasks:
        out.setdefault(t.device_name, []).append(t)
    return out


def fan_in(collected: dict[str, Any], collect, prefix: str = "") -> dict[str, Any]:
    """The fan-in inputs of the run loops (``prefix``: only those stages): each built-in stage's loop by its
    stage's name; the loops of the spec's other catalog devices, in order, as ``pool_1`` ...
    ``pool_<POOL_SLOTS>`` (KFP takes one ``dsl.Collected`` per input, and the runtime tells train from
    SVM runs by their records)."""
    from dlbench_kfp.components.runtime import POOL_SLOTS

    out, pools = {}, []
    for key, value in collected.items():
        if not key.startswith(prefix):
            continue
        if key in RUN_STAGES:
            out[key] = collect(value)
        else:
            pools.append(collect(value))
    if len(pools) > POOL_SLOTS:
        raise SpecError(
            f"the spec's runs need {len(pools)} loops on catalog devices other than cpu and cuda; "
            f"the pipeline gathers at most {POOL_SLOTS}",
            "use fewer devices per study, or split the study in two and merge the reports "
            "(dlbench report --records A B)",
        )
    out.update({f"pool_{i + 1}": v for i, v in enumerate(pools)})
    return out


def on_device(task, entry, needs_gpu: bool):
    """Schedule ``task`` on its catalog device (``dlbench.devices``): the built-in GPU (or a cuda entry
    that names no accelerator or selector) gets ``components.gpu``'s one GPU, node selector and toleration;
    another entry its own accelerator type and limit and node selector (a cuda one the GPU toleration
    too); a cpu entry with a node selector that selector only."""
    from kfp import kubernetes

    from dlbench_kfp.components import gpu

    if needs_gpu or entry.kind == "cuda":
        if entry.builtin_gpu:
            return _on_gpu(task)
        task.set_accelerator_type(entry.accelerator or gpu.ACCELERATOR)
        task.set_accelerator_limit(entry.accelerator_limit)
        kubernetes.add_toleration(task, **gpu.TOLERATION)
        selector = entry.node_selector if entry.node_selector is not None else gpu.NODE_SELECTOR
    else:
        selector = entry.node_selector or {}
    for key, value in selector.items():
        kubernetes.add_node_selector(task, key, value)
    return task


def _on_gpu(task):
    """One GPU, on a GPU node (``components.gpu``)."""
    from kfp import kubernetes

    from dlbench_kfp.components import gpu

    task.set_accelerator_type(gpu.ACCELERATOR).set_accelerator_limit(gpu.ACCELERATOR_LIMIT)
    kubernetes.add_node_selector(task, gpu.NODE_SELECTOR_KEY, gpu.NODE_SELECTOR_VALUE)
    kubernetes.add_toleration(task, **gpu.TOLERATION)
    return task


def _with_store_keys(task):
    """The store's endpoint and keys as environment variables, from the Secret and ConfigMap of
    ``components.storage`` (names only in the YAML)."""
    from kfp import kubernetes

    from dlbench_kfp.components import storage

    kubernetes.use_secret_as_env(task, storage.S3_SECRET, storage.S3_SECRET_ENV, optional=True)
    kubernetes.use_config_map_as_env(task, storage.S3_CONFIG, storage.S3_CONFIG_ENV, optional=True)
    return task


def is_store_url(root: str | None) -> bool:
    """A data root the data task downloads from (``s3://...``), not a folder."""
    return bool(root) and str(root).startswith("s3://")


def image_mapping(yaml_text: str, pin_digests: bool = False) -> dict[str, str]:
    """Image as compiled -> image to use: the names the environment gives now (the components took theirs at
    import), then, with ``pin_digests``, each as ``name@sha256:...`` resolved in its registry."""
    from dlbench_kfp.components import images
    from dlbench_kfp.pipelines import registry

    renamed = {images.IMAGES[k]: images.current()[k] for k in images.KINDS}
    mapping = {}
    clients: dict = {}
    for image in registry.images_in(yaml_text):
        target = renamed.get(image, image)
        if pin_digests:
            target = registry.parse_reference(target).pinned(registry.resolve(target, clients=clients))
        if target != image:
            mapping[image] = target
    return mapping


def compile_pipeline(
    spec: StudySpec,
    out: str | Path,
    parallelism: int = 1,
    publish_to: str | None = None,
    pin_digests: bool = False,
    check: Callable[[Path], Any] | None = None,
) -> Path:
    """Compile the pipeline of ``spec`` to ``out`` (YAML), atomically: a failed compile leaves the old file.

    ``pin_digests``: images by digest (a registry that cannot say fails the compile). ``check(path)`` runs on
    the finished YAML before it replaces ``out`` (the pre-flight of ``compile --check``); if it raises,
    nothing is written.
    """
    import os
    import tempfile

    from kfp import compiler

    from dlbench_kfp.pipelines import registry

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fn = build_pipeline(spec, parallelism=parallelism, publish_to=publish_to)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".compile-") as tmp:
        target = Path(tmp) / "pipeline.yaml"
        compiler.Compiler().compile(fn, str(target))
        text = target.read_text()
        mapping = image_mapping(text, pin_digests=pin_digests)
        if mapping:
            target.write_text(registry.replace_images(text, mapping))
        if check is not None:
            check(target)
        os.replace(target, out)
    return out


def compile_spec(name_or_path: str, out: str | Path, **kwargs) -> Path:
    return compile_pipeline(load_spec(name_or_path), out, **kwargs)


def describe_plan(spec: StudySpec) -> str:
    return build_plan(spec).describe()


__all__ = [
    "DEFAULT_YAML",
    "build_pipeline",
    "compile_pipeline",
    "compile_spec",
    "describe_plan",
    "image_mapping",
    "is_store_url",
    "pipeline_name",
]
