"""The typed configs agree with the registries they name, and every TrainConfig field reaches the spec and
the command line (a field added to TrainConfig needs no second list)."""

from __future__ import annotations

import typing

import pytest

from dlbench import configs
from dlbench.cli import build_parser
from dlbench.errors import SpecError
from dlbench.plan import expand_train
from dlbench.spec import GRID_AXES, TRAIN_SETTINGS, TrainConfig, parse_spec


def choices(literal) -> set:
    return set(typing.get_args(literal))


def test_literal_choices_are_the_registries():
    from dlbench.data.registry import DATASETS
    from dlbench.models import MODELS, STEMS
    from dlbench.onnxrt.export import EXPORTERS
    from dlbench.onnxrt.providers import PROVIDERS
    from dlbench.svm import BACKENDS
    from dlbench.train.engines import AMP_DTYPES, ENGINES

    assert set(configs.BUILTIN_MODELS) == {n for n, f in MODELS.items() if not f.prefix}
    assert choices(configs.Stem) == set(STEMS)
    assert choices(configs.Engine) == set(ENGINES) | {"fused"}
    assert choices(configs.Amp) == set(AMP_DTYPES)
    assert choices(configs.SvmBackend) == set(BACKENDS) | {"auto"}
    assert choices(configs.Provider) == set(PROVIDERS)
    assert choices(configs.Exporter) == set(EXPORTERS)
    assert set(DATASETS) == {"mnist", "fashion-mnist"}
    assert {len(e.classes) for e in DATASETS.values()} == {configs.NUM_CLASSES}


def test_a_model_name_is_checked_against_the_registry_with_the_nearest_names():
    assert TrainConfig(dataset="fashion-mnist", model="timm:resnet10t").run_id.startswith("timm-resnet10t-")
    with pytest.raises(SpecError, match=r"unknown model 'resnet19' \(did you mean resnet18"):
        configs.validate_model(TrainConfig, {"dataset": "fashion-mnist", "model": "resnet19"}, "train")
    with pytest.raises(SpecError, match="unknown model 'keras:x'"):
        configs.validate_model(TrainConfig, {"dataset": "fashion-mnist", "model": "keras:x"}, "train")


def test_every_train_config_field_is_set_by_the_spec_or_derived():
    # data.datasets, the study's seed, smoke_spec, the grid's device axis (a catalog name)
    derived = {"dataset", "seed", "smoke", "planned", "device_name"}
    assert set(GRID_AXES.values()) | set(TRAIN_SETTINGS) | derived == set(TrainConfig.model_fields)


def test_a_grid_axis_and_a_train_setting_reach_the_run():
    spec = parse_spec({"train": {"momentum": 0.5, "grids": [{"batch_size": [8, 16], "input_size": [32]}]}})
    runs = expand_train(spec)
    assert [(c.batch_size, c.input_size, c.momentum) for c in runs] == [(8, 32, 0.5), (16, 32, 0.5)]


@pytest.mark.parametrize(
    "field, bad, words",
    [
        ("batch_size", 0, "batch_size: Input should be greater than 0"),
        ("momentum", 1.0, "momentum: Input should be less than 1"),
        ("input_size", 4, "input_size: Input should be greater than or equal to 8"),
        ("lr", float("inf"), "lr: Input should be a finite number"),
    ],
)
def test_one_bound_for_the_config_the_spec_and_the_command_line(field, bad, words):
    with pytest.raises(SpecError, match=words):
        configs.validate_model(TrainConfig, {"dataset": "mnist", field: bad}, "train config")
    data = {"train": {field: bad}} if field in TRAIN_SETTINGS else {"train": {"grids": [{field: [bad]}]}}
    with pytest.raises(SpecError, match=words.split(":")[1].strip()):
        parse_spec(data)


def test_train_options_are_the_config_fields():
    (sub,) = [a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction"]
    dests = {a.dest for a in sub.choices["train"]._actions}
    assert set(TrainConfig.model_fields) - {"dataset", "smoke", "planned"} <= dests
