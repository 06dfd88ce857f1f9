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

import copy
import csv
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlbench.configs import OnnxConfig, validate_model
from dlbench.energy import EnergyMeter
from dlbench.errors import DataError, DeviceError, SpecError, StepFailed
from dlbench.io import atomic_path
from dlbench.models import create_model
from dlbench.onnxrt.export import (
    INPUT_NAME,
    OUTPUT_NAME,
    check_onnx,
    export_onnx,
    load_checkpoint,
    read_state_dict,
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
RESULT_FIELDS = (
    "runtime",
    "provider",
    "device",
    "precision",
    "io_binding",
    "batch_size",
    "warmup",
    "iterations",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "mean_ms",
    "std_ms",
    "min_ms",
    "max_ms",
    "throughput_ips",
)


def check_onnx_config(config: OnnxConfig, checkpoint: str | os.PathLike | None = None) -> None:
    """What the typed settings cannot know: the opset this torch exports, the checkpoint file is there."""
    newest = getattr(getattr(torch.onnx, "_constants", None), "ONNX_MAX_OPSET", None)
    if newest is not None and config.opset > newest:
        raise SpecError(
            f"opset {config.opset} is newer than this torch exports (at most {newest})",
            f"use --opset {newest} or less",
        )
    if checkpoint is not None and not Path(checkpoint).is_file():
        why = "is a folder, not a file" if Path(checkpoint).is_dir() else "not found"
        raise DataError(
            f"--checkpoint {checkpoint}: {why}", "pass the best.pt of a train run, or leave it out"
        )


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
        with (
            torch.inference_mode(),
            torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=precision == "bf16"),
        ):
            return model(x)

    return call, (torch.cuda.synchronize if device == "cuda" else None)


def run(config: OnnxConfig, inputs: dict[str, Any], out: str | os.PathLike, log=print) -> dict[str, Any]:
    """The step contract (:mod:`dlbench.runner`): export and time ``config.model``, from
    ``inputs["checkpoint"]`` (None: freshly initialised), into ``out``; returns the record."""
    return onnx_step(config, out, inputs.get("checkpoint"), log)


def run_onnx(
    model: str,
    stem: str,
    out_dir: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    log=print,
    **settings,
) -> dict[str, Any]:
    """Export ``model`` to ``out_dir/model.onnx``, check it, time it; write timings.csv + record.json.

    ``settings`` are the other fields of :class:`~dlbench.configs.OnnxConfig` (providers, batch_sizes,
    warmup, iterations, threads, opset, tolerance, input_size, in_channels, exporter), at its defaults when
    left out. Returns the record (a dict). Bad input (unknown model / stem / provider, an empty batch list,
    a checkpoint that does not fit the model) raises before anything is written.
    """
    config = validate_model(OnnxConfig, {"model": model, "stem": stem, **settings}, "onnx settings")
    return onnx_step(config, out_dir, checkpoint, log)


@dataclass
class _Providers:
    """The providers asked for, those usable here, and why each other one is not."""

    wanted: list[Provider]
    usable: list[Provider] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)

    def drop(self, p: Provider, reason: str, log) -> None:
        self.unavailable[p.name] = reason
        if p in self.usable:
            self.usable.remove(p)
        log(f"provider {p.name} unavailable: {reason}")

    def none_left(self, what: str) -> DeviceError:
        return DeviceError(
            f"{what}: " + "; ".join(f"{k}: {v}" for k, v in self.unavailable.items()),
            "add 'cpu' to the providers",
        )


def checkpoint_classes(path: str | os.PathLike) -> int:
    """The class count a checkpoint was trained for: the rows of its last 2-D weight (the classifier
    comes last in every registered family's state_dict), so a model of the user's dataset exports with its
    own number of outputs."""
    state = read_state_dict(path)
    weights = [v for k, v in state.items() if k.endswith("weight") and getattr(v, "dim", lambda: 0)() == 2]
    return int(weights[-1].shape[0]) if weights else 10


def onnx_step(
    config: OnnxConfig, out_dir: str | os.PathLike, checkpoint: str | os.PathLike | None = None, log=print
) -> dict[str, Any]:
    """:func:`run_onnx` with its settings already an :class:`~dlbench.configs.OnnxConfig`."""
    check_onnx_config(config)  # a checkpoint is read below, and a missing one named there
    providers = _Providers(resolve_providers(config.providers))
    what = (
        f"{config.model} (stem {config.stem}, {config.in_channels} input channel"
        f"{'s' if config.in_channels > 1 else ''})"
    )
    num_classes = checkpoint_classes(checkpoint) if checkpoint is not None else 10
    net = create_model(
        config.model,
        stem=config.stem,
        in_channels=config.in_channels,
        num_classes=num_classes,
        input_size=config.input_size,
    )
    if checkpoint is not None:
        load_checkpoint(net, checkpoint, what)
    net.eval()
    for p in providers.wanted:
        reason = unavailable_reason(p)
        if reason:
            providers.drop(p, reason, log)
        else:
            providers.usable.append(p)
    if not providers.usable:
        raise providers.none_left("none of the requested ONNX Runtime providers can run here")

    out = Path(out_dir)
    record_config = {**config.model_dump(), "checkpoint": str(checkpoint) if checkpoint else None}
    device = "cuda" if any(p.device == "cuda" for p in providers.usable) else "cpu"
    old_threads = torch.get_num_threads()
    with step_record("onnx", record_config, out, device=device) as rec:
        if checkpoint is not None:
            rec.add_input("checkpoint", checkpoint)
        if config.threads:
            torch.set_num_threads(config.threads)
        try:
            metrics = _run(net, config, out, rec, providers, checkpoint, log)
        finally:
            torch.set_num_threads(old_threads)
        rec.metrics.update(metrics)
    return rec.to_dict()


def _export(net, config: OnnxConfig, out: Path, batch, log) -> dict[str, Any]:
    """Export with a dynamic batch axis and check it (``onnx.checker``)."""
    onnx_path = out / ONNX_NAME
    t0 = time.perf_counter()
    export = export_onnx(net, batch(2), onnx_path, opset=config.opset, exporter=config.exporter, log=log)
    export["seconds"] = round(time.perf_counter() - t0, 3)
    export.update(check_onnx(onnx_path))
    if not export["dynamic_batch"]:
        raise StepFailed(f"exported model has a fixed batch axis ({export['inputs']})")
    log(
        f"exported {config.model} with the {export['exporter']} exporter in {export['seconds']:.1f}s "
        f"(opset {config.opset}, dynamic batch), onnx.checker ok"
    )
    return export


def _sessions(onnx_path: Path, providers: _Providers, threads: int | None, log) -> dict[str, Any]:
    """One session per usable provider, each checked to run on it (a provider that cannot is dropped)."""
    sessions = {}
    for p in list(providers.usable):
        try:
            sessions[p.name] = make_session(onnx_path, p, threads)
        except Exception as exc:
            providers.drop(p, str(exc).strip().splitlines()[0], log)
    if not providers.usable:
        raise providers.none_left("no requested ONNX Runtime provider could start a session")
    return sessions


def _parity(
    net, sessions: dict[str, Any], onnx_path: Path, config: OnnxConfig, batch, log
) -> dict[str, float]:
    """Max abs difference from PyTorch fp32 on the CPU per provider; the CPU provider's must be within
    the tolerance (GPU providers' are recorded only)."""
    inputs = [batch(n) for n in PARITY_BATCHES]
    with torch.inference_mode():
        reference = [net(x).numpy() for x in inputs]
    cpu_sess = sessions.get("cpu") or make_session(onnx_path, resolve_providers(["cpu"])[0], config.threads)
    parity = {}
    for name, sess in {"cpu": cpu_sess, **sessions}.items():
        p = resolve_providers([name])[0]
        parity[name] = float(
            max(
                np.abs(_ort_output(sess, p, x.numpy()) - ref).max()
                for x, ref in zip(inputs, reference, strict=True)
            )
        )
    log("parity vs PyTorch fp32 CPU, max abs diff: " + ", ".join(f"{k} {v:.3g}" for k, v in parity.items()))
    if not parity["cpu"] <= config.tolerance:
        raise StepFailed(
            f"ONNX Runtime output differs from PyTorch by {parity['cpu']:.3g} (> tolerance "
            f"{config.tolerance:g}) on the same inputs",
            "the export is not faithful; see the record",
        )
    return parity


def _timings(
    net, sessions: dict[str, Any], config: OnnxConfig, usable: list[Provider], batch, log
) -> list[dict[str, Any]]:
    """ORT per provider, then PyTorch eager on each device used, per batch size."""
    low = config.iterations < MIN_CONFIDENT_ITERATIONS
    timed = {"warmup": config.warmup, "iterations": config.iterations}
    devices = list(dict.fromkeys(p.device for p in usable))
    models = {d: net for d in devices}
    for d in devices:
        if d != "cpu":
            models[d] = copy.deepcopy(net)
            models[d].to(d).eval()
    meters = {d: EnergyMeter.for_device(d) for d in devices}  # joules per 1,000 inferences, where exposed
    results = []
    for bs in config.batch_sizes:
        x = batch(bs)
        for p in usable:
            call, sync = _ort_runner(sessions[p.name], p, x.numpy())
            t = time_callable(call, batch_size=bs, sync=sync, meter=meters[p.device], **timed)
            results.append(
                {
                    "runtime": "onnxruntime",
                    "provider": p.name,
                    "device": p.device,
                    "precision": "fp32",
                    "io_binding": p.io_binding,
                    **t.summary(),
                    "low_confidence": low,
                }
            )
            log(
                f"batch {bs:>4} onnxruntime {p.name:<8} p50 {t.p50_ms:8.3f} ms  {t.throughput_ips:10.1f} "
                "img/s"
            )
        for d in devices:
            xd = x.to(d)
            for precision in _torch_precisions(d):
                call, sync = _torch_runner(models[d], xd, d, precision)
                t = time_callable(call, batch_size=bs, sync=sync, meter=meters[d], **timed)
                results.append(
                    {
                        "runtime": "pytorch",
                        "provider": d,
                        "device": d,
                        "precision": precision,
                        "io_binding": False,
                        **t.summary(),
                        "low_confidence": low,
                    }
                )
                log(
                    f"batch {bs:>4} pytorch     {d:<8} {precision} p50 {t.p50_ms:8.3f} ms  "
                    f"{t.throughput_ips:10.1f} img/s"
                )
    return results


def _run(net, config: OnnxConfig, out: Path, rec, providers: _Providers, checkpoint, log) -> dict[str, Any]:
    import onnxruntime as ort

    gen = torch.Generator().manual_seed(0)
    size, channels = config.input_size, config.in_channels

    def batch(n: int) -> torch.Tensor:
        return torch.randn(n, channels, size, size, generator=gen)

    export = _export(net, config, out, batch, log)
    rec.add_output("onnx_model", out / ONNX_NAME)
    sessions = _sessions(out / ONNX_NAME, providers, config.threads, log)
    parity = _parity(net, sessions, out / ONNX_NAME, config, batch, log)
    results = _timings(net, sessions, config, providers.usable, batch, log)
    timings = out / TIMINGS_NAME
    with atomic_path(timings) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=RESULT_FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(results)
    rec.add_output("timings", timings)

    threads = config.threads
    return {
        "model": config.model,
        "stem": config.stem,
        "input_shape": [channels, size, size],
        "weights": "checkpoint" if checkpoint is not None else "fresh",
        "checkpoint": str(checkpoint) if checkpoint is not None else None,
        "opset": config.opset,
        "exporter": export["exporter"],
        "export": export,
        "max_abs_diff": parity["cpu"],
        "tolerance": config.tolerance,
        "parity": parity,
        "providers_requested": [p.name for p in providers.wanted],
        "providers_available": [p.name for p in providers.usable],
        "providers_unavailable": providers.unavailable,
        "onnxruntime_version": ort.__version__,
        "onnxruntime_providers": ort.get_available_providers(),
        "threads": threads,
        "ort_intra_op_threads": threads or "default (one per physical core)",
        "torch_threads": threads or torch.get_num_threads(),
        "graph_optimization_level": GRAPH_OPTIMIZATION_LEVEL,
        "timing_note": "per call of one batch; warm-up calls run first and are excluded; percentiles over "
        "the timed calls; throughput = batch_size x iterations / total timed seconds; GPU calls "
        "synchronised inside the timed interval",
        "results": results,
        "speedup": _speedups(results),
        "min_confident_iterations": MIN_CONFIDENT_ITERATIONS,
        "low_confidence": config.iterations < MIN_CONFIDENT_ITERATIONS,
    }


def _speedups(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ORT p50 against PyTorch fp32 p50 on the same device and batch (PyTorch / ORT: > 1 = ORT faster)."""
    torch_p50 = {
        (r["device"], r["batch_size"]): r["p50_ms"]
        for r in results
        if r["runtime"] == "pytorch" and r["precision"] == "fp32"
    }
    out = []
    for r in results:
        if r["runtime"] == "onnxruntime" and (r["device"], r["batch_size"]) in torch_p50:
            pt = torch_p50[(r["device"], r["batch_size"])]
            out.append(
                {
                    "provider": r["provider"],
                    "batch_size": r["batch_size"],
                    "onnxruntime_p50_ms": r["p50_ms"],
                    "pytorch_p50_ms": pt,
                    "speedup": pt / r["p50_ms"],
                    "low_confidence": bool(r.get("low_confidence")),
                }
            )
    return out
