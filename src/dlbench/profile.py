"""The ``profile`` step: FLOPs, parameters and activation memory per model and input size.

FLOPs come from PyTorch's own counter, :class:`torch.utils.flop_counter.FlopCounterMode`, which counts
2 FLOPs per multiply-add and only matrix products and convolutions (batch norm, ReLU, pooling and
additions count 0, as in torchvision's published figures). So GMACs = FLOPs / 2 / 1e9 is the unit
torchvision lists (ResNet-18 at 3x224x224: 1.814 GMACs). Everything is counted on PyTorch's ``meta``
device: shapes only, no arithmetic and no memory, so a ResNet-50 at batch 256 costs the same as at 1.

Per model and input size the step records:
- forward FLOPs of one batch, and of one training step (forward + cross-entropy loss + backward; the
  optimizer update is left out),
- a breakdown by layer type (leaf module class: Conv2d, Linear, BatchNorm2d, ...) and by aten op,
- parameters,
- activation memory of one batch: ``activation_bytes`` = bytes of the distinct output tensors of every
  leaf module in one forward pass (an in-place ReLU's output is its input and is counted once), and
  ``saved_for_backward_bytes`` = bytes of the distinct tensors autograd keeps for the backward pass of
  one training step, parameters excluded (what training actually holds per batch).

Outputs: ``profile.csv`` (one row per model x input size), ``profile.json`` (the rows with their
breakdowns) and ``record.json`` (metrics ``rows`` and ``unit_note``).
"""

from __future__ import annotations

import csv
import itertools
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlbench.configs import NUM_CLASSES, ProfileConfig, validate_model
from dlbench.errors import SpecError
from dlbench.io import atomic_path, write_json
from dlbench.models import count_parameters, create_model
from dlbench.record import step_record

CSV_NAME = "profile.csv"
JSON_NAME = "profile.json"

UNIT_NOTE = (
    "FLOPs from torch.utils.flop_counter.FlopCounterMode: 2 FLOPs per multiply-add, convolutions and "
    "matrix products only (batch norm, ReLU, pooling and additions count 0, as in torchvision's figures). "
    "GFLOPs = 1e9 FLOPs; GMACs = FLOPs / 2 / 1e9, the unit torchvision publishes (ResNet-18 at 3x224x224: "
    "1.814 GMACs = 3.628 GFLOPs). Figures are per batch of batch_size images (*_per_image divides by it). "
    "train_step = forward + cross-entropy loss + backward, optimizer update not included (a batch of 1 is "
    "counted at batch 2 and halved: BatchNorm cannot train on one value per channel). "
    "activation_bytes = distinct output tensors of all leaf modules in one forward pass (float32); "
    "saved_for_backward_bytes = distinct tensors autograd keeps for backward in one training step, "
    "parameters excluded."
)


def _storage_key(t: torch.Tensor) -> int:
    # The StorageImpl address: the same for a tensor and its in-place results or views, on any device
    # (meta tensors included, whose data_ptr is always 0).
    return t.untyped_storage()._cdata


def _root_prefix(model: nn.Module) -> str:
    return type(model).__name__


def _leaf_modules(model: nn.Module) -> dict[str, nn.Module]:
    """FlopCounterMode's module names (``ResNet.layer1.0.conv1``) of every module without children."""
    prefix = _root_prefix(model)
    return {f"{prefix}.{name}": m for name, m in model.named_modules() if name and not any(m.children())}


def _by_op(counts: dict[str, dict[Any, int]], key: str) -> dict[str, int]:
    return {str(op).removeprefix("aten."): int(v) for op, v in counts.get(key, {}).items()}


def _count_forward(model: nn.Module, x: torch.Tensor, leaves: dict[str, nn.Module], what: str):
    """One forward pass: total FLOPs, FLOPs by op and module, by leaf layer type, and the bytes of the
    distinct output tensors of the leaf modules."""
    from torch.utils.flop_counter import FlopCounterMode

    outputs: dict[int, int] = {}
    keep: list[torch.Tensor] = []  # hold every output so no storage is freed and reused mid-pass

    def on_output(_module, _inputs, out):
        for t in out if isinstance(out, tuple | list) else (out,):
            if isinstance(t, torch.Tensor):
                keep.append(t)
                outputs[_storage_key(t)] = t.untyped_storage().nbytes()

    hooks = [m.register_forward_hook(on_output) for m in leaves.values()]
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as fwd:
            model(x)
    except RuntimeError as exc:
        shape = "x".join(str(d) for d in x.shape[1:])
        raise SpecError(
            f"{what} cannot take {shape} input: {str(exc).splitlines()[0]}", "use a larger input size"
        ) from None
    finally:
        for h in hooks:
            h.remove()
    keep.clear()
    counts = fwd.get_flop_counts()
    forward_flops = int(fwd.get_total_flops())
    by_type: dict[str, int] = defaultdict(int)
    for fqn, module in leaves.items():
        by_type[type(module).__name__] += int(sum(counts.get(fqn, {}).values()))
    other = forward_flops - sum(by_type.values())
    if other:
        by_type["other (outside leaf modules)"] = other
    return forward_flops, counts, by_type, int(sum(outputs.values()))


def _count_train_step(model: nn.Module, batch_size: int, in_channels: int, input_size: int):
    """One training step (forward + loss + backward): FLOPs, FLOPs by op, and the bytes autograd saves for
    backward (parameters excluded), scaled to ``batch_size``; and the batch it was counted at.

    BatchNorm in training mode needs more than one value per channel, which a batch of 1 at 28x28 does not
    give (ResNet's last stage is 1x1 there); so a batch of 1 is counted as a batch of 2, halved. Exact for
    the FLOPs (every counted op is linear in the batch), near-exact for the saved bytes.
    """
    from torch.utils.flop_counter import FlopCounterMode

    model.train()
    step_batch = max(batch_size, 2)
    with torch.device("meta"):
        x = torch.empty(step_batch, in_channels, input_size, input_size)
        target = torch.zeros(step_batch, dtype=torch.long)
    param_keys = {_storage_key(p) for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        k = _storage_key(t)
        if k not in param_keys:
            saved[k] = t.untyped_storage().nbytes()
        return t

    with FlopCounterMode(display=False) as step:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = nn.functional.cross_entropy(model(x), target)
        loss.backward()
    scale = batch_size / step_batch
    return (
        round(step.get_total_flops() * scale),
        step.get_flop_counts(),
        round(sum(saved.values()) * scale),
        step_batch,
    )


def profile_model(
    name: str,
    stem: str,
    input_size: int,
    batch_size: int,
    in_channels: int = 1,
    num_classes: int = NUM_CLASSES,
) -> dict[str, Any]:
    """Count one model at one input size (on the meta device); return one row."""
    with torch.device("meta"):
        model = create_model(
            name, stem=stem, in_channels=in_channels, num_classes=num_classes, input_size=input_size
        )
        x = torch.empty(batch_size, in_channels, input_size, input_size)
    params = count_parameters(model)
    leaves = _leaf_modules(model)
    what = f"{name} (stem {stem})"

    forward_flops, fwd_counts, by_type, activation_bytes = _count_forward(model, x, leaves, what)
    train_flops, step_counts, saved_bytes, step_batch = _count_train_step(
        model, batch_size, in_channels, input_size
    )
    scale = batch_size / step_batch

    return {
        "model": name,
        "stem": stem,
        "in_channels": in_channels,
        "input_size": input_size,
        "batch_size": batch_size,
        "num_classes": num_classes,
        "forward_flops": forward_flops,
        "forward_gflops": forward_flops / 1e9,
        "forward_gmacs": forward_flops / 2e9,
        "forward_gmacs_per_image": forward_flops / 2e9 / batch_size,
        "train_step_flops": train_flops,
        "train_step_gflops": train_flops / 1e9,
        "train_step_gmacs": train_flops / 2e9,
        "params": params,
        "params_millions": params / 1e6,
        "activation_bytes": activation_bytes,
        "saved_for_backward_bytes": saved_bytes,
        "by_layer_type": dict(sorted(by_type.items(), key=lambda kv: -kv[1])),
        "by_op": _by_op(fwd_counts, "Global"),
        "train_step_by_op": {k: round(v * scale) for k, v in _by_op(step_counts, "Global").items()},
        "train_step_counted_at_batch": step_batch,
    }


CSV_FIELDS = (
    "model",
    "stem",
    "in_channels",
    "num_classes",
    "input_size",
    "batch_size",
    "forward_flops",
    "forward_gflops",
    "forward_gmacs",
    "forward_gmacs_per_image",
    "train_step_flops",
    "train_step_gflops",
    "train_step_gmacs",
    "params",
    "params_millions",
    "activation_bytes",
    "saved_for_backward_bytes",
)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """One row per model x input size; the layer-type breakdown as ``flops_<Type>`` columns."""
    types: dict[str, None] = {}
    for r in rows:
        types.update(dict.fromkeys(r["by_layer_type"]))
    fields = list(CSV_FIELDS) + [f"flops_{t}" for t in types]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            line = {k: r[k] for k in CSV_FIELDS}
            line.update({f"flops_{t}": r["by_layer_type"].get(t, 0) for t in types})
            w.writerow(line)


def run(config: dict[str, Any], inputs: dict[str, Any], out: str | os.PathLike, log=print) -> dict[str, Any]:
    """The step contract (:mod:`dlbench.runner`): ``config`` the fields of a
    :class:`~dlbench.configs.ProfileConfig` (models, stem, input_sizes, in_channels, batch_size), no
    ``inputs`` (the models are built freshly); returns the record."""
    return run_profile(out_dir=out, log=log, **config)


def run_profile(
    models: list[str],
    stem: str,
    input_sizes: list[int],
    batch_size: int,
    out_dir: str | os.PathLike,
    log=print,
    in_channels: int | list[int] = 1,
    num_classes: int = NUM_CLASSES,
) -> dict[str, Any]:
    """Profile every model at every input size and channel count; write profile.csv/json and record.json.

    ``in_channels=1, num_classes=10`` are the project's models (MNIST-style input);
    ``in_channels=3, stem="imagenet", num_classes=1000`` is torchvision's own ResNet, the one its
    published GMACs and parameter counts refer to; ``in_channels=3`` at 64x64 with 10 classes is the
    setting the reference study's published "GFLOPs" match (:mod:`dlbench.report.reference`).
    The arguments are checked as a :class:`~dlbench.configs.ProfileConfig` before anything is written.
    Returns the record.
    """
    channels = [in_channels] if isinstance(in_channels, int) else list(in_channels)
    cfg = validate_model(
        ProfileConfig,
        {
            "models": list(models),
            "stem": stem,
            "input_sizes": list(input_sizes),
            "batch_size": batch_size,
            "in_channels": channels,
            "num_classes": num_classes,
        },
        "profile settings",
    )
    return profile_step(cfg, out_dir, log)


def profile_step(cfg: ProfileConfig, out_dir: str | os.PathLike, log=print) -> dict[str, Any]:
    """:func:`run_profile` with its settings already a :class:`~dlbench.configs.ProfileConfig`."""
    out = Path(out_dir)
    with step_record("profile", cfg.model_dump(), out) as rec:
        rows = []
        for name, channels, size in itertools.product(cfg.models, cfg.in_channels, cfg.input_sizes):
            row = profile_model(name, cfg.stem, size, cfg.batch_size, channels, cfg.num_classes)
            rows.append(row)
            log(
                f"{name} {channels}x{size}x{size} batch {cfg.batch_size}: "
                f"forward {row['forward_gflops']:.4g} GFLOPs ({row['forward_gmacs']:.4g} GMACs), "
                f"train step {row['train_step_gflops']:.4g} GFLOPs, {row['params_millions']:.2f} M params, "
                f"activations {row['activation_bytes'] / 2**20:.1f} MiB"
            )
        write_csv(out / CSV_NAME, rows)
        write_json(out / JSON_NAME, {"unit_note": UNIT_NOTE, "rows": rows})
        rec.add_output("table", out / CSV_NAME)
        rec.add_output("profile", out / JSON_NAME)
        rec.metrics["rows"] = rows
        rec.metrics["unit_note"] = UNIT_NOTE
        rec.metrics["counter"] = "torch.utils.flop_counter.FlopCounterMode (meta device)"
    return rec.to_dict()
