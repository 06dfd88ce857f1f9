"""The ``onnx`` step: export, validate, check parity, then time ONNX Runtime beside PyTorch eager.

1. Build the model (a trained checkpoint loaded into it, or freshly initialised when none is given).
2. Export to ONNX with a dynamic batch axis (:mod:`dlbench.onnxrt.export`); ``onnx.checker``.
3. Parity: ORT's CPU provider against PyTorch fp32 on the CPU, same inputs (batches 1 and 3, neither
   the export's example batch), max abs difference recorded; above ``tolerance`` the step fails.
   GPU providers' differences are recorded too (``parity``) but do not fail the step: TF32 convolutions,
   ORT's and PyTorch's GPU default, differ from fp32 by more than a CPU tolerance.
4. Timing with the shared helper (:func:`dlbench.timing.time_callable`): per batch size, each usable
   provider, then PyTorch eager on the same device (fp32; on a GPU also bf16 autocast).

Providers asked for but not usable here are recorded with the reason (``providers_unavailable``); the
step fails only when none of them is usable.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlbench.errors import DeviceError, SpecError, StepFailed
from dlbench.io import atomic_path
from dlbench.models import MODELS, STEMS, create_model
from dlbench.onnxrt.export import (
    EXPORTERS,
    INPUT_NAME,
    OUTPUT_NAME,
    check_onnx,
    export_onnx,
    load_checkpoint,
)
from dlbench.onnxrt.providers import (
    GRAPH_OPTIMIZATION_LEVEL,
    Provider,
    make_session,
    resolve_providers,
    unavailable_reason,
)
from dlbench.record import step_record
from dlbench.timing import time_callable

ONNX_NAME = "model.onnx"
TIMINGS_NAME = "timings.csv"
PARITY_BATCHES = (1, 3)
# Fewer timed iterations than this give percentiles and ratios marked low-confidence: a p99 of 3 calls is
# their maximum, and one scheduler hiccup on a busy machine moves a p50 ratio by orders of magnitude.
MIN_CONFIDENT_ITERATIONS = 20
RESULT_FIELDS = ("runtime", "provider", "device", "precision", "io_binding", "batch_size", "warmup", "iterations",
                 "p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "min_ms", "max_ms", "throughput_ips")


def _check_args(model, stem, batch_sizes, warmup, iterations, threads, opset, tolerance, input_size,
                in_channels, exporter) -> list[int]:
    if model not in MODELS:
        raise SpecError(f"unknown model {model!r}", f"choose one of {', '.join(MODELS)}")
    if stem not in STEMS:
        raise SpecError(f"unknown stem {stem!r}", f"choose one of {', '.join(STEMS)}")
    batch_sizes = [int(b) for b in batch_sizes]
    if not batch_sizes:
        raise SpecError("no batch sizes to time", "give at least one, e.g. 1 8 64 256")
    bad = [b for b in batch_sizes if b <= 0]
    if bad:
        raise SpecError(f"batch sizes must be positive (got {bad})")
    if warmup < 0:
        raise SpecError(f"warm-up runs must be >= 0 (got {warmup})")
    if iterations < 1:
        raise SpecError(f"timed iterations must be >= 1 (got {iterations})")
    if threads is not None and threads < 1:
        raise SpecError(f"threads must be >= 1 (got {threads})", "leave it unset for the runtime's default")
    if opset < 13:
        raise SpecError(f"opset must be >= 13 (got {opset})")
    newest = getattr(getattr(torch.onnx, "_constants", None), "ONNX_MAX_OPSET", None)
    if newest is not None and opset > newest:
        raise SpecError(f"opset {opset} is newer than this torch exports (at most {newest})",
                        f"use --opset {newest} or less")
    if not tolerance > 0:
        raise SpecError(f"parity tolerance must be > 0 (got {tolerance})")
    if input_size < 8 or in_channels < 1:
        raise SpecError(f"input must be at least 1x8x8 (got {in_channels}x{input_size}x{input_size})")
    from dlbench.spec import INPUT_SIZE_RANGE

    if input_size > INPUT_SIZE_RANGE[1]:
        raise SpecError(f"input size must be at most {INPUT_SIZE_RANGE[1]} pixels (got {input_size})")
    if exporter not in EXPORTERS:
        raise SpecError(f"unknown exporter {exporter!r}", f"choose one of {', '.join(EXPORTERS)}")
    return list(dict.fromkeys(batch_sizes))


def check_onnx_args(model, stem, batch_sizes, warmup, iterations, threads, opset, tolerance, input_size,
                    in_channels, exporter, providers, checkpoint=None) -> None:
    """Every argument of :func:`run_onnx` that can be checked without building the model; raises SpecError."""
    _check_args(model, stem, batch_sizes, warmup, iterations, threads, opset, tolerance, input_size, in_channels,
                exporter)
    resolve_providers(providers)
    if checkpoint is not None and not Path(checkpoint).is_file():
        from dlbench.errors import DataError

        why = "is a folder, not a file" if Path(checkpoint).is_dir() else "not found"
        raise DataError(f"--checkpoint {checkpoint}: {why}", "pass the best.pt of a train run, or leave it out")


def _ort_runner(sess, provider: Provider, x: np.ndarray):
    """(call, sync) for one batch: plain ``run`` on the CPU; on a GPU, IO binding with the input and the
    output on the device (no host copies inside the timed call), synchronised after every call."""
    if not provider.io_binding:
        return (lambda: sess.run([OUTPUT_NAME], {INPUT_NAME: x})), None
    import onnxruntime as ort

    x_dev = ort.OrtValue.ortvalue_from_numpy(x, provider.device, 0)
    binding = sess.io_binding()
    binding.bind_ortvalue_input(INPUT_NAME, x_dev)
    binding.bind_output(OUTPUT_NAME, provider.device)
    return (lambda: sess.run_with_iobinding(binding)), binding.synchronize_outputs


def _ort_output(sess, provider: Provider, x: np.ndarray) -> np.ndarray:
    """One forward pass through ``sess``, the output on the host (IO binding on a GPU provider)."""
    if provider.io_binding:
        import onnxruntime as ort

        binding = sess.io_binding()
        binding.bind_ortvalue_input(INPUT_NAME, ort.OrtValue.ortvalue_from_numpy(x, provider.device, 0))
        binding.bind_output(OUTPUT_NAME, "cpu")
        sess.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]
    return sess.run([OUTPUT_NAME], {INPUT_NAME: x})[0]


def _torch_precisions(device: str) -> list[str]:
    return ["fp32", "bf16"] if device == "cuda" else ["fp32"]


def _torch_runner(model: torch.nn.Module, x: torch.Tensor, device: str, precision: str):
    def call():
        with torch.inference_mode(), torch.autocast(device_type=device, dtype=torch.bfloat16,
                                                     enabled=precision == "bf16"):
            return model(x)

    return call, (torch.cuda.synchronize if device == "cuda" else None)


def run_onnx(model: str, stem: str, out_dir: str | os.PathLike, checkpoint: str | os.PathLike | None = None,
             providers=("cpu",), batch_sizes=(1, 8, 64, 256), warmup: int = 5, iterations: int = 30,
             threads: int | None = None, opset: int = 18, tolerance: float = 1e-3, log=print, *,
             input_size: int = 28, in_channels: int = 1, exporter: str = "dynamo") -> dict[str, Any]:
    """Export ``model`` to ``out_dir/model.onnx``, check it, time it; write timings.csv + record.json.

    Returns the record (a dict). Bad input (unknown model / stem / provider, an empty batch list, a
    checkpoint that does not fit the model) raises before anything is written.
    """
    batches = _check_args(model, stem, batch_sizes, warmup, iterations, threads, opset, tolerance, input_size,
                          in_channels, exporter)
    wanted = resolve_providers(providers)
    what = f"{model} (stem {stem}, {in_channels} input channel{'s' if in_channels > 1 else ''})"
    net = create_model(model, stem=stem, in_channels=in_channels)
    if checkpoint is not None:
        load_checkpoint(net, checkpoint, what)
    net.eval()
    unavailable: dict[str, str] = {}
    usable: list[Provider] = []
    for p in wanted:
        reason = unavailable_reason(p)
        if reason:
            unavailable[p.name] = reason
            log(f"provider {p.name} unavailable: {reason}")
        else:
            usable.append(p)
    if not usable:
        raise DeviceError("none of the requested ONNX Runtime providers can run here: "
                          + "; ".join(f"{k}: {v}" for k, v in unavailable.items()), "add 'cpu' to the providers")

    out = Path(out_dir)
    config = {"model": model, "stem": stem, "checkpoint": str(checkpoint) if checkpoint else None,
              "providers": [p.name for p in wanted], "batch_sizes": batches, "warmup": warmup,
              "iterations": iterations, "threads": threads, "opset": opset, "tolerance": tolerance,
              "input_size": input_size, "in_channels": in_channels, "exporter": exporter}
    device = "cuda" if any(p.device == "cuda" for p in usable) else "cpu"
    old_threads = torch.get_num_threads()
    with step_record("onnx", config, out, device=device) as rec:
        import onnxruntime as ort

        if checkpoint is not None:
            rec.add_input("checkpoint", checkpoint)
        if threads:
            torch.set_num_threads(threads)
        try:
            metrics = _run(net, model, stem, out, rec, wanted, usable, unavailable, batches, warmup, iterations,
                           threads, opset, tolerance, input_size, in_channels, exporter, checkpoint, log, ort)
        finally:
            torch.set_num_threads(old_threads)
        rec.metrics.update(metrics)
    return rec.to_dict()


def _run(net, model, stem, out, rec, wanted, usable, unavailable, batches, warmup, iterations, threads, opset,
         tolerance, input_size, in_channels, exporter, checkpoint, log, ort) -> dict[str, Any]:
    import time

    gen = torch.Generator().manual_seed(0)

    def batch(n: int) -> torch.Tensor:
        return torch.randn(n, in_channels, input_size, input_size, generator=gen)

    # Export and check.
    onnx_path = out / ONNX_NAME
    t0 = time.perf_counter()
    export = export_onnx(net, batch(2), onnx_path, opset=opset, exporter=exporter, log=log)
    export["seconds"] = round(time.perf_counter() - t0, 3)
    export.update(check_onnx(onnx_path))
    if not export["dynamic_batch"]:
        raise StepFailed(f"exported model has a fixed batch axis ({export['inputs']})")
    log(f"exported {model} with the {export['exporter']} exporter in {export['seconds']:.1f}s "
        f"(opset {opset}, dynamic batch), onnx.checker ok")
    rec.add_output("onnx_model", onnx_path)

    # Sessions, each checked to run on its provider.
    sessions = {}
    for p in list(usable):
        try:
            sessions[p.name] = make_session(onnx_path, p, threads)
        except Exception as exc:
            unavailable[p.name] = str(exc).strip().splitlines()[0]
            usable.remove(p)
            log(f"provider {p.name} unavailable: {unavailable[p.name]}")
    if not usable:
        raise DeviceError("no requested ONNX Runtime provider could start a session: "
                          + "; ".join(f"{k}: {v}" for k, v in unavailable.items()))

    # Parity: the CPU provider is the export check (always run); GPU providers are recorded.
    inputs = [batch(n) for n in PARITY_BATCHES]
    with torch.inference_mode():
        reference = [net(x).numpy() for x in inputs]
    cpu_sess = sessions.get("cpu") or make_session(onnx_path, resolve_providers(["cpu"])[0], threads)
    parity = {}
    for name, sess in {"cpu": cpu_sess, **sessions}.items():
        p = resolve_providers([name])[0]
        parity[name] = float(max(np.abs(_ort_output(sess, p, x.numpy()) - ref).max()
                                 for x, ref in zip(inputs, reference, strict=True)))
    max_abs_diff = parity["cpu"]
    log("parity vs PyTorch fp32 CPU, max abs diff: " + ", ".join(f"{k} {v:.3g}" for k, v in parity.items()))
    if not max_abs_diff <= tolerance:
        raise StepFailed(f"ONNX Runtime output differs from PyTorch by {max_abs_diff:.3g} (> tolerance "
                         f"{tolerance:g}) on the same inputs", "the export is not faithful; see the record")

    # Timing: ORT per provider, then PyTorch eager on each device used.
    devices = list(dict.fromkeys(p.device for p in usable))
    models = {d: (net if d == "cpu" else create_model(model, stem=stem, in_channels=in_channels)) for d in devices}
    for d, m in models.items():
        if d != "cpu":
            m.load_state_dict(net.state_dict())
            m.to(d).eval()
    results = []
    for bs in batches:
        x = batch(bs)
        for p in usable:
            call, sync = _ort_runner(sessions[p.name], p, x.numpy())
            t = time_callable(call, warmup=warmup, iterations=iterations, batch_size=bs, sync=sync)
            results.append({"runtime": "onnxruntime", "provider": p.name, "device": p.device, "precision": "fp32",
                            "io_binding": p.io_binding, **t.summary(),
                            "low_confidence": iterations < MIN_CONFIDENT_ITERATIONS})
            log(f"batch {bs:>4} onnxruntime {p.name:<8} p50 {t.p50_ms:8.3f} ms  {t.throughput_ips:10.1f} img/s")
        for d in devices:
            xd = x.to(d)
            for precision in _torch_precisions(d):
                call, sync = _torch_runner(models[d], xd, d, precision)
                t = time_callable(call, warmup=warmup, iterations=iterations, batch_size=bs, sync=sync)
                results.append({"runtime": "pytorch", "provider": d, "device": d, "precision": precision,
                                "io_binding": False, **t.summary(),
                                "low_confidence": iterations < MIN_CONFIDENT_ITERATIONS})
                log(f"batch {bs:>4} pytorch     {d:<8} {precision} p50 {t.p50_ms:8.3f} ms  "
                    f"{t.throughput_ips:10.1f} img/s")
    timings = out / TIMINGS_NAME
    with atomic_path(timings) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=RESULT_FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(results)
    rec.add_output("timings", timings)

    return {
        "model": model,
        "stem": stem,
        "input_shape": [in_channels, input_size, input_size],
        "weights": "checkpoint" if checkpoint is not None else "fresh",
        "checkpoint": str(checkpoint) if checkpoint is not None else None,
        "opset": opset,
        "exporter": export["exporter"],
        "export": export,
        "max_abs_diff": max_abs_diff,
        "tolerance": tolerance,
        "parity": parity,
        "providers_requested": [p.name for p in wanted],
        "providers_available": [p.name for p in usable],
        "providers_unavailable": unavailable,
        "onnxruntime_version": ort.__version__,
        "onnxruntime_providers": ort.get_available_providers(),
        "threads": threads,
        "ort_intra_op_threads": threads or "default (one per physical core)",
        "torch_threads": threads or torch.get_num_threads(),
        "graph_optimization_level": GRAPH_OPTIMIZATION_LEVEL,
        "timing_note": "per call of one batch; warm-up calls run first and are excluded; percentiles over the "
                       "timed calls; throughput = batch_size x iterations / total timed seconds; GPU calls "
                       "synchronised inside the timed interval",
        "results": results,
        "speedup": _speedups(results),
        "min_confident_iterations": MIN_CONFIDENT_ITERATIONS,
        "low_confidence": iterations < MIN_CONFIDENT_ITERATIONS,
    }


def _speedups(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ORT p50 against PyTorch fp32 p50 on the same device and batch (PyTorch / ORT: > 1 = ORT faster)."""
    torch_p50 = {(r["device"], r["batch_size"]): r["p50_ms"] for r in results
                 if r["runtime"] == "pytorch" and r["precision"] == "fp32"}
    out = []
    for r in results:
        if r["runtime"] == "onnxruntime" and (r["device"], r["batch_size"]) in torch_p50:
            pt = torch_p50[(r["device"], r["batch_size"])]
            out.append({"provider": r["provider"], "batch_size": r["batch_size"], "onnxruntime_p50_ms": r["p50_ms"],
                        "pytorch_p50_ms": pt, "speedup": pt / r["p50_ms"],
                        "low_confidence": bool(r.get("low_confidence"))})
    return out
