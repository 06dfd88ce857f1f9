"""``dlbench train``: help with defaults, a tiny run, and one-line errors with the right exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from dlbench.cli import main
from dlbench.record import load_record

OPTIONS = [
    "--split",
    "--out",
    "--dataset",
    "--model",
    "--stem",
    "--batch-size",
    "--optimizer",
    "--lr",
    "--momentum",
    "--weight-decay",
    "--epochs",
    "--device",
    "--engine",
    "--amp",
    "--pin-memory",
    "--no-pin-memory",
    "--num-workers",
    "--seed",
    "--max-steps-per-epoch",
    "--resume",
]


def test_help_lists_every_option_with_its_default(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # help is wrapped to the terminal's width
    for opt in OPTIONS:
        assert opt in text, opt
    for shown in (
        "(default: resnet18)",
        "(default: 64)",
        "(default: adam)",
        "(default: 0.001)",
        "(default: resident)",
        "(default: off)",
        "(default: cpu)",
        "(default: imagenet)",
    ):
        assert shown in text, shown
    assert "{dataloader,resident,fused}" in text and "{off,fp16,bf16}" in text and "{sgd,adam}" in text
    assert "resnet18, resnet34, resnet50, or timm:NAME / tv:NAME" in text and "{cpu,cuda}" in text


def test_listed_in_the_top_level_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "train" in capsys.readouterr().out


def test_a_tiny_run(tiny_split, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--split",
            str(tiny_split),
            "--out",
            str(out),
            "--engine",
            "dataloader",
            "--batch-size",
            "32",
            "--max-steps-per-epoch",
            "2",
            "--optimizer",
            "sgd",
            "--lr",
            "0.01",
        ]
    )
    assert code == 0
    assert "test accuracy" in capsys.readouterr().out
    rec = load_record(out)
    assert rec["status"] == "ok" and rec["config"]["dataset"] == "fashion-mnist"  # read from the manifest
    assert rec["config"]["engine"] == "dataloader" and rec["config"]["optimizer"] == "sgd"
    assert rec["metrics"]["steps_per_epoch"] == 2 and rec["metrics"]["pin_memory_effective"] is False


def test_a_tiny_run_at_the_reference_input(tiny_split, tmp_path, capsys):
    from dlbench.models import create_model
    from dlbench.onnxrt.export import load_checkpoint

    out = tmp_path / "run64"
    code = main(
        [
            "train",
            "--split",
            str(tiny_split),
            "--out",
            str(out),
            "--batch-size",
            "16",
            "--max-steps-per-epoch",
            "2",
            "--input-size",
            "64",
            "--in-channels",
            "3",
        ]
    )
    assert code == 0
    rec = load_record(out)
    assert rec["config"]["input_size"] == 64 and rec["config"]["in_channels"] == 3
    assert rec["metrics"]["input_shape"] == "3x64x64" and 0 <= rec["metrics"]["test_accuracy"] <= 1
    net = create_model("resnet18", in_channels=3)
    load_checkpoint(net, out / "best.pt", "resnet18")
    assert net(torch.zeros(2, 3, 64, 64)).shape == (2, 10)
    capsys.readouterr()
    assert (
        main(["train", "--split", str(tiny_split), "--out", str(tmp_path / "bad"), "--input-size", "4"]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert "--input-size" in err and "8" in err and "\n" not in err and not (tmp_path / "bad").exists()


def _one_line_error(capsys, argv, code):
    try:
        got = main(argv)
    except SystemExit as exc:  # argparse's own errors (an unknown choice)
        got = exc.code
    assert got == code
    err = capsys.readouterr().err.strip()
    assert err.startswith(("dlbench: error: ", "dlbench train: error: ")) and "\n" not in err, err
    return err


@pytest.mark.parametrize(
    "flag,value,words",
    [
        ("--optimizer", "rmsprop", ["--optimizer", "'sgd', 'adam'", "rmsprop"]),
        ("--model", "resnet101", ["--model", "resnet18", "resnet101"]),
        ("--engine", "turbo", ["--engine", "'dataloader', 'resident'"]),
        ("--amp", "fp8", ["--amp", "fp8"]),
    ],
)
def test_unknown_choices(tiny_split, tmp_path, capsys, flag, value, words):
    out = tmp_path / "out"
    err = _one_line_error(capsys, ["train", "--split", str(tiny_split), "--out", str(out), flag, value], 2)
    for w in words:
        assert w in err, (w, err)
    assert not out.exists()


def test_cuda_absent(tiny_split, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    err = _one_line_error(
        capsys, ["train", "--split", str(tiny_split), "--out", str(tmp_path / "o"), "--device", "cuda"], 2
    )
    assert "no CUDA device is visible" in err and "use --device cpu" in err


def test_batch_too_large(tiny_split, tmp_path, capsys):
    err = _one_line_error(
        capsys, ["train", "--split", str(tiny_split), "--out", str(tmp_path / "o"), "--batch-size", "5000"], 2
    )
    assert "larger than the training split (700 images)" in err and "--batch-size 700 or less" in err


def test_split_missing(tmp_path, capsys):
    err = _one_line_error(
        capsys,
        ["train", "--split", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), "--dataset", "mnist"],
        2,
    )
    assert f"--split {tmp_path / 'nope'}: folder not found" in err


def test_diverging_run_exits_1_with_one_line(tiny_split, tmp_path):
    """A real divergence (lr 1e30) through the installed entry point: exit 1, a line naming epoch and step."""
    out = tmp_path / "o"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dlbench",
            "train",
            "--split",
            str(tiny_split),
            "--out",
            str(out),
            "--lr",
            "1e30",
            "--batch-size",
            "32",
            "--max-steps-per-epoch",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={"DLBENCH_LOG_LEVEL": "ERROR", "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlbench: error: training loss is nan at epoch 1, step 2")
    rec = load_record(out)
    assert rec["status"] == "failed" and rec["metrics"]["failed_at"] == {"epoch": 1, "step": 2}
