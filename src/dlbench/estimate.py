"""Cost before work: a study's projected time from measured step times.

Every training task of the plan (:func:`dlbench.plan.train_tasks`: a solo run, or a fused group) has a
*shape*: model, stem, batch size, input, optimizer, AMP, engine, device and the number of fused members.
:func:`calibrate` times a few dozen steps of each distinct shape here (synthetic images: step time does
not depend on pixel values), the same engines and loop the train step runs, plus the evaluation forward
pass and (dataloader engine) the start of an epoch's DataLoader. A task's projection is then

    setup + epochs x (steps_per_epoch x s/step + epoch start + n_val x eval s/image) + n_test x eval s/image

with ``steps_per_epoch`` from the spec's data settings (the dataset size, subsample and split fractions).
SVM runs are projected from a small timed fit and prediction on the same data, scaled as libsvm scales
(fit ~ n_train^2, prediction ~ n_train x n_test); ONNX timing loops from the CPU evaluation throughput;
the data, profile and report steps and ONNX export are fixed allowances (named as such in the output).

A calibration is JSON (``--calibration FILE``): the machine, the versions and one entry per shape, so
a calibration measured on one machine (e.g. an H100) projects studies for it from anywhere.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from dlbench.devices import device_name_of
from dlbench.errors import DataError, SpecError
from dlbench.io import write_json
from dlbench.plan import expand_svm, train_tasks
from dlbench.spec import StudySpec, TrainConfig

FORMAT = 1


def dataset_images(spec: StudySpec, dataset: str) -> int:
    """Images of ``dataset``: a registered one's full set; the user's own counted at ``data.root`` (the
    image files of a folder, the labels of an .npz; 0 when the root is not readable here)."""
    from dlbench.data.registry import DATASETS

    entry = DATASETS.get(dataset)
    if entry is not None and entry.full_size:
        return entry.full_size
    root = Path(spec.data.root or "")
    if spec.data.source == "npz" and root.is_file():
        import numpy as np

        try:
            with np.load(root, allow_pickle=False) as z:
                return len(z["labels"])
        except (OSError, ValueError, KeyError):
            return 0
    if spec.data.source == "folder" and root.is_dir():
        from dlbench.data.folder import IMAGE_SUFFIXES

        return sum(1 for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return 0


# Allowances for steps that are not calibrated (seconds; about what the quick preset's steps took on a
# 2-core CPU machine; named as allowances in the output).
FIXED = {"data_per_dataset": 1.0, "profile": 3.0, "onnx_export_per_model": 6.0, "report": 5.0}
# timed steps and warm-up steps per shape (a CPU step is ~100x a GPU step); evaluation images
CAL_STEPS = {"cpu": 8, "cuda": 40}
CAL_WARMUP = {"cpu": 2, "cuda": 10}
CAL_EVAL_IMAGES = 256


def shape_of(task: list[TrainConfig]) -> dict[str, Any]:
    """A task's shape; ``device`` is its catalog name (dlbench.devices), ``kind`` beside it when that is not
    a built-in name, so a calibration measured on an H100 node is told from one measured on an L4."""
    c = task[0]
    extra = {"kind": c.device} if c.device_name else {}
    return {
        **extra,
        "model": c.model,
        "stem": c.stem,
        "batch_size": c.batch_size,
        "input_size": c.input_size,
        "in_channels": c.in_channels,
        "optimizer": c.optimizer,
        "amp": c.amp,
        "device": c.device_name or c.device,
        "engine": "fused" if len(task) > 1 else c.engine,
        "members": len(task),
        "num_workers": c.num_workers if c.engine == "dataloader" else 0,
        "pin_memory": bool(c.pin_memory) if c.engine == "dataloader" else False,
    }


def shape_key(shape: dict[str, Any]) -> str:
    return ",".join(f"{k}={shape[k]}" for k in sorted(shape))


def split_sizes(spec: StudySpec, dataset: str) -> dict[str, int]:
    """Images in train/val/test for ``dataset`` under the spec's data settings (as ``dlbench data``
    splits)."""
    n = dataset_images(spec, dataset)
    if spec.data.subsample:
        n = min(n, spec.data.subsample)
    f_train, f_val, _ = spec.data.fractions
    n_train, n_val = round(n * f_train), round(n * f_val)
    return {"train": n_train, "val": n_val, "test": n - n_train - n_val}


# --------------------------------------------------------------------------- calibration


def _synthetic(n_train: int, n_eval: int, seed: int = 0) -> dict:
    import numpy as np

    rng = np.random.default_rng(seed)
    out = {}
    for part, n in (("train", n_train), ("val", n_eval), ("test", n_eval)):
        out[f"x_{part}"] = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        out[f"y_{part}"] = rng.integers(0, 10, size=n, dtype=np.uint8)
    return out


def calibrate_shape(
    shape: dict[str, Any],
    steps: int | None = None,
    warmup: int | None = None,
    eval_images: int = CAL_EVAL_IMAGES,
) -> dict[str, Any]:
    """Time ``steps`` training steps, the evaluation of ``eval_images`` images and the engine setup."""
    kind = shape.get("kind", shape["device"])
    steps = steps or CAL_STEPS[kind]
    warmup = CAL_WARMUP[kind] if warmup is None else warmup
    import torch

    from dlbench.train.engines import ENGINES, resolve_device, synchronize
    from dlbench.train.loop import train_steps

    device = resolve_device(kind)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    bs, members = shape["batch_size"], shape["members"]
    n_train = (steps + warmup + 1) * bs
    configs = [
        TrainConfig(
            dataset="fashion-mnist",
            model=shape["model"],
            stem=shape["stem"],
            batch_size=bs,
            optimizer=shape["optimizer"],
            lr=1e-3 / (1 + i),
            amp=shape["amp"],
            device=kind,
            engine="resident" if shape["engine"] == "fused" else shape["engine"],
            seed=i,
            num_workers=shape["num_workers"],
            pin_memory=shape["pin_memory"],
            input_size=shape["input_size"],
            in_channels=shape["in_channels"],
        )
        for i in range(members)
    ]
    arrays = [_synthetic(n_train, eval_images, seed=i) for i in range(members)]
    t0 = time.perf_counter()
    if shape["engine"] == "fused":
        from dlbench.train.fused import FusedEngine

        engine = FusedEngine(configs, arrays, device)
    else:
        engine = ENGINES[shape["engine"]](configs[0], arrays[0], device)
    engine.setup()
    synchronize(device)
    setup = time.perf_counter() - t0
    full = n_train // bs
    t1 = time.perf_counter()
    batches = engine.batches(0, full)
    first = next(batches)
    synchronize(device)
    epoch_start = time.perf_counter() - t1 if shape["engine"] == "dataloader" else 0.0

    def chain():
        yield first
        yield from batches

    it = chain()
    train_steps(engine, it, warmup)
    r = train_steps(engine, it, steps)
    s_step = r["seconds"] / max(r["steps"], 1)
    synchronize(device)
    # the first evaluation of a shape pays one-off costs (cuDNN's autotuning of the evaluation batches:
    # seconds on a GPU), which a run pays once, not per image: counted with the setup, then the second one
    # is timed
    t2 = time.perf_counter()
    engine.trainer.evaluate(engine.eval_batches("val"))
    synchronize(device)
    setup += time.perf_counter() - t2
    t3 = time.perf_counter()
    engine.trainer.evaluate(engine.eval_batches("val"))
    synchronize(device)
    eval_spi = (time.perf_counter() - t3) / eval_images
    return {
        "seconds_per_step": s_step,
        "eval_seconds_per_image": eval_spi,
        "setup_seconds": setup,
        "epoch_start_seconds": epoch_start,
        "timed_steps": r["steps"],
    }


def calibrate_svm(spec: StudySpec, n_fit: int = 600, n_predict: int = 400) -> dict[str, Any] | None:
    """Time a small SVM fit and prediction per kernel (scikit-learn; the spec's settings) on real images
    when the dataset can be loaded here, else on synthetic ones."""
    configs = [c for c in expand_svm(spec) if c.backend in ("sklearn", "auto")]
    if not configs:
        return None
    import numpy as np

    from dlbench.svm.backends import get_backend, resolve_gamma
    from dlbench.svm.step import apply_preprocess, fit_preprocess

    source = "synthetic"
    try:
        from dlbench.data.load import load_dataset

        raw = load_dataset(configs[0].dataset, source=spec.data.source, root=spec.data.root)
        idx = np.random.default_rng(0).permutation(len(raw.labels))[: n_fit + n_predict]
        images, y, source = raw.images[idx], raw.labels[idx].astype(np.int64), configs[0].dataset
    except Exception:  # no dataset here: structured synthetic images (a bar per class)
        rng = np.random.default_rng(0)
        y = rng.integers(0, 10, n_fit + n_predict)
        images = rng.integers(0, 60, size=(len(y), 28, 28), dtype=np.uint8)
        for i, c in enumerate(y):
            images[i, 2 + 2 * c : 5 + 2 * c, 4:24] = 255
    out: dict[str, Any] = {"n_fit": n_fit, "n_predict": n_predict, "data": source, "kernels": {}}
    from dlbench.svm.estimators import EstimatorBackend, get_estimator

    for c in {c.estimator: c for c in configs if c.estimator != "svm"}.values():  # the other estimators
        prep = fit_preprocess(images[:n_fit], c.preprocess)
        x_fit, x_pred = apply_preprocess(images[:n_fit], prep), apply_preprocess(images[n_fit:], prep)
        est = EstimatorBackend(get_estimator(c.estimator), "sklearn", c)
        t0 = time.perf_counter()
        est.fit(x_fit, y[:n_fit])
        fit = time.perf_counter() - t0
        t1 = time.perf_counter()
        est.predict(x_pred)
        times = {"fit_seconds": fit, "predict_seconds": time.perf_counter() - t1}
        out.setdefault("estimators", {})[c.estimator] = times
    for c in {c.kernel: c for c in configs if c.estimator == "svm"}.values():
        prep = fit_preprocess(images[:n_fit], c.preprocess)
        x_fit, x_pred = apply_preprocess(images[:n_fit], prep), apply_preprocess(images[n_fit:], prep)
        svc = get_backend("sklearn")(c.kernel, c.C, resolve_gamma(c.gamma, x_fit), c.degree, c.coef0)
        t0 = time.perf_counter()
        svc.fit(x_fit, y[:n_fit])
        fit = time.perf_counter() - t0
        t1 = time.perf_counter()
        svc.predict(x_pred)
        out["kernels"][c.kernel] = {"fit_seconds": fit, "predict_seconds": time.perf_counter() - t1}
    return out


def calibrate(
    spec: StudySpec, devices: list[str] | None = None, log=print, existing: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Measure every shape of ``spec`` on ``devices`` (default: cpu, and cuda when visible) that
    ``existing`` does not already hold; returns the (updated) calibration."""
    import torch

    from dlbench.record import device_info, environment, now_iso

    if devices is None:
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    cal = existing or {"format": FORMAT, "shapes": {}}
    cal.setdefault("machines", {})
    cat = spec.catalog()
    for dev in devices:
        cal["machines"][dev] = {
            "device": device_info(cat[dev].kind if dev in cat else dev),
            "when": now_iso(),
            "torch_threads": torch.get_num_threads(),
        }
    cal["environment"] = environment()
    shapes = {shape_key(s): s for s in (shape_of(t) for t in train_tasks(spec)) if s["device"] in devices}
    for key, shape in shapes.items():
        if key in cal["shapes"]:
            continue
        log(f"calibrating {key} ...")
        cal["shapes"][key] = {"shape": shape, **calibrate_shape(shape)}
    have = cal.get("svm") or {}
    need = {(c.estimator, c.kernel if c.estimator == "svm" else None) for c in expand_svm(spec)}
    held = {("svm", k) for k in have.get("kernels") or {}} | {(e, None) for e in have.get("estimators") or {}}
    if "cpu" in devices and (not have or need - held):
        svm = calibrate_svm(spec)
        if svm:
            cal["svm"] = svm
    if "cpu" in devices and "onnx_cpu_seconds_per_image" not in cal:
        # the ONNX step's timing loops: CPU inference throughput of each model at batch 64 (eval mode)
        cal["onnx_cpu_seconds_per_image"] = {}
        for model in dict.fromkeys(spec.onnx.models or spec.model_names()):
            cal["onnx_cpu_seconds_per_image"][model] = _cpu_inference(
                model, spec.train.stem, spec.onnx.in_channels, spec.onnx.input_size
            )
    return cal


def _cpu_inference(model: str, stem: str, channels: int = 1, size: int = 28) -> float:
    import torch

    from dlbench.models import create_model

    net = create_model(model, stem=stem, in_channels=channels, input_size=size).eval()
    x = torch.randn(64, channels, size, size)
    with torch.inference_mode():
        net(x)
        t0 = time.perf_counter()
        for _ in range(3):
            net(x)
    return (time.perf_counter() - t0) / (3 * 64)


def load_calibration(path: str | os.PathLike) -> dict[str, Any]:
    p = Path(path)
    try:
        cal = json.loads(p.read_text())
    except FileNotFoundError:
        raise DataError(
            f"calibration file {p} does not exist", "measure one with --calibrate --calibration FILE"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DataError(f"{p} is not a JSON calibration file", "measure it again with --calibrate") from None
    except OSError as exc:  # a folder, a symlink loop, no permission
        raise DataError(
            f"calibration file {p}: cannot read ({exc.strerror or exc})", "give a calibration file"
        ) from None
    if not isinstance(cal, dict) or cal.get("format") != FORMAT or not isinstance(cal.get("shapes"), dict):
        raise DataError(
            f"{p} is not a dlbench calibration (format {FORMAT})", "measure it again with --calibrate"
        )
    from dlbench.schemas import CalibrationFile, check_file

    try:
        check_file(cal, CalibrationFile, p, "calibration")
    except DataError as exc:
        raise DataError(exc.message, "measure it again with --calibrate, or fix the value") from None
    return cal


def save_calibration(cal: dict[str, Any], path: str | os.PathLike) -> None:
    write_json(Path(path), cal)


# --------------------------------------------------------------------------- projection


def estimate(spec: StudySpec, cal: dict[str, Any]) -> dict[str, Any]:
    """Per task and per step projected seconds; tasks whose shape is not in ``cal`` are listed as such."""
    tasks_out, missing = [], []
    train_total = 0.0
    for task in train_tasks(spec):
        shape = shape_of(task)
        c = task[0]
        sizes = split_sizes(spec, c.dataset)
        steps = math.ceil(sizes["train"] / c.batch_size)
        if c.max_steps_per_epoch:
            steps = min(steps, c.max_steps_per_epoch)
        m = cal["shapes"].get(shape_key(shape))
        entry = {
            "runs": [t.run_id for t in task],
            "shape": shape,
            "epochs": c.epochs,
            "steps_per_epoch": steps,
        }
        if m is None:
            entry["seconds"] = None
            missing.append(shape_key(shape))
        else:
            per_epoch = (
                steps * m["seconds_per_step"]
                + m["epoch_start_seconds"]
                + sizes["val"] * m["eval_seconds_per_image"] * shape["members"]
            )
            entry["train_seconds"] = c.epochs * steps * m["seconds_per_step"]
            entry["seconds"] = (
                m["setup_seconds"]
                + c.epochs * per_epoch
                + sizes["test"] * m["eval_seconds_per_image"] * shape["members"]
            )
            train_total += entry["seconds"]
        tasks_out.append(entry)
    steps_total: dict[str, float | None] = {"train": train_total}
    svm_total = 0.0
    svm_runs = []
    for c in expand_svm(spec):
        sizes = split_sizes(spec, c.dataset)
        svc = c.estimator == "svm"
        k = ((cal.get("svm") or {}).get("kernels" if svc else "estimators") or {}).get(
            c.kernel if svc else c.estimator
        )
        if c.backend == "cuml" or k is None:
            svm_runs.append({"run": c.run_id, "seconds": None, "device": device_name_of(c)})
            if c.backend != "cuml":
                missing.append(f"svm {c.kernel}" if svc else c.estimator)
            continue
        n = min(c.n_train or sizes["train"], sizes["train"])
        cal_svm = cal["svm"]
        grow = n / cal_svm["n_fit"]
        # an SVM's fit grows with the square of the images, its predict with images x support vectors;
        # the other estimators are taken as linear in the images
        s = k["fit_seconds"] * (grow**2 if svc else grow) + k["predict_seconds"] * (grow if svc else 1) * (
            sizes["test"] / cal_svm["n_predict"]
        )
        svm_runs.append({"run": c.run_id, "seconds": s, "device": device_name_of(c)})
        svm_total += s
    steps_total["svm"] = svm_total
    onnx = 0.0
    inf = cal.get("onnx_cpu_seconds_per_image") or {}
    for model in dict.fromkeys(spec.onnx.models or spec.model_names()):
        images = sum(spec.onnx.batch_sizes) * (spec.onnx.warmup + spec.onnx.iterations)
        # ONNX Runtime and PyTorch eager are both timed on the CPU provider
        onnx += FIXED["onnx_export_per_model"] + 2 * images * inf.get(model, 0.0)
    steps_total["onnx"] = onnx
    steps_total["data"] = FIXED["data_per_dataset"] * len(spec.data.datasets)
    steps_total["profile"] = FIXED["profile"]
    steps_total["report"] = FIXED["report"]
    total = sum(v for v in steps_total.values() if v is not None)
    return {
        "spec": spec.name,
        "tasks": tasks_out,
        "svm": svm_runs,
        "steps": steps_total,
        "total_seconds": total,
        "devices": device_costs(spec, tasks_out, svm_runs, steps_total),
        "not_calibrated": sorted(set(missing)),
        "fixed_allowances": FIXED,
        "note": "train and SVM from timings measured by the calibration; data, profile, report and ONNX "
        "export are fixed allowances",
    }


def device_costs(
    spec: StudySpec, tasks: list[dict], svm_runs: list[dict], steps: dict[str, float | None]
) -> dict[str, dict[str, Any]]:
    """Projected seconds per catalog device (train tasks by their shape's device, SVM runs by theirs, the ONNX
    task on its device, data, profile and report on cpu) and, where the catalog has a price, dollars
    (seconds x price_per_hour / 3600). ``unestimated``: tasks of the device with no projection."""
    from dlbench.plan import build_plan

    cat = spec.catalog()
    out: dict[str, dict[str, Any]] = {}

    def add(name: str, seconds: float | None) -> None:
        d = out.setdefault(name, {"seconds": 0.0, "unestimated": 0})
        if seconds is None:
            d["unestimated"] += 1
        else:
            d["seconds"] += seconds

    for t in tasks:
        add(t["shape"]["device"], t["seconds"])
    for r in svm_runs:
        add(r["device"], r["seconds"])
    add(build_plan(spec).onnx.device_name, steps.get("onnx"))
    for step in ("data", "profile", "report"):
        add("cpu", steps.get(step))
    for name, d in out.items():
        price = cat[name].price_per_hour if name in cat else None
        d["hours"] = d["seconds"] / 3600
        d["price_per_hour"] = price
        d["dollars"] = None if price is None else d["hours"] * price
    return out


def dollars(x: float) -> str:
    """$12.34, or four decimals under a dollar ($0.0046): a small study's cost is not $0.00."""
    return f"${x:,.2f}" if x >= 1 else f"${x:.4f}"


def format_costs(devices: dict[str, dict[str, Any]]) -> list[str]:
    """One line per device: its projected hours and dollars, or hours only where it has no price."""
    lines = []
    for name, d in devices.items():
        more = f" (+{d['unestimated']} not estimated)" if d["unestimated"] else ""
        if d["dollars"] is None:
            money = "no price_per_hour in the catalog: hours only"
        else:
            money = f"{dollars(d['dollars'])} at ${d['price_per_hour']:.2f}/h"
        lines.append(f"device {name}: {d['hours']:.3f} h{more}, {money}")
    priced = [d["dollars"] for d in devices.values() if d["dollars"] is not None]
    if priced:
        unpriced = [n for n, d in devices.items() if d["dollars"] is None]
        lines.append(
            f"cost: {dollars(sum(priced))}"
            + (f" (without {', '.join(unpriced)}: no price, hours only)" if unpriced else "")
        )
    else:
        lines.append("cost: no device has a price_per_hour in the catalog (devices:); hours only")
    return lines


def actual_seconds(study_dir: str | os.PathLike) -> dict[str, Any]:
    """What a finished study folder measured: each record's seconds, summed per step (fused groups once)."""
    from dlbench.record import find_records

    recs = find_records(study_dir)
    if not recs:
        raise DataError(f"{study_dir}: no records", "pass the folder a `dlbench study` wrote")
    per_run, per_step = {}, {}
    seen_groups = set()
    for r in recs:
        step = r.get("step") or "?"
        s = float(r.get("seconds") or 0.0)
        m = r.get("metrics") or {}
        if m.get("fused_with"):
            group = tuple(sorted([r.get("run_id"), *m["fused_with"]]))
            if group in seen_groups:
                s = 0.0  # the group's time is counted once
            seen_groups.add(group)
        per_run[r.get("run_id")] = float(r.get("seconds") or 0.0)
        per_step[step] = per_step.get(step, 0.0) + s
    return {"runs": per_run, "steps": per_step, "total_seconds": sum(per_step.values())}


def format_estimate(est: dict[str, Any], actual: dict[str, Any] | None = None) -> str:
    def fmt(s):
        if s is None:
            return "?"
        return f"{s / 60:.1f} min" if s >= 120 else f"{s:.1f} s"

    lines = []
    for t in est["tasks"]:
        sh = t["shape"]
        what = (
            f"{sh['model']} bs={sh['batch_size']} {sh['optimizer']} {sh['amp']} {sh['device']} {sh['engine']}"
            + (f" x{sh['members']}" if sh["members"] > 1 else "")
            + f" {t['epochs']} ep x {t['steps_per_epoch']} steps"
        )
        act = ""
        if actual:
            vals = [actual["runs"].get(r) for r in t["runs"]]
            act = (
                f"   actual {fmt(max(v for v in vals if v is not None))}"
                if any(v is not None for v in vals)
                else ""
            )
        lines.append(f"train {', '.join(t['runs'])}  {what}: {fmt(t['seconds'])}{act}")
    for s in est["svm"]:
        act = f"   actual {fmt(actual['runs'][s['run']])}" if actual and s["run"] in actual["runs"] else ""
        lines.append(f"svm   {s['run']}: {fmt(s['seconds'])}{act}")
    for step, s in est["steps"].items():
        fixed = " (fixed allowance)" if step in ("data", "profile", "report") else ""
        act = f"   actual {fmt(actual['steps'].get(step))}" if actual and step in actual["steps"] else ""
        lines.append(f"step  {step}: {fmt(s)}{fixed}{act}")
    total = f"study {est['spec']}: projected {fmt(est['total_seconds'])}"
    if actual:
        total += (
            f", actual {fmt(actual['total_seconds'])} "
            f"({est['total_seconds'] / actual['total_seconds'] - 1:+.0%})"
        )
    lines.append(total)
    if est.get("devices"):
        lines += format_costs(est["devices"])
    if est["not_calibrated"]:
        lines.append("not estimated (no calibration for): " + "; ".join(est["not_calibrated"]))
    return "\n".join(lines)


def check_devices(devices: list[str] | None, spec: StudySpec) -> list[str] | None:
    """``--device`` values: names of the spec's catalog (cpu and cuda built in)."""
    if devices is None:
        return None
    known = list(spec.catalog())
    bad = [d for d in devices if d not in known]
    if bad:
        raise SpecError(f"--device {bad[0]!r}: choose {', '.join(known)}")
    return devices
