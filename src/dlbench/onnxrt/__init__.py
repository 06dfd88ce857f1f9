"""The ``onnx`` step (named ``onnxrt`` so it never shadows the ``onnx`` package): export to ONNX,
check it, and time ONNX Runtime per provider and batch size beside PyTorch eager.

Submodules load on first use, so ``dlbench --help`` does not import torch or onnxruntime.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "run_onnx": "dlbench.onnxrt.step",
    "check_onnx_args": "dlbench.onnxrt.step",
    "load_checkpoint": "dlbench.onnxrt.export",
    "PROVIDERS": "dlbench.onnxrt.providers",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
