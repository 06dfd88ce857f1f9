"""The checks a training run makes of its split before anything is written, the same for a solo run
(:mod:`dlbench.train.step`) and a fused one (:mod:`dlbench.train.group`)."""

from __future__ import annotations

from dlbench.configs import TrainConfig
from dlbench.data.registry import split_facts
from dlbench.errors import DataError, SpecError
from dlbench.train.engines import check_channels


def check_split_parts(config: TrainConfig, arrays: dict, split_path) -> None:
    """A batch no larger than the training part, and val and test parts that are not empty."""
    n_train = len(arrays["y_train"])
    if config.batch_size > n_train:
        raise SpecError(
            f"batch size {config.batch_size} is larger than the training split ({n_train:,} images)",
            f"use --batch-size {n_train} or less",
        )
    for part in ("val", "test"):
        if len(arrays[f"y_{part}"]) == 0:
            raise DataError(
                f"{split_path}: the {part} split is empty", "re-run `dlbench data` with more images"
            )


def check_model_takes(config: TrainConfig, arrays: dict) -> None:
    """The model can take the split's images at the run's input (channels, size) and gives one output per
    class: refused in one line before anything is written."""
    from dlbench.models import check_input

    facts = split_facts(config.dataset, arrays)
    check_channels(config, facts)
    check_input(config.model, config.stem, config.in_channels, facts.num_classes, config.input_size)
