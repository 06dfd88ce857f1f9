"""The data step: IDX reading, dataset sources, the stratified split."""

from dlbench.data.split import load_split
from dlbench.data.step import run_data

__all__ = ["load_split", "run_data"]
