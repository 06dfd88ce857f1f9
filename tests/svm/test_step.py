import json

import numpy as np
import pytest

from dlbench.data.split import load_split
from dlbench.errors import SpecError
from dlbench.spec import SvmConfig, validate_model
from dlbench.svm import load_model, run_svm
from dlbench.svm.backends import CumlBackend
from dlbench.svm.step import apply_preprocess

QUIET = {"log": lambda *_: None}
RECORD_METRICS = {
    "accuracy",
    "fit_seconds",
    "predict_seconds",
    "per_class_accuracy",
    "confusion_matrix",
    "n_support",
    "n_train",
    "backend",
    "backend_version",
    "threads",
    "classes",
    "gamma",
    "preprocess",
}


def _cfg(**kw):
    return SvmConfig(**{"dataset": "fashion-mnist", "backend": "sklearn", **kw})


def test_rbf_on_real_fashion_mnist(fashion_small, tmp_path):
    out = tmp_path / "rbf"
    rec = run_svm(_cfg(kernel="rbf", C=10, n_train=2000), fashion_small, out, **QUIET)
    m = rec["metrics"]
    assert rec["step"] == "svm" and rec["status"] == "ok"
    assert m["accuracy"] > 0.75, m["accuracy"]
    assert RECORD_METRICS <= set(m)
    assert m["n_train"] == 2000 and m["backend"] == "sklearn" and m["threads"] == 1
    assert m["classes"][0] == "T-shirt/top" and len(m["per_class_accuracy"]) == 10
    cm = np.array(m["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == m["n_test"] == 600
    assert np.trace(cm) / cm.sum() == pytest.approx(m["accuracy"])
    assert 0 < m["n_support"] <= 2000
    assert rec["config"] == _cfg(kernel="rbf", C=10, n_train=2000).model_dump()
    # what is on disk is what was returned
    assert json.loads((out / "record.json").read_text())["metrics"]["accuracy"] == m["accuracy"]
    assert rec["outputs"]["model"]["path"] == "model.joblib" and len(rec["outputs"]["model"]["sha256"]) == 64
    assert len(rec["inputs"]["split"]["sha256"]) == 64

    # the saved model loads back and predicts exactly what the record scored
    split = load_split(fashion_small)
    pred = load_model(out).predict(split["x_test"])
    reloaded = np.zeros((10, 10), int)
    np.add.at(reloaded, (split["y_test"].astype(int), pred), 1)
    assert reloaded.tolist() == m["confusion_matrix"]


def test_poly_kernel_on_real_fashion_mnist(fashion_small, tmp_path):
    rec = run_svm(
        _cfg(kernel="poly", C=10, degree=3, n_train=2000), fashion_small, tmp_path / "poly", **QUIET
    )
    m = rec["metrics"]
    assert m["accuracy"] > 0.7, m["accuracy"]
    assert m["backend_params"]["kernel"] == "poly" and m["backend_params"]["degree"] == 3


def test_identical_numbers_reach_the_estimator(tiny_split, tmp_path):
    rec = run_svm(_cfg(kernel="poly", C=3.5, degree=2, coef0=1.25), tiny_split, tmp_path / "p", **QUIET)
    split = load_split(tiny_split)
    X = split["x_train"].reshape(len(split["x_train"]), -1).astype(np.float64) / 255
    expected_gamma = 1.0 / (X.shape[1] * X.var())
    assert rec["metrics"]["gamma"] == pytest.approx(expected_gamma, rel=1e-6)
    assert rec["metrics"]["gamma_from"] == "scale"
    params = load_model(tmp_path / "p").estimator.get_params()
    assert (params["kernel"], params["C"], params["degree"], params["coef0"]) == ("poly", 3.5, 2, 1.25)
    assert params["gamma"] == rec["metrics"]["gamma"]

    fixed = run_svm(_cfg(gamma=0.02), tiny_split, tmp_path / "g", **QUIET)
    assert fixed["metrics"]["gamma"] == 0.02 and fixed["metrics"]["gamma_from"] == "value"
    auto = run_svm(_cfg(gamma="auto"), tiny_split, tmp_path / "a", **QUIET)
    assert auto["metrics"]["gamma"] == 1 / 784


def test_standardize_uses_training_images_only(tiny_split, tmp_path):
    rec = run_svm(_cfg(preprocess="standardize"), tiny_split, tmp_path / "s", **QUIET)
    assert rec["metrics"]["preprocess"] == "standardize" and rec["config"]["preprocess"] == "standardize"
    assert rec["metrics"]["accuracy"] > 0.9
    split = load_split(tiny_split)
    model = load_model(tmp_path / "s")
    train_mean = split["x_train"].reshape(len(split["x_train"]), -1).mean(axis=0)
    test_mean = split["x_test"].reshape(len(split["x_test"]), -1).mean(axis=0)
    np.testing.assert_allclose(model.preprocess["mean"], train_mean, rtol=1e-5)
    assert not np.allclose(model.preprocess["mean"], test_mean, rtol=1e-3)
    Z = apply_preprocess(split["x_train"], model.preprocess)
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-4)


def test_n_train_subsample_is_stratified_and_recorded(tiny_split, tmp_path):
    a = run_svm(_cfg(n_train=100, seed=1), tiny_split, tmp_path / "a", **QUIET)
    b = run_svm(_cfg(n_train=100, seed=1), tiny_split, tmp_path / "b", **QUIET)
    c = run_svm(_cfg(n_train=100, seed=2), tiny_split, tmp_path / "c", **QUIET)
    assert a["metrics"]["n_train"] == c["metrics"]["n_train"] == 100
    assert a["metrics"]["confusion_matrix"] == b["metrics"]["confusion_matrix"]
    sv = [load_model(tmp_path / n).estimator.support_vectors_ for n in "abc"]
    assert np.array_equal(sv[0], sv[1]) and not np.array_equal(sv[0], sv[2])
    # stratified: every class has 10 of the 100 images, so every class has support vectors
    assert (load_model(tmp_path / "a").estimator.n_support_ > 0).all()


def test_n_train_larger_than_split_is_one_line_and_writes_nothing(tiny_split, tmp_path):
    out = tmp_path / "big"
    with pytest.raises(SpecError) as err:
        run_svm(_cfg(n_train=100_000), tiny_split, out, **QUIET)
    assert "n_train 100,000 is larger than the training split (700 images)" in err.value.one_line()
    assert "\n" not in err.value.one_line()
    assert not out.exists()


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"kernel": "linear"}, "kernel: Input should be 'rbf' or 'poly'"),
        ({"C": 0}, "C: Input should be greater than 0"),
        ({"C": -1.0}, "C: Input should be greater than 0"),
        ({"gamma": -0.1}, "gamma: Value error, gamma must be > 0, 'scale' or 'auto'"),
        ({"gamma": 0}, "gamma: Value error, gamma must be > 0"),
        ({"backend": "thundersvm"}, "backend: Input should be 'sklearn', 'sklearnex', 'cuml' or 'auto'"),
        ({"n_train": 0}, "n_train: Input should be greater than 0"),
    ],
)
def test_bad_config_values_are_one_line(bad, field):
    with pytest.raises(SpecError) as err:
        validate_model(SvmConfig, {"dataset": "fashion-mnist", **bad}, "svm options")
    line = err.value.one_line()
    assert field in line and "\n" not in line


def test_auto_picks_what_can_run_and_records_it(tiny_split, tmp_path):
    """Without a GPU and cuML (as in CI) auto runs scikit-learn; with both it runs cuML."""
    gpu = CumlBackend.available()[0]
    rec = run_svm(_cfg(backend="auto"), tiny_split, tmp_path / "auto", **QUIET)
    assert rec["config"]["backend"] == "auto"
    assert rec["metrics"]["backend"] == ("cuml" if gpu else "sklearn")
    assert rec["device"]["type"] == ("cuda" if gpu else "cpu")
    assert (rec["metrics"]["warmup_seconds"] is not None) == gpu


def test_a_model_that_cannot_be_saved_fails_the_step_but_keeps_the_measurements(
    tiny_split, tmp_path, monkeypatch
):
    from dlbench.errors import StepFailed
    from dlbench.svm.backends import SklearnBackend

    def broken_save(self, path, extra=None):
        raise OSError("disk full")

    monkeypatch.setattr(SklearnBackend, "save", broken_save)
    out = tmp_path / "o"
    with pytest.raises(StepFailed, match="sklearn model could not be saved .*OSError: disk full"):
        run_svm(_cfg(), tiny_split, out, **QUIET)
    rec = json.loads((out / "record.json").read_text())
    assert rec["status"] == "failed" and "disk full" in rec["error"]
    assert rec["metrics"]["accuracy"] > 0.9 and "model" not in rec["outputs"]
    assert not (out / "model.joblib").exists()


def test_a_failed_rerun_keeps_the_earlier_good_run_and_writes_its_failure_beside_it(
    tiny_split, tmp_path, monkeypatch
):
    """A rerun that fails leaves the earlier good run as it was (record and model.joblib, byte for byte);
    the failure is in record.failed.json beside it, and nothing of the failed run is mixed in."""
    import json

    from dlbench.errors import StepFailed
    from dlbench.svm import backends

    out = tmp_path / "svm"
    run_svm(
        {"dataset": "fashion-mnist", "backend": "sklearn", "n_train": 100},
        tiny_split,
        out,
        log=lambda *_: None,
    )
    assert (out / "model.joblib").is_file()
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken_fit(self, X, y):
        raise StepFailed("fit diverged")

    monkeypatch.setattr(backends.SklearnBackend, "fit", broken_fit)
    with pytest.raises(StepFailed):
        run_svm(
            {"dataset": "fashion-mnist", "backend": "sklearn", "n_train": 120},
            tiny_split,
            out,
            log=lambda *_: None,
        )
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name != "record.failed.json"} == before
    failed = json.loads((out / "record.failed.json").read_text())
    assert (
        failed["status"] == "failed" and failed["config"]["n_train"] == 120 and "diverged" in failed["error"]
    )
    monkeypatch.undo()
    run_svm(
        {"dataset": "fashion-mnist", "backend": "sklearn", "n_train": 110},
        tiny_split,
        out,
        log=lambda *_: None,
    )
    assert sorted(p.name for p in out.iterdir()) == ["model.joblib", "record.json"]
    assert json.loads((out / "record.json").read_text())["config"]["n_train"] == 110
