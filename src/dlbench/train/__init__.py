"""The train step: ResNet-18/34/50 on a split, with a reference-faithful engine and a fast one.

``run_train`` is imported lazily so that :mod:`dlbench.train.engines` and :mod:`dlbench.train.loop`
(what ``bench/train_engines.py`` needs) import with torch alone, without the spec's pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dlbench.train.step import run_train

__all__ = ["run_train"]


def __getattr__(name: str):
    if name == "run_train":
        from dlbench.train.step import run_train

        return run_train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
