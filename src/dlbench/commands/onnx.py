from __future__ import annotations


def register(sub) -> None:
    from typing import get_args

    from dlbench.cli import add_command, finite_float
    from dlbench.onnxrt.providers import PROVIDERS
    from dlbench.spec import ModelName, Stem

    MODELS, STEMS = get_args(ModelName), get_args(Stem)  # no torch import for --help

    p = add_command(
        sub, "onnx", "export a model to ONNX, check parity, time ONNX Runtime against PyTorch eager",
        description="Export a trained checkpoint (or a freshly initialised model) to ONNX with a dynamic batch "
                    "axis, validate it with onnx.checker, compare ONNX Runtime's output with PyTorch's on the "
                    "same inputs (fails above --tolerance), then time ONNX Runtime per provider and batch size "
                    "beside PyTorch eager on the same device. Writes model.onnx, timings.csv and record.json; "
                    "prints the results as JSON.",
        epilog=f"providers: {', '.join(f'{k} = {v.ort_name}' for k, v in PROVIDERS.items())}. Those that "
               "cannot run here are recorded as unavailable with the reason (cuda and tensorrt need the "
               "onnxruntime-gpu wheel and a GPU); the step fails only if none can run. Timing: --warmup calls "
               "run first and are excluded, then --iterations timed calls; p50/p90/p99, mean, std, "
               "throughput (images/s).\n"
               "example: dlbench onnx --model resnet18 --checkpoint runs/quick/train/ID/best.pt "
               "--batch-sizes 1 64 --out runs/demo/onnx/resnet18")
    p.add_argument("--model", required=True, choices=list(MODELS), help="model name")
    p.add_argument("--stem", default="imagenet", choices=list(STEMS),
                   help="stem the model (and checkpoint) was built with")
    p.add_argument("--checkpoint", default=None,
                   help="state_dict .pt from a train run (plain, or under key 'model'); default: a freshly "
                        "initialised model")
    p.add_argument("--providers", nargs="+", default=["cpu"], metavar="NAME",
                   help=f"ONNX Runtime providers ({', '.join(PROVIDERS)})")
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8, 64, 256], metavar="N",
                   help="batch sizes to time")
    p.add_argument("--warmup", type=int, default=5, help="untimed calls per runtime and batch size")
    p.add_argument("--iterations", type=int, default=30, help="timed calls per runtime and batch size")
    p.add_argument("--threads", type=int, default=None,
                   help="intra-op threads for ONNX Runtime and PyTorch; default: each runtime's own")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset")
    p.add_argument("--tolerance", type=finite_float, default=1e-3,
                   help="largest allowed max abs difference between ONNX Runtime (CPU) and PyTorch outputs")
    p.add_argument("--input-size", type=int, default=28,
                   help="square input size in pixels (the size the checkpoint was trained at)")
    p.add_argument("--in-channels", type=int, default=1, choices=[1, 3],
                   help="input channels (the count the checkpoint was trained with)")
    p.add_argument("--exporter", default="dynamo", choices=["dynamo", "torchscript"],
                   help="torch.onnx exporter tried first (the other is the fallback; the record says which ran)")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from dlbench.io import check_out_dir
    from dlbench.log import get_logger
    from dlbench.onnxrt import check_onnx_args, run_onnx

    check_onnx_args(args.model, args.stem, args.batch_sizes, args.warmup, args.iterations, args.threads,
                    args.opset, args.tolerance, args.input_size, args.in_channels, args.exporter, args.providers,
                    args.checkpoint)
    check_out_dir(args.out)

    rec = run_onnx(args.model, args.stem, args.out, checkpoint=args.checkpoint, providers=args.providers,
                   batch_sizes=args.batch_sizes, warmup=args.warmup, iterations=args.iterations,
                   threads=args.threads, opset=args.opset, tolerance=args.tolerance,
                   log=get_logger("dlbench.onnx").info, input_size=args.input_size,
                   in_channels=args.in_channels, exporter=args.exporter)
    m = rec["metrics"]
    keys = ("model", "stem", "weights", "checkpoint", "exporter", "opset", "max_abs_diff", "tolerance", "parity",
            "providers_available", "providers_unavailable", "threads", "torch_threads",
            "graph_optimization_level", "onnxruntime_version", "results", "speedup")
    print(json.dumps({"out": str(args.out), "device": rec["device"], **{k: m[k] for k in keys}}, indent=2, allow_nan=False))
    return 0
