"""Variants of the fused (grouped-convolution) step: memory format, cudnn.benchmark, AMP dtype, member count.

Times one solo resident ResNet-18 (batch 16) and fused groups of 8 and 32 members with the synthetic data
and the timing loop of ``bench/train_fused.py``, prints each result and writes ``$OUT/exp_fused.json``
(``/tmp`` without ``$OUT``). On a GPU, from the repository root::

    PYTHONPATH=src:. python bench/fused_variants.py

A CPU smoke check of the script itself (numbers meaningless)::

    DEV=cpu STEPS=1 WARM=1 M32=2 NTRAIN=64 PYTHONPATH=src:. python bench/fused_variants.py
"""

from __future__ import annotations

import json
import os
import sys

import torch

import train_fused as tf  # beside this script
from dlbench.train.engines import ResidentEngine
from dlbench.train.fused import FusedEngine

DEV = torch.device(os.environ.get("DEV", "cuda"))
STEPS, WARM = int(os.environ.get("STEPS", 300)), int(os.environ.get("WARM", 20))
NTRAIN = int(os.environ.get("NTRAIN", 4096))
M32 = int(os.environ.get("M32", 32))


class Args:
    """What ``train_fused.member_configs`` reads from its command line."""

    def __init__(self, members: int, model: str = "resnet18", batch_size: int = 16):
        self.members, self.model, self.stem, self.batch_size = members, model, "imagenet", batch_size
        self.optimizer, self.lr, self.seed = "adam", 1e-3, 0


def fused_engine(members: int, amp: str, nchw: bool) -> tuple[FusedEngine, int]:
    cfgs = tf.member_configs(Args(members), DEV.type, amp)
    engine = FusedEngine(cfgs, [tf.synthetic_split(c.seed, NTRAIN) for c in cfgs], DEV)
    if nchw:  # the fused engine uses channels_last; this variant runs model and batches in NCHW
        engine.trainer.model = engine.trainer.model.to(memory_format=torch.contiguous_format)
        gather = engine._gather
        engine._gather = lambda part, idx: (lambda x, y: (x.contiguous(), y))(*gather(part, idx))
    return engine, cfgs[0].batch_size


def timed(engine) -> dict:
    return tf.time_engine(engine, DEV, STEPS, WARM, 1 if STEPS < 3 else 3)


def main() -> int:
    out: dict[str, dict] = {}
    for name, bench in (("solo_r18_bf16", False), ("solo_r18_bf16_bench", True)):
        torch.backends.cudnn.benchmark = bench
        cfg = tf.member_configs(Args(1), DEV.type, "bf16")[0]
        r = timed(ResidentEngine(cfg, tf.synthetic_split(0, NTRAIN), DEV))
        out[name] = {
            "seconds_per_step": r["seconds_per_step"],
            "images_per_second": 16 / r["seconds_per_step"],
        }
        print(name, out[name], flush=True)
    variants = [
        ("m8_cl_bf16", 8, False, "bf16", False),
        ("m8_cl_bf16_bench", 8, True, "bf16", False),
        ("m8_nchw_bf16", 8, False, "bf16", True),
        ("m8_nchw_bf16_bench", 8, True, "bf16", True),
        ("m8_cl_fp16_bench", 8, True, "fp16", False),
        ("m8_cl_fp32off_bench", 8, True, "off", False),
        ("m32_cl_bf16_bench", M32, True, "bf16", False),
        ("m32_nchw_bf16_bench", M32, True, "bf16", True),
    ]
    for name, members, bench, amp, nchw in variants:
        torch.backends.cudnn.benchmark = bench
        try:
            engine, batch = fused_engine(members, amp, nchw)
            r = timed(engine)
            out[name] = {
                "seconds_per_step": r["seconds_per_step"],
                "images_per_second_aggregate": members * batch / r["seconds_per_step"],
                "setup_seconds": r["setup_seconds"],
                "finite_losses": r["finite_losses"],
            }
        except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
            out[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        print(name, out[name], flush=True)
        if DEV.type == "cuda":
            torch.cuda.empty_cache()
    path = os.path.join(os.environ.get("OUT", "/tmp"), "exp_fused.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, allow_nan=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
