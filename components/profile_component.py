"""The ``profile`` component: FLOPs and parameters of each model at each input size (CPU)."""

from kfp import dsl
from kfp.dsl import Artifact, Metrics, Output

from dlbench_kfp.components.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def profile(
    models: list,
    stem: str,
    input_sizes: list,
    in_channels: list,
    batch_size: int,
    result: Output[Artifact],
    metrics: Output[Metrics],
):
    """Count FLOPs (torch FlopCounterMode) and parameters; result/ holds profile.csv/json and record.json."""
    from dlbench_kfp.components.runtime import profile_task

    profile_task(models, stem, input_sizes, in_channels, batch_size, result, metrics)
