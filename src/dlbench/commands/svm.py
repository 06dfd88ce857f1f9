from __future__ import annotations

from dlbench.commands.options import add_field_options, field_values
from dlbench.configs import SvmConfig

OPTIONS = ("backend", "kernel", "C", "gamma", "degree", "coef0", "preprocess", "n_train", "seed")


def _gamma(text: str) -> float | str:
    from dlbench.cli import finite_float

    return text if text in ("scale", "auto") else finite_float(text, " > 0, 'scale' or 'auto'")


def register(sub) -> None:
    from dlbench.cli import add_command

    p = add_command(
        sub,
        "svm",
        "fit and evaluate one SVM (scikit-learn on the CPU or cuML on the GPU) on a split",
        description="Fit an SVC on the training part of a split written by `dlbench data` (optionally a "
        "stratified, seeded subsample of it), evaluate it on the test part, and write "
        "model.joblib and record.json (accuracy, per-class accuracy, confusion matrix, fit and "
        "predict seconds, support vectors, backend and version, threads).",
        epilog="backends: sklearn = scikit-learn's SVC (libsvm, one CPU core); sklearnex = "
        "scikit-learn-intelex's SVC (oneDAL, every CPU core); cuml = RAPIDS cuML's SVC "
        "(needs an NVIDIA GPU and the cuml-cu13 wheels); auto = cuml when it can run, else sklearn "
        "(the record's metrics.backend says which ran). gamma 'scale' = 1 / (n_features * var(X)), "
        "'auto' = 1 / n_features, resolved once so every backend gets the same number.\n"
        "example: dlbench svm --split runs/demo/data/fashion-mnist --out runs/demo/svm/rbf "
        "--n-train 10000",
    )
    _options(p, OPTIONS)
    p.set_defaults(func=run, estimator="svm")

    c = add_command(
        sub,
        "classical",
        "fit and evaluate one classical estimator (SVM, logistic regression, random forest, gradient "
        "boosting) on a split",
        description="The classical step: fit one estimator of the registry (dlbench.svm.estimators) on "
        "the training part of a split written by `dlbench data` (the flattened pixels, scaled or "
        "standardised as for the SVMs), evaluate it on the test part, and write model.joblib and "
        "record.json (accuracy, per-class accuracy, confusion matrix, fit and predict seconds, "
        "backend and version, threads). `dlbench svm` is this step with --estimator svm.",
        epilog="estimators: svm (SVC, --kernel rbf or poly, --C, --gamma), logistic_regression (--C), "
        "random_forest (100 trees), hist_gradient_boosting (100 iterations, scikit-learn only). "
        "backends: sklearn = scikit-learn (CPU); sklearnex = scikit-learn-intelex (oneDAL, every CPU "
        "core); cuml = RAPIDS cuML (GPU); auto = cuml when it can run, else sklearn.\n"
        "example: dlbench classical --estimator random_forest --backend sklearnex "
        "--split runs/demo/data/fashion-mnist --out runs/demo/classical/rf",
    )
    _options(c, ("estimator", *OPTIONS))
    c.set_defaults(func=run)


def _options(p, names) -> None:
    from dlbench.cli import add_split_options

    add_split_options(p)
    # auto here (a machine with a GPU uses it); a spec names its backends (SvmConfig's default: sklearn)
    add_field_options(
        p,
        SvmConfig,
        names,
        backend={"default": "auto"},
        C={"flag": "--C"},
        gamma={"type": _gamma},
        n_train={"metavar": "N"},
    )


def run(args) -> int:
    from dlbench.cli import split_dataset_of
    from dlbench.configs import validate_model
    from dlbench.io import check_out_dir
    from dlbench.log import get_logger
    from dlbench.svm import run_svm

    dataset = split_dataset_of(args)
    config = validate_model(
        SvmConfig,
        {"dataset": dataset, "estimator": args.estimator, **field_values(args, OPTIONS)},
        "svm options",
        flags={"C": "--C"},
    )
    check_out_dir(args.out, inputs={"--split": args.split})
    run_svm(config, args.split, args.out, log=get_logger("dlbench.svm").info)
    print(args.out)
    return 0
