"""Time N solo resident runs against one fused run of the same N configs in one process; print JSON.

    python bench/train_fused.py --device cuda --model resnet18 --batch-size 16 --members 8 --out fused.json
    python bench/train_fused.py --device cuda --members 8 --form vmap           # the torch.func form instead
    python bench/train_fused.py --device cpu --members 2 --steps 3 --warmup 1   # a CPU check in seconds

The N member configs share model, batch size, input shape, optimizer and AMP and differ in learning rate
(``--lr`` times 1, 1/2, 1/4, 1/8, ...), dataset (alternating Fashion-MNIST / MNIST normalisation) and seed
(``--seed + i``), as a sweep would. Each solo run is the ``resident`` engine (CUDA graph on CUDA); the
fused run is the ``fused`` engine (dlbench.train.fused: grouped convolutions, concatenated batch norm,
batched matmul, per-member optimizer, one CUDA graph). Both run the train step's loop
(dlbench.train.loop.train_steps) on full batches: setup, ``--warmup`` untimed steps, then ``--steps`` timed
steps with the device synchronised before and after.

Printed: s/step of each solo run and of the fused run, images/s per member and aggregate (solo runs one
after another in one process: aggregate = N x batch / sum of their s/step), the ratio fused / solo
aggregate, peak device memory of each, and the members' agreement with their solo runs: an eager check
of each member's first loss and first-step gradients (per tensor, norm-wise) on the same first batch, in
fp32 (TF32 off: ``first_loss_max_rel_diff`` and ``first_step_grad_max_rel_diff``, a measured figure that
depends on the device's kernels) and in float64 (``agreement_fp64``: the fusion's exactness, ~1e-12 on any
CPU), and the first training losses of the timed engines under ``--amp``.

``--form vmap`` times ``torch.func.stack_module_state`` + ``vmap`` over the N solo models instead of the
grouped form (batch norm in training mode, running statistics not tracked; plain foreach Adam/SGD with
one learning rate per member via per-member scale tensors; no CUDA graph): a timing comparison only.

Data: synthetic uint8 images of the Fashion-MNIST shape, one set per member (timing does not depend on
pixel values). The member runs are ``dlbench.spec.TrainConfig`` (the train step's config): needs torch,
torchvision and pydantic (``make setup`` installs them with dlbench).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
import torch.nn.functional as F

import bench_common
from dlbench.record import device_info, environment, now_iso
from dlbench.train.engines import ResidentEngine, Trainer
from dlbench.train.fused import FusedEngine


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--device", default="auto", help="cpu, cuda, or auto (cuda when visible)")
    p.add_argument("--model", default="resnet18", choices=["resnet18", "resnet34", "resnet50"])
    p.add_argument("--stem", default="imagenet", choices=["imagenet", "small"])
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--members", type=int, default=4, help="N: member runs fused into one model")
    p.add_argument("--optimizer", default="adam", choices=["adam", "sgd"])
    p.add_argument("--lr", type=float, default=1e-3, help="member i trains with lr / 2**(i %% 4)")
    p.add_argument(
        "--amp", default=None, choices=["off", "fp16", "bf16"], help="default: bf16 on cuda, off on cpu"
    )
    p.add_argument(
        "--steps", type=int, default=None, help="timed steps per run; default: 300 on cuda, 4 on cpu"
    )
    p.add_argument(
        "--warmup", type=int, default=None, help="untimed steps first; default: 20 on cuda, 1 on cpu"
    )
    p.add_argument(
        "--repeats", type=int, default=3, help="the timed steps are split into this many timed chunks"
    )
    p.add_argument(
        "--form",
        default="grouped",
        choices=["grouped", "vmap", "both"],
        help="fused form: grouped convolutions (the fused engine), torch.func vmap, or both",
    )
    p.add_argument(
        "--cuda-graph",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="on CUDA: capture the solo and fused (grouped) steps in CUDA graphs",
    )
    p.add_argument("--skip-solo", action="store_true", help="time the fused run only (no ratio)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="also write the JSON to this file")
    return p.parse_args(argv)


def member_configs(args, device_name: str, amp: str) -> list:
    """Members' ``TrainConfig``: resident engine, lr halved per member (cycle of 4), datasets alternate."""
    datasets = ("fashion-mnist", "mnist")
    return [
        bench_common.train_config(
            dataset=datasets[i % 2],
            model=args.model,
            stem=args.stem,
            batch_size=args.batch_size,
            optimizer=args.optimizer,
            lr=args.lr / 2 ** (i % 4),
            device=device_name,
            amp=amp,
            seed=args.seed + i,
        )
        for i in range(args.members)
    ]


def synthetic_split(seed: int, n_train: int) -> dict[str, np.ndarray]:
    return bench_common.synthetic_split(np.random.default_rng(1000 + seed), n_train, 64)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().reshape(-1), b.double().reshape(-1)
    return float((a - b).norm() / b.norm().clamp(min=1e-30))


def agreement(configs, arrays, device, dtype: torch.dtype = torch.float32) -> dict:
    """Each member's first loss and first-step gradients, fused vs solo, eager, in ``dtype`` (float32 or
    float64: models, inputs and optimizer state; TF32 off)."""
    tf32 = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        no_amp = [c.model_copy(update={"amp": "off"}) for c in configs]  # in ``dtype`` throughout
        fused = FusedEngine(no_amp, arrays, device, cuda_graph=False)
        fused.setup()
        idx = next(iter(fused.batches(0, 1)))
        x, y = fused._gather("train", idx)
        tr = fused.trainer
        tr.optimizer.zero_grad(set_to_none=True)
        losses = tr.member_losses(tr.model(x), y)
        losses.sum().backward()
        fused_grads = {n: p.grad.detach().reshape(len(configs), -1) for n, p in tr.model.named_parameters()}
        loss_diffs, grad_diffs = [], []
        for i, c in enumerate(no_amp):
            solo = Trainer(c, device, channels_last=True)
            xi = x[:, i * c.in_channels : (i + 1) * c.in_channels].contiguous(
                memory_format=torch.channels_last
            )
            loss = F.cross_entropy(solo.model(xi), y[i])
            loss.backward()
            loss_diffs.append(
                abs(float(loss.detach()) - float(losses[i].detach())) / abs(float(loss.detach()))
            )
            grad_diffs.append(max(_rel(fused_grads[n][i], p.grad) for n, p in solo.model.named_parameters()))
            del solo
        return {
            "first_loss_max_rel_diff": max(loss_diffs),
            "first_step_grad_max_rel_diff": max(grad_diffs),
            "first_loss_rel_diff_per_member": loss_diffs,
            "first_step_grad_rel_diff_per_member": grad_diffs,
            "check": f"eager, {str(dtype).removeprefix('torch.')}, TF32 off, the members' first batches; "
            "gradients per tensor, norm-wise",
        }
    finally:
        torch.set_default_dtype(default_dtype)
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32


def _reset_memory(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak(device) -> int | None:
    return torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None


def time_engine(engine, device, steps: int, warmup: int, repeats: int) -> dict:
    """setup, warm-up, then ``steps`` timed steps in ``repeats`` chunks (bench_common.time_engine)."""
    t = bench_common.time_engine(engine, device, steps, warmup, repeats)
    last_losses = t["chunk_losses"][-1] if t["chunk_losses"] else None
    return {
        "seconds_per_step": t["seconds_per_step"],
        "seconds_per_step_std": t["seconds_per_step_std"],
        "chunk_seconds_per_step": t["chunk_seconds_per_step"],
        "setup_seconds": t["setup_seconds"],
        "warmup_seconds": t["warmup_seconds"],
        "first_losses": t["warmup_losses"][:1],
        "last_loss": last_losses[-1] if last_losses else None,
        "finite_losses": bool(np.isfinite(np.asarray(last_losses, dtype=float)).all()),
    }


# --------------------------------------------------------------------------- the vmap form


class VmapEngine:
    """N solo models as stacked parameters, one ``vmap``-ed functional step (timing comparison only)."""

    name = "vmap"
    sync_every = 50

    def __init__(self, configs, arrays, device):
        from torch.func import functional_call, grad_and_value, stack_module_state, vmap

        self.config, self.configs, self.device, self.members = configs[0], configs, device, len(configs)
        models = [Trainer(c, device).model for c in configs]
        for m in models:  # vmap cannot update running statistics in place: batch statistics only
            for mod in m.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.track_running_stats, mod.running_mean, mod.running_var = False, None, None
        self.params, self.buffers = stack_module_state(models)
        self.base = models[0].to("meta")
        self.inner = FusedEngine(configs, arrays, device, cuda_graph=False)  # data and batch gathering
        self.n_train = self.inner.n_train
        self.amp_dtype = {"off": None, "fp16": torch.float16, "bf16": torch.bfloat16}[self.config.amp]
        names = list(self.params)
        self.names = names
        lr = torch.tensor([c.lr for c in configs], device=device)
        self.lr = [lr.view(-1, *([1] * (self.params[n].dim() - 1))) for n in names]
        self.m = [torch.zeros_like(self.params[n]) for n in names]
        self.v = [torch.zeros_like(self.params[n]) for n in names]
        self.t = 0

        dtype = self.amp_dtype

        def loss_fn(params, buffers, x, y):
            # Mixed precision by casting, not autocast: autocast under a vmap-ed grad meets float gradients in
            # the batch-norm backward ("expected scalar type BFloat16 but found Float"). The forward runs in
            # the AMP dtype from half-precision copies of the fp32 parameters, which keep the gradients.
            if dtype is not None:
                params = {k: v.to(dtype) for k, v in params.items()}
                x = x.to(dtype)
            out = functional_call(self.base, (params, buffers), (x,))
            return F.cross_entropy(out.float(), y)

        self.grad_fn = vmap(grad_and_value(loss_fn), in_dims=(0, 0, 0, 0))

    def setup(self):
        self.inner.setup()

    def batches(self, epoch, steps):
        return self.inner.batches(epoch, steps)

    @staticmethod
    def batch_len(batch):
        return batch.shape[-1]

    def step(self, idx):
        x, y = self.inner._gather("train", idx)
        c = self.config.in_channels
        xs = (
            x.contiguous().view(x.shape[0], self.members, c, *x.shape[2:]).transpose(0, 1)
        )  # N x B x C x H x W
        grads, losses = self.grad_fn(self.params, self.buffers, xs, y)
        g = [grads[n] for n in self.names]
        p = [self.params[n] for n in self.names]
        with torch.no_grad():
            if self.config.optimizer == "sgd":
                torch._foreach_sub_(p, torch._foreach_mul(g, self.lr))
            else:
                self.t += 1
                b1, b2 = 0.9, 0.999
                torch._foreach_lerp_(self.m, g, 1 - b1)
                torch._foreach_mul_(self.v, b2)
                torch._foreach_addcmul_(self.v, g, g, value=1 - b2)
                denom = torch._foreach_sqrt(self.v)
                torch._foreach_div_(denom, (1 - b2**self.t) ** 0.5)
                torch._foreach_add_(denom, 1e-8)
                upd = torch._foreach_div(self.m, denom)
                torch._foreach_mul_(upd, self.lr)
                torch._foreach_div_(upd, 1 - b1**self.t)
                torch._foreach_sub_(p, upd)
        return losses.detach()


# --------------------------------------------------------------------------- main


def _finite(value):
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def main(argv=None) -> int:
    return bench_common.main("train_fused", parse_args, run, argv)


def _log(msg: str) -> None:
    print(f"train_fused: {msg}", file=sys.stderr, flush=True)


def time_solo(
    configs, arrays, device, steps: int, warmup: int, repeats: int, graph: bool, bs: int
) -> list[dict]:
    """Each member trained alone on the resident engine, one after another."""
    solo = []
    for i, c in enumerate(configs):
        _log(f"solo {i + 1}/{len(configs)} (resident, lr {c.lr:g}, {c.dataset}) ...")
        _reset_memory(device)
        eng = ResidentEngine(c, arrays[i], device, cuda_graph=graph)
        r = time_engine(eng, device, steps, warmup, repeats)
        r.update(
            peak_memory_device_bytes=_peak(device),
            lr=c.lr,
            dataset=c.dataset,
            seed=c.seed,
            cuda_graph=eng.graph is not None,
            images_per_second=bs / r["seconds_per_step"],
        )
        solo.append(r)
        del eng
    return solo


def time_fused(
    form: str,
    configs,
    arrays,
    device,
    steps: int,
    warmup: int,
    repeats: int,
    graph: bool,
    bs: int,
    fatal: bool,
) -> dict:
    """All members as one fused model (``grouped`` convolutions or ``vmap``); a form that fails on this
    torch/device is reported in the JSON unless it is the one asked for (``fatal``)."""
    n_m = len(configs)
    _log(f"fused ({form}, {n_m} members) ...")
    _reset_memory(device)
    try:
        if form == "grouped":
            eng = FusedEngine(configs, arrays, device, cuda_graph=graph)
        else:
            eng = VmapEngine(configs, arrays, device)
        r = time_engine(eng, device, steps, warmup, repeats)
    except Exception as exc:
        if fatal:
            raise
        return {"error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"}
    r.update(
        peak_memory_device_bytes=_peak(device),
        cuda_graph=getattr(eng, "graph", None) is not None,
        images_per_second_per_member=bs / r["seconds_per_step"],
        images_per_second_aggregate=n_m * bs / r["seconds_per_step"],
    )
    fl = r.pop("first_losses")
    r["first_losses_per_member"] = fl[0] if fl else None
    del eng
    return r


def run(args) -> int:
    if args.members < 1:
        raise SystemExit("train_fused: --members must be >= 1")
    tr = bench_common.torch_run("train_fused", args, steps=(300, 4), warmup=(20, 1))
    device, on_cuda, amp, steps, warmup = tr.device, tr.on_cuda, tr.amp, tr.steps, tr.warmup
    configs = member_configs(args, device.type, amp)
    bs, n_m = args.batch_size, args.members
    n_train = (steps + warmup + 2) * bs
    arrays = [synthetic_split(c.seed, n_train) for c in configs]
    graph = args.cuda_graph and on_cuda

    _log(f"agreement check ({n_m} members, fp32 and float64) ...")
    agree = agreement(configs, arrays, device)
    agree64 = agreement(configs, arrays, device, torch.float64)

    solo = (
        [] if args.skip_solo else time_solo(configs, arrays, device, steps, warmup, args.repeats, graph, bs)
    )
    forms = ["grouped", "vmap"] if args.form == "both" else [args.form]
    fused = {
        form: time_fused(
            form, configs, arrays, device, steps, warmup, args.repeats, graph, bs, fatal=form == args.form
        )
        for form in forms
    }

    report = {
        "benchmark": "train_fused",
        "when": now_iso(),
        "config": {
            "model": args.model,
            "stem": args.stem,
            "batch_size": bs,
            "members": n_m,
            "optimizer": args.optimizer,
            "amp": amp,
            "timed_steps": steps,
            "warmup_steps": warmup,
            "cuda_graph": graph,
            "form": args.form,
            "members_lr": [c.lr for c in configs],
            "members_dataset": [c.dataset for c in configs],
            "members_seed": [c.seed for c in configs],
        },
        "data": {
            "source": "synthetic",
            "n_train_per_member": n_train,
            "note": "random uint8 28x28 images, random labels, one set per member (timing only)",
        },
        **{k: agree[k] for k in ("first_loss_max_rel_diff", "first_step_grad_max_rel_diff")},
        "agreement": agree,
        "agreement_fp64": agree64,
        "solo": solo,
        "fused": fused,
        "device": device_info(str(device)),
        "environment": environment(),
    }
    if solo:
        solo_sum = sum(r["seconds_per_step"] for r in solo)
        report["solo_aggregate"] = {
            "seconds_per_step_all_members": solo_sum,
            "images_per_second_aggregate": n_m * bs / solo_sum,
            "peak_memory_device_bytes_max": max((r["peak_memory_device_bytes"] or 0) for r in solo)
            if on_cuda
            else None,
        }
        report["ratio"] = {}
        for form, r in fused.items():
            if "error" in r:
                continue
            report["ratio"][f"{form}_fused_over_solo_aggregate_throughput"] = (
                r["images_per_second_aggregate"] / report["solo_aggregate"]["images_per_second_aggregate"]
            )
            fl = r.get("first_losses_per_member")
            if fl:
                diffs = [
                    abs(fl[i] - s["first_losses"][0]) / abs(s["first_losses"][0])
                    for i, s in enumerate(solo)
                    if s["first_losses"]
                ]
                report["ratio"][f"{form}_first_train_loss_max_rel_diff_amp"] = max(diffs) if diffs else None
    bench_common.emit(_finite(report), args.out)  # strict JSON: a NaN/inf becomes null
    return 0


if __name__ == "__main__":
    sys.exit(main())
