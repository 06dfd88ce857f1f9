from __future__ import annotations

import argparse
import typing

from dlbench.spec import Amp, Device, Engine, ModelName, Optimizer, Stem, TrainConfig

DEFAULTS = TrainConfig.model_fields


def _default(name: str):
    return DEFAULTS[name].default


def register(sub) -> None:
    from dlbench.cli import add_command, add_split_options, finite_float

    p = add_command(
        sub, "train", "train one ResNet configuration on a data-step split",
        description="Train one ResNet-18/34/50 configuration on the split written by `dlbench data` and write "
                    "record.json (per-epoch train loss, val loss/accuracy, epoch time, images/s; test accuracy, "
                    "confusion matrix, time to first batch, peak memory), best.pt (state_dict of the best "
                    "epoch by validation accuracy) and last.pt (everything needed to --resume).",
        epilog="engines: dataloader = the reference study's loop (DataLoader, host-side conversion, one "
               "host-to-device copy and one loss read-back per batch); resident = the split on the device, "
               "batches gathered there, channels_last, and on CUDA the whole step captured in a CUDA graph; "
               "fused = the resident engine for a fused group (here a group of one; groups come from "
               "`dlbench study --fuse`, see docs/fused.md). All draw the same batches in the same order from --seed.\n"
               "example: dlbench train --split runs/demo/data/fashion-mnist --out runs/demo/train/r18 "
               "--model resnet18 --batch-size 16 --epochs 4 --device cuda --engine resident --amp bf16")
    add_split_options(p)
    p.add_argument("--model", default="resnet18", choices=typing.get_args(ModelName), help="model")
    p.add_argument("--stem", default=_default("stem"), choices=typing.get_args(Stem),
                   help="first layers (imagenet: 7x7/2 conv + max-pool as torchvision; small: 3x3/1 conv, no pool)")
    p.add_argument("--input-size", type=int, default=_default("input_size"), metavar="PX",
                   help="resize the 28x28 images to PX x PX (bilinear) before the model; the reference study's "
                        "published FLOPs point to 64")
    p.add_argument("--in-channels", type=int, default=_default("in_channels"), choices=[1, 3],
                   help="model input channels; 3 repeats the gray image (torchvision's Grayscale(3))")
    p.add_argument("--batch-size", type=int, default=_default("batch_size"), help="images per step")
    p.add_argument("--optimizer", default=_default("optimizer"), choices=typing.get_args(Optimizer),
                   help="optimizer")
    p.add_argument("--lr", type=finite_float, default=_default("lr"), help="learning rate")
    p.add_argument("--momentum", type=finite_float, default=_default("momentum"), help="SGD momentum")
    p.add_argument("--weight-decay", type=finite_float, default=_default("weight_decay"), help="L2 weight decay")
    p.add_argument("--epochs", type=int, default=_default("epochs"), help="epochs to train")
    p.add_argument("--device", default=_default("device"), choices=typing.get_args(Device), help="device")
    p.add_argument("--engine", default=_default("engine"), choices=typing.get_args(Engine),
                   help="training loop (see below)")
    p.add_argument("--amp", default=_default("amp"), choices=typing.get_args(Amp),
                   help="mixed precision (fp16 uses a GradScaler; bf16 needs none)")
    p.add_argument("--pin-memory", action=argparse.BooleanOptionalAction, default=_default("pin_memory"),
                   help="pinned host memory for the dataloader engine's copies (CUDA only)")
    p.add_argument("--num-workers", type=int, default=_default("num_workers"),
                   help="DataLoader worker processes (dataloader engine)")
    p.add_argument("--seed", type=int, default=_default("seed"), help="seed of the initial weights and batch order")
    p.add_argument("--max-steps-per-epoch", type=int, default=None,
                   help="stop each epoch after this many steps (smoke runs) (default: every image once)")
    p.add_argument("--resume", action="store_true",
                   help="continue from OUT/last.pt after its last complete epoch (same options; more --epochs allowed)")
    p.set_defaults(func=run)


def run(args) -> int:

    from dlbench.cli import split_dataset_of
    from dlbench.io import check_out_dir
    from dlbench.log import get_logger
    from dlbench.spec import validate_model
    from dlbench.train import run_train

    dataset = split_dataset_of(args)
    config = validate_model(TrainConfig, {
        "dataset": dataset, "model": args.model, "stem": args.stem, "batch_size": args.batch_size,
        "optimizer": args.optimizer, "lr": args.lr, "momentum": args.momentum, "weight_decay": args.weight_decay,
        "epochs": args.epochs, "device": args.device, "engine": args.engine, "pin_memory": args.pin_memory,
        "num_workers": args.num_workers, "amp": args.amp, "seed": args.seed,
        "max_steps_per_epoch": args.max_steps_per_epoch, "input_size": args.input_size,
        "in_channels": args.in_channels,
    }, "train options", flags={})
    check_out_dir(args.out)
    rec = run_train(config, args.split, args.out, resume=args.resume, log=get_logger("dlbench.train").info)
    m = rec["metrics"]
    print(f"{args.out}: test accuracy {m['test_accuracy']:.2%}, {m['train_seconds']:.1f} s training "
          f"({m['images_per_second']:,.0f} img/s)")
    return 0
