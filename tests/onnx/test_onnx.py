"""The onnx step on the CPU: export + checker + parity for every model, ORT vs PyTorch timing,
checkpoints (right and wrong), providers that cannot run here, and every bad input."""

from __future__ import annotations

import csv
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from dlbench import cli
from dlbench.errors import DataError, DeviceError, SpecError, StepFailed
from dlbench.layout import find_train_checkpoint
from dlbench.models import MODELS, create_model
from dlbench.onnxrt import PROVIDERS, run_onnx
from dlbench.onnxrt.export import read_state_dict
from dlbench.record import load_record

TINY = {"batch_sizes": (1, 4), "warmup": 1, "iterations": 3}
CUDA_HERE = "CUDAExecutionProvider" in ort.get_available_providers() and torch.cuda.is_available()


def quiet(*_args):
    pass


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """ResNet-18 through the CLI, asking for cpu and cuda: (printed JSON, record, out folder)."""
    out = tmp_path_factory.mktemp("onnx-cli") / "resnet18"
    capture = pytest.MonkeyPatch()
    import io
    import sys

    buf = io.StringIO()
    capture.setattr(sys, "stdout", buf)
    try:
        code = cli.main(
            [
                "onnx",
                "--model",
                "resnet18",
                "--providers",
                "cpu",
                "cuda",
                "--batch-sizes",
                "1",
                "4",
                "--warmup",
                "1",
                "--iterations",
                "3",
                "--out",
                str(out),
            ]
        )
    finally:
        capture.undo()
    assert code == 0
    return json.loads(buf.getvalue()), load_record(out), out


def test_cli_prints_only_json_with_the_results(cli_run):
    printed, rec, _ = cli_run
    assert printed["model"] == "resnet18" and printed["weights"] == "fresh"
    assert printed["results"] == rec["metrics"]["results"]
    assert printed["exporter"] == "dynamo"


def test_export_is_valid_with_dynamic_batch(cli_run):
    _, rec, out = cli_run
    model = onnx.load(str(out / "model.onnx"))
    onnx.checker.check_model(model, full_check=True)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert rec["metrics"]["export"]["dynamic_batch"] is True
    assert rec["outputs"]["onnx_model"]["path"] == "model.onnx"
    assert rec["metrics"]["opset"] == 18 and rec["metrics"]["export"]["opset_imports"]["ai.onnx"] == 18


def test_every_percentile_positive_and_ordered(cli_run):
    _, rec, out = cli_run
    results = rec["metrics"]["results"]
    runs = {(r["runtime"], r["provider"], r["batch_size"]) for r in results}
    assert {
        ("onnxruntime", "cpu", 1),
        ("onnxruntime", "cpu", 4),
        ("pytorch", "cpu", 1),
        ("pytorch", "cpu", 4),
    } <= runs
    for r in results:
        assert 0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"], r
        assert r["warmup"] == 1 and r["iterations"] == 3 and r["throughput_ips"] > 0 and r["std_ms"] >= 0
    with open(out / "timings.csv") as f:
        assert len(list(csv.DictReader(f))) == len(results)
    speedups = rec["metrics"]["speedup"]
    assert [s["batch_size"] for s in speedups if s["provider"] == "cpu"] == [1, 4]
    assert rec["metrics"]["graph_optimization_level"] == "ORT_ENABLE_ALL"
    assert rec["metrics"]["torch_threads"] >= 1


def test_cuda_provider_recorded_honestly(cli_run):
    _, rec, _ = cli_run
    m = rec["metrics"]
    assert m["providers_requested"] == ["cpu", "cuda"]
    if CUDA_HERE:
        assert "cuda" in m["providers_available"]
        assert any(r["provider"] == "cuda" and r["runtime"] == "onnxruntime" for r in m["results"])
    else:
        assert m["providers_available"] == ["cpu"]
        assert "CUDAExecutionProvider" in m["providers_unavailable"]["cuda"]
        assert all(r["device"] == "cpu" for r in m["results"])


# the built-in families but resnet18 (the CLI run above); timm:NAME and tv:NAME: tests/test_registries.py
@pytest.mark.parametrize("model", [m for m, f in MODELS.items() if m != "resnet18" and not f.prefix])
def test_every_model_exports_with_parity(tmp_path, model):
    rec = run_onnx(model, "imagenet", tmp_path, batch_sizes=(2,), warmup=0, iterations=1, log=quiet)
    m = rec["metrics"]
    assert rec["status"] == "ok"
    assert m["max_abs_diff"] <= 1e-3 and m["parity"]["cpu"] == m["max_abs_diff"]
    onnx.checker.check_model(str(tmp_path / "model.onnx"))


def _trained_like(model: str, stem: str = "imagenet") -> torch.nn.Module:
    torch.manual_seed(1)
    net = create_model(model, stem=stem)
    with torch.no_grad():  # move BatchNorm statistics off their defaults, as training would
        for mod in net.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
    return net.eval()


def test_trained_checkpoint_is_what_gets_exported(tmp_path):
    net = _trained_like("resnet18")
    ckpt = tmp_path / "best.pt"
    torch.save({"model": net.state_dict(), "epoch": 3}, ckpt)  # wrapped form
    out = tmp_path / "onnx"
    rec = run_onnx(
        "resnet18", "imagenet", out, checkpoint=ckpt, batch_sizes=(2,), warmup=0, iterations=1, log=quiet
    )
    assert rec["metrics"]["weights"] == "checkpoint"
    assert rec["inputs"]["checkpoint"]["sha256"]
    x = torch.randn(5, 1, 28, 28)
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = net(x).numpy()
    np.testing.assert_allclose(sess.run(None, {"input": x.numpy()})[0], expected, atol=1e-3)


def test_a_three_channel_checkpoint_exports_at_its_own_input(tmp_path, capsys):
    net = create_model("resnet18", in_channels=3).eval()
    ckpt = tmp_path / "best.pt"
    torch.save(net.state_dict(), ckpt)
    common = [
        "onnx",
        "--model",
        "resnet18",
        "--checkpoint",
        str(ckpt),
        "--batch-sizes",
        "2",
        "--warmup",
        "0",
        "--iterations",
        "1",
        "--input-size",
        "32",
    ]
    # trained with 3 channels, exported as if with 1: the checkpoint does not fit, nothing is written
    assert cli.main([*common, "--out", str(tmp_path / "wrong")]) == 2
    err = capsys.readouterr().err.strip()
    assert "shape mismatch" in err and "\n" not in err and not (tmp_path / "wrong").exists()
    out = tmp_path / "right"
    assert cli.main([*common, "--in-channels", "3", "--out", str(out)]) == 0
    capsys.readouterr()
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape[1:] == [3, 32, 32]
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        np.testing.assert_allclose(sess.run(None, {"input": x.numpy()})[0], net(x).numpy(), atol=1e-3)
    assert load_record(out)["config"]["in_channels"] == 3


def test_plain_and_wrapped_state_dicts_both_read(tmp_path):
    state = create_model("resnet18").state_dict()
    torch.save(state, tmp_path / "plain.pt")
    torch.save({"model": state, "optimizer": {}}, tmp_path / "wrapped.pt")
    for name in ("plain.pt", "wrapped.pt"):
        got = read_state_dict(tmp_path / name)
        assert got.keys() == state.keys()


@pytest.mark.parametrize(
    "ckpt_model, ckpt_stem, words",
    [
        ("resnet50", "imagenet", "unexpected key"),
        ("resnet18", "small", "shape mismatch"),
    ],
)
def test_checkpoint_of_another_model_is_one_line_data_error(tmp_path, ckpt_model, ckpt_stem, words):
    ckpt = tmp_path / f"{ckpt_model}-{ckpt_stem}.pt"
    torch.save(create_model(ckpt_model, stem=ckpt_stem).state_dict(), ckpt)
    with pytest.raises(DataError, match=words) as err:
        run_onnx("resnet18", "imagenet", tmp_path / "o", checkpoint=ckpt, log=quiet)
    line = err.value.one_line()
    assert str(ckpt) in line and "resnet18" in line and "\n" not in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "content, words",
    [
        (None, "not found .pass the checkpoint file"),
        (b"not a checkpoint", "cannot be read.*pass the best.pt"),
    ],
)
def test_missing_or_corrupt_checkpoint(tmp_path, content, words):
    ckpt = tmp_path / "best.pt"
    if content is not None:
        ckpt.write_bytes(content)
    with pytest.raises(DataError, match=words):
        run_onnx("resnet18", "imagenet", tmp_path / "o", checkpoint=ckpt, log=quiet)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (
            {"providers": ("cpu", "gpu")},
            SpecError,
            "providers.1: Input should be 'cpu', 'cuda' or 'tensorrt'",
        ),
        ({"providers": ()}, SpecError, "providers: List should have at least 1 item"),
        ({"batch_sizes": ()}, SpecError, "batch_sizes: List should have at least 1 item"),
        ({"batch_sizes": (0, 8)}, SpecError, "batch_sizes.0: Input should be greater than 0"),
        ({"iterations": 0}, SpecError, "iterations: Input should be greater than 0"),
        ({"warmup": -1}, SpecError, "warmup: Input should be greater than or equal to 0"),
        ({"tolerance": 0}, SpecError, "tolerance: Input should be greater than 0"),
        ({"opset": 12}, SpecError, "opset: Input should be greater than or equal to 13"),
        ({"in_channels": 2}, SpecError, "in_channels: Input should be 1 or 3"),
    ],
)
def test_bad_input_fails_before_any_work(tmp_path, kwargs, error, words):
    with pytest.raises(error, match=words) as err:
        run_onnx("resnet18", "imagenet", tmp_path / "o", log=quiet, **kwargs)
    assert "\n" not in err.value.one_line()
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(
    CUDA_HERE, reason="checks the message when no CUDA provider can run (this machine has one)"
)
def test_only_unavailable_providers_is_a_device_error(tmp_path):
    with pytest.raises(DeviceError, match="cuda: CUDAExecutionProvider"):
        run_onnx("resnet18", "imagenet", tmp_path / "o", providers=("cuda", "tensorrt"), log=quiet)


def test_cli_unknown_provider_is_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["onnx", "--model", "resnet18", "--providers", "rocm", "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --providers: invalid choice: 'rocm'" in err
    assert err.count("\n") == 1 and not (tmp_path / "o").exists()


def test_parity_above_tolerance_fails_the_step_with_a_record(tmp_path):
    with pytest.raises(StepFailed, match="differs from PyTorch"):
        run_onnx("resnet18", "imagenet", tmp_path, tolerance=1e-12, batch_sizes=(1,), log=quiet)
    rec = load_record(tmp_path)
    assert rec["status"] == "failed" and "tolerance" in rec["error"]
    assert (tmp_path / "model.onnx").is_file()  # what was written so far is kept


def test_provider_table_covers_the_spec_names():
    from typing import get_args

    from dlbench.spec import Provider

    assert set(PROVIDERS) == set(get_args(Provider))
    assert PROVIDERS["cuda"].io_binding and PROVIDERS["cpu"].ort_name == "CPUExecutionProvider"


def _train_record(folder, model, stem, acc, status="ok", ckpt="best.pt", **input_fields):
    folder.mkdir(parents=True)
    (folder / ckpt).write_bytes(b"x")
    rec = {
        "step": "train",
        "status": status,
        "config": {"model": model, "stem": stem, **input_fields},
        "metrics": {"best_val_accuracy": acc},
        "outputs": {"checkpoint": {"path": ckpt}},
    }
    (folder / "record.json").write_text(json.dumps(rec))


def test_find_train_checkpoint_picks_best_finished_run_of_that_model(tmp_path):
    train = tmp_path / "train"
    _train_record(train / "a", "resnet18", "imagenet", 0.80)
    _train_record(train / "b", "resnet18", "imagenet", 0.90)
    _train_record(train / "c", "resnet18", "imagenet", 0.99, status="failed")
    _train_record(train / "d", "resnet18", "small", 0.95)
    _train_record(train / "e", "resnet50", "imagenet", 0.97)
    # trained on another input than the export is timed at (1x28x28): not that model's checkpoint
    _train_record(train / "f", "resnet18", "imagenet", 0.96, input_size=64, in_channels=3)
    path, rec = find_train_checkpoint(train, "resnet18", "imagenet")
    assert path == train / "b" / "best.pt" and rec["metrics"]["best_val_accuracy"] == 0.90
    assert find_train_checkpoint(train, "resnet18", "imagenet", 64, 3)[0] == train / "f" / "best.pt"
    assert find_train_checkpoint(train, "resnet34", "imagenet") is None
    assert find_train_checkpoint(tmp_path / "nowhere", "resnet18", "imagenet") is None


def test_study_profiles_once_and_exports_each_model_with_its_checkpoint(tmp_path, monkeypatch):
    import dlbench.onnxrt.step
    from dlbench.layout import StudyLayout
    from dlbench.plan import build_plan
    from dlbench.runner import run_onnx_task, run_profile_task
    from dlbench.spec import parse_spec

    spec = parse_spec(
        {
            "train": {"grids": [{"models": ["resnet18", "resnet50"]}]},
            "onnx": {"batch_sizes": [1, 2], "warmup": 0, "iterations": 2},
        }
    )
    lay = StudyLayout(tmp_path)
    _train_record(tmp_path / "train" / "r18", "resnet18", "imagenet", 0.9)
    calls = []
    monkeypatch.setattr(dlbench.onnxrt.step, "onnx_step", lambda *a, **k: calls.append(a) or {})
    plan = build_plan(spec)
    assert run_profile_task(plan.profile, lay.profile, print).ok
    outcomes = run_onnx_task(plan.onnx, lay.runs("train"), lay.onnx_root, print)
    assert list(outcomes) == ["resnet18", "resnet50"] and all(o.ok for o in outcomes.values())
    rows = load_record(tmp_path / "profile")["metrics"]["rows"]
    assert [r["model"] for r in rows] == ["resnet18", "resnet50"]
    (c18, out18, ckpt18, _), (c50, _, ckpt50, _) = calls
    assert c18.model == "resnet18" and out18 == tmp_path / "onnx" / "resnet18"
    assert ckpt18 == tmp_path / "train" / "r18" / "best.pt"
    assert c50.model == "resnet50" and ckpt50 is None
    assert c18.batch_sizes == [1, 2] and c18.iterations == 2
    assert (c18.input_size, c18.in_channels, c18.stem) == (28, 1, "imagenet")

    # at another input: the checkpoint of the run trained at that input, exported and timed there
    _train_record(tmp_path / "train" / "r18-64", "resnet18", "imagenet", 0.8, input_size=64, in_channels=3)
    spec = parse_spec(
        {
            "train": {"grids": [{"models": ["resnet18"], "input_size": [64], "in_channels": [3]}]},
            "onnx": {"input_size": 64, "in_channels": 3},
        }
    )
    calls.clear()
    run_onnx_task(build_plan(spec).onnx, lay.runs("train"), lay.onnx_root, print)
    ((c, _, ckpt, _),) = calls
    assert ckpt == tmp_path / "train" / "r18-64" / "best.pt"
    assert (c.input_size, c.in_channels) == (64, 3)


def test_io_binding_path_gives_the_same_output_as_plain_run(cli_run):
    """The IO-binding code the GPU providers use, run here with the input and output bound on the CPU."""
    from dlbench.onnxrt.providers import Provider, make_session
    from dlbench.onnxrt.step import _ort_output, _ort_runner
    from dlbench.timing import time_callable

    _, _, out = cli_run
    bound = Provider("cpu", "CPUExecutionProvider", "cpu", io_binding=True)
    sess = make_session(out / "model.onnx", bound)
    x = np.random.default_rng(0).standard_normal((3, 1, 28, 28), dtype=np.float32)
    plain = sess.run(None, {"input": x})[0]
    np.testing.assert_array_equal(_ort_output(sess, bound, x), plain)
    call, sync = _ort_runner(sess, bound, x)
    assert sync is not None
    t = time_callable(call, warmup=1, iterations=2, batch_size=3, sync=sync)
    assert 0 < t.p50_ms <= t.p99_ms


@pytest.mark.skipif(CUDA_HERE, reason="needs a machine where ORT cannot start CUDA (so it falls back)")
@pytest.mark.filterwarnings("ignore:Specified provider:UserWarning")
def test_silent_fallback_to_cpu_is_caught(cli_run):
    from dlbench.onnxrt.providers import make_session

    _, _, out = cli_run
    with pytest.raises(
        RuntimeError, match="fell back to CPUExecutionProvider instead of CUDAExecutionProvider"
    ):
        make_session(out / "model.onnx", PROVIDERS["cuda"])


def test_timings_from_few_iterations_are_marked_and_not_headlined(cli_run, tmp_path):
    from dlbench.report import run_report

    _, rec, out = cli_run
    m = rec["metrics"]
    assert m["low_confidence"] is True and m["min_confident_iterations"] == 20  # 3 timed iterations
    assert all(r["low_confidence"] for r in m["results"]) and all(s["low_confidence"] for s in m["speedup"])
    run_report(out.parent, tmp_path / "report", log=lambda *_: None)
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["onnx_speedup_vs_pytorch"] is None
    assert summary["not_run"]["inference_latency"].startswith("low confidence")
    assert "LOW CONFIDENCE: fewer than 20 timed iterations" in (tmp_path / "report" / "report.md").read_text()
