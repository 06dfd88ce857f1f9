"""Checkpoint loading, ONNX export with a dynamic batch axis, and the ``onnx.checker`` validation.

The exporter is ``torch.onnx.export(dynamo=True)`` (torch.export + onnxscript, PyTorch's default since
2.9), with the batch axis declared through ``dynamic_shapes``; the older TorchScript exporter
(``dynamic_axes``) is kept as a fallback and the record says which one produced the file.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlbench.errors import DataError
from dlbench.io import atomic_path
from dlbench.train.checkpoint import load_problem, torch_load

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
BATCH_DIM = "batch"
EXPORTERS = ("dynamo", "torchscript")
_PREFIXES = ("_orig_mod.", "module.")  # torch.compile / DataParallel wrappers


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _examples(keys, n: int = 3) -> str:
    keys = list(keys)
    more = f", ... ({len(keys)} in all)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state_dict from a ``.pt`` file: ``torch.save(model.state_dict())`` or a dict with key ``model``."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"checkpoint {p} not found", "pass the checkpoint file a train run wrote")
    try:
        obj = torch_load(p)
    except Exception as exc:
        raise DataError(
            f"checkpoint {p} cannot be read as a PyTorch state_dict: {load_problem(exc)}",
            "pass the best.pt a finished train run wrote; this file is damaged or not a checkpoint",
        ) from None
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DataError(
            f"checkpoint {p} holds no state_dict",
            "expected torch.save(model.state_dict()) or a dict with the state_dict under 'model'",
        )
    state = {}
    for k, v in obj.items():
        for prefix in _PREFIXES:
            if k.startswith(prefix):
                k = k[len(prefix) :]
        state[k] = v
    return state


def load_checkpoint(model: nn.Module, path: str | os.PathLike, what: str) -> None:
    """Load ``path`` into ``model``; a checkpoint of another model is a one-line DataError naming both."""
    state = read_state_dict(path)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k}: checkpoint {list(state[k].shape)} vs model {list(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append(f"{len(shapes)} shape mismatch(es), e.g. {_examples(shapes, 2)}")
        if missing:
            parts.append(f"{len(missing)} missing key(s), e.g. {_examples(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s), e.g. {_examples(unexpected)}")
        raise DataError(
            f"checkpoint {path} does not fit {what}: " + "; ".join(parts),
            "pass a checkpoint trained with the same model, stem and input channels",
        )
    model.load_state_dict(state)


def export_onnx(
    model: nn.Module,
    example: torch.Tensor,
    path: str | os.PathLike,
    opset: int = 18,
    exporter: str = "dynamo",
    log=print,
) -> dict[str, Any]:
    """Export ``model`` (eval mode) to ``path`` with a dynamic batch axis; return how it was done.

    ``example`` must have a batch of at least 2 (torch.export specialises a batch of 1 to a constant).
    If the dynamo exporter fails, the TorchScript exporter is tried and the reason is returned.
    """
    model.eval()
    info: dict[str, Any] = {"exporter": exporter, "opset": opset}
    order = [exporter] + [e for e in EXPORTERS if e != exporter]
    errors = {}
    for name in order:
        try:
            with atomic_path(path) as tmp, contextlib.redirect_stdout(sys.stderr):
                _export(name, model, example, tmp, opset)
            info["exporter"] = name
            if errors:
                info["exporter_fallback_reason"] = "; ".join(f"{k}: {v}" for k, v in errors.items())
                log(f"exporter {exporter} failed ({info['exporter_fallback_reason']}); used {name}")
            return info
        except Exception as exc:  # try the next exporter; all failing is reported below
            errors[name] = _first_line(exc)
    raise DataError("ONNX export failed: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))


def _export(exporter: str, model: nn.Module, example: torch.Tensor, path: Path, opset: int) -> None:
    import warnings

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if exporter == "dynamo":
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=opset,
                external_data=False,
                dynamic_shapes=({0: torch.export.Dim(BATCH_DIM)},),
                verbose=False,
            )
        else:
            torch.onnx.export(
                model,
                (example,),
                str(path),
                dynamo=False,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=opset,
                dynamic_axes={INPUT_NAME: {0: BATCH_DIM}, OUTPUT_NAME: {0: BATCH_DIM}},
            )


def check_onnx(path: str | os.PathLike) -> dict[str, Any]:
    """``onnx.checker`` (full check, with shape inference) plus: is the batch axis really dynamic?"""
    import onnx

    model = onnx.load(str(path))
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:
        raise DataError(f"exported model {path} fails onnx.checker: {_first_line(exc)}") from None

    def dims(values):
        return {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}

    inputs, outputs = dims(model.graph.input), dims(model.graph.output)
    first = [shape[0] if shape else None for shape in (*inputs.values(), *outputs.values())]
    return {
        "inputs": inputs,
        "outputs": outputs,
        "dynamic_batch": all(isinstance(d, str) and d for d in first),
        "opset_imports": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "ir_version": model.ir_version,
    }
