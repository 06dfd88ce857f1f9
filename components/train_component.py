"""The ``train`` component, one training run each: ``train_cpu`` in the cpu image, ``train_gpu`` in the
cuda image (the pipeline requests a GPU for it)."""

from kfp import dsl
from kfp.dsl import ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from dlbench_kfp.components.images import CPU_IMAGE, CUDA_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def train_cpu(
    split: Input[Dataset],
    config: dict,
    run: Output[Model],
    metrics: Output[Metrics],
    confusion: Output[ClassificationMetrics],
):
    """Train one ResNet config on the CPU; run/ holds record.json and the best checkpoint."""
    from dlbench_kfp.components.runtime import train_task

    train_task(split, config, run, metrics, confusion)


@dsl.component(base_image=CUDA_IMAGE, install_kfp_package=False)
def train_gpu(
    split: Input[Dataset],
    config: dict,
    run: Output[Model],
    metrics: Output[Metrics],
    confusion: Output[ClassificationMetrics],
):
    """Train one ResNet config on the GPU; run/ holds record.json and the best checkpoint."""
    from dlbench_kfp.components.runtime import train_task

    train_task(split, config, run, metrics, confusion)


@dsl.component(base_image=CUDA_IMAGE, install_kfp_package=False)
def train_gpu_fused(split: Input[Dataset], group: dict, run: Output[Model], metrics: Output[Metrics]):
    """Train a group of compatible runs (group["configs"]) as one fused model on the GPU; run/<run_id>/
    holds each member's record.json and best checkpoint."""
    from dlbench_kfp.components.runtime import train_group_task

    train_group_task(split, group, run, metrics)
