"""The training step and the two engines that feed it.

:class:`Trainer` owns what both engines share: the model (seeded init), the optimizer, AMP (autocast,
and a GradScaler for fp16), the one training step and the one evaluation. An engine only decides
where the batches live and how a step is launched:

- ``dataloader`` (the reference study's way): a ``torch.utils.data.DataLoader`` over the uint8 split,
  each image converted and normalised on the host (as ``ToTensor`` + ``Normalize`` would), ``pin_memory``
  and ``num_workers`` as configured, workers started afresh each epoch, one host-to-device copy per
  batch and the loss read back every step (``running_loss += loss.item()``).
- ``resident``: the whole split is copied to the device once as uint8; a batch is gathered there by
  index and normalised on the device; model and input are channels_last; the loss stays on the device
  and is read back every :attr:`ResidentEngine.sync_every` steps. On CUDA the whole step (gather,
  normalise, forward, backward, optimizer, grad scaling) is captured once in a CUDA graph and replayed,
  with a fused optimizer (Adam ``capturable=True``) so no step needs the host. The last, partial batch
  of an epoch (a different shape) runs eagerly through the same :meth:`Trainer.step`.

Both engines draw the same batches in the same order (:mod:`dlbench.train.data`), so from the same seed
their first losses agree (exactly on the CPU up to the channels_last convolution order).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from dlbench.data.registry import SplitFacts, split_facts
from dlbench.errors import DeviceError, SpecError
from dlbench.models import create_model
from dlbench.train.data import (
    as_nchw,
    epoch_batches,
    epoch_permutation,
    model_input,
    norm_constants,
    steps_per_epoch,
)

AMP_DTYPES: dict[str, torch.dtype | None] = {"off": None, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(name: str) -> torch.device:
    """The torch device for ``name``; a one-line DeviceError if CUDA is asked for but not visible."""
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(
            f"device {name!r} was asked for but no CUDA device is visible to torch "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'})",
            "use --device cpu, or run where a GPU is visible",
        )
    return torch.device(name)


def check_amp(amp: str, device: torch.device) -> None:
    """Fail early, in one line, if this torch cannot autocast to ``amp`` on ``device``."""
    dtype = AMP_DTYPES[amp]
    if dtype is None:
        return
    if not torch.amp.is_autocast_available(device.type):
        raise DeviceError(
            f"--amp {amp}: torch {torch.__version__} has no autocast for {device.type}", "use --amp off"
        )
    if device.type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise DeviceError(
            f"--amp bf16: {torch.cuda.get_device_name(device)} has no bfloat16 support",
            "use --amp fp16 or --amp off",
        )
    try:  # a tiny conv forward + backward under autocast: CPU fp16 support varies by build
        conv = torch.nn.Conv2d(1, 2, 3).to(device)
        with torch.autocast(device.type, dtype=dtype):
            conv(torch.randn(1, 1, 5, 5, device=device)).float().sum().backward()
    except RuntimeError as exc:
        raise DeviceError(
            f"--amp {amp} is not supported on {device.type} by torch {torch.__version__}: "
            f"{' '.join(str(exc).split())[:200]}",
            "use --amp off or --amp bf16",
        ) from None


def loss_precision(logits: torch.Tensor) -> torch.Tensor:
    """Logits in the loss's precision: fp16/bf16 (AMP) up to float32, float32 and float64 as they are."""
    return logits if logits.dtype in (torch.float32, torch.float64) else logits.float()


def check_channels(config, facts: SplitFacts) -> None:
    """A model input with the split's channels (or gray images repeated to 3, as ``Grayscale(3)``)."""
    if config.in_channels != facts.channels and facts.channels != 1:
        raise SpecError(
            f"the split holds {facts.channels}-channel images ({'x'.join(map(str, facts.shape))}) but the "
            f"run asks for in_channels {config.in_channels}",
            f"pass --in-channels {facts.channels} (in a spec: in_channels: [{facts.channels}])",
        )


def make_optimizer(config, params, fused: bool = False, capturable: bool = False) -> torch.optim.Optimizer:
    extra: dict[str, Any] = {"fused": True} if fused else {}
    if config.optimizer == "adam":
        return torch.optim.Adam(
            params, lr=config.lr, weight_decay=config.weight_decay, capturable=capturable, **extra
        )
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, **extra
        )
    raise SpecError(f"unknown optimizer {config.optimizer!r}", "choose adam or sgd")


@dataclass
class EvalResult:
    loss: float
    accuracy: float
    confusion: list[list[int]]
    n: int


class Trainer:
    """Model + optimizer + AMP, with the one training step and the one evaluation both engines use."""

    def __init__(
        self,
        config,
        device: torch.device,
        *,
        channels_last: bool = False,
        fused: bool = False,
        capturable: bool = False,
        num_classes: int = 10,
    ):
        self.config = config
        self.device = device
        self.num_classes = num_classes
        with torch.random.fork_rng(devices=[]):  # the same initial weights for every engine and device
            torch.manual_seed(config.seed)
            model = create_model(
                config.model,
                stem=config.stem,
                in_channels=config.in_channels,
                num_classes=num_classes,
                input_size=config.input_size,
            )
        model = model.to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.channels_last = channels_last
        self.optimizer = make_optimizer(config, model.parameters(), fused=fused, capturable=capturable)
        self.amp_dtype = AMP_DTYPES[config.amp]
        self.scaler = torch.amp.GradScaler(device.type, enabled=config.amp == "fp16")
        self.autocast_cache = True  # must be off inside a CUDA graph capture
        self.model.train()

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype, cache_enabled=self.autocast_cache)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One optimizer step on one batch; returns the (detached, device) mean loss of the batch."""
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            loss = F.cross_entropy(self.model(x), y)
        self.backward_step(loss)
        return loss.detach()

    def backward_step(self, loss: torch.Tensor) -> None:
        """Backward pass and optimizer step, through the GradScaler when fp16 AMP uses one."""
        if self.scaler.is_enabled():
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()

    @torch.no_grad()
    def evaluate(self, batches) -> EvalResult:
        """Mean loss, accuracy and the confusion matrix (rows = true class) over ``(x, y)`` device batches."""
        self.model.eval()
        try:
            loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
            k = self.num_classes
            confusion = torch.zeros(k * k, dtype=torch.int64, device=self.device)
            for x, y in batches:
                with self.autocast():
                    out = self.model(x)
                loss_sum += F.cross_entropy(loss_precision(out), y, reduction="sum").double()
                confusion += torch.bincount(y * k + out.argmax(1), minlength=k**2)
        finally:
            self.model.train()
        cm = confusion.view(k, k).cpu()
        n = int(cm.sum())
        if n == 0:
            return EvalResult(float("nan"), float("nan"), cm.tolist(), 0)
        return EvalResult(float(loss_sum) / n, float(cm.diag().sum()) / n, cm.tolist(), n)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------- dataloader engine


class SplitDataset(torch.utils.data.Dataset):
    """One image at a time from the uint8 arrays, converted, normalised (and resized) on the host."""

    def __init__(self, x: np.ndarray, y: np.ndarray, mean, std, size: int = 28, channels: int = 1):
        self.x, self.y, self.mean, self.std, self.size, self.channels = x, y, mean, std, size, channels

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        img = as_nchw(torch.from_numpy(self.x[i])[None])  # 1 x C x H x W
        return model_input(img, self.mean, self.std, self.size, self.channels)[0].contiguous(), int(self.y[i])


class DataLoaderEngine:
    """The reference study's loop: DataLoader, host-side conversion, one host-to-device copy per batch."""

    name = "dataloader"
    sync_every = 1  # the reference reads the loss back every step

    def __init__(self, config, arrays: dict[str, np.ndarray], device: torch.device):
        self.config = config
        self.device = device
        self.facts = split_facts(config.dataset, arrays)
        check_channels(config, self.facts)
        self.trainer = Trainer(config, device, num_classes=self.facts.num_classes)
        mean, std = norm_constants(self.facts)
        self.datasets = {
            part: SplitDataset(
                arrays[f"x_{part}"], arrays[f"y_{part}"], mean, std, config.input_size, config.in_channels
            )
            for part in ("train", "val", "test")
        }
        self.pin_memory = bool(config.pin_memory and device.type == "cuda")
        self.n_train = len(self.datasets["train"])

    def describe(self) -> dict[str, Any]:
        return {
            "engine": self.name,
            "channels_last": False,
            "cuda_graph": False,
            "pin_memory_effective": self.pin_memory,
            "num_workers": self.config.num_workers,
            "optimizer_impl": "default",
            "partial_batch": "trained (DataLoader, drop_last=False)",
            "eval_batch_size": self.config.batch_size,
        }

    def setup(self) -> None:
        pass

    def _loader(self, dataset, **kw) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(
            dataset, num_workers=self.config.num_workers, pin_memory=self.pin_memory, **kw
        )

    def batches(self, epoch: int, steps: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = [
            b.tolist()
            for b in epoch_batches(self.config.seed, epoch, self.n_train, self.config.batch_size, steps)
        ]
        for x, y in self._loader(self.datasets["train"], batch_sampler=order):
            yield (
                x.to(self.device, non_blocking=self.pin_memory),
                y.to(self.device, non_blocking=self.pin_memory),
            )

    @staticmethod
    def batch_len(batch) -> int:
        return len(batch[1])

    def step(self, batch) -> torch.Tensor:
        return self.trainer.step(*batch)

    def eval_batches(self, part: str):
        for x, y in self._loader(self.datasets[part], batch_size=self.config.batch_size, shuffle=False):
            yield (
                x.to(self.device, non_blocking=self.pin_memory),
                y.to(self.device, non_blocking=self.pin_memory),
            )


# --------------------------------------------------------------------------- resident engine


class ResidentEngine:
    """The split on the device, batches gathered there, channels_last, and on CUDA one CUDA graph per step."""

    name = "resident"
    sync_every = 50  # loss read back (and checked for NaN) every this many steps and at the epoch end
    eval_batch_size = 1024
    warmup_steps = 3  # eager steps on a side stream before capture (cuDNN autotuning, lazy optimizer state)

    def __init__(
        self, config, arrays: dict[str, np.ndarray], device: torch.device, cuda_graph: bool | None = None
    ):
        self.config = config
        self.device = device
        self.use_graph = device.type == "cuda" if cuda_graph is None else cuda_graph
        on_cuda = device.type == "cuda"
        self.facts = split_facts(config.dataset, arrays)
        check_channels(config, self.facts)
        self.trainer = Trainer(
            config,
            device,
            channels_last=True,
            fused=on_cuda,
            capturable=on_cuda,
            num_classes=self.facts.num_classes,
        )
        self.arrays = arrays
        self.mean, self.std = norm_constants(self.facts, device)
        self.n_train = len(arrays["y_train"])
        self.graph: torch.cuda.CUDAGraph | None = None
        self.capture_seconds: float | None = None

    def describe(self) -> dict[str, Any]:
        on_cuda = self.device.type == "cuda"
        return {
            "engine": self.name,
            "channels_last": True,
            "cuda_graph": self.graph is not None,
            "pin_memory_effective": False,
            "num_workers": 0,
            "optimizer_impl": "fused, capturable" if on_cuda else "default",
            "partial_batch": "trained eagerly outside the graph" if self.use_graph else "trained",
            "eval_batch_size": self.eval_batch_size,
            "graph_capture_seconds": self.capture_seconds,
        }

    def setup(self) -> None:
        """Copy the split to the device (uint8, N x C x H x W; resized per batch) and, on CUDA, capture
        the step."""
        self.x: dict[str, torch.Tensor] = {}
        self.y: dict[str, torch.Tensor] = {}
        for part in ("train", "val", "test"):
            self.x[part] = as_nchw(torch.from_numpy(np.ascontiguousarray(self.arrays[f"x_{part}"]))).to(
                self.device
            )
            self.y[part] = torch.from_numpy(self.arrays[f"y_{part}"].astype(np.int64)).to(self.device)
        if self.use_graph:
            self._capture()

    def _gather(self, part: str, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = model_input(
            self.x[part].index_select(0, idx),
            self.mean,
            self.std,
            self.config.input_size,
            self.config.in_channels,
        )
        return x.contiguous(memory_format=torch.channels_last), self.y[part].index_select(0, idx)

    def _body(self) -> torch.Tensor:
        return self.trainer.step(*self._gather("train", self.static_idx))

    def _capture(self) -> None:
        t0 = time.perf_counter()
        tr = self.trainer
        tr.autocast_cache = False
        self.static_idx = self._index(self.config.batch_size)
        saved = _snapshot(tr)
        # warm up every shape an epoch trains (the full batch, and the partial last one if an epoch
        # reaches it) so cuDNN's autotuning happens here, in setup, and not inside the first epoch
        shapes = [self.static_idx]
        partial = self._partial_batch_size()
        if partial:
            shapes.append(self._index(partial))
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for idx in shapes:
                for _ in range(self.warmup_steps):
                    tr.step(*self._gather("train", idx))
        torch.cuda.current_stream(self.device).wait_stream(side)
        _restore(tr, saved)  # warm-up steps must not count: back to the exact pre-warm-up state
        tr.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.static_loss = self._body()
        self.graph = graph
        torch.cuda.synchronize(self.device)
        self.capture_seconds = round(time.perf_counter() - t0, 3)

    def _index(self, n: int) -> torch.Tensor:
        """The index batch ``0..n-1`` in this engine's batch layout (the graph's static input)."""
        return torch.arange(n, device=self.device)

    def _partial_batch_size(self) -> int:
        """Size of the last, partial batch of an epoch (0 if every batch an epoch trains is full)."""
        bs = self.config.batch_size
        steps = steps_per_epoch(self.n_train, bs, self.config.max_steps_per_epoch)
        return self.n_train - (steps - 1) * bs if steps * bs > self.n_train else 0

    def batches(self, epoch: int, steps: int) -> Iterator[torch.Tensor]:
        perm = epoch_permutation(self.config.seed, epoch, self.n_train).to(self.device)
        yield from list(perm.split(self.config.batch_size))[:steps]

    @staticmethod
    def batch_len(batch) -> int:
        return batch.numel()

    def step(self, idx: torch.Tensor) -> torch.Tensor:
        """One step; the returned loss is only valid until the next call (the graph reuses it)."""
        if self.graph is not None and idx.numel() == self.config.batch_size:
            self.static_idx.copy_(idx)
            self.graph.replay()
            return self.static_loss
        return self.trainer.step(*self._gather("train", idx))

    def eval_batches(self, part: str):
        n = len(self.y[part])
        for start in range(0, n, self.eval_batch_size):
            idx = torch.arange(start, min(start + self.eval_batch_size, n), device=self.device)
            yield self._gather(part, idx)


def _snapshot(tr: Trainer) -> dict[str, Any]:
    return {
        "model": {k: v.detach().clone() for k, v in tr.model.state_dict().items()},
        "optimizer": {
            p: {k: v.detach().clone() for k, v in st.items() if torch.is_tensor(v)}
            for p, st in tr.optimizer.state.items()
        },
        "scaler": (tr.scaler.get_scale(), tr.scaler._get_growth_tracker())
        if tr.scaler.is_enabled()
        else None,
    }


@torch.no_grad()
def _restore(tr: Trainer, saved: dict[str, Any]) -> None:
    """Put weights, optimizer state and scale back in place (same tensors, so a captured graph sees them).

    Optimizer state created by the warm-up (none existed before) is zeroed: for Adam (moments, step) and
    SGD's momentum buffer, zeros give exactly the same next step as the lazily created state would.
    """
    for k, v in tr.model.state_dict().items():
        v.copy_(saved["model"][k])
    for p, st in tr.optimizer.state.items():
        before = saved["optimizer"].get(p, {})
        for k, v in st.items():
            if not torch.is_tensor(v):
                continue
            if k in before:
                v.copy_(before[k])
            else:
                v.zero_()
    if saved["scaler"] is not None:
        scale, tracker = saved["scaler"]
        tr.scaler._scale.fill_(scale)
        tr.scaler._growth_tracker.fill_(tracker)


ENGINES = {"dataloader": DataLoaderEngine, "resident": ResidentEngine}


def build_engine(config, arrays: dict[str, np.ndarray], device: torch.device):
    if config.engine not in ENGINES:
        raise SpecError(f"unknown engine {config.engine!r}", f"choose one of {', '.join(ENGINES)}, fused")
    return ENGINES[config.engine](config, arrays, device)
