"""Horizontal fusion: N same-shape training runs trained as one model (HFTA, MLSys 2021).

N member runs that share model, stem, input shape, batch size, optimizer type, AMP mode, epochs and
split sizes (they may differ in dataset, learning rate, momentum, weight decay and seed) become one
model whose operators are the fused forms of the N copies:

- every ``Conv2d`` becomes one grouped convolution over the concatenated channels (``groups = N * g``);
  member ``i`` owns output channels ``[i*out, (i+1)*out)`` and reads input channels ``[i*in, (i+1)*in)``;
- every ``BatchNorm2d`` becomes one ``BatchNorm2d(N * C)``: statistics are per channel, so each member's
  normalisation (and running statistics) only ever sees its own batch;
- the classifier ``Linear`` becomes one batched matmul (``baddbmm``) over an ``N x out x in`` weight;
- element-wise and pooling layers are shared unchanged.

The fused input is ``B x (N*C) x H x W``: member ``i``'s own batch of ``B`` images sits in its channel
slice, so every member sees its own batch in its own order (from its own seed). The loss is the sum of
the members' mean losses, so each member's gradients are exactly those of its solo run.

Each fused parameter, viewed as ``N x -1``, is member-major; :class:`MemberOptimizer` uses that to apply
per-member learning rate, momentum and weight decay in one set of ``torch._foreach_*`` calls over the
fused parameters (per-member scale tensors), for SGD and Adam, without one optimizer per member and
without a host synchronisation (so the step is captured in the same CUDA graph as the forward and
backward). With fp16 AMP one GradScaler serves the group: an overflow in any member skips that step for
every member (the scale is shared), which a solo run would only skip for itself.

:func:`member_state_dict` slices member ``i`` back out as a normal state_dict that loads into the
torchvision model; :func:`run_train_group` writes each member's own ``record.json`` and ``best.pt``.
"""

from __future__ import annotations

import copy
import resource
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlbench.data.registry import split_facts
from dlbench.errors import SpecError
from dlbench.models import create_model
from dlbench.train.data import as_nchw, epoch_permutation, model_input, norm_constants
from dlbench.train.engines import (
    AMP_DTYPES,
    EvalResult,
    ResidentEngine,
    Trainer,
    check_channels,
    loss_precision,
)

# TrainConfig fields every member of a group must share (the rest may differ per member).
SHARED_FIELDS = (
    "model",
    "stem",
    "batch_size",
    "optimizer",
    "epochs",
    "device",
    "amp",
    "max_steps_per_epoch",
    "input_size",
    "in_channels",
)
# Fields members may differ in (anything else must be equal too).
MEMBER_FIELDS = ("dataset", "lr", "momentum", "weight_decay", "seed", "engine", "pin_memory", "num_workers")


# --------------------------------------------------------------------------- fused modules


class FusedConv2d(nn.Module):
    """N ``Conv2d`` of one shape as one grouped convolution over the concatenated channels."""

    def __init__(self, convs: Sequence[nn.Conv2d]):
        super().__init__()
        c = convs[0]
        self.members = len(convs)
        self.in_channels, self.out_channels = c.in_channels, c.out_channels
        self.stride, self.padding, self.dilation, self.groups = c.stride, c.padding, c.dilation, c.groups
        if c.padding_mode != "zeros":
            raise SpecError(
                f"fusion: conv padding_mode {c.padding_mode!r} is not supported", "use zeros padding"
            )
        self.weight = nn.Parameter(torch.cat([m.weight.detach() for m in convs], 0).clone())
        self.bias = (
            nn.Parameter(torch.cat([m.bias.detach() for m in convs], 0).clone())
            if c.bias is not None
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups * self.members
        )

    def extra_repr(self) -> str:
        return (
            f"members={self.members}, {self.in_channels}, {self.out_channels}, "
            f"kernel_size={tuple(self.weight.shape[2:])}, stride={self.stride}"
        )


class FusedBatchNorm2d(nn.BatchNorm2d):
    """N ``BatchNorm2d(C)`` as one ``BatchNorm2d(N * C)`` (statistics are per channel: exact)."""

    def __init__(self, bns: Sequence[nn.BatchNorm2d]):
        b = bns[0]
        super().__init__(
            len(bns) * b.num_features,
            eps=b.eps,
            momentum=b.momentum,
            affine=b.affine,
            track_running_stats=b.track_running_stats,
        )
        self.members = len(bns)
        with torch.no_grad():
            for name in ("weight", "bias", "running_mean", "running_var"):
                mine = getattr(self, name)
                if mine is not None:
                    mine.copy_(torch.cat([getattr(m, name).detach() for m in bns], 0))
            if self.num_batches_tracked is not None:
                self.num_batches_tracked.copy_(b.num_batches_tracked)


class FusedLinear(nn.Module):
    """N ``Linear`` as one batched matmul: ``B x (N*in)`` -> ``B x N x out``."""

    def __init__(self, linears: Sequence[nn.Linear]):
        super().__init__()
        lin = linears[0]
        self.members, self.in_features, self.out_features = len(linears), lin.in_features, lin.out_features
        self.weight = nn.Parameter(torch.stack([m.weight.detach() for m in linears]).clone())
        if lin.bias is None:
            raise SpecError("fusion: a Linear without bias is not supported", "use the torchvision model")
        self.bias = nn.Parameter(torch.stack([m.bias.detach() for m in linears]).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xs = x.reshape(x.shape[0], self.members, self.in_features).transpose(0, 1)  # N x B x in
        out = torch.baddbmm(self.bias.unsqueeze(1), xs, self.weight.transpose(1, 2))  # N x B x out
        return out.transpose(0, 1)  # B x N x out


_LEAVES = (FusedConv2d, FusedBatchNorm2d, FusedLinear)


def fuse_models(models: Sequence[nn.Module]) -> nn.Module:
    """One module computing all ``models`` at once (same architecture), each from its own weights."""
    first = models[0]
    if isinstance(first, nn.Conv2d):
        return FusedConv2d(models)
    if isinstance(first, nn.BatchNorm2d):
        return FusedBatchNorm2d(models)
    if isinstance(first, nn.Linear):
        return FusedLinear(models)
    if first._parameters or any(b is not None for b in first._buffers.values()):
        raise SpecError(
            f"fusion: no fused form of {type(first).__name__}",
            "fuse torchvision ResNets (Conv2d, BatchNorm2d, Linear) only",
        )
    fused = copy.copy(first)  # shallow: the forward and attributes; children replaced below
    fused._modules = {}
    for name in first._modules:
        fused._modules[name] = fuse_models([m.get_submodule(name) for m in models])
    return fused


def member_state_dict(fused: nn.Module, i: int) -> dict[str, torch.Tensor]:
    """Member ``i``'s weights and buffers as the unfused model's state_dict (CPU, contiguous)."""
    out: dict[str, torch.Tensor] = {}
    for prefix, mod in fused.named_modules():
        if not isinstance(mod, _LEAVES):
            continue
        pre = f"{prefix}." if prefix else ""
        for name, t in list(mod.named_parameters(recurse=False)) + list(mod.named_buffers(recurse=False)):
            if t is None:
                continue
            if name == "num_batches_tracked":
                out[pre + name] = t.detach().cpu().clone()
                continue
            n = mod.members
            per = t.detach().reshape(n, -1)[i]
            shape = t.shape[1:] if isinstance(mod, FusedLinear) else (t.shape[0] // n, *t.shape[1:])
            out[pre + name] = per.reshape(shape).cpu().contiguous().clone()
    return out


@torch.no_grad()
def load_member_state_dict(fused: nn.Module, i: int, state: dict[str, torch.Tensor]) -> None:
    """Write an unfused state_dict into member ``i``'s slice of ``fused`` (the inverse of the above)."""
    for prefix, mod in fused.named_modules():
        if not isinstance(mod, _LEAVES):
            continue
        pre = f"{prefix}." if prefix else ""
        for name, t in list(mod.named_parameters(recurse=False)) + list(mod.named_buffers(recurse=False)):
            if t is None or name == "num_batches_tracked":
                continue
            src = state[pre + name].to(t.device, t.dtype)
            if isinstance(mod, FusedLinear):
                t[i].copy_(src)
            else:  # member i's rows of dim 0 (any memory format, e.g. a channels_last conv weight)
                rows = t.shape[0] // mod.members
                t[i * rows : (i + 1) * rows].copy_(src)


# --------------------------------------------------------------------------- per-member optimizer


class MemberOptimizer(torch.optim.Optimizer):
    """SGD or Adam over fused parameters with each member's own lr, momentum and weight decay.

    Hyperparameters are per-element scale tensors (each member's value over its slice of every fused
    parameter), so one ``torch._foreach_*`` sequence steps all members; the math is torch's SGD
    (``dampening=0``, no Nesterov) and Adam (no AMSGrad). State is created at construction (zeros give
    exactly the lazily created state's first step), the step count is a device tensor, and nothing reads
    back to the host, so the step can be captured in a CUDA graph. Supports the GradScaler without a host
    synchronisation (``_step_supports_amp_scaling``): a step with non-finite gradients changes nothing.
    """

    _step_supports_amp_scaling = True

    def __init__(
        self,
        params,
        members: int,
        kind: str,
        lr: Sequence[float],
        momentum: Sequence[float],
        weight_decay: Sequence[float],
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        params = list(params)
        if kind not in ("adam", "sgd"):
            raise SpecError(f"unknown optimizer {kind!r}", "choose adam or sgd")
        super().__init__(params, {"kind": kind, "betas": betas, "eps": eps})
        self.members, self.kind, self.betas, self.eps = members, kind, betas, eps
        self.params = params
        device = params[0].device
        self.hyper = {"lr": list(lr), "momentum": list(momentum), "weight_decay": list(weight_decay)}

        def per_element(values: Sequence[float]) -> list[torch.Tensor]:
            vec = torch.tensor(list(values), dtype=params[0].dtype, device=device)
            out = []
            for p in params:  # same shape, dtype and memory format as the parameter (foreach fast path)
                t = torch.empty_like(p)
                t.copy_(vec[:, None].expand(members, p.numel() // members).reshape(p.shape))
                out.append(t)
            return out

        self.lr = per_element(lr)
        self.wd = per_element(weight_decay) if any(weight_decay) else None
        self.mom = per_element(momentum) if kind == "sgd" and any(momentum) else None
        step = torch.zeros((), dtype=params[0].dtype, device=device)
        for p in params:
            st = self.state[p]
            if kind == "adam":
                st["step"] = step  # one counter shared by every parameter
                st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            elif self.mom is not None:
                st["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        self._step_count_t = step

    @torch.no_grad()
    def step(self, closure=None):
        """One step of every member. Under a GradScaler, torch sets ``self.grad_scale`` (the scale, not yet
        divided out) and ``self.found_inf`` (non-zero if any gradient is not finite) before calling this."""
        if closure is not None:
            raise ValueError("MemberOptimizer does not take a closure")
        grad_scale, found_inf = getattr(self, "grad_scale", None), getattr(self, "found_inf", None)
        params = self.params
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        keep = None
        if grad_scale is not None:  # GradScaler: unscale here; skip the whole step on a non-finite gradient
            grads = torch._foreach_div(grads, grad_scale)
            if found_inf is not None:
                ok = found_inf == 0
                keep = ok.to(self._step_count_t.dtype)
                grads = [torch.where(ok, g, torch.zeros((), dtype=g.dtype, device=g.device)) for g in grads]
        if self.wd is not None:
            grads = torch._foreach_addcmul(grads, params, self.wd)
        if self.kind == "sgd":
            self._sgd(params, grads, keep)
        else:
            self._adam(params, grads, keep)

    def _sgd(self, params, grads, keep) -> None:
        if self.mom is not None:
            bufs = [self.state[p]["momentum_buffer"] for p in params]
            if keep is None:
                torch._foreach_mul_(bufs, self.mom)
            else:  # a skipped step keeps the buffer: factor 1 instead of the momentum
                factor = torch._foreach_add(torch._foreach_mul(self.mom, keep), 1.0 - keep)
                torch._foreach_mul_(bufs, factor)
            torch._foreach_add_(bufs, grads)
            grads = bufs
        update = torch._foreach_mul(grads, self.lr)
        if keep is not None:
            torch._foreach_mul_(update, keep)
        torch._foreach_sub_(params, update)

    def _adam(self, params, grads, keep) -> None:
        beta1, beta2 = self.betas
        step = self._step_count_t
        m = [self.state[p]["exp_avg"] for p in params]
        v = [self.state[p]["exp_avg_sq"] for p in params]
        if keep is None:
            step.add_(1)
            torch._foreach_lerp_(m, grads, 1 - beta1)
            torch._foreach_mul_(v, beta2)
            torch._foreach_addcmul_(v, grads, grads, value=1 - beta2)
        else:
            step.add_(keep)
            b1 = beta1 + (1 - beta1) * (1 - keep)  # 1 on a skipped step: moments unchanged
            b2 = beta2 + (1 - beta2) * (1 - keep)
            torch._foreach_mul_(m, b1)
            torch._foreach_add_(m, torch._foreach_mul(grads, (1 - beta1) * keep))
            torch._foreach_mul_(v, b2)
            torch._foreach_add_(v, torch._foreach_mul(torch._foreach_mul(grads, grads), (1 - beta2) * keep))
        safe = torch.clamp(step, min=1)  # a never-stepped state: bias corrections stay finite
        bc1 = 1 - torch.pow(beta1, safe)
        bc2_sqrt = torch.sqrt(1 - torch.pow(beta2, safe))
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, bc2_sqrt)
        torch._foreach_add_(denom, self.eps)
        update = torch._foreach_div(m, denom)
        torch._foreach_mul_(update, self.lr)
        torch._foreach_div_(update, bc1)
        if keep is not None:
            torch._foreach_mul_(update, keep)
        torch._foreach_sub_(params, update)


# --------------------------------------------------------------------------- trainer and engine


def check_group(configs: Sequence[Any]) -> None:
    """One line naming the first field two members disagree on (and must not)."""
    if not configs:
        raise SpecError("a fused group needs at least one member run", "pass one or more configs")
    from dlbench.models import is_fusable

    if not is_fusable(configs[0].model):
        raise SpecError(
            f"model {configs[0].model} cannot be fused (its registry entry says so: the fused engine has "
            "fused forms of Conv2d, BatchNorm2d and Linear only)",
            "use --engine resident or dataloader (a study trains such runs solo)",
        )
    first = configs[0].model_dump()
    for c in configs[1:]:
        d = c.model_dump()
        for k, v in first.items():
            if k not in MEMBER_FIELDS and d.get(k) != v:
                raise SpecError(
                    f"runs {configs[0].run_id} and {c.run_id} cannot be fused: {k} is {v!r} vs {d.get(k)!r}",
                    f"fuse only runs that share {', '.join(SHARED_FIELDS)}",
                )
    ids = [c.run_id for c in configs]
    if len(set(ids)) != len(ids):
        raise SpecError("a fused group holds the same run twice", "list each run once")


class FusedTrainer(Trainer):
    """The fused model of N members, per-member optimizer, AMP, the fused step and per-member evaluation."""

    def __init__(
        self,
        configs: Sequence[Any],
        device: torch.device,
        *,
        channels_last: bool = False,
        num_classes: int = 10,
    ):
        self.configs = list(configs)
        self.config = configs[0]
        self.members = len(configs)
        self.device = device
        self.num_classes = num_classes
        solo = []
        for c in configs:  # each member's initial weights exactly as its solo run draws them
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(c.seed)
                solo.append(
                    create_model(
                        c.model,
                        stem=c.stem,
                        in_channels=c.in_channels,
                        num_classes=num_classes,
                        input_size=c.input_size,
                    )
                )
        model = fuse_models(solo).to(device)
        del solo
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.channels_last = channels_last
        self.optimizer = MemberOptimizer(
            model.parameters(),
            self.members,
            self.config.optimizer,
            lr=[c.lr for c in configs],
            momentum=[c.momentum for c in configs],
            weight_decay=[c.weight_decay for c in configs],
        )
        self.amp_dtype = AMP_DTYPES[self.config.amp]
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.config.amp == "fp16")
        self.autocast_cache = True
        self.model.train()

    def member_losses(self, out: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Per-member loss from fused logits ``B x N x classes`` and labels ``N x B``: an ``N`` vector."""
        per = F.cross_entropy(loss_precision(out).transpose(1, 2), y.t(), reduction="none")  # B x N
        return per.mean(0) if reduction == "mean" else per.double().sum(0)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One optimizer step of every member; returns the N members' (detached, device) mean losses."""
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            out = self.model(x)
        losses = self.member_losses(out, y)
        self.backward_step(losses.sum())  # members are independent: each member's gradient is its own loss's
        return losses.detach()

    @torch.no_grad()
    def evaluate(self, batches) -> list[EvalResult]:
        """Each member's loss, accuracy and confusion matrix over fused ``(x, y)`` batches (y: N x b)."""
        n_m, k = self.members, self.num_classes
        self.model.eval()
        try:
            loss_sum = torch.zeros(n_m, dtype=torch.float64, device=self.device)
            confusion = torch.zeros(n_m * k * k, dtype=torch.int64, device=self.device)
            offset = (torch.arange(n_m, device=self.device) * k * k)[:, None]
            for x, y in batches:
                with self.autocast():
                    out = self.model(x)
                loss_sum += self.member_losses(out, y, reduction="sum")
                codes = offset + y * k + out.argmax(2).t()
                confusion += torch.bincount(codes.reshape(-1), minlength=n_m * k * k)
        finally:
            self.model.train()
        cms = confusion.view(n_m, k, k).cpu()
        losses = loss_sum.cpu()
        results = []
        for i in range(n_m):
            cm = cms[i]
            n = int(cm.sum())
            if n == 0:
                results.append(EvalResult(float("nan"), float("nan"), cm.tolist(), 0))
            else:
                results.append(EvalResult(float(losses[i]) / n, float(cm.diag().sum()) / n, cm.tolist(), n))
        return results


class FusedEngine(ResidentEngine):
    """The resident engine for a fused group: every member's split on the device, its own batch order,
    one fused step (captured in one CUDA graph on CUDA)."""

    name = "fused"

    def __init__(
        self,
        configs: Sequence[Any],
        arrays: Sequence[dict[str, np.ndarray]],
        device: torch.device,
        cuda_graph: bool | None = None,
    ):
        self.configs = list(configs)
        self.config = configs[0]
        self.members = len(configs)
        self.device = device
        self.use_graph = device.type == "cuda" if cuda_graph is None else cuda_graph
        sizes = {part: {len(a[f"y_{part}"]) for a in arrays} for part in ("train", "val", "test")}
        for part, s in sizes.items():
            if len(s) > 1:
                raise SpecError(
                    f"fused members' {part} splits differ in size ({sorted(s)})",
                    "fuse runs whose splits have the same sizes (same data settings)",
                )
        facts = [split_facts(c.dataset, a) for c, a in zip(configs, arrays, strict=True)]
        shapes = {(f.num_classes, f.shape) for f in facts}
        if len(shapes) > 1:
            raise SpecError(
                f"fused members' splits differ in classes or image shape ({sorted(shapes)})",
                "fuse runs whose datasets have the same classes count and image shape",
            )
        for c, f in zip(configs, facts, strict=True):
            check_channels(c, f)
        self.trainer = FusedTrainer(configs, device, channels_last=True, num_classes=facts[0].num_classes)
        self.arrays = list(arrays)
        self.norms = [norm_constants(f, device) for f in facts]
        self.n_train = len(arrays[0]["y_train"])
        self.graph = None
        self.capture_seconds = None

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(
            engine=self.name,
            optimizer_impl="per-member foreach (MemberOptimizer)",
            fused_members=self.members,
            fused_form="grouped conv / concatenated batch norm / batched matmul",
        )
        return d

    def setup(self) -> None:
        self.xs: list[dict[str, torch.Tensor]] = []
        self.ys: list[dict[str, torch.Tensor]] = []
        for a in self.arrays:
            self.xs.append(
                {
                    p: as_nchw(torch.from_numpy(np.ascontiguousarray(a[f"x_{p}"]))).to(self.device)
                    for p in ("train", "val", "test")
                }
            )
            self.ys.append(
                {
                    p: torch.from_numpy(a[f"y_{p}"].astype(np.int64)).to(self.device)
                    for p in ("train", "val", "test")
                }
            )
        if self.use_graph:
            self._capture()

    def _index(self, n: int) -> torch.Tensor:
        return torch.arange(n, device=self.device).expand(self.members, n).contiguous()

    def _gather(self, part: str, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Member i's images ``idx[i]`` into channel slice i: ``b x (N*C) x H x W``; labels ``N x b``."""
        c = self.config
        xs = [
            model_input(self.xs[i][part].index_select(0, idx[i]), mean, std, c.input_size, c.in_channels)
            for i, (mean, std) in enumerate(self.norms)
        ]
        x = torch.cat(xs, 1) if len(xs) > 1 else xs[0]
        y = torch.stack([self.ys[i][part].index_select(0, idx[i]) for i in range(self.members)])
        return x.contiguous(memory_format=torch.channels_last), y

    def batches(self, epoch: int, steps: int) -> Iterator[torch.Tensor]:
        perms = torch.stack([epoch_permutation(c.seed, epoch, self.n_train) for c in self.configs]).to(
            self.device
        )
        yield from list(perms.split(self.config.batch_size, dim=1))[:steps]

    @staticmethod
    def batch_len(batch) -> int:
        return batch.shape[-1]  # images per member

    def step(self, idx: torch.Tensor) -> torch.Tensor:
        if self.graph is not None and idx.shape[-1] == self.config.batch_size:
            self.static_idx.copy_(idx)
            self.graph.replay()
            return self.static_loss
        return self.trainer.step(*self._gather("train", idx))

    def eval_batches(self, part: str):
        n = len(self.ys[0][part])
        for start in range(0, n, self.eval_batch_size):
            yield self._gather(part, self._index(min(start + self.eval_batch_size, n) - start) + start)


def peak_host_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def now() -> float:
    return time.perf_counter()
