"""SVM backends: one table of name -> class, each with the same small interface.

A backend class has

- ``name`` (registry key), ``device`` ("cpu" or "cuda"), ``warmup`` (whether a first fit pays one-off
  costs, such as creating a CUDA context, that a timed fit should not include);
- ``available() -> (bool, reason)``, a classmethod that imports nothing heavy unless the backend can run;
- ``__init__(kernel, C, gamma, degree, coef0)`` with ``gamma`` already a number, so every backend gets the
  identical float (``resolve_gamma`` computes it);
- ``fit(X, y)``, ``predict(X) -> numpy array``, ``synchronize()`` (wait for queued device work),
  properties ``n_support`` (number of distinct training points that are support vectors), ``version``,
  ``threads`` (host threads the fit uses; None when the work runs on a GPU), ``params`` (the estimator's
  settings, recorded), ``threads_note`` (what ``threads`` means for it) and ``save(path, extra)`` (joblib,
  atomically).

``get_backend(name)`` returns the class for ``sklearn`` / ``sklearnex`` / ``cuml`` or picks one for
``auto``; asking for a
backend that cannot run raises :class:`~dlbench.errors.DeviceError` naming the missing piece, never a
silent fall-back.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import numpy as np

from dlbench.errors import DeviceError, SpecError
from dlbench.io import atomic_path

BACKENDS: dict[str, type[SvmBackend]] = {}
AUTO_ORDER = ("cuml", "sklearn")  # ``auto`` takes the first available


def register_backend(cls: type[SvmBackend]) -> type[SvmBackend]:
    """Class decorator: add ``cls`` to :data:`BACKENDS` under ``cls.name``."""
    BACKENDS[cls.name] = cls
    return cls


def backend_names() -> list[str]:
    return list(BACKENDS)


def get_backend(name: str) -> type[SvmBackend]:
    """The backend class for ``name`` (``auto``: the first of :data:`AUTO_ORDER` that can run here)."""
    if name == "auto":
        reasons = []
        for candidate in AUTO_ORDER:
            ok, reason = BACKENDS[candidate].available()
            if ok:
                return BACKENDS[candidate]
            reasons.append(f"{candidate}: {reason}")
        raise DeviceError("no SVM backend can run here: " + "; ".join(reasons))
    if name not in BACKENDS:
        raise SpecError(f"unknown SVM backend {name!r}", f"choose one of {', '.join([*BACKENDS, 'auto'])}")
    cls = BACKENDS[name]
    ok, reason = cls.available()
    if not ok:
        raise DeviceError(f"SVM backend {name!r} cannot run here: {reason}", cls.install_hint)
    return cls


def resolve_gamma(gamma: float | str, X: np.ndarray) -> float:
    """The number scikit-learn and cuML would derive: ``scale`` = 1 / (n_features * X.var()),
    ``auto`` = 1 / n_features.

    Computed once here (in float64 over the training matrix) so both backends get the identical float.
    """
    n_features = X.shape[1]
    if gamma == "scale":
        var = float(X.var(dtype=np.float64))
        return 1.0 / (n_features * var) if var > 0 else 1.0
    if gamma == "auto":
        return 1.0 / n_features
    value = float(gamma)
    if not value > 0:
        raise SpecError(f"gamma must be > 0, 'scale' or 'auto' (got {gamma!r})")
    return value


def to_numpy(a: Any) -> np.ndarray:
    """A host numpy array from numpy, cupy (``.get()``) or cuML's CumlArray (``.to_output``)."""
    if hasattr(a, "to_output"):
        a = a.to_output("numpy")
    if hasattr(a, "get") and not isinstance(a, np.ndarray | dict):
        a = a.get()
    return np.asarray(a)


class SvmBackend:
    """Base class: the shared parts of the interface. Subclasses set ``name`` and implement the rest."""

    name = ""
    device = "cpu"
    warmup = False
    install_hint: str | None = None
    threads_note = ""
    estimator: Any = None

    def __init__(self, kernel: str, C: float, gamma: float, degree: int = 3, coef0: float = 0.0):
        if isinstance(gamma, str):
            raise TypeError("gamma must be a number here; resolve 'scale'/'auto' with resolve_gamma first")
        self.kernel, self.C, self.gamma, self.degree, self.coef0 = (
            kernel,
            float(C),
            float(gamma),
            int(degree),
            float(coef0),
        )

    @classmethod
    def available(cls) -> tuple[bool, str]:
        raise NotImplementedError

    def fresh(self) -> SvmBackend:
        """A new, unfitted estimator of the same settings (for an untimed warm-up fit)."""
        return type(self)(self.kernel, self.C, self.gamma, self.degree, self.coef0)

    def describe(self) -> str:
        return f"{self.kernel} SVC (C={self.C:g}, gamma={self.gamma:.6g})"

    def fit(self, X: np.ndarray, y: np.ndarray) -> SvmBackend:
        raise NotImplementedError

    def predict(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def synchronize(self) -> None:
        """Wait for work queued on the device (nothing to wait for on the CPU)."""

    @property
    def n_support(self) -> int:
        raise NotImplementedError

    @property
    def version(self) -> str:
        raise NotImplementedError

    @property
    def threads(self) -> int | None:
        raise NotImplementedError

    @property
    def params(self) -> dict[str, Any]:
        return {
            "kernel": self.kernel,
            "C": self.C,
            "gamma": self.gamma,
            "degree": self.degree,
            "coef0": self.coef0,
        }

    def save(self, path: str | os.PathLike, extra: dict[str, Any] | None = None) -> None:
        """Write ``{"backend", "version", "estimator", **extra}`` with joblib, atomically."""
        import joblib

        payload = {
            "backend": self.name,
            "version": self.version,
            "params": self.params,
            "estimator": self.estimator,
            **(extra or {}),
        }
        with atomic_path(path) as tmp:
            joblib.dump(payload, tmp)


@register_backend
class SklearnBackend(SvmBackend):
    """scikit-learn's ``SVC`` (libsvm): CPU, one thread for fit and predict."""

    name = "sklearn"
    device = "cpu"
    threads_note = "libsvm fits and predicts on one core"

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if importlib.util.find_spec("sklearn") is None:
            return False, "scikit-learn is not installed (pip install scikit-learn)"
        return True, "scikit-learn is installed"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from sklearn.svm import SVC

        self.estimator = SVC(
            kernel=self.kernel, C=self.C, gamma=self.gamma, degree=self.degree, coef0=self.coef0
        )

    def fit(self, X, y):
        self.estimator.fit(X, y)
        return self

    def predict(self, X):
        return np.asarray(self.estimator.predict(X))

    @property
    def n_support(self) -> int:
        return int(np.sum(self.estimator.n_support_))

    @property
    def version(self) -> str:
        import sklearn

        return sklearn.__version__

    @property
    def threads(self) -> int:
        # libsvm's SMO solver and its kernel evaluations run on one core; SVC uses no BLAS thread pool
        # and no joblib parallelism, whatever the machine has.
        return 1

    @property
    def params(self) -> dict[str, Any]:
        p = self.estimator.get_params()
        return {
            k: p[k]
            for k in (
                "kernel",
                "C",
                "gamma",
                "degree",
                "coef0",
                "tol",
                "cache_size",
                "decision_function_shape",
                "max_iter",
                "shrinking",
            )
        }


@register_backend
class SklearnexBackend(SklearnBackend):
    """scikit-learn-intelex's ``SVC`` (oneDAL): CPU, multi-threaded, scikit-learn's interface and results."""

    name = "sklearnex"
    device = "cpu"
    threads_note = (
        "oneDAL fits and predicts on every core it is given (threads = the CPUs this process may use)"
    )
    install_hint = "pip install scikit-learn-intelex (dlbench lists it as a dependency)"

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if importlib.util.find_spec("sklearnex") is None:
            return False, "scikit-learn-intelex is not installed (pip install scikit-learn-intelex)"
        return True, "scikit-learn-intelex is installed"

    def __init__(self, *args, **kwargs):
        SvmBackend.__init__(self, *args, **kwargs)
        from sklearnex.svm import SVC

        self.estimator = SVC(
            kernel=self.kernel, C=self.C, gamma=self.gamma, degree=self.degree, coef0=self.coef0
        )

    @property
    def version(self) -> str:
        import sklearnex

        return getattr(sklearnex, "__version__", "unknown")

    @property
    def threads(self) -> int:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _gpu_count() -> tuple[int, str]:
    """How many CUDA GPUs this process sees, and how that was found (cupy first, then torch)."""
    try:
        import cupy

        return int(cupy.cuda.runtime.getDeviceCount()), "cupy"
    except ImportError:
        pass
    except Exception as exc:  # cupy installed but no driver / no device
        return 0, f"cupy: {' '.join(str(exc).split())[:120]}"
    try:
        import torch

        return (torch.cuda.device_count() if torch.cuda.is_available() else 0), "torch"
    except ImportError:
        return 0, "neither cupy nor torch is installed to look for a GPU"


def _cuml_installed() -> bool:
    return importlib.util.find_spec("cuml") is not None


@register_backend
class CumlBackend(SvmBackend):
    """RAPIDS cuML's ``SVC``: GPU (one-vs-one for multi-class, like libsvm). Imported only when it can run."""

    name = "cuml"
    device = "cuda"
    warmup = True
    threads_note = "the work runs on the GPU; one host thread drives it"
    install_hint = (
        "cuML runs on an NVIDIA GPU with the cuml-cu13 wheels, pip install 'dlbench[rapids]'; "
        "on a CPU machine use --backend sklearn or auto"
    )

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if not _cuml_installed():
            return False, "cuML is not installed"
        n, how = _gpu_count()
        if n < 1:
            return False, f"no CUDA GPU is visible ({how})"
        try:
            import cuml  # noqa: F401  (cuML needs a GPU even to import)
        except Exception as exc:
            return False, f"cuML is installed but does not import: {' '.join(str(exc).split())[:200]}"
        return True, f"cuML {cuml.__version__} on {n} GPU(s)"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from cuml.svm import SVC

        self.estimator = SVC(
            kernel=self.kernel,
            C=self.C,
            gamma=self.gamma,
            degree=self.degree,
            coef0=self.coef0,
            output_type="numpy",
        )

    def fit(self, X, y):
        self.estimator.fit(np.ascontiguousarray(X, dtype=np.float32), y)
        return self

    def predict(self, X):
        return to_numpy(self.estimator.predict(np.ascontiguousarray(X, dtype=np.float32)))

    def synchronize(self) -> None:
        import cupy

        cupy.cuda.runtime.deviceSynchronize()

    @property
    def n_support(self) -> int:
        # Multi-class cuML concatenates each one-vs-one model's support indices (re-aligned to the whole
        # training set); count distinct points, as scikit-learn's sum of n_support_ does.
        return int(np.unique(to_numpy(self.estimator.support_)).size)

    @property
    def version(self) -> str:
        import cuml

        return cuml.__version__

    @property
    def threads(self) -> None:
        return None  # the work runs on the GPU; one host thread drives it

    @property
    def params(self) -> dict[str, Any]:
        p = self.estimator.get_params()
        return {
            k: p[k]
            for k in (
                "kernel",
                "C",
                "gamma",
                "degree",
                "coef0",
                "tol",
                "cache_size",
                "decision_function_shape",
                "max_iter",
            )
            if k in p
        }
