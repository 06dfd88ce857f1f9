"""bench/train_engines.py runs on the CPU and prints the JSON the issue asks for (numbers not judged here)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "train_engines.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("train_engines_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_bench_prints_both_engines_and_the_ratio(capsys, tmp_path):
    bench = load_bench()
    out = tmp_path / "bench.json"
    code = bench.main(
        [
            "--device",
            "cpu",
            "--batch-size",
            "8",
            "--steps",
            "2",
            "--warmup",
            "1",
            "--repeats",
            "2",
            "--num-workers",
            "0",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report == json.loads(out.read_text())
    assert set(report["engines"]) == {"dataloader", "resident"}
    for e in report["engines"].values():
        assert e["seconds_per_step"] > 0 and len(e["chunk_seconds_per_step"]) == 2
        assert e["projected_epoch_seconds"] == e["seconds_per_step"] * 5250  # ceil(42,000 / 8)
        assert e["images_per_second"] == 8 / e["seconds_per_step"]
        assert e["time_to_first_batch"] >= 0 and e["warmup_steps"] == 1 and e["finite_losses"]
    ratio = report["ratio"]["dataloader_over_resident_epoch_time"]
    assert ratio == (
        report["engines"]["dataloader"]["projected_epoch_seconds"]
        / report["engines"]["resident"]["projected_epoch_seconds"]
    )
    # same seed, same first batch: the same first loss up to the channels_last convolution order
    assert report["ratio"]["first_loss_abs_diff"] < 1e-4
    assert report["device"]["type"] == "cpu" and "torch" in report["environment"]["libraries"]
    assert report["data"]["source"] == "synthetic"


def test_bench_refuses_cuda_when_absent(capsys, monkeypatch):
    import torch

    bench = load_bench()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.main(["--device", "cuda"]) == 2
    assert "no CUDA device is visible" in capsys.readouterr().err
