"""The classical step's estimators: one entry per estimator, with the backends that implement it.

An entry (:class:`EstimatorEntry`) names the estimator (scikit-learn's name), its label, and per backend
(``sklearn``: scikit-learn, CPU; ``sklearnex``: scikit-learn-intelex / oneDAL, multi-threaded CPU;
``cuml``: RAPIDS cuML, GPU) the class that builds it from a :class:`~dlbench.configs.SvmConfig`. Every
backend object has the interface of :class:`dlbench.svm.backends.SvmBackend` (fit, predict, synchronize,
version, threads, params, save), so :func:`dlbench.svm.step.run_svm` fits and times every estimator the
same way, on the same prepared matrices.

``svm`` is the study's SVC (kernel poly or rbf, :data:`dlbench.svm.backends.BACKENDS`); the others are
wrapped here by :class:`EstimatorBackend`. Adding an estimator is one :func:`register_estimator` call.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dlbench.errors import DeviceError, SpecError
from dlbench.svm.backends import AUTO_ORDER, BACKENDS, SvmBackend, _gpu_count, get_backend


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclass(frozen=True)
class BackendImpl:
    """How one backend builds one estimator: ``module.cls(**params(config))``."""

    module: str
    cls: str
    params: Callable[[Any], dict[str, Any]]
    threads: Callable[[], int | None] = _cpus


@dataclass(frozen=True)
class EstimatorEntry:
    name: str
    label: str
    backends: dict[str, BackendImpl] = field(default_factory=dict)  # empty: the SVC backends of BACKENDS

    def backend_names(self) -> list[str]:
        return list(self.backends) if self.backends else list(BACKENDS)


ESTIMATORS: dict[str, EstimatorEntry] = {}


def register_estimator(entry: EstimatorEntry) -> EstimatorEntry:
    ESTIMATORS[entry.name] = entry
    return entry


def _lr(c) -> dict[str, Any]:
    return {"C": c.C, "max_iter": 1000}


def _rf(c) -> dict[str, Any]:
    return {"n_estimators": 100, "random_state": c.seed}


register_estimator(EstimatorEntry("svm", "SVM (SVC)"))
register_estimator(
    EstimatorEntry(
        "logistic_regression",
        "Logistic regression",
        {
            "sklearn": BackendImpl("sklearn.linear_model", "LogisticRegression", _lr),
            "sklearnex": BackendImpl("sklearnex.linear_model", "LogisticRegression", _lr),
            "cuml": BackendImpl("cuml.linear_model", "LogisticRegression", _lr, lambda: None),
        },
    )
)
register_estimator(
    EstimatorEntry(
        "random_forest",
        "Random forest",
        {
            "sklearn": BackendImpl(
                "sklearn.ensemble", "RandomForestClassifier", lambda c: {**_rf(c), "n_jobs": -1}
            ),
            "sklearnex": BackendImpl("sklearnex.ensemble", "RandomForestClassifier", _rf),
            "cuml": BackendImpl(
                "cuml.ensemble",
                "RandomForestClassifier",
                lambda c: {"n_estimators": 100, "random_state": c.seed},
                lambda: None,
            ),
        },
    )
)
register_estimator(
    EstimatorEntry(
        "hist_gradient_boosting",
        "Histogram gradient boosting",
        {
            "sklearn": BackendImpl(
                "sklearn.ensemble",
                "HistGradientBoostingClassifier",
                lambda c: {"max_iter": 100, "random_state": c.seed},
            )
        },
    )
)


class EstimatorBackend(SvmBackend):
    """One non-SVM estimator on one backend, behind the SVM backends' interface."""

    def __init__(self, entry: EstimatorEntry, backend: str, config):
        impl = entry.backends[backend]
        self.entry, self.name, self.impl = entry, backend, impl
        self.kernel = None
        self.device = "cuda" if backend == "cuml" else "cpu"
        self.warmup = backend == "cuml"
        self.threads_note = (
            "the work runs on the GPU"
            if backend == "cuml"
            else f"{impl.module}.{impl.cls} with the settings in backend_params"
        )
        module = importlib.import_module(impl.module)
        self.config = config
        self._params = impl.params(config)
        self.estimator = getattr(module, impl.cls)(**self._params)

    def describe(self) -> str:
        return f"{self.entry.label} ({self.impl.cls})"

    def fit(self, X, y):
        if self.name == "cuml":
            X = np.ascontiguousarray(X, dtype=np.float32)
        self.estimator.fit(X, y)
        return self

    def predict(self, X):
        from dlbench.svm.backends import to_numpy

        if self.name == "cuml":
            X = np.ascontiguousarray(X, dtype=np.float32)
        return to_numpy(self.estimator.predict(X))

    def synchronize(self) -> None:
        if self.name == "cuml":
            import cupy

            cupy.cuda.runtime.deviceSynchronize()

    @property
    def n_support(self) -> None:
        return None

    @property
    def version(self) -> str:
        top = importlib.import_module(self.impl.module.split(".")[0])
        return getattr(top, "__version__", "unknown")

    @property
    def threads(self) -> int | None:
        return self.impl.threads()

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._params)

    def fresh(self) -> EstimatorBackend:
        return EstimatorBackend(self.entry, self.name, self.config)


def _available(backend: str) -> tuple[bool, str]:
    if backend == "cuml":
        if importlib.util.find_spec("cuml") is None:
            return False, "cuML is not installed"
        n, how = _gpu_count()
        return (n > 0, f"{n} GPU(s) ({how})")
    module = {"sklearn": "sklearn", "sklearnex": "sklearnex"}[backend]
    if importlib.util.find_spec(module) is None:
        return False, f"{module} is not installed"
    return True, f"{module} is installed"


def get_estimator(name: str) -> EstimatorEntry:
    if name not in ESTIMATORS:
        import difflib

        close = difflib.get_close_matches(name, list(ESTIMATORS), n=2)
        raise SpecError(
            f"unknown estimator {name!r}" + (f" (did you mean {' or '.join(close)}?)" if close else ""),
            f"choose one of {', '.join(ESTIMATORS)}",
        )
    return ESTIMATORS[name]


def resolve_backend(estimator: str, backend: str) -> str:
    """The backend that will run ``estimator`` (``auto``: the first of cuML, scikit-learn that can run);
    a one-line error for a backend the estimator does not have, or one that cannot run here."""
    entry = get_estimator(estimator)
    if not entry.backends:
        return get_backend(backend).name
    if backend == "auto":
        for candidate in AUTO_ORDER:
            if candidate in entry.backends and _available(candidate)[0]:
                return candidate
        raise DeviceError(f"no backend of {estimator} can run here")
    if backend not in entry.backends:
        raise SpecError(
            f"{estimator} has no {backend} backend",
            f"choose one of {', '.join(entry.backends)} (or auto)",
        )
    ok, reason = _available(backend)
    if not ok:
        raise DeviceError(f"backend {backend!r} of {estimator} cannot run here: {reason}")
    return backend
