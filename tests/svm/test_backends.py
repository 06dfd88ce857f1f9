"""The backend registry and interface: every registered backend either runs or says why it cannot."""

import joblib
import numpy as np
import pytest

from dlbench.errors import DeviceError, SpecError
from dlbench.spec import SvmConfig
from dlbench.svm import BACKENDS, fit_and_evaluate, get_backend, run_svm
from dlbench.svm import backends as B
from dlbench.svm.backends import SklearnBackend, SvmBackend, resolve_gamma


def _blobs(n=300, n_classes=3, seed=0):
    """Well separated classes in 20 dimensions (labels 0..n_classes-1)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    X = rng.normal(0, 0.3, size=(n, 20)).astype(np.float32)
    X[np.arange(n), y] += 3.0
    return X, y


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_every_backend_runs_or_names_what_is_missing(name, tmp_path):
    cls = BACKENDS[name]
    ok, reason = cls.available()
    assert isinstance(ok, bool) and reason
    if not ok:
        with pytest.raises(DeviceError) as err:
            get_backend(name)
        line = err.value.one_line()
        assert reason in line and f"SVM backend {name!r} cannot run here" in line and "\n" not in line
        return
    assert get_backend(name) is cls
    X, y = _blobs()
    backend = cls("rbf", 1.0, resolve_gamma("scale", X), 3, 0.0)
    backend.fit(X, y)
    backend.synchronize()
    pred = backend.predict(X)
    assert isinstance(pred, np.ndarray) and (pred == y).mean() > 0.95
    assert 0 < backend.n_support <= len(y)
    assert backend.version and backend.params["gamma"] == backend.gamma
    backend.save(tmp_path / "m.joblib", extra={"note": "x"})
    payload = joblib.load(tmp_path / "m.joblib")
    assert payload["backend"] == name and payload["note"] == "x"
    assert np.array_equal(np.asarray(payload["estimator"].predict(X)).ravel(), pred)


def test_sklearn_is_always_available_here():
    assert SklearnBackend.available()[0]
    assert SklearnBackend("rbf", 1.0, 0.1).threads == 1


def test_cuml_names_each_missing_piece(monkeypatch):
    monkeypatch.setattr(B, "_cuml_installed", lambda: False)
    assert B.CumlBackend.available() == (False, "cuML is not installed")
    monkeypatch.setattr(B, "_cuml_installed", lambda: True)
    monkeypatch.setattr(B, "_gpu_count", lambda: (0, "torch"))
    ok, reason = B.CumlBackend.available()
    assert not ok and reason == "no CUDA GPU is visible (torch)"
    with pytest.raises(DeviceError, match="SVM backend 'cuml' cannot run here: no CUDA GPU is visible"):
        get_backend("cuml")


def test_unknown_backend_name():
    choices = "choose one of sklearn, sklearnex, cuml, auto"
    with pytest.raises(SpecError, match=f"unknown SVM backend 'libsvm' .{choices}"):
        get_backend("libsvm")


class Recorder(SklearnBackend):
    """A GPU-like stand-in: asks for a warm-up, and remembers what each instance was given."""

    name = "cuml"
    warmup = True
    seen: list = []

    @classmethod
    def available(cls):
        return True, "stand-in"

    def fit(self, X, y):
        Recorder.seen.append(
            {
                "n": len(y),
                "labels": sorted(set(np.asarray(y).tolist())),
                "gamma": self.gamma,
                "C": self.C,
                "dtype": X.dtype,
            }
        )
        return super().fit(X, y)


def test_auto_prefers_the_gpu_backend_when_it_can_run(monkeypatch, tiny_split, tmp_path):
    monkeypatch.setitem(BACKENDS, "cuml", Recorder)
    Recorder.seen = []
    assert get_backend("auto") is Recorder
    rec = run_svm(
        SvmConfig(dataset="fashion-mnist", backend="auto", C=2.0),
        tiny_split,
        tmp_path / "o",
        log=lambda *_: None,
    )
    assert rec["metrics"]["backend"] == "cuml"  # the record says which one ran
    # a warm-up fit on a fresh instance, then the timed fit; both with the same resolved gamma and C
    assert [s["n"] for s in Recorder.seen] == [200, 700]
    assert {s["gamma"] for s in Recorder.seen} == {rec["metrics"]["gamma"]} and {
        s["C"] for s in Recorder.seen
    } == {2.0}
    assert rec["metrics"]["warmup_seconds"] is not None


def test_labels_reach_backends_as_indices_and_come_back_as_labels():
    X, y = _blobs(n_classes=3)
    labels = np.array([2, 5, 9])[y]  # sparse label values
    Recorder.seen = []
    result = fit_and_evaluate(
        Recorder("rbf", 1.0, 0.05), X, labels, X, labels, n_classes=10, log=lambda *_: None
    )
    assert Recorder.seen[-1]["labels"] == [0, 1, 2]
    assert set(result["predictions"].tolist()) == {2, 5, 9}
    cm = np.array(result["confusion_matrix"])
    assert cm.shape == (10, 10) and cm[[2, 5, 9], [2, 5, 9]].sum() == cm.sum() == len(labels)
    assert result["per_class_accuracy"][0] is None and result["per_class_accuracy"][5] == 1.0


def test_gamma_must_be_resolved_before_a_backend_sees_it():
    with pytest.raises(TypeError, match="resolve"):
        SklearnBackend("rbf", 1.0, "scale")
    assert issubclass(SklearnBackend, SvmBackend)
