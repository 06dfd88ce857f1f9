from __future__ import annotations


def _gamma(text: str) -> float | str:
    from dlbench.cli import finite_float

    return text if text in ("scale", "auto") else finite_float(text, " > 0, 'scale' or 'auto'")


def register(sub) -> None:
    from dlbench.cli import add_command, add_split_options, finite_float

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
    add_split_options(p)
    p.add_argument("--backend", default="auto", choices=["auto", "sklearn", "cuml"], help="SVM implementation")
    p.add_argument("--kernel", default="rbf", choices=["rbf", "poly"], help="kernel")
    p.add_argument("--C", dest="C", type=finite_float, default=10.0, help="regularisation parameter (> 0)")
    p.add_argument("--gamma", type=_gamma, default="scale", help="kernel coefficient: a number > 0, scale or auto")
    p.add_argument("--degree", type=int, default=3, help="degree of the poly kernel")
    p.add_argument("--coef0", type=finite_float, default=0.0, help="independent term of the poly kernel")
    p.add_argument("--preprocess", default="scale", choices=["scale", "standardize"],
                   help="scale: pixels / 255; standardize: per-pixel mean and spread of the training images")
    p.add_argument("--n-train", type=int, default=None,
                   help="stratified, seeded subsample of the training split (default: all of it)")
    p.add_argument("--seed", type=int, default=0, help="seed of the subsample")
    p.set_defaults(func=run)


def run(args) -> int:
    from dlbench.cli import split_dataset_of
    from dlbench.io import check_out_dir
    from dlbench.log import get_logger
    from dlbench.spec import SvmConfig, validate_model
    from dlbench.svm import run_svm

    dataset = split_dataset_of(args)
    config = validate_model(SvmConfig, {
        "dataset": dataset, "backend": args.backend, "kernel": args.kernel, "C": args.C, "gamma": args.gamma,
        "degree": args.degree, "coef0": args.coef0, "preprocess": args.preprocess, "n_train": args.n_train,
        "seed": args.seed}, "svm options", flags={"C": "--C"})
    check_out_dir(args.out)
    run_svm(config, args.split, args.out, log=get_logger("dlbench.svm").info)
    print(args.out)
    return 0
