"""ONNX Runtime execution providers, looked up by name in one table.

``cpu`` is always there; ``cuda`` (with IO binding: inputs and outputs stay on the GPU) and ``tensorrt``
need the onnxruntime-gpu wheel and a visible GPU. ORT falls back to the CPU *silently* when a GPU
provider cannot start (missing CUDA / cuDNN libraries), so :func:`make_session` checks which provider
the session really runs on and reports a fallback as the provider being unavailable.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlbench.errors import SpecError

GRAPH_OPTIMIZATION_LEVEL = "ORT_ENABLE_ALL"


@dataclass(frozen=True)
class Provider:
    name: str  # our name: cpu | cuda | tensorrt
    ort_name: str  # ORT's name
    device: str  # torch device of the PyTorch baseline beside it
    io_binding: bool  # bind inputs/outputs on the device (no host copies inside the timed call)
    # Providers listed after it for nodes it cannot run (TensorRT hands those to CUDA, not the CPU).
    fallbacks: tuple[str, ...] = ()


PROVIDERS: dict[str, Provider] = {
    "cpu": Provider("cpu", "CPUExecutionProvider", "cpu", io_binding=False),
    "cuda": Provider("cuda", "CUDAExecutionProvider", "cuda", io_binding=True),
    "tensorrt": Provider(
        "tensorrt", "TensorrtExecutionProvider", "cuda", io_binding=True, fallbacks=("CUDAExecutionProvider",)
    ),
}


def resolve_providers(names) -> list[Provider]:
    """Our provider names -> table entries, in order, without duplicates; an unknown name is an error."""
    names = list(names)
    if not names:
        raise SpecError("no ONNX Runtime providers given", f"name at least one of {', '.join(PROVIDERS)}")
    unknown = [n for n in names if n not in PROVIDERS]
    if unknown:
        raise SpecError(
            f"unknown ONNX Runtime provider(s) {', '.join(map(repr, unknown))}",
            f"choose from {', '.join(PROVIDERS)}",
        )
    return [PROVIDERS[n] for n in dict.fromkeys(names)]


def unavailable_reason(provider: Provider) -> str | None:
    """Why ``provider`` cannot run here, or None if it may (the session check is the final word)."""
    import importlib.metadata

    import onnxruntime as ort

    available = ort.get_available_providers()
    if provider.ort_name not in available:
        try:
            gpu = importlib.metadata.version("onnxruntime-gpu")
            build = f"onnxruntime-gpu {gpu}"
        except importlib.metadata.PackageNotFoundError:
            build = f"onnxruntime {ort.__version__} (CPU build; install onnxruntime-gpu for cuda/tensorrt)"
        return f"{provider.ort_name} is not in this ONNX Runtime build: {build} offers {', '.join(available)}"
    if provider.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            return f"{provider.ort_name} is built in but no CUDA device is visible"
    if provider.name == "tensorrt" and not _tensorrt_loadable():
        # Checked here because ORT, when asked for TensorRT without its libraries, prints its error
        # to stdout, which would corrupt the step's JSON output.
        return f"{provider.ort_name} is built in but the TensorRT libraries (libnvinfer) are not installed"
    return None


def _tensorrt_loadable() -> bool:
    import ctypes

    for name in ("libnvinfer.so.10", "libnvinfer.so"):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def make_session(path, provider: Provider, threads: int | None = None):
    """An InferenceSession on ``provider``; raises RuntimeError if ORT fell back to another provider."""
    # torch first: imported before onnxruntime, its CUDA and cuDNN libraries are the ones ORT's CUDA
    # provider loads (ORT's preload_dlls documentation), with no LD_LIBRARY_PATH set up.
    import torch  # noqa: F401, I001

    import onnxruntime as ort  # noqa: I001

    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_OPTIMIZATION_LEVEL)
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3  # errors only: no per-node placement warnings in the logs
    if threads:
        so.intra_op_num_threads = threads
    providers = [provider.ort_name, *provider.fallbacks]
    if provider.ort_name != "CPUExecutionProvider":
        providers.append("CPUExecutionProvider")
    sess = ort.InferenceSession(str(path), sess_options=so, providers=providers)
    used = sess.get_providers()
    if not used or used[0] != provider.ort_name:
        raise RuntimeError(
            f"ONNX Runtime fell back to {', '.join(used)} instead of {provider.ort_name} "
            "(are the CUDA / cuDNN / TensorRT libraries on the library path?)"
        )
    return sess
