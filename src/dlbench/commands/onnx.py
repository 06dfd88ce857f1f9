from __future__ import annotations

from dlbench.commands.options import add_field_options, field_values
from dlbench.configs import OnnxConfig

# Every OnnxConfig field is an option, the model first.
OPTIONS = ("model", "stem", *(name for name in OnnxConfig.model_fields if name not in ("model", "stem")))


def register(sub) -> None:
    from dlbench.cli import add_command
    from dlbench.onnxrt.providers import PROVIDERS

    p = add_command(
        sub,
        "onnx",
        "export a model to ONNX, check parity, time ONNX Runtime against PyTorch eager",
        description="Export a trained checkpoint (or a freshly initialised model) to ONNX with a dynamic "
        "batch axis, validate it with onnx.checker, compare ONNX Runtime's output with PyTorch's on the "
        "same inputs (fails above --tolerance), then time ONNX Runtime per provider and batch size "
        "beside PyTorch eager on the same device. Writes model.onnx, timings.csv and record.json; "
        "prints the results as JSON.",
        epilog=f"providers: {', '.join(f'{k} = {v.ort_name}' for k, v in PROVIDERS.items())}. Those that "
        "cannot run here are recorded as unavailable with the reason (cuda and tensorrt need the "
        "onnxruntime-gpu wheel and a GPU); the step fails only if none can run. Timing: --warmup calls "
        "run first and are excluded, then --iterations timed calls; p50/p90/p99, mean, std, "
        "throughput (images/s).\n"
        "example: dlbench onnx --model resnet18 --checkpoint runs/quick/train/ID/best.pt "
        "--batch-sizes 1 64 --out runs/demo/onnx/resnet18",
    )
    add_field_options(
        p,
        OnnxConfig,
        OPTIONS,
        providers={"metavar": "NAME", "help": f"ONNX Runtime providers ({', '.join(PROVIDERS)})"},
        batch_sizes={"metavar": "N"},
        input_size={
            "default": None,
            "help": "square input size in pixels (default: the size the --checkpoint's train run used, "
            "from the record.json beside it; else 28)",
        },
        in_channels={
            "default": None,
            "help": "input channels, 1 or 3 (default: the --checkpoint's train run's, from the record.json "
            "beside it; else 1)",
        },
    )
    p.add_argument(
        "--checkpoint",
        default=None,
        help="state_dict .pt from a train run (plain, or under key 'model') (default: a freshly "
        "initialised model)",
    )
    p.add_argument("--out", required=True, help="output folder (created)")
    p.set_defaults(func=run)


def checkpoint_input(checkpoint: str | None) -> dict[str, int]:
    """The input a checkpoint's train run used (``in_channels``, ``input_size`` of the config in the
    ``record.json`` beside it, checked as a record); {} without a checkpoint or such a record."""
    from pathlib import Path

    from dlbench.schemas import RecordFile, read_checked

    if not checkpoint or not (Path(checkpoint).parent / "record.json").is_file():
        return {}
    rec = read_checked(Path(checkpoint).parent / "record.json", RecordFile, "train record")
    if rec.step != "train":
        return {}
    return {k: rec.config[k] for k in ("in_channels", "input_size") if isinstance(rec.config.get(k), int)}


def run(args) -> int:
    import json
    import os

    from dlbench.cli import refuse_empty_paths
    from dlbench.configs import validate_model
    from dlbench.io import check_out_dir
    from dlbench.log import get_logger
    from dlbench.onnxrt import check_onnx_config, onnx_step

    refuse_empty_paths(args, "checkpoint", "out")
    values = field_values(args, OPTIONS)
    trained = checkpoint_input(args.checkpoint)
    for name in ("in_channels", "input_size"):
        if values[name] is None:  # not typed: what the checkpoint was trained with, else the default
            values[name] = trained.get(name, OnnxConfig.model_fields[name].default)
    config = validate_model(OnnxConfig, values, "onnx options", flags={})
    check_onnx_config(config, args.checkpoint)
    ckpt_dir = os.path.dirname(os.path.abspath(args.checkpoint)) if args.checkpoint else None
    # the export may sit beside the checkpoint (inside its folder), never be that folder or hold it
    check_out_dir(
        args.out, inputs={"the --checkpoint folder": ckpt_dir}, may_be_inside=("the --checkpoint folder",)
    )

    rec = onnx_step(config, args.out, checkpoint=args.checkpoint, log=get_logger("dlbench.onnx").info)
    m = rec["metrics"]
    keys = (
        "model",
        "stem",
        "weights",
        "checkpoint",
        "exporter",
        "opset",
        "max_abs_diff",
        "tolerance",
        "parity",
        "providers_available",
        "providers_unavailable",
        "threads",
        "torch_threads",
        "graph_optimization_level",
        "onnxruntime_version",
        "results",
        "speedup",
    )
    print(
        json.dumps(
            {"out": str(args.out), "device": rec["device"], **{k: m[k] for k in keys}},
            indent=2,
            allow_nan=False,
        )
    )
    return 0
