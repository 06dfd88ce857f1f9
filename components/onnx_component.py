"""The ``onnx`` component: export each model (its best trained checkpoint when there is one), check it
and time ONNX Runtime. ``onnx_cpu`` in the cpu image, ``onnx_gpu`` (CUDA / TensorRT providers) in the
cuda image with a GPU."""

from kfp import dsl
from kfp.dsl import Input, Metrics, Model, Output

from dlbench_kfp.components.images import CPU_IMAGE, CUDA_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def onnx_cpu(
    models: list,
    settings: dict,
    result: Output[Model],
    metrics: Output[Metrics],
    train_cpu: Input[list[Model]] = None,
    train_gpu: Input[list[Model]] = None,
    train_gpu_fused: Input[list[Model]] = None,
    pool_1: Input[list[Model]] = None,
    pool_2: Input[list[Model]] = None,
    pool_3: Input[list[Model]] = None,
    pool_4: Input[list[Model]] = None,
    pool_5: Input[list[Model]] = None,
    pool_6: Input[list[Model]] = None,
):
    """Export and time each model in turn; result/<model>/ holds model.onnx, timings, record.json."""
    from dlbench_kfp.components.runtime import onnx_task

    onnx_task(
        models,
        settings,
        result,
        metrics,
        train_cpu=train_cpu,
        train_gpu=train_gpu,
        train_gpu_fused=train_gpu_fused,
        pools=[pool_1, pool_2, pool_3, pool_4, pool_5, pool_6],
    )


@dsl.component(base_image=CUDA_IMAGE, install_kfp_package=False)
def onnx_gpu(
    models: list,
    settings: dict,
    result: Output[Model],
    metrics: Output[Metrics],
    train_cpu: Input[list[Model]] = None,
    train_gpu: Input[list[Model]] = None,
    train_gpu_fused: Input[list[Model]] = None,
    pool_1: Input[list[Model]] = None,
    pool_2: Input[list[Model]] = None,
    pool_3: Input[list[Model]] = None,
    pool_4: Input[list[Model]] = None,
    pool_5: Input[list[Model]] = None,
    pool_6: Input[list[Model]] = None,
):
    """Export and time every model on the GPU providers too; result/<model>/ as onnx_cpu."""
    from dlbench_kfp.components.runtime import onnx_task

    onnx_task(
        models,
        settings,
        result,
        metrics,
        train_cpu=train_cpu,
        train_gpu=train_gpu,
        train_gpu_fused=train_gpu_fused,
        pools=[pool_1, pool_2, pool_3, pool_4, pool_5, pool_6],
    )
