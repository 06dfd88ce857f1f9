import json

import pytest

from dlbench.cli import main
from dlbench.svm.backends import CumlBackend
from tests import cli_fork


def _cli(*args):
    return cli_fork.run(args)  # a process of its own (tests/cli_fork.py)


def test_cli_fits_and_writes_record(tiny_split, tmp_path, capsys):
    out = tmp_path / "svm"
    assert (
        main(
            [
                "svm",
                "--split",
                str(tiny_split),
                "--out",
                str(out),
                "--backend",
                "sklearn",
                "--kernel",
                "poly",
                "--C",
                "2",
                "--gamma",
                "0.01",
                "--degree",
                "2",
                "--coef0",
                "1",
                "--n-train",
                "300",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.strip() == str(out)
    rec = json.loads((out / "record.json").read_text())
    assert rec["status"] == "ok" and rec["config"]["dataset"] == "fashion-mnist"  # read from the manifest
    assert rec["metrics"]["n_train"] == 300 and rec["metrics"]["gamma"] == 0.01
    assert {k: rec["config"][k] for k in ("kernel", "C", "degree", "coef0")} == {
        "kernel": "poly",
        "C": 2.0,
        "degree": 2,
        "coef0": 1.0,
    }
    assert (out / "model.joblib").is_file()


@pytest.mark.parametrize(
    "args, expect",
    [
        (["--kernel", "linear"], "argument --kernel: invalid choice: 'linear'"),
        (["--C", "0"], "C: Input should be greater than 0"),
        (["--gamma", "-1"], "gamma: Value error, gamma must be > 0, 'scale' or 'auto'"),
        (["--gamma", "large"], "argument --gamma: must be a number > 0, 'scale' or 'auto' (got 'large')"),
        (["--n-train", "5000"], "n_train 5,000 is larger than the training split (700 images)"),
        (["--n-train", "1"], "n_train 1 is fewer than the 10 classes of the training split"),
        (["--backend", "thundersvm"], "argument --backend: invalid choice: 'thundersvm'"),
    ],
)
def test_cli_bad_input_is_one_line_and_writes_nothing(tiny_split, tmp_path, args, expect):
    out = tmp_path / "out"
    r = _cli("svm", "--split", str(tiny_split), "--out", str(out), *args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0], r.stderr
    assert not out.exists()


def test_cli_missing_split(tmp_path):
    r = _cli("svm", "--split", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "nowhere: folder not found (run `dlbench data` first" in r.stderr


def test_cli_cuml_without_gpu_or_cuml_is_a_clear_error(tiny_split, tmp_path):
    """Here (no GPU, no cuML) asking for cuML fails on one line naming what is missing; no fall-back."""
    ok, reason = CumlBackend.available()
    out = tmp_path / "out"
    r = _cli("svm", "--split", str(tiny_split), "--out", str(out), "--backend", "cuml", "--n-train", "100")
    if ok:  # on a GPU machine with cuML the same command must run cuML
        assert r.returncode == 0, r.stderr
        assert json.loads((out / "record.json").read_text())["metrics"]["backend"] == "cuml"
        return
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"dlbench: error: SVM backend 'cuml' cannot run here: {reason}")
    assert "--backend sklearn or auto" in lines[0]
    assert not out.exists()


def test_help_shows_every_option_with_its_default():
    r = _cli("svm", "--help")
    assert r.returncode == 0
    for opt in (
        "--split",
        "--out",
        "--backend",
        "--kernel",
        "--C",
        "--gamma",
        "--degree",
        "--coef0",
        "--preprocess",
        "--n-train",
        "--seed",
    ):
        assert opt in r.stdout
    for default in (
        "(default: auto)",
        "(default: rbf)",
        "(default: 10.0)",
        "(default: scale)",
        "(default: 3)",
    ):
        assert default in r.stdout
