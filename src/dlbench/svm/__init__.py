"""The svm step: scikit-learn (CPU) and cuML (GPU) SVMs behind one backend interface.

The step's names load on first use, so the estimator registry (:mod:`dlbench.svm.estimators`, which the
configs read) imports without the step and the spec it reads.
"""

from __future__ import annotations

import importlib

from dlbench.svm.backends import BACKENDS, SvmBackend, get_backend, register_backend, resolve_gamma

_EXPORTS = {name: "dlbench.svm.step" for name in ("fit_and_evaluate", "load_model", "run_svm")}

__all__ = [
    "BACKENDS",
    "SvmBackend",
    "fit_and_evaluate",
    "get_backend",
    "load_model",
    "register_backend",
    "resolve_gamma",
    "run_svm",
]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
