from __future__ import annotations

from dlbench.commands.options import add_field_options, field_values
from dlbench.configs import TrainConfig

# Options that default to the split's images (its manifest's shape, else its dataset's registry entry).
FROM_SPLIT = {
    "in_channels": "model input channels, 1 or 3 (default: the split's images'; 3 on a gray split repeats "
    "each image, as torchvision's Grayscale(3))",
    "input_size": "square input side in pixels the images are resized to (default: the split's, for "
    "square images; else 28)",
}

# Every TrainConfig field is an option but the dataset (read from the split) and the smoke markers.
OPTIONS = tuple(name for name in TrainConfig.model_fields if name not in ("dataset", "smoke", "planned"))


def register(sub) -> None:
    from dlbench.cli import add_command, add_split_options

    p = add_command(
        sub,
        "train",
        "train one model configuration on a data-step split",
        description="Train one configuration of a model (resnet18/34/50, timm:NAME or tv:NAME, randomly "
        "initialised, built for the split's channels and classes) on the split written by `dlbench data` "
        "and write "
        "record.json (per-epoch train loss, val loss/accuracy, epoch time, images/s; test accuracy, "
        "confusion matrix, time to first batch, peak memory), best.pt (state_dict of the best "
        "epoch by validation accuracy) and last.pt (everything needed to --resume).",
        epilog="engines: dataloader = the reference study's loop (DataLoader, host-side conversion, one "
        "host-to-device copy and one loss read-back per batch); resident = the split on the device, "
        "batches gathered there, channels_last, and on CUDA the whole step captured in a CUDA graph; "
        "fused = the resident engine for a fused group (here a group of one; groups come from "
        "`dlbench study --fuse`, see docs/fused.md). All draw the same batches in the same order from "
        "--seed.\n"
        "example: dlbench train --split runs/demo/data/fashion-mnist --out runs/demo/train/r18 "
        "--model resnet18 --batch-size 16 --epochs 4 --device cuda --engine resident --amp bf16\n"
        "an RGB split of your own: dlbench train --split runs/data/pets --out runs/train/pets "
        "--model timm:resnet10t (channels and size from the split's manifest)",
    )
    add_split_options(p)
    add_field_options(
        p,
        TrainConfig,
        OPTIONS,
        input_size={"metavar": "PX", "default": None, "help": FROM_SPLIT["input_size"]},
        in_channels={"default": None, "help": FROM_SPLIT["in_channels"]},
        engine={"help": "training loop (see below)"},
        max_steps_per_epoch={"metavar": "N"},
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from OUT/last.pt after its last complete epoch (same options; more --epochs allowed)",
    )
    p.set_defaults(func=run)


def run(args) -> int:

    from dlbench.cli import split_dataset_of, split_input
    from dlbench.configs import validate_model
    from dlbench.io import check_out_dir
    from dlbench.log import get_logger
    from dlbench.train import run_train

    dataset = split_dataset_of(args)
    values = field_values(args, OPTIONS)
    facts = split_input(args.split, dataset)
    for name in FROM_SPLIT:
        if values[name] is None:  # not typed: the split's, else the field's default
            values[name] = facts.get(name, TrainConfig.model_fields[name].default)
    config = validate_model(TrainConfig, {"dataset": dataset, **values}, "train options", flags={})
    check_out_dir(args.out, inputs={"--split": args.split})
    rec = run_train(config, args.split, args.out, resume=args.resume, log=get_logger("dlbench.train").info)
    m = rec["metrics"]
    print(
        f"{args.out}: test accuracy {m['test_accuracy']:.2%}, {m['train_seconds']:.1f} s training "
        f"({m['images_per_second']:,.0f} img/s)"
    )
    return 0
