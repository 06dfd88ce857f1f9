from __future__ import annotations

import argparse
import math

from dlbench.commands.options import add_field_options, field_values
from dlbench.configs import SvmConfig

OPTIONS = ("backend", "kernel", "C", "gamma", "degree", "coef0", "preprocess", "n_train", "seed")


def _gamma(text: str) -> float | str:
    if text in ("scale", "auto"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, 'scale' or 'auto' (got {text!r})") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, 'scale' or 'auto' (got {text!r})")
    return value


def register(sub) -> None:
    from dlbench.cli import add_command

    p = add_command(
        sub, "svm", "fit and evaluate one SVM (scikit-learn on the CPU or cuML on the GPU) on a split",
        description="Fit an SVC on the training part of a split written by `dlbench data` (optionally a "
                    "stratified, seeded subsample of it), evaluate it on the test part, and write "
                    "model.joblib and record.json (accuracy, per-class accuracy, confusion matrix, fit and "
                    "predict seconds, support vectors, backend and version, threads).",
        epilog="backends: sklearn = scikit-learn's SVC (libsvm, one CPU core); cuml = RAPIDS cuML's SVC "
               "(needs an NVIDIA GPU and the cuml-cu13 wheels); auto = cuml when it can run, else sklearn "
               "(the record's metrics.backend says which ran). gamma 'scale' = 1 / (n_features * var(X)), "
               "'auto' = 1 / n_features, resolved once so every backend gets the same number.\n"
               "example: dlbench svm --split runs/demo/data/fashion-mnist --out runs/demo/svm/rbf "
               "--n-train 10000")
    p.add_argument("--split", required=True, help="data-step folder (or its split.npz)")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--dataset", default=None,
                   help="dataset name for the record (default: read from the split's manifest.json)")
    # auto here (a machine with a GPU uses it); a spec names its backends (SvmConfig's default: sklearn)
    add_field_options(p, SvmConfig, OPTIONS, backend={"default": "auto"}, C={"flag": "--C"},
                      gamma={"type": _gamma}, n_train={"metavar": "N"})
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from dlbench.configs import validate_model
    from dlbench.data.step import split_dataset
    from dlbench.errors import DataError
    from dlbench.io import check_out_dir
    from dlbench.log import get_logger
    from dlbench.svm import run_svm

    dataset = args.dataset
    split = Path(args.split)
    if not split.exists():
        raise DataError(f"--split {split}: folder not found", "run `dlbench data` first and pass its output folder")
    if dataset is None:
        dataset = split_dataset(split)
    config = validate_model(SvmConfig, {"dataset": dataset, **field_values(args, OPTIONS)}, "svm options",
                            flags={"C": "--C"})
    check_out_dir(args.out)
    run_svm(config, args.split, args.out, log=get_logger("dlbench.svm").info)
    print(args.out)
    return 0
