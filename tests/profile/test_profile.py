"""The profile step: FLOPs against torchvision's published figures, units, breakdowns, bad input."""

from __future__ import annotations

import csv
import json

import pytest

from dlbench import cli
from dlbench.errors import SpecError
from dlbench.profile import run_profile
from dlbench.record import load_record

# torchvision's model cards (weights meta "_ops" in GMACs and "num_params") for 3x224x224, 1000 classes.
TORCHVISION = {
    "resnet18": (1.814, 11_689_512),
    "resnet34": (3.664, 21_797_672),
    "resnet50": (4.089, 25_557_032),
}


def quiet(*_args):
    pass


@pytest.fixture(scope="module")
def torchvision_record(tmp_path_factory):
    out = tmp_path_factory.mktemp("profile224")
    return run_profile(
        list(TORCHVISION), "imagenet", [224], 1, out, log=quiet, in_channels=3, num_classes=1000
    ), out


@pytest.mark.parametrize("model", list(TORCHVISION))
def test_gmacs_and_params_match_torchvision(torchvision_record, model):
    rec, _ = torchvision_record
    row = next(r for r in rec["metrics"]["rows"] if r["model"] == model)
    gmacs, params = TORCHVISION[model]
    assert row["forward_gmacs"] == pytest.approx(gmacs, rel=0.01)
    assert row["forward_gflops"] == pytest.approx(2 * row["forward_gmacs"])  # 2 FLOPs per multiply-add
    assert row["params"] == params
    assert round(row["params"] / 1e6, 2) == round(params / 1e6, 2)


def test_record_and_files_name_the_unit(torchvision_record):
    rec, out = torchvision_record
    on_disk = load_record(out)
    assert on_disk["status"] == "ok" and on_disk["step"] == "profile"
    note = on_disk["metrics"]["unit_note"]
    assert "GMACs = FLOPs / 2" in note and "multiply-add" in note and "backward" in note
    with open(out / "profile.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == list(TORCHVISION)
    assert float(rows[0]["forward_gmacs"]) == pytest.approx(1.814, rel=0.01)
    assert json.loads((out / "profile.json").read_text())["rows"][2]["model"] == "resnet50"
    assert set(on_disk["outputs"]) == {"table", "profile"}


def test_training_step_breakdown_and_activations_scale_with_batch(tmp_path):
    one = run_profile(["resnet18"], "imagenet", [28], 1, tmp_path / "b1", log=quiet)["metrics"]["rows"][0]
    four = run_profile(["resnet18"], "imagenet", [28], 4, tmp_path / "b4", log=quiet)["metrics"]["rows"][0]
    assert four["forward_flops"] == pytest.approx(4 * one["forward_flops"], rel=1e-3)
    assert four["activation_bytes"] == pytest.approx(4 * one["activation_bytes"], rel=0.01)
    # backward costs about twice the forward (no input gradient for the first conv): 2.5x to 3x in all
    assert 2.5 * one["forward_flops"] < one["train_step_flops"] <= 3.01 * one["forward_flops"]
    assert "convolution_backward" in one["train_step_by_op"]
    # the layer-type breakdown adds up to the total; convolutions dominate; batch norm is not counted
    assert sum(one["by_layer_type"].values()) == one["forward_flops"]
    assert one["by_layer_type"]["Conv2d"] > 0.99 * one["forward_flops"]
    assert one["by_layer_type"]["Linear"] == 2 * 512 * 10
    assert one["by_layer_type"]["BatchNorm2d"] == 0
    # 1x28x28, imagenet stem: ResNet-18 forward is ~0.07 GFLOPs (BENCHMARKS.md); 11.18 M params, 10 classes
    assert one["forward_gflops"] == pytest.approx(0.066, rel=0.05)
    assert one["params"] == 11_175_370
    assert 0 < one["activation_bytes"] and 0 < one["saved_for_backward_bytes"]


def test_small_stem_costs_more_than_imagenet_stem(tmp_path):
    rows = {
        s: run_profile(["resnet18"], s, [28], 1, tmp_path / s, log=quiet)["metrics"]["rows"][0]
        for s in ("imagenet", "small")
    }
    assert rows["small"]["forward_flops"] > 10 * rows["imagenet"]["forward_flops"]


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"models": []}, "models: List should have at least 1 item"),
        ({"models": ["vgg16"]}, "models.0: Value error, unknown model 'vgg16'"),
        ({"input_sizes": []}, "input_sizes: List should have at least 1 item"),
        ({"input_sizes": [0]}, "input_sizes.0: Input should be greater than 0"),
        ({"batch_size": 0}, "batch_size: Input should be greater than 0"),
        ({"stem": "huge"}, "stem: Input should be 'imagenet' or 'small'"),
        ({"num_classes": 0}, "num_classes: Input should be greater than 0"),
    ],
)
def test_bad_input_is_one_line_spec_error(tmp_path, kwargs, words):
    args = {"models": ["resnet18"], "stem": "imagenet", "input_sizes": [28], "batch_size": 1, **kwargs}
    with pytest.raises(SpecError, match=words) as err:
        run_profile(out_dir=tmp_path / "p", log=quiet, **args)
    assert "\n" not in err.value.one_line()
    assert not (tmp_path / "p" / "record.json").exists()


def test_cli_prints_rows_as_json(tmp_path, capsys):
    out = tmp_path / "p"
    assert (
        cli.main(
            [
                "profile",
                "--models",
                "resnet18",
                "resnet50",
                "--input-sizes",
                "28",
                "32",
                "--in-channels",
                "1",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert [(r["model"], r["in_channels"], r["input_size"]) for r in printed["rows"]] == [
        (m, c, px) for m in ("resnet18", "resnet50") for c in (1, 3) for px in (28, 32)
    ]
    assert load_record(out)["config"]["in_channels"] == [1, 3]
    with open(out / "profile.csv") as f:
        assert [r["in_channels"] for r in csv.DictReader(f)] == ["1", "1", "3", "3"] * 2


def test_cli_unknown_model_is_one_line_error(tmp_path, capsys):
    assert cli.main(["profile", "--models", "resnet19", "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'resnet19' (did you mean resnet18" in err and err.count("\n") == 1
    assert not (tmp_path / "p").exists()


def test_the_reference_studys_gflops_are_forward_flops_at_3x64x64(tmp_path):
    """The study published "GFLOPs" without tool or input size; all three match one setting to 4 digits."""
    from dlbench.report import reference

    s = reference.GFLOPS_SETTING
    rec = run_profile(
        list(reference.GFLOPS),
        s["stem"],
        [28, s["input_size"]],
        s["batch_size"],
        tmp_path,
        log=quiet,
        in_channels=[1, s["in_channels"]],
        num_classes=s["num_classes"],
    )
    rows = rec["metrics"]["rows"]
    assert [(r["model"], r["in_channels"], r["input_size"]) for r in rows[:4]] == [
        ("resnet18", 1, 28),
        ("resnet18", 1, 64),
        ("resnet18", 3, 28),
        ("resnet18", 3, 64),
    ]
    for r in rows:
        published = reference.gflops(r)
        if (r["in_channels"], r["input_size"]) == (s["in_channels"], s["input_size"]):
            assert published == reference.GFLOPS[r["model"]]
            assert round(r["forward_gflops"], 4) == published  # FLOPs, 2 per multiply-add, not GMACs
        else:
            assert published is None
            assert round(r["forward_gflops"], 4) != reference.GFLOPS[r["model"]]
