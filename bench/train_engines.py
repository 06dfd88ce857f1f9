"""Time both training engines on one config in one process; print JSON with s/step, epoch time and the ratio.

    python bench/train_engines.py --device cuda --model resnet18 --batch-size 16 --amp bf16
    python bench/train_engines.py --device cuda --model resnet50 --amp fp16 --split runs/x/data/fashion-mnist
    python bench/train_engines.py --device cpu --batch-size 32 --steps 6 --warmup 2   # a CPU check in seconds

Each engine gets a freshly initialised model from the same seed and the same batches in the same order
(dlbench.train), and runs the training loop the train step runs (dlbench.train.loop.train_steps: loss
kept on the device, read back every engine.sync_every steps). Per engine, in order: setup (resident:
copy the split to the device and capture the CUDA graph), the first batch, ``--warmup`` untimed steps
(reported separately), then ``--steps`` timed steps in ``--repeats`` chunks, each chunk timed with the
device synchronised before and after (bench_common.time_engine). s/step is the mean over the chunks (spread =
std); the projected epoch time is s/step x ceil(epoch_images / batch) for a 42,000-image epoch (70 % of
60,000, the reference study's training split). The dataloader engine's DataLoader is started once and not
restarted between chunks, so its per-epoch worker start-up is reported as time_to_first_batch, not in s/step.

Data: ``--split`` (a `dlbench data` folder), ``--dataset-dir`` (a folder of IDX files, split 70/10/20 here)
or, by default, synthetic uint8 images of the Fashion-MNIST shape (28x28, 10 classes): timing does not
depend on pixel values. Each engine's run is a ``dlbench.spec.TrainConfig`` (the train step's config, so
bad options fail as they do there): needs torch, torchvision and pydantic; runs from a checkout
without installing it.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np
import torch

import bench_common
from dlbench.record import device_info, environment, now_iso
from dlbench.train.engines import ENGINES

# TrainConfig fields the engines do not read here, left out of the printed config
NOT_PRINTED = ("engine", "epochs", "max_steps_per_epoch", "smoke", "planned")


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--model", default="resnet18", choices=["resnet18", "resnet34", "resnet50"])
    p.add_argument("--stem", default="imagenet", choices=["imagenet", "small"])
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument(
        "--input-size", type=int, default=28, help="resize the images to this side (64: the reference's)"
    )
    p.add_argument("--in-channels", type=int, default=1, choices=[1, 3], help="3 repeats the gray image")
    p.add_argument("--optimizer", default="adam", choices=["adam", "sgd"])
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--device", default="auto", help="cpu, cuda, or auto (cuda when visible)")
    p.add_argument(
        "--amp", default=None, choices=["off", "fp16", "bf16"], help="default: bf16 on cuda, off on cpu"
    )
    p.add_argument("--engines", default="dataloader,resident", help="comma-separated, timed in this order")
    p.add_argument(
        "--steps", type=int, default=None, help="timed steps per engine; default: 600 on cuda, 10 on cpu"
    )
    p.add_argument(
        "--warmup", type=int, default=None, help="untimed steps first; default: 30 on cuda, 2 on cpu"
    )
    p.add_argument(
        "--repeats", type=int, default=3, help="the timed steps are split into this many timed chunks"
    )
    p.add_argument(
        "--num-workers", type=int, default=2, help="dataloader engine workers (the reference used 2)"
    )
    p.add_argument(
        "--pin-memory",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="dataloader engine pinned memory (CUDA only)",
    )
    p.add_argument(
        "--cuda-graph",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="resident engine on CUDA: capture the step in a CUDA graph (--no-cuda-graph: eager)",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--split", help="a `dlbench data` folder (or its split.npz)")
    src.add_argument("--dataset-dir", help="a folder of IDX files; split here 70/10/20 like `dlbench data`")
    p.add_argument(
        "--dataset",
        default="fashion-mnist",
        choices=["fashion-mnist", "mnist"],
        help="dataset (normalisation constants; which files with --dataset-dir)",
    )
    p.add_argument(
        "--epoch-images", type=int, default=42_000, help="images per epoch for the projected epoch time"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="also write the JSON to this file")
    return p.parse_args(argv)


def load_data(args, n_needed: int) -> tuple[dict[str, np.ndarray], dict]:
    if args.split:
        from dlbench.data.split import load_split

        return load_split(args.split), {"source": "split", "split": args.split}
    if args.dataset_dir:
        split, _ = bench_common.idx_split(args.dataset, args.dataset_dir, args.seed)
        return split, {"source": "idx", "dataset_dir": args.dataset_dir}
    split = bench_common.synthetic_split(
        np.random.default_rng(args.seed), max(n_needed, args.batch_size), 256
    )
    return split, {"source": "synthetic", "note": "random uint8 28x28 images, random labels (timing only)"}


def bench_engine(name: str, cfg, arrays, device, args, steps: int, warmup: int) -> dict:
    kw = {"cuda_graph": args.cuda_graph and device.type == "cuda"} if name == "resident" else {}
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    engine = ENGINES[name](cfg, arrays, device, **kw)
    t = bench_common.time_engine(engine, device, steps, warmup, args.repeats)
    losses = t["warmup_losses"] + [v for chunk in t["chunk_losses"] for v in chunk]
    s_step = t["seconds_per_step"]
    return {
        "seconds_per_step": s_step,
        "seconds_per_step_std": t["seconds_per_step_std"],
        "chunk_seconds_per_step": t["chunk_seconds_per_step"],
        "timed_steps": steps,
        "images_per_second": cfg.batch_size / s_step,
        "projected_epoch_seconds": s_step * math.ceil(args.epoch_images / cfg.batch_size),
        "epoch_images": args.epoch_images,
        "setup_seconds": t["setup_seconds"],
        "time_to_first_batch": t["time_to_first_batch"],
        "warmup_steps": warmup,
        "warmup_seconds": t["warmup_seconds"],
        "first_losses": losses[:3],
        "finite_losses": bool(np.isfinite(losses).all()),
        "peak_memory_device_bytes": torch.cuda.max_memory_allocated(device)
        if device.type == "cuda"
        else None,
        **engine.describe(),
    }


def main(argv=None) -> int:
    return bench_common.main("train_engines", parse_args, run, argv)


def run(args) -> int:
    tr = bench_common.torch_run("train_engines", args, steps=(600, 10), warmup=(30, 2))
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown or not engines:
        raise SystemExit(f"train_engines: unknown engine(s) {unknown}; choose from {list(ENGINES)}")
    configs = {
        name: bench_common.train_config(
            dataset=args.dataset,
            model=args.model,
            stem=args.stem,
            batch_size=args.batch_size,
            optimizer=args.optimizer,
            lr=args.lr,
            device=tr.device.type,
            engine=name,
            pin_memory=args.pin_memory,
            num_workers=args.num_workers,
            amp=tr.amp,
            seed=args.seed,
            input_size=args.input_size,
            in_channels=args.in_channels,
        )
        for name in engines
    }
    arrays, data = load_data(args, (tr.steps + tr.warmup + 1) * args.batch_size)
    data.update(n_train=int(len(arrays["y_train"])), dataset=args.dataset)
    if args.batch_size > len(arrays["y_train"]):
        raise SystemExit(
            f"train_engines: batch size {args.batch_size} > {len(arrays['y_train'])} training images"
        )
    results = {}
    for name, cfg in configs.items():
        print(f"train_engines: {name} ...", file=sys.stderr, flush=True)
        results[name] = bench_engine(name, cfg, arrays, tr.device, args, tr.steps, tr.warmup)
    report = {
        "benchmark": "train_engines",
        "when": now_iso(),
        "config": cfg.model_dump(exclude=set(NOT_PRINTED)),
        "data": data,
        "engines": results,
        "device": device_info(str(tr.device)),
        "environment": environment(),
    }
    if "dataloader" in results and "resident" in results:
        dl, res = results["dataloader"], results["resident"]
        report["ratio"] = {
            "dataloader_over_resident_epoch_time": dl["projected_epoch_seconds"]
            / res["projected_epoch_seconds"],
            "first_loss_abs_diff": (
                abs(dl["first_losses"][0] - res["first_losses"][0])
                if dl["first_losses"] and res["first_losses"]
                else None
            ),
        }
    bench_common.emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
