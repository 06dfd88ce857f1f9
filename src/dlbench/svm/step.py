"""The ``svm`` step: fit one SVM configuration on the training split, evaluate it on the test split.

Everything a backend sees is prepared here, once, the same way for every backend: images flattened to
784 float32 features and scaled (pixels / 255) or standardised (mean and spread of the training images
only), labels encoded as 0..K-1, gamma resolved to one number. So scikit-learn on the CPU and cuML on
the GPU get identical inputs and the record can compare them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlbench.configs import NUM_CLASSES
from dlbench.data.split import stratified_subsample
from dlbench.data.step import load_checked_split, split_manifest
from dlbench.errors import DataError, SpecError, StepFailed
from dlbench.record import step_record
from dlbench.svm.backends import SvmBackend, get_backend, resolve_gamma
from dlbench.timing import Stopwatch

if TYPE_CHECKING:  # the spec (pydantic) is imported only by run_svm, so bench/ runs where pydantic is absent
    from dlbench.spec import SvmConfig

MODEL_NAME = "model.joblib"
WARMUP_IMAGES = (
    200  # a first tiny fit on the GPU backend takes CUDA context creation and loading out of the timed fit
)


def flatten(images: np.ndarray) -> np.ndarray:
    return np.asarray(images).reshape(len(images), -1).astype(np.float32)


def fit_preprocess(x_train: np.ndarray, kind: str) -> dict[str, Any]:
    """Preprocessing parameters, from the training images only."""
    if kind == "scale":
        return {"kind": "scale", "divisor": 255.0}
    if kind == "standardize":
        X = x_train.reshape(len(x_train), -1).astype(np.float64)
        mean, std = X.mean(axis=0), X.std(axis=0)
        std[std == 0] = 1.0  # constant pixels (e.g. always-black corners) stay 0 instead of dividing by 0
        return {"kind": "standardize", "mean": mean.astype(np.float32), "std": std.astype(np.float32)}
    raise SpecError(f"unknown preprocessing {kind!r}", "choose scale or standardize")


def apply_preprocess(images: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    X = flatten(images)
    if params["kind"] == "scale":
        X /= np.float32(params["divisor"])
    else:
        X -= params["mean"]
        X /= params["std"]
    return X


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts, rows = true class, columns = predicted class."""
    idx = y_true.astype(np.int64) * n_classes + y_pred.astype(np.int64)
    return np.bincount(idx, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def fit_and_evaluate(
    backend: SvmBackend,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    n_classes: int,
    log=print,
) -> dict[str, Any]:
    """Fit ``backend`` (warm-up first if it asks for one), predict the test set; timings and scores.

    Labels are integers below ``n_classes``. Backends see them encoded as 0..K-1 over the classes present
    in ``y_train`` (cuML's multi-class predict answers with those indices), and predictions are decoded
    back; ``label_values`` in the result maps index -> label. Timings use :class:`dlbench.timing.Stopwatch`
    with ``backend.synchronize()`` before the clock stops, so queued GPU work is inside the measured time.
    fit_seconds includes the copy of the training matrix to the device for a GPU backend; predict_seconds
    the copy there and back.
    """
    label_values, y_enc = np.unique(y_train, return_inverse=True)
    y_enc = y_enc.astype(np.int32)
    warmup_seconds = None
    if backend.warmup:
        keep = stratified_subsample(y_enc, min(WARMUP_IMAGES, len(y_enc)), seed=0)
        with Stopwatch(backend.synchronize) as warm:
            backend.fresh().fit(X_train[keep], y_enc[keep]).predict(X_test[:WARMUP_IMAGES])
        warmup_seconds = warm.seconds
        log(f"{backend.name}: warm-up fit on {len(keep)} images took {warmup_seconds:.2f} s (not counted)")
    log(
        f"{backend.name}: fitting {backend.describe()} "
        f"on {len(y_train):,} images x {X_train.shape[1]} features"
    )
    with Stopwatch(backend.synchronize) as fit:
        backend.fit(X_train, y_enc)
    fit_seconds = fit.seconds
    support = f", {backend.n_support:,} support vectors" if backend.n_support is not None else ""
    log(f"{backend.name}: fit {fit_seconds:.2f} s{support}; predicting {len(y_test):,} test images")
    with Stopwatch(backend.synchronize) as predict:
        pred = backend.predict(X_test)
    predict_seconds = predict.seconds
    pred = label_values[np.asarray(pred).astype(np.int64).ravel()].astype(np.int64)
    cm = confusion(y_test, pred, n_classes)
    rows = cm.sum(axis=1)
    per_class = [float(cm[i, i] / rows[i]) if rows[i] else None for i in range(n_classes)]
    accuracy = float(np.trace(cm) / max(1, cm.sum()))
    log(f"{backend.name}: predict {predict_seconds:.2f} s, test accuracy {accuracy:.2%}")
    return {
        "accuracy": accuracy,
        "fit_seconds": fit_seconds,
        "predict_seconds": predict_seconds,
        "warmup_seconds": warmup_seconds,
        "per_class_accuracy": per_class,
        "confusion_matrix": cm.tolist(),
        "n_support": backend.n_support,
        "predictions": pred,
        "label_values": label_values,
    }


def _n_classes(split_dir: Path, labels: np.ndarray) -> int:
    """Classes of the split: its manifest's list (the user's data may have 2 or 1,000), at least the
    largest label + 1; 10 for a split without a manifest (as the built-in datasets have)."""
    names = (split_manifest(split_dir) or {}).get("classes")
    least = int(labels.max()) + 1 if labels.size else 1
    return max(least, len(names) if isinstance(names, list) else NUM_CLASSES)


def _class_names(split_dir: Path, n_classes: int) -> list[str]:
    names = (split_manifest(split_dir) or {}).get("classes")
    if isinstance(names, list) and len(names) >= n_classes:
        return [str(n) for n in names]
    return [str(i) for i in range(n_classes)]


def _json_safe(params: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (v if isinstance(v, str | int | float | bool | type(None)) else str(v)) for k, v in params.items()
    }


def run(
    config: SvmConfig | dict, inputs: dict[str, Any], out: str | os.PathLike, log=print
) -> dict[str, Any]:
    """The step contract (:mod:`dlbench.runner`): fit and score ``config`` on the split in
    ``inputs["split"]`` into ``out``; returns the record."""
    return run_svm(config, inputs["split"], out, log=log)


def run_svm(
    config: SvmConfig | dict, split_dir: str | os.PathLike, out_dir: str | os.PathLike, log=print
) -> dict[str, Any]:
    """Fit and evaluate one SVM; write ``out_dir/model.joblib`` and ``record.json``; return the record.

    Bad input (an n_train larger than the training split, a backend that cannot run here, a missing
    split) raises a :class:`~dlbench.errors.DlbenchError` before anything is written.
    """
    from dlbench.spec import SvmConfig, validate_model

    if not isinstance(config, SvmConfig):
        config = validate_model(SvmConfig, dict(config), "svm config")
    split_dir, out = Path(split_dir), Path(out_dir)
    split, _, split_path = load_checked_split(split_dir, config.dataset)
    x_train, y_train = split["x_train"], split["y_train"]
    for part in ("train", "test"):
        if len(split[f"y_{part}"]) == 0:
            raise DataError(
                f"{split_path}: the {part} part is empty", "re-run `dlbench data` with more images"
            )
    if len(np.unique(y_train)) < 2:
        raise DataError(
            f"{split_path}: the training part holds a single class", "re-run `dlbench data` with more images"
        )
    if config.n_train is not None and config.n_train > len(y_train):
        raise SpecError(
            f"n_train {config.n_train:,} is larger than the training split ({len(y_train):,} images)",
            f"use at most {len(y_train)}, or leave n_train out to use all of it",
        )
    n_classes_train = len(np.unique(y_train))
    if config.n_train is not None and config.n_train < n_classes_train:
        raise SpecError(
            f"n_train {config.n_train} is fewer than the {n_classes_train} classes of the training split: "
            "some classes would have no training image, and the SVM could never predict them",
            f"use n_train {n_classes_train} or more (one image per class), or leave it out to use all of it",
        )
    from dlbench.svm.estimators import EstimatorBackend, get_estimator, resolve_backend

    entry = get_estimator(config.estimator)
    backend_name = resolve_backend(config.estimator, config.backend)
    backend_cls = get_backend(backend_name) if config.estimator == "svm" else None
    device = backend_cls.device if backend_cls else ("cuda" if backend_name == "cuml" else "cpu")
    with step_record("svm", config.model_dump(), out, run_id=config.run_id, device=device) as rec:
        rec.add_input("split", split_path)
        if config.n_train is not None and config.n_train < len(y_train):
            keep = stratified_subsample(y_train, config.n_train, seed=config.seed)
            x_train, y_train = x_train[keep], y_train[keep]
            log(f"stratified subsample of the training split: {len(y_train):,} images (seed {config.seed})")
        labels = np.unique(np.concatenate([y_train, split["y_test"]]))
        n_classes = _n_classes(split_dir, labels)
        class_names = _class_names(split_dir, n_classes)

        with Stopwatch() as preprocess:
            prep = fit_preprocess(x_train, config.preprocess)
            X_train = apply_preprocess(x_train, prep)
            X_test = apply_preprocess(split["x_test"], prep)
        gamma = resolve_gamma(config.gamma, X_train)

        if backend_cls is not None:
            backend = backend_cls(config.kernel, config.C, gamma, config.degree, config.coef0)
        else:
            backend = EstimatorBackend(entry, backend_name, config)
        result = fit_and_evaluate(
            backend,
            X_train,
            y_train.astype(np.int64),
            X_test,
            split["y_test"].astype(np.int64),
            n_classes,
            log=log,
        )

        rec.metrics.update(
            {
                "accuracy": result["accuracy"],
                "fit_seconds": round(result["fit_seconds"], 4),
                "predict_seconds": round(result["predict_seconds"], 4),
                "warmup_seconds": None
                if result["warmup_seconds"] is None
                else round(result["warmup_seconds"], 4),
                "preprocess_seconds": round(preprocess.seconds, 4),
                "per_class_accuracy": result["per_class_accuracy"],
                "confusion_matrix": result["confusion_matrix"],
                "n_support": result["n_support"],
                "n_train": int(len(y_train)),
                "n_test": int(len(split["y_test"])),
                "n_features": int(X_train.shape[1]),
                "backend": backend.name,
                "estimator": config.estimator,
                "backend_version": backend.version,
                "threads": backend.threads,
                "threads_note": backend.threads_note,
                "gamma": gamma,
                "gamma_from": config.gamma if isinstance(config.gamma, str) else "value",
                "preprocess": config.preprocess,
                "backend_params": _json_safe(backend.params),
                "classes": class_names,
            }
        )
        # saved last: the measurements are in the record even if the model cannot be written
        model_path = out / MODEL_NAME
        try:
            backend.save(
                model_path,
                extra={
                    "preprocess": prep,
                    "gamma": gamma,
                    "classes": class_names,
                    "label_values": result["label_values"],
                    "n_features": int(X_train.shape[1]),
                    "config": config.model_dump(),
                },
            )
        except Exception as exc:
            raise StepFailed(
                f"{backend.name} model could not be saved to {model_path}: "
                f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            ) from exc
        rec.add_output("model", model_path)
    return rec.to_dict()


class SvmModel:
    """A saved SVM with its preprocessing: ``predict(images)`` takes raw uint8 images (N x 28 x 28)."""

    def __init__(self, payload: dict[str, Any]):
        self.payload = payload
        self.estimator = payload["estimator"]
        self.preprocess = payload["preprocess"]
        self.classes = payload.get("classes")
        self.label_values = np.asarray(payload["label_values"])
        self.backend = payload["backend"]

    def predict(self, images: np.ndarray) -> np.ndarray:
        from dlbench.svm.backends import to_numpy

        X = apply_preprocess(images, self.preprocess)
        if self.backend == "cuml":
            X = np.ascontiguousarray(X, dtype=np.float32)
        index = to_numpy(self.estimator.predict(X)).astype(np.int64).ravel()
        return self.label_values[index].astype(np.int64)


def load_model(path: str | os.PathLike) -> SvmModel:
    """Load ``model.joblib`` written by :func:`run_svm` (a cuML model needs cuML and a GPU to load)."""
    import joblib

    path = Path(path)
    if path.is_dir():
        path = path / MODEL_NAME
    return SvmModel(joblib.load(path))
