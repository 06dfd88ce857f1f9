"""Fit every available SVM backend on the same data in one run; print JSON with the times and the ratios.

By default every backend of the registry (dlbench.svm.BACKENDS: sklearn, sklearnex, cuml); each other
backend's fit and predict speedups are given over sklearn.

    python bench/svm_backends.py --dataset-dir /usr/share/datasets/fashion-mnist --n-train 10000
    python bench/svm_backends.py --split runs/quick/data/fashion-mnist --backends sklearn,cuml

Every backend gets the identical matrices (pixels / 255 or standardised, float32), the identical
labels and the identical resolved gamma (dlbench.svm). Times are wall-clock (dlbench.timing.Stopwatch)
around one fit and one predict of the whole test set; a GPU backend first does an untimed warm-up fit on 200
images (its seconds are reported), and its timed fit includes the copy to the device. A speedup is
reported only when sklearn and another backend both ran; a backend that cannot run is listed with the
reason. The target of the issue (cuML >= 20x faster than scikit-learn on the full 49,000-image training
set, accuracies within 0.5 points) is checked when both ran.

A machine with only one of the backends (scikit-learn on a CPU box, cuML measured earlier on a GPU
machine) can still be compared: --compare-with takes an earlier output of this script, checks that its
data and parameters are the ones of this run, and adds a comparison marked ``same_run: false`` that names
both machines. libsvm fits on one core, so that ratio depends on the two CPUs' single-core speed; it is
reported, never mixed with a same-run figure.

    python bench/svm_backends.py --dataset-dir /usr/share/datasets/fashion-mnist --backends sklearn \
        --compare-with docs/h100-2026-11-23/svm_cuml_rbf_49k.json
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

import bench_common
from dlbench.data.split import load_split, stratified_subsample
from dlbench.data.step import split_manifest
from dlbench.errors import DlbenchError
from dlbench.io import read_json
from dlbench.record import device_info, environment, now_iso
from dlbench.svm import BACKENDS, fit_and_evaluate, get_backend, resolve_gamma
from dlbench.svm.step import apply_preprocess, fit_preprocess
from dlbench.timing import Stopwatch


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--split", help="a `dlbench data` folder (or its split.npz)")
    src.add_argument("--dataset-dir", help="a folder of IDX files; split here 70/10/20 like `dlbench data`")
    p.add_argument("--dataset", default="fashion-mnist", help="dataset name, with --dataset-dir")
    p.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help="comma-separated backends to fit, in order (default: every registered one)",
    )
    p.add_argument(
        "--n-train", type=int, default=None, help="stratified subsample of the training split; default: all"
    )
    p.add_argument(
        "--n-test", type=int, default=None, help="stratified subsample of the test split; default: all"
    )
    p.add_argument("--kernel", default="rbf", choices=["rbf", "poly"])
    p.add_argument("--C", dest="C", type=float, default=10.0)
    p.add_argument("--gamma", default="scale", help="a number > 0, scale or auto")
    p.add_argument("--degree", type=int, default=3)
    p.add_argument("--coef0", type=float, default=0.0)
    p.add_argument("--preprocess", default="scale", choices=["scale", "standardize"])
    p.add_argument("--seed", type=int, default=0, help="seed of the split and the subsamples")
    p.add_argument("--target-speedup", type=float, default=20.0, help="fit speedup the issue asks of cuML")
    p.add_argument("--target-points", type=float, default=0.5, help="largest accuracy gap allowed, in points")
    p.add_argument("--strict", action="store_true", help="exit 1 if a requested backend cannot run")
    p.add_argument("--out", default=None, help="also write the JSON to this file")
    p.add_argument(
        "--compare-with",
        action="append",
        default=[],
        metavar="JSON",
        help="an earlier output of this script (e.g. cuML on a GPU machine) whose results join the "
        "comparison, marked as another run; its data and parameters must equal this run's "
        "(repeatable)",
    )
    return p.parse_args(argv)


def load_data(args) -> tuple[dict, dict]:
    if args.split:
        split = load_split(args.split)
        path = Path(args.split)
        return split, {
            "split": str(path),
            "source": "split",
            "dataset": (split_manifest(path) or {}).get("dataset"),
        }
    split, source = bench_common.idx_split(args.dataset, args.dataset_dir, args.seed)
    return split, {"dataset_dir": args.dataset_dir, "dataset": args.dataset, "source": source["kind"]}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# What must be equal for an earlier run's timing to be compared with this one's.
SAME_CONFIG = ("kernel", "C", "degree", "coef0", "preprocess", "seed")
SAME_DATA = ("dataset", "n_train", "n_test", "n_features")


def fingerprint(*arrays: np.ndarray) -> str:
    """SHA-256 over the exact images and labels both backends get, in order (before preprocessing)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.data)
    return h.hexdigest()


def load_earlier(path: str, config: dict, data: dict) -> dict:
    """An earlier output of this script, checked to be the same measurement; DlbenchError if not."""
    try:
        earlier = read_json(path)  # damaged JSON: a one-line JsonFileError naming the file
    except OSError as exc:
        raise DlbenchError(f"--compare-with {path}: {exc.strerror or exc}") from None
    if not isinstance(earlier, dict) or earlier.get("benchmark") != "svm_backends":
        raise DlbenchError(f"--compare-with {path}: not an output of bench/svm_backends.py")
    cfg, their = earlier.get("config") or {}, earlier.get("data") or {}
    diffs = [f"{k} {cfg.get(k)!r} there, {config[k]!r} here" for k in SAME_CONFIG if cfg.get(k) != config[k]]
    g = cfg.get("gamma_value")
    if not isinstance(g, int | float) or abs(g - config["gamma_value"]) > 1e-9 * config["gamma_value"]:
        diffs.append(f"gamma {g!r} there, {config['gamma_value']!r} here")
    diffs += [
        f"{k} {their.get(k)!r} there, {data.get(k)!r} here" for k in SAME_DATA if their.get(k) != data.get(k)
    ]
    if their.get("fingerprint") and their["fingerprint"] != data["fingerprint"]:
        diffs.append("the images or labels differ (data fingerprint)")
    if diffs:
        raise DlbenchError(
            f"--compare-with {path}: a different measurement ({'; '.join(diffs)})",
            "run this script with the same data and parameters",
        )
    return earlier


def machine(out: dict, result: dict) -> dict:
    """The machine a result ran on, as its output recorded it."""
    env = out.get("environment") or {}
    dev = (out.get("devices") or {}).get(result["device"]) or {}
    return {
        "host": env.get("host"),
        "cpu": env.get("cpu"),
        "cpu_count": env.get("cpu_count"),
        "device": result["device"],
        "device_name": dev.get("name"),
        "time": out.get("time"),
    }


def compare(base: dict, other: dict, args, n_train: int) -> dict:
    fit_speedup = base["fit_seconds"] / other["fit_seconds"]
    gap = abs(base["accuracy"] - other["accuracy"]) * 100
    return {
        "baseline": base["backend"],
        "backend": other["backend"],
        "same_run": True,
        "fit_speedup": float(f"{fit_speedup:.3g}"),  # 3 significant digits: 0.192x, 41.3x
        "predict_speedup": round(base["predict_seconds"] / other["predict_seconds"], 2),
        "accuracy_gap_points": round(gap, 3),
        "target": {
            "fit_speedup_at_least": args.target_speedup,
            "accuracy_gap_at_most": args.target_points,
            "met": bool(fit_speedup >= args.target_speedup and gap <= args.target_points),
            "note": "the issue's target is for the full 49,000-image training set" if n_train < 49000 else "",
        },
    }


def compare_across_runs(out: dict, earlier: dict, path: str, args) -> list[dict]:
    """sklearn of one run against every other backend of the other run (this run's sklearn first)."""
    across = {
        "same_run": False,
        "earlier_run": path,
        "data_check": "identical images and labels (fingerprint)"
        if (earlier.get("data") or {}).get("fingerprint")
        else "same dataset, seed and sizes (the earlier run has no data fingerprint)",
        "caution": "two runs on two machines: libsvm fits on one core, so this ratio also holds the "
        "difference between the two CPUs' single-core speed",
    }
    found = []
    for base_out, other_out in ((out, earlier), (earlier, out)):
        for base in (r for r in base_out.get("results", []) if r["backend"] == "sklearn"):
            for other in (r for r in other_out.get("results", []) if r["backend"] != "sklearn"):
                found.append(
                    {
                        **compare(base, other, args, out["data"]["n_train"]),
                        **across,
                        "machines": {
                            base["backend"]: machine(base_out, base),
                            other["backend"]: machine(other_out, other),
                        },
                    }
                )
    return found


def main(argv=None) -> int:
    return bench_common.main("svm_backends", parse_args, run, argv)


def run(args) -> int:
    gamma_arg = args.gamma if args.gamma in ("scale", "auto") else float(args.gamma)
    split, data = load_data(args)
    x_train, y_train, x_test, y_test = split["x_train"], split["y_train"], split["x_test"], split["y_test"]
    if args.n_train is not None and args.n_train < len(y_train):
        keep = stratified_subsample(y_train, args.n_train, args.seed)
        x_train, y_train = x_train[keep], y_train[keep]
    if args.n_test is not None and args.n_test < len(y_test):
        keep = stratified_subsample(y_test, args.n_test, args.seed)
        x_test, y_test = x_test[keep], y_test[keep]
    prep = fit_preprocess(x_train, args.preprocess)
    X_train, X_test = apply_preprocess(x_train, prep), apply_preprocess(x_test, prep)
    gamma = resolve_gamma(gamma_arg, X_train)
    n_classes = max(10, int(max(y_train.max(), y_test.max())) + 1)
    data.update(
        n_train=int(len(y_train)),
        n_test=int(len(y_test)),
        n_features=int(X_train.shape[1]),
        fingerprint=fingerprint(x_train, y_train, x_test, y_test),
    )
    config = {
        "kernel": args.kernel,
        "C": args.C,
        "gamma": args.gamma,
        "gamma_value": gamma,
        "degree": args.degree,
        "coef0": args.coef0,
        "preprocess": args.preprocess,
        "seed": args.seed,
        "backends": args.backends,
    }
    # checked before any fit, so a mismatch costs seconds, not the minutes of a fit
    earlier_runs = [(path, load_earlier(path, config, data)) for path in args.compare_with]

    results, unavailable = [], {}
    for name in [b.strip() for b in args.backends.split(",") if b.strip()]:
        try:
            cls = get_backend(name)
        except DlbenchError as exc:
            unavailable[name] = exc.message
            log(f"{name}: not run: {exc.message}")
            continue
        backend = cls(args.kernel, args.C, gamma, args.degree, args.coef0)
        with Stopwatch() as wall:
            r = fit_and_evaluate(
                backend,
                X_train,
                y_train.astype(np.int64),
                X_test,
                y_test.astype(np.int64),
                n_classes,
                log=log,
            )
        results.append(
            {
                "backend": name,
                "version": backend.version,
                "device": backend.device,
                "threads": backend.threads,
                "fit_seconds": round(r["fit_seconds"], 6),
                "predict_seconds": round(r["predict_seconds"], 6),
                "warmup_seconds": None if r["warmup_seconds"] is None else round(r["warmup_seconds"], 4),
                "accuracy": r["accuracy"],
                "n_support": r["n_support"],
                "predict_images_per_second": round(len(y_test) / r["predict_seconds"], 1),
                "wall_seconds": round(wall.seconds, 3),
                "params": {
                    k: (v if isinstance(v, str | int | float | bool | type(None)) else str(v))
                    for k, v in backend.params.items()
                },
            }
        )

    sklearn = [r for r in results if r["backend"] == "sklearn"]
    comparisons = [
        compare(base, other, args, data["n_train"])
        for base in sklearn
        for other in results
        if other["backend"] != "sklearn"
    ]
    out = {
        "benchmark": "svm_backends",
        "time": now_iso(),
        "config": config,
        "data": data,
        "results": results,
        "unavailable": unavailable,
        "comparisons": comparisons,
        "compared_with": args.compare_with,
        "comparison_note": None,
        "timing": "perf_counter around one fit and one predict of the whole test set; GPU work synchronised "
        "before the clock stops; a GPU backend's warm-up fit (200 images) is untimed and reported",
        "environment": environment(),
        "devices": {
            "cpu": device_info("cpu"),
            **({"cuda": device_info("cuda")} if any(r["device"] == "cuda" for r in results) else {}),
        },
    }
    for path, earlier in earlier_runs:
        comparisons += compare_across_runs(out, earlier, path, args)
    if not comparisons:
        out["comparison_note"] = "a speedup needs sklearn and another backend to have run"
    bench_common.emit(out, args.out)
    if args.strict and unavailable:
        return 1
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
