"""The data step: IDX reading, dataset sources, the stratified split.

``run_data`` loads on first use, so the dataset registry (:mod:`dlbench.data.registry`, which the schemas
and configs read) imports without the step and the record it writes.
"""

from __future__ import annotations

import importlib

from dlbench.data.split import load_split

__all__ = ["load_split", "run_data"]


def __getattr__(name: str):
    if name == "run_data":
        return importlib.import_module("dlbench.data.step").run_data
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
