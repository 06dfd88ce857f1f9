from __future__ import annotations

from dlbench.commands.options import add_field_options, field_values
from dlbench.configs import ProfileConfig

OPTIONS = ("models", "stem", "input_sizes", "batch_size", "in_channels", "num_classes")


def register(sub) -> None:
    from dlbench.cli import add_command

    p = add_command(
        sub,
        "profile",
        "count FLOPs (forward and one training step), parameters and activation memory",
        description="For each model and input size, count the FLOPs of one forward pass and of one training "
        "step (forward + cross-entropy loss + backward) with PyTorch's FlopCounterMode, the "
        "parameters, a breakdown by layer type and by aten op, and the activation memory of one "
        "batch. Counted on PyTorch's meta device (shapes only), so it takes seconds at any size. "
        "Writes profile.csv, profile.json and record.json; prints the rows as JSON.",
        epilog="units: FLOPs count 2 per multiply-add (convolutions and matrix products only); "
        "GMACs = FLOPs / 2 / 1e9, the unit torchvision publishes (ResNet-18 at 3x224x224: 1.814 GMACs).\n"
        "example: dlbench profile --models resnet18 resnet50 --input-sizes 28 224 --out runs/demo/profile",
    )
    add_field_options(
        p,
        ProfileConfig,
        OPTIONS,
        models={"metavar": "MODEL"},
        stem={"help": "imagenet: 7x7/2 conv + max-pool; small: 3x3/1 conv, no pool"},
        in_channels={
            "metavar": "C",
            "default": None,
            "help": "input channels, one or more (default: the --split's images', else 1; 1 for MNIST; 3 "
            "with --num-classes 1000 is torchvision's own ResNet; 3 at --input-sizes 64 is the setting of "
            "the reference study's GFLOPs)",
        },
        input_sizes={
            "metavar": "PX",
            "default": None,
            "help": "square input sizes in pixels (default: the --split's side for square images, else 28)",
        },
        num_classes={
            "default": None,
            "help": "outputs of the last layer (default: the --split's classes, else 10)",
        },
    )
    p.add_argument(
        "--split",
        default=None,
        help="a `dlbench data` folder: count at its images' channels, side and classes (its manifest.json) "
        "where the options above are left out",
    )
    p.add_argument("--out", required=True, help="output folder (created)")
    p.set_defaults(func=run, dataset=None)


def run(args) -> int:
    import json

    from dlbench.cli import split_dataset_of, split_input
    from dlbench.configs import validate_model
    from dlbench.io import check_out_dir
    from dlbench.log import get_logger
    from dlbench.profile import profile_step

    values = field_values(args, OPTIONS)
    facts = split_input(args.split, split_dataset_of(args)) if args.split is not None else {}
    split = {"in_channels": "in_channels", "input_sizes": "input_size", "num_classes": "num_classes"}
    for name, fact in split.items():
        if values[name] is None:  # not typed: the split's, else the field's default
            if fact in facts:
                values[name] = [facts[fact]] if name != "num_classes" else facts[fact]
            else:
                del values[name]
    cfg = validate_model(ProfileConfig, values, "profile options", flags={})
    check_out_dir(args.out)

    rec = profile_step(cfg, args.out, log=get_logger("dlbench.profile").info)
    keys = (
        "model",
        "stem",
        "in_channels",
        "input_size",
        "batch_size",
        "forward_gflops",
        "forward_gmacs",
        "train_step_gflops",
        "params",
        "activation_bytes",
        "saved_for_backward_bytes",
    )
    rows = [{k: r[k] for k in keys} for r in rec["metrics"]["rows"]]
    print(
        json.dumps(
            {"out": str(args.out), "unit_note": rec["metrics"]["unit_note"], "rows": rows},
            indent=2,
            allow_nan=False,
        )
    )
    return 0
