"""bench/svm_backends.py: a speedup only when sklearn and another backend both ran; the rest with a reason."""

import importlib.util
import json
from pathlib import Path

import pytest

from dlbench.svm import BACKENDS
from dlbench.svm.backends import CumlBackend, SklearnBackend

BENCH = Path(__file__).resolve().parents[2] / "bench" / "svm_backends.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("svm_backends_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FastStandIn(SklearnBackend):
    name = "cuml"
    device = "cpu"

    @classmethod
    def available(cls):
        return True, "stand-in"


def _run(bench, capsys, *args):
    code = bench.main([*args])
    return code, json.loads(capsys.readouterr().out)


def test_only_sklearn_here_lists_cuml_with_its_reason(bench, tiny_split, capsys):
    ok, reason = CumlBackend.available()
    code, out = _run(
        bench, capsys, "--split", str(tiny_split), "--n-train", "200", "--backends", "sklearn,cuml"
    )
    assert code == 0
    if ok:  # a GPU machine with cuML: both ran, so there is a comparison
        assert [r["backend"] for r in out["results"]] == ["sklearn", "cuml"] and len(out["comparisons"]) == 1
        return
    assert [r["backend"] for r in out["results"]] == ["sklearn"]
    assert reason in out["unavailable"]["cuml"]
    assert out["comparisons"] == [] and "needs sklearn and another backend" in out["comparison_note"]
    r = out["results"][0]
    assert out["data"]["n_train"] == 200 and r["threads"] == 1 and 0 < r["accuracy"] <= 1
    assert out["environment"]["libraries"]["scikit-learn"] == r["version"]


def test_speedup_when_both_ran(bench, tiny_split, capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(BACKENDS, "cuml", FastStandIn)
    code, out = _run(
        bench,
        capsys,
        "--split",
        str(tiny_split),
        "--n-train",
        "300",
        "--backends",
        "sklearn,cuml",
        "--out",
        str(tmp_path / "b.json"),
    )
    assert code == 0 and out["unavailable"] == {}
    sk, other = out["results"]
    (cmp,) = out["comparisons"]
    assert cmp["fit_speedup"] == pytest.approx(sk["fit_seconds"] / other["fit_seconds"], rel=0.01)
    # the same data and parameters reach both, so the two libsvm fits agree exactly
    assert cmp["accuracy_gap_points"] == 0 and sk["n_support"] == other["n_support"]
    assert other["warmup_seconds"] is None and sk["params"]["gamma"] == other["params"]["gamma"]
    assert "49,000" in cmp["target"]["note"]
    assert json.loads((tmp_path / "b.json").read_text()) == out


def test_strict_fails_when_a_backend_cannot_run(bench, tiny_split, capsys, monkeypatch):
    class Missing(FastStandIn):
        @classmethod
        def available(cls):
            return False, "not here"

    monkeypatch.setitem(BACKENDS, "cuml", Missing)
    code, out = _run(bench, capsys, "--split", str(tiny_split), "--n-train", "100", "--strict")
    assert code == 1 and "not here" in out["unavailable"]["cuml"]


def test_compare_with_an_earlier_run_on_another_machine(bench, tiny_split, capsys, monkeypatch, tmp_path):
    # a "GPU machine" run with only the other backend, then a CPU-only run with sklearn that names it
    monkeypatch.setitem(BACKENDS, "cuml", FastStandIn)
    earlier = tmp_path / "gpu.json"
    code, gpu = _run(
        bench,
        capsys,
        "--split",
        str(tiny_split),
        "--n-train",
        "300",
        "--backends",
        "cuml",
        "--out",
        str(earlier),
    )
    assert code == 0 and gpu["comparisons"] == []
    code, out = _run(
        bench,
        capsys,
        "--split",
        str(tiny_split),
        "--n-train",
        "300",
        "--backends",
        "sklearn",
        "--compare-with",
        str(earlier),
    )
    assert code == 0 and out["compared_with"] == [str(earlier)] and out["comparison_note"] is None
    (cmp,) = out["comparisons"]
    sk, other = out["results"][0], gpu["results"][0]
    assert cmp["same_run"] is False and cmp["earlier_run"] == str(earlier)
    assert cmp["fit_speedup"] == pytest.approx(sk["fit_seconds"] / other["fit_seconds"], rel=0.01)
    assert cmp["accuracy_gap_points"] == 0 and "fingerprint" in cmp["data_check"]
    assert (
        cmp["machines"]["cuml"]["time"] == gpu["time"] and cmp["machines"]["sklearn"]["time"] == out["time"]
    )
    assert "single-core" in cmp["caution"]


def test_compare_with_a_different_measurement_is_refused_before_fitting(bench, tiny_split, capsys, tmp_path):
    earlier = tmp_path / "earlier.json"
    code, _ = _run(
        bench,
        capsys,
        "--split",
        str(tiny_split),
        "--n-train",
        "200",
        "--backends",
        "sklearn",
        "--out",
        str(earlier),
    )
    assert code == 0
    code = bench.main(
        [
            "--split",
            str(tiny_split),
            "--n-train",
            "300",
            "--C",
            "3",
            "--backends",
            "sklearn",
            "--compare-with",
            str(earlier),
        ]
    )
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    (line,) = captured.err.strip().splitlines()  # one line, and no fit was started
    assert "a different measurement" in line and "C 10.0 there, 3.0 here" in line
    assert "n_train 200 there, 300 here" in line and "same data and parameters" in line

    # same sizes and parameters but other images: the data fingerprint tells them apart
    other = json.loads(earlier.read_text())
    other["data"]["fingerprint"] = "0" * 64
    earlier.write_text(json.dumps(other))
    code = bench.main(
        [
            "--split",
            str(tiny_split),
            "--n-train",
            "200",
            "--backends",
            "sklearn",
            "--compare-with",
            str(earlier),
        ]
    )
    assert code == 2 and "images or labels differ" in capsys.readouterr().err

    earlier.write_text(json.dumps({"benchmark": "train_engines"}))
    code = bench.main(["--split", str(tiny_split), "--backends", "sklearn", "--compare-with", str(earlier)])
    assert code == 2 and "not an output of bench/svm_backends.py" in capsys.readouterr().err
