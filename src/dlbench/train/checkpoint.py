"""Checkpoints: ``last.pt`` (everything needed to resume) after every epoch, ``best.pt`` (weights only).

Both are written atomically (temp file, then rename), so a run killed at any moment leaves the previous
complete epoch's file intact. ``last.pt`` holds plain tensors and Python values only and is read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlbench.errors import DataError, SpecError
from dlbench.io import atomic_path

FORMAT = 1
LAST_NAME = "last.pt"
BEST_NAME = "best.pt"
# Config fields a resumed run may change: more epochs continue the same run.
RESUMABLE_CHANGES = ("epochs",)


def rng_state(device: torch.device) -> dict[str, Any]:
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": random.getstate(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_last(
    path: str | os.PathLike, *, trainer, config, epoch: int, history: list[dict], best: dict
) -> Path:
    state = {
        "format": FORMAT,
        "config": config.model_dump(),
        "epoch": epoch,  # epochs completed
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scaler": trainer.scaler.state_dict(),
        "history": history,
        "best": best,
        "rng": rng_state(trainer.device),
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def save_best(path: str | os.PathLike, model: torch.nn.Module) -> Path:
    """The model's state_dict on the CPU, contiguous: loads into ``create_model(...)`` anywhere."""
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def torch_load(path: str | os.PathLike, device: torch.device | str = "cpu") -> Any:
    """``torch.load(weights_only=True)``, quiet: torch warns of pickle protocols before it refuses a file, and
    that warning would be a second line on the terminal."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(path, map_location=device, weights_only=True)


def load_problem(exc: BaseException) -> str:
    """What :func:`torch_load` raised, in one short line, without torch's advice to load with
    ``weights_only=False`` (which runs any code the file holds, and is no fix for a file that is not a
    checkpoint)."""
    text = str(exc)
    if "Weights only load failed" in text:
        detail = text.partition("WeightsUnpickler error:")[2].strip().splitlines()
        return "it holds more than tensors, or is not a PyTorch file" + (f" ({detail[0]})" if detail else "")
    return " ".join(text.split())[:160] or type(exc).__name__


def load_last(path: str | os.PathLike, device: torch.device, config) -> dict[str, Any]:
    """Read ``last.pt`` and check that it belongs to ``config`` (only ``epochs`` may differ)."""
    try:
        state = torch_load(path, device)
    except Exception as exc:  # corrupt or foreign file
        raise DataError(
            f"{path}: not a readable checkpoint ({load_problem(exc)})",
            "delete it, or run without --resume to start over",
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise DataError(
            f"{path}: not a dlbench training checkpoint (format {FORMAT})",
            "run without --resume to start over",
        )
    saved, now = type(config).as_recorded(state["config"]), config.model_dump()
    diff = [
        f"{k}: {saved.get(k)!r} in the checkpoint, {now.get(k)!r} now"
        for k in sorted(set(saved) | set(now))
        if k not in RESUMABLE_CHANGES and saved.get(k) != now.get(k)
    ]
    if diff:
        raise SpecError(
            f"{path} was written by a different run ({'; '.join(diff)})",
            "resume with the same options, or run without --resume to start over",
        )
    if state["epoch"] > config.epochs:
        raise SpecError(
            f"{path} already holds {state['epoch']} epochs but --epochs is {config.epochs}",
            f"ask for --epochs {state['epoch']} or more",
        )
    return state


def restore(trainer, state: dict[str, Any]) -> None:
    trainer.model.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    if state.get("scaler"):
        trainer.scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
