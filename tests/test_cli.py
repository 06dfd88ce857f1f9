"""The command line as a newcomer meets it: help texts, closed pipes, errors naming the flag typed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dlbench.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]


def _subcommands():
    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return sub.choices


def test_closed_pipe_ends_quietly():
    proc = subprocess.run(
        f"set -o pipefail; '{sys.executable}' -m dlbench spec expand reference | head -1",
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("train ") and proc.stdout.count("\n") == 1
    assert proc.stderr == ""


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_help_shows_real_defaults_once(name):
    text = _subcommands()[name].format_help()
    assert "(default: None)" not in text and "(default: False)" not in text, text
    for entry in re.split(r"\n  (?=-|[A-Z])", text):  # one option's help at a time
        flat = " ".join(entry.split())
        assert flat.count("default:") <= 1, flat
    assert "components.storage" not in text and "STORE_URL" not in text


def test_train_help_lists_the_registries_choices():
    text = " ".join(_subcommands()["train"].format_help().split())
    for choices in (
        "model: resnet18, resnet34, resnet50, or timm:NAME / tv:NAME",  # dlbench.models.MODELS: open names
        "{cpu,cuda}",
        "{dataloader,resident,fused}",
        "{off,fp16,bf16}",
    ):
        assert choices in text, choices


def test_a_split_folder_that_does_not_exist_is_named(tmp_path, capsys):
    assert main(["train", "--split", str(tmp_path / "nonexistent"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"--split {tmp_path / 'nonexistent'}: folder not found" in err
    assert not (tmp_path / "o").exists()


def test_a_bad_flag_value_names_the_flag_typed(tmp_path, capsys, tiny_split):
    assert main(["train", "--split", str(tiny_split), "--out", str(tmp_path / "o"), "--batch-size", "0"]) == 2
    err = capsys.readouterr().err
    assert "--batch-size" in err, err
    assert main(["train", "--split", str(tiny_split), "--out", str(tmp_path / "o"), "--input-size", "4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dlbench: error: --input-size: ") and "input_size" not in err, err


def test_compile_without_out_writes_under_runs(tmp_path, monkeypatch, capsys):
    pytest.importorskip("kfp")
    monkeypatch.chdir(tmp_path)
    assert main(["compile", "--spec", "quick"]) == 0
    assert (tmp_path / "runs" / "pipelines" / "quick.yaml").is_file()
    assert not (tmp_path / "pipelines").exists()
    assert "runs/pipelines/quick.yaml" in capsys.readouterr().out


def test_onnx_batch_sizes_name_the_option(tmp_path, capsys):
    assert main(["onnx", "--model", "resnet18", "--batch-sizes", "0", "--out", str(tmp_path / "o")]) == 2
    assert "--batch-sizes: Input should be greater than 0 (got 0)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
