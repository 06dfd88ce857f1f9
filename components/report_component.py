"""The ``report`` component: the fan-in of every record into one bundle (report + records), shown in
the KFP UI as HTML, Markdown and Metrics, and optionally published to the artifact store."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Metrics, Model, Output

from dlbench_kfp.components.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def report(
    spec: dict,
    publish_to: str,
    run_name: str,
    study: Output[Artifact],
    html: Output[HTML],
    markdown: Output[Markdown],
    metrics: Output[Metrics],
    data: Input[Dataset] = None,
    profile: Input[Artifact] = None,
    onnx: Input[Model] = None,
    train_cpu: Input[list[Model]] = None,
    train_gpu: Input[list[Model]] = None,
    train_gpu_fused: Input[list[Model]] = None,
    svm_cpu: Input[list[Model]] = None,
    svm_gpu: Input[list[Model]] = None,
    pool_1: Input[list[Model]] = None,
    pool_2: Input[list[Model]] = None,
    pool_3: Input[list[Model]] = None,
    pool_4: Input[list[Model]] = None,
    pool_5: Input[list[Model]] = None,
    pool_6: Input[list[Model]] = None,
):
    """study/ = spec.yaml, data/, train/<run_id>/, svm/<run_id>/, profile/, onnx/<model>/, report/ and
    MANIFEST.json (written last); uploaded to <publish_to>/<run_name>/ when publish_to is set."""
    from dlbench_kfp.components.runtime import report_task

    report_task(
        spec,
        publish_to,
        run_name,
        study,
        html,
        markdown,
        metrics,
        data=data,
        profile=profile,
        onnx=onnx,
        train_cpu=train_cpu,
        train_gpu=train_gpu,
        train_gpu_fused=train_gpu_fused,
        svm_cpu=svm_cpu,
        svm_gpu=svm_gpu,
        pools=[pool_1, pool_2, pool_3, pool_4, pool_5, pool_6],
    )
