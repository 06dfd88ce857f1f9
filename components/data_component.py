"""The ``data`` component: every dataset of the spec, split 70/10/20, as one Dataset artifact."""

from kfp import dsl
from kfp.dsl import Dataset, Metrics, Output

from dlbench_kfp.components.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def data(data_spec: dict, seed: int, split: Output[Dataset], metrics: Output[Metrics]):
    """Load, subsample and split each dataset into split/<dataset>/: split.npz, manifest.json, record.json."""
    from dlbench_kfp.components.runtime import data_task

    data_task(data_spec, seed, split, metrics)
