"""Time both training engines on the same config in one process; print JSON with s/step, epoch time and the ratio.

    python bench/train_engines.py --device cuda --model resnet18 --batch-size 16 --amp bf16
    python bench/train_engines.py --device cuda --model resnet50 --batch-size 16 --amp fp16 --split runs/x/data/fashion-mnist
    python bench/train_engines.py --device cpu --batch-size 32 --steps 6 --warmup 2        # a CPU check in seconds

Each engine gets a freshly initialised model from the same seed and the same batches in the same order
(dlbench.train), and runs the training loop the train step runs (dlbench.train.loop.train_steps: loss
kept on the device, read back every engine.sync_every steps). Per engine, in order: setup (resident:
copy the split to the device and capture the CUDA graph), the first batch, ``--warmup`` untimed steps
(reported separately), then ``--steps`` timed steps in ``--repeats`` chunks, each chunk timed with the
device synchronised before and after (perf_counter). s/step is the mean over the chunks (spread = std);
the projected epoch time is s/step x ceil(epoch_images / batch) for a 42,000-image epoch (70 % of 60,000,
the reference study's training split). The dataloader engine's DataLoader is started once and not
restarted between chunks, so its per-epoch worker start-up is reported as time_to_first_batch, not in s/step.

Data: ``--split`` (a `dlbench data` folder), ``--dataset-dir`` (a folder of IDX files, split 70/10/20 here)
or, by default, synthetic uint8 images of the Fashion-MNIST shape (28x28, 10 classes): timing does not
depend on pixel values. Needs torch (and torchvision), not pydantic: it runs on the GPU machine with
``PYTHONPATH=src``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # run from a checkout without install

import numpy as np  # noqa: E402
import torch  # noqa: E402

from dlbench.errors import DlbenchError  # noqa: E402
from dlbench.record import device_info, environment, now_iso  # noqa: E402
from dlbench.train.engines import ENGINES, check_amp, resolve_device, synchronize  # noqa: E402
from dlbench.train.loop import train_steps  # noqa: E402


@dataclass(frozen=True)
class BenchConfig:
    """The fields of dlbench.spec.TrainConfig that the engines read (no pydantic needed)."""

    dataset: str = "fashion-mnist"
    model: str = "resnet18"
    stem: str = "imagenet"
    batch_size: int = 16
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    epochs: int = 1
    device: str = "cpu"
    engine: str = "resident"
    pin_memory: bool = True
    num_workers: int = 2
    amp: str = "off"
    seed: int = 0
    max_steps_per_epoch: int | None = None
    input_size: int = 28
    in_channels: int = 1


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default="resnet18", choices=["resnet18", "resnet34", "resnet50"])
    p.add_argument("--stem", default="imagenet", choices=["imagenet", "small"])
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--input-size", type=int, default=28, help="resize the images to this side (64: the reference's)")
    p.add_argument("--in-channels", type=int, default=1, choices=[1, 3], help="3 repeats the gray image")
    p.add_argument("--optimizer", default="adam", choices=["adam", "sgd"])
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--device", default="auto", help="cpu, cuda, or auto (cuda when visible)")
    p.add_argument("--amp", default=None, choices=["off", "fp16", "bf16"], help="default: bf16 on cuda, off on cpu")
    p.add_argument("--engines", default="dataloader,resident", help="comma-separated, timed in this order")
    p.add_argument("--steps", type=int, default=None, help="timed steps per engine; default: 600 on cuda, 10 on cpu")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first; default: 30 on cuda, 2 on cpu")
    p.add_argument("--repeats", type=int, default=3, help="the timed steps are split into this many timed chunks")
    p.add_argument("--num-workers", type=int, default=2, help="dataloader engine workers (the reference used 2)")
    p.add_argument("--pin-memory", action=argparse.BooleanOptionalAction, default=True,
                   help="dataloader engine pinned memory (CUDA only)")
    p.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=True,
                   help="resident engine on CUDA: capture the step in a CUDA graph (--no-cuda-graph: eager)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--split", help="a `dlbench data` folder (or its split.npz)")
    src.add_argument("--dataset-dir", help="a folder of IDX files; split here 70/10/20 like `dlbench data`")
    p.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "mnist"],
                   help="dataset (normalisation constants; which files with --dataset-dir)")
    p.add_argument("--epoch-images", type=int, default=42_000, help="images per epoch for the projected epoch time")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="also write the JSON to this file")
    return p.parse_args(argv)


def load_data(args, n_needed: int) -> tuple[dict[str, np.ndarray], dict]:
    if args.split:
        from dlbench.data.split import load_split

        return load_split(args.split), {"source": "split", "split": args.split}
    if args.dataset_dir:
        from dlbench.data.sources import load_dataset
        from dlbench.data.split import stratified_indices

        raw = load_dataset(args.dataset, source="idx", root=args.dataset_dir)
        parts = stratified_indices(raw.labels, (0.7, 0.1, 0.2), args.seed)
        split = {f"{a}_{p}": (raw.images if a == "x" else raw.labels)[parts[p]] for p in parts for a in "xy"}
        return split, {"source": "idx", "dataset_dir": args.dataset_dir}
    rng = np.random.default_rng(args.seed)
    n_train = max(n_needed, args.batch_size)
    split = {}
    for part, n in (("train", n_train), ("val", 256), ("test", 256)):
        split[f"x_{part}"] = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        split[f"y_{part}"] = rng.integers(0, 10, size=n, dtype=np.uint8)
    return split, {"source": "synthetic", "note": "random uint8 28x28 images, random labels (timing only)"}


def bench_engine(name: str, cfg: BenchConfig, arrays, device, args, steps: int, warmup: int) -> dict:
    engine_cls = ENGINES[name]
    kw = {"cuda_graph": args.cuda_graph and device.type == "cuda"} if name == "resident" else {}
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    engine = engine_cls(cfg, arrays, device, **kw)
    n_train = len(arrays["y_train"])
    t0 = time.perf_counter()
    engine.setup()
    synchronize(device)
    setup_seconds = time.perf_counter() - t0
    # full batches only (an epoch's partial last batch has another shape); epochs chained if needed
    full = n_train // cfg.batch_size

    def batches():
        epoch = 0
        while True:
            yield from engine.batches(epoch, full)
            epoch += 1

    it = batches()
    first = next(it)
    synchronize(device)
    ttfb = time.perf_counter() - t0

    def chain():
        yield first
        yield from it

    stream = chain()
    w = train_steps(engine, stream, warmup) if warmup else {"seconds": 0.0, "losses": []}
    chunks, losses = [], list(w["losses"])
    per = [steps // args.repeats + (1 if i < steps % args.repeats else 0) for i in range(args.repeats)]
    for n in (p for p in per if p):
        synchronize(device)
        r = train_steps(engine, stream, n)
        chunks.append(r["seconds"] / r["steps"])
        losses += r["losses"]
    s_step = statistics.fmean(chunks)
    epoch_batches = math.ceil(args.epoch_images / cfg.batch_size)
    out = {
        "seconds_per_step": s_step,
        "seconds_per_step_std": statistics.stdev(chunks) if len(chunks) > 1 else 0.0,
        "chunk_seconds_per_step": chunks,
        "timed_steps": steps,
        "images_per_second": cfg.batch_size / s_step,
        "projected_epoch_seconds": s_step * epoch_batches,
        "epoch_images": args.epoch_images,
        "setup_seconds": setup_seconds,
        "time_to_first_batch": ttfb,
        "warmup_steps": warmup,
        "warmup_seconds": w["seconds"],
        "first_losses": losses[:3],
        "finite_losses": bool(np.isfinite(losses).all()),
        "peak_memory_device_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
        **engine.describe(),
    }
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except DlbenchError as exc:
        print(f"train_engines: error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code


def run(args) -> int:
    dev_name = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    device = resolve_device(dev_name)
    on_cuda = device.type == "cuda"
    amp = args.amp or ("bf16" if on_cuda else "off")
    check_amp(amp, device)
    steps = args.steps if args.steps is not None else (600 if on_cuda else 10)
    warmup = args.warmup if args.warmup is not None else (30 if on_cuda else 2)
    if steps < 1 or args.repeats < 1 or warmup < 0:
        raise SystemExit("train_engines: --steps and --repeats must be >= 1, --warmup >= 0")
    if not 8 <= args.input_size <= 512:
        raise SystemExit(f"train_engines: --input-size must be 8 to 512 pixels (got {args.input_size})")
    arrays, data = load_data(args, (steps + warmup + 1) * args.batch_size)
    data.update(n_train=int(len(arrays["y_train"])), dataset=args.dataset)
    if args.batch_size > len(arrays["y_train"]):
        raise SystemExit(f"train_engines: batch size {args.batch_size} > {len(arrays['y_train'])} training images")
    if on_cuda:
        torch.backends.cudnn.benchmark = True
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown or not engines:
        raise SystemExit(f"train_engines: unknown engine(s) {unknown}; choose from {list(ENGINES)}")
    results = {}
    for name in engines:
        cfg = BenchConfig(dataset=args.dataset, model=args.model, stem=args.stem, batch_size=args.batch_size,
                          optimizer=args.optimizer, lr=args.lr, device=dev_name, engine=name,
                          pin_memory=args.pin_memory, num_workers=args.num_workers, amp=amp, seed=args.seed,
                          input_size=args.input_size, in_channels=args.in_channels)
        print(f"train_engines: {name} ...", file=sys.stderr, flush=True)
        results[name] = bench_engine(name, cfg, arrays, device, args, steps, warmup)
    report = {
        "benchmark": "train_engines",
        "when": now_iso(),
        "config": {k: v for k, v in asdict(cfg).items() if k not in ("engine", "epochs", "max_steps_per_epoch")},
        "data": data,
        "engines": results,
        "device": device_info(str(device)),
        "environment": environment(),
    }
    if "dataloader" in results and "resident" in results:
        dl, res = results["dataloader"], results["resident"]
        report["ratio"] = {
            "dataloader_over_resident_epoch_time": dl["projected_epoch_seconds"] / res["projected_epoch_seconds"],
            "first_loss_abs_diff": (abs(dl["first_losses"][0] - res["first_losses"][0])
                                    if dl["first_losses"] and res["first_losses"] else None),
        }
    text = json.dumps(report, indent=2, allow_nan=False)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
