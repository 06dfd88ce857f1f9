"""The ``svm`` component, one SVM config each: ``svm_cpu`` (scikit-learn, cpu image) and ``svm_gpu``
(cuML, rapids image; the pipeline requests a GPU for it)."""

from kfp import dsl
from kfp.dsl import ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from dlbench_kfp.components.images import CPU_IMAGE, RAPIDS_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def svm_cpu(
    split: Input[Dataset],
    config: dict,
    run: Output[Model],
    metrics: Output[Metrics],
    confusion: Output[ClassificationMetrics],
):
    """Fit and evaluate one SVM with scikit-learn; run/ holds record.json and model.joblib."""
    from dlbench_kfp.components.runtime import svm_task

    svm_task(split, config, run, metrics, confusion)


@dsl.component(base_image=RAPIDS_IMAGE, install_kfp_package=False)
def svm_gpu(
    split: Input[Dataset],
    config: dict,
    run: Output[Model],
    metrics: Output[Metrics],
    confusion: Output[ClassificationMetrics],
):
    """Fit and evaluate one SVM with cuML on the GPU; run/ holds record.json and model.joblib."""
    from dlbench_kfp.components.runtime import svm_task

    svm_task(split, config, run, metrics, confusion)
