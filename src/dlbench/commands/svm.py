from __future__ import annotations

from dlbench.commands.options import add_field_options, field_values
from dlbench.configs import SvmConfig

OPTIONS = ("backend", "kernel", "C", "gamma", "degree", "coef0", "preprocess", "n_train", "seed")


def _gamma(text: str) -> float | str:
    from dlbench.cli import finite_float

    return text if text in ("scale", "auto") else finite_float(text, " > 0, 'scale' or 'auto'")


def register(sub) -> None:
    from dlbench.cli import add_command, add_split_options

    p = add_command(
        sub,
        "svm",
        "fit and evaluate one SVM (scikit-learn on the CPU or cuML on the GPU) on a split",
        description="Fit an SVC on the training part of a split written by `dlbench data` (optionally a "
        "stratified, seeded subsample of it), evaluate it on the test part, and write "
        "model.joblib and record.json (accuracy, per-class accuracy, confusion matrix, fit and "
        "predict seconds, support vectors, backend and version, threads).",
        epilog="backends: sklearn = scikit-learn's SVC (libsvm, one CPU core); cuml = RAPIDS cuML's SVC "
        "(needs an NVIDIA GPU and the cuml-cu13 wheels); auto = cuml when it can run, else sklearn "
        "(the record's metrics.backend says which ran). gamma 'scale' = 1 / (n_features * var(X)), "
        "'auto' = 1 / n_features, resolved once so every backend gets the same number.\n"
        "example: dlbench svm --split runs/demo/data/fashion-mnist --out runs/demo/svm/rbf "
        "--n-train 10000",
    )
    add_split_options(p)
    # auto here (a machine with a GPU uses it); a spec names its backends (SvmConfig's default: sklearn)
    add_field_options(
        p,
        SvmConfig,
        OPTIONS,
        backend={"default": "auto"},
        C={"flag": "--C"},
        gamma={"type": _gamma},
        n_train={"metavar": "N"},
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from dlbench.cli import split_dataset_of
    from dlbench.configs import validate_model
    from dlbench.io import check_out_dir
    from dlbench.log import get_logger
    from dlbench.svm import run_svm

    dataset = split_dataset_of(args)
    config = validate_model(
        SvmConfig, {"dataset": dataset, **field_values(args, OPTIONS)}, "svm options", flags={"C": "--C"}
    )
    check_out_dir(args.out, inputs={"--split": args.split})
    run_svm(config, args.split, args.out, log=get_logger("dlbench.svm").info)
    print(args.out)
    return 0
