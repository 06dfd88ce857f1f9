"""The svm step: scikit-learn (CPU) and cuML (GPU) SVMs behind one backend interface."""

from dlbench.svm.backends import BACKENDS, SvmBackend, get_backend, register_backend, resolve_gamma
from dlbench.svm.step import fit_and_evaluate, load_model, run_svm

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
