"""Energy where the hardware exposes it: counters read around each timed region, else "not measured" and why.

- NVIDIA GPUs: NVML's total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``, millijoules since the
  driver loaded; Volta and newer), through nvidia-ml-py (``import pynvml``, the ``cuda`` extra and image).
- CPUs: RAPL under ``/sys/class/powercap`` (``intel-rapl:N/energy_uj``, one package zone per socket, also on
  AMD since Zen), each with its ``max_energy_range_uj``: the counter wraps there, and :func:`counter_delta`
  adds the range back. Sub-zones (``intel-rapl:N:M``, core/uncore/dram) are inside the package's count and
  are not added again. Since 2020 kernels let only root read ``energy_uj``; unreadable is "not measured".
- Else ``not measured`` with the reason (a VM exposes neither; this one says so).

Why plain NVML and not zeus (ml.energy's library): zeus's monitor does exactly these two reads for a GPU of
Volta or newer and RAPL for the CPU, and adds power polling for older GPUs, its own process model and a
dependency tree; the steps already time their regions (synchronised), so two counter reads around each are
all that is needed, nvidia-ml-py is one pure-Python module, and the reading logic stays small enough to
test here with a recorded counter sequence (tests/test_energy.py).

The counters are read before and after a region, after the device is synchronised by the caller; NVML's
counter advances in steps of some milliseconds, so regions of well under a second read coarsely (the
record keeps the seconds beside the joules).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

POWERCAP = Path("/sys/class/powercap")


def counter_delta(before: float, after: float, wrap: float | None) -> float:
    """Energy between two readings of a counter that wraps at ``wrap`` (None: never wraps)."""
    if after >= before:
        return after - before
    if not wrap:
        raise ValueError(f"counter went back from {before} to {after} and has no wrap range")
    return after + wrap - before


@dataclass
class Counter:
    """One energy counter: ``read()`` gives joules, ``wrap`` the value (joules) it wraps at."""

    name: str  # e.g. "nvml:0" or "rapl:intel-rapl:0"
    kind: str  # "gpu" or "cpu"
    read: Callable[[], float]
    wrap: float | None = None


@dataclass
class Energy:
    """Joules of one region per kind (gpu, cpu), or why a kind was not measured."""

    joules: dict[str, float] = field(default_factory=dict)
    not_measured: dict[str, str] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)

    def total(self) -> float | None:
        return sum(self.joules.values()) if self.joules else None


def nvml_counters(index: int = 0, nvml: Any = None) -> tuple[list[Counter], str | None]:
    """The GPU's total-energy counter, or ([], why not)."""
    if nvml is None:
        try:
            import pynvml as nvml
        except ImportError:
            return [], "nvidia-ml-py is not installed (pip install nvidia-ml-py; in the cuda image)"
    try:
        nvml.nvmlInit()
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except Exception as exc:  # noqa: BLE001 - NVMLError_NotSupported (pre-Volta), no driver, ...
        return [], f"NVML has no energy counter for GPU {index}: {type(exc).__name__}: {exc}"

    def read() -> float:
        return nvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1000.0  # mJ -> J

    # a 64-bit millijoule counter: it does not wrap within a run
    return [Counter(f"nvml:{index}", "gpu", read)], None


def rapl_counters(root: Path = POWERCAP) -> tuple[list[Counter], str | None]:
    """One counter per RAPL package zone under ``root``, or ([], why not)."""
    zones = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1) if root.is_dir() else []
    if not zones:
        return [], f"no RAPL package zone under {root} (a VM, or a CPU or kernel without powercap)"
    counters = []
    for zone in zones:
        energy = zone / "energy_uj"
        try:
            int(energy.read_text())
            wrap_uj = int((zone / "max_energy_range_uj").read_text())
        except PermissionError:
            return [], f"{energy} is readable by root only (kernels since 2020); run as root to measure"
        except (OSError, ValueError) as exc:
            return [], f"{energy}: {exc}"

        def read(path: Path = energy) -> float:
            return int(path.read_text()) / 1e6  # uJ -> J

        counters.append(Counter(f"rapl:{zone.name}", "cpu", read, wrap_uj / 1e6))
    return counters, None


class EnergyMeter:
    """The counters of one step's hardware: the GPU's for a cuda device, the CPU packages' always."""

    def __init__(self, counters: list[Counter], not_measured: dict[str, str]):
        self.counters = counters
        self.not_measured = dict(not_measured)

    @classmethod
    def for_device(cls, device: Any = "cpu", nvml: Any = None, powercap: Path = POWERCAP) -> EnergyMeter:
        """``device``: a torch device or its name ("cpu", "cuda", "cuda:1")."""
        name = str(device)
        counters, why = [], {}
        if name.startswith("cuda"):
            index = int(name.split(":")[1]) if ":" in name else 0
            gpu, reason = nvml_counters(index, nvml)
            counters += gpu
            if reason:
                why["gpu"] = reason
        cpu, reason = rapl_counters(powercap)
        counters += cpu
        if reason:
            why["cpu"] = reason
        return cls(counters, why)

    def read(self) -> list[float]:
        return [c.read() for c in self.counters]

    def since(self, before: list[float]) -> Energy:
        """The energy from ``before`` (a :meth:`read`) to now."""
        out = Energy(not_measured=dict(self.not_measured), sources=[c.name for c in self.counters])
        for c, b in zip(self.counters, before, strict=True):
            try:
                out.joules[c.kind] = out.joules.get(c.kind, 0.0) + counter_delta(b, c.read(), c.wrap)
            except (OSError, ValueError) as exc:
                out.not_measured[c.kind] = f"{c.name}: {exc}"
        return out

    @contextmanager
    def measure(self) -> Iterator[Energy]:
        """``with meter.measure() as e: ...``: ``e`` holds the region's joules when the block ends."""
        before = self.read()
        e = Energy()
        yield e
        got = self.since(before)
        e.joules, e.not_measured, e.sources = got.joules, got.not_measured, got.sources


def summarize(regions: list[Energy], per: str, counts: list[float] | None = None, scale: float = 1.0) -> dict:
    """What a record keeps: joules per region (``per`` names it, e.g. "epoch") by kind, their mean, or
    ``not_measured`` with the reasons. With ``counts`` (items per region), joules per ``scale`` items."""
    out: dict[str, Any] = {}
    kinds = sorted({k for r in regions for k in r.joules})
    reasons = {k: v for r in regions for k, v in r.not_measured.items()}
    for kind in kinds:
        values = [r.joules.get(kind) for r in regions]
        if any(v is None for v in values):
            continue
        out[f"{kind}_joules"] = [round(v, 3) for v in values]
        if counts:
            out[f"{kind}_joules_per_{per}"] = round(sum(values) / sum(counts) * scale, 6)
        else:
            out[f"{kind}_joules_per_{per}"] = round(sum(values) / len(values), 3)
    if reasons:
        out["not_measured"] = {k: v for k, v in sorted(reasons.items()) if k not in kinds}
        if not out["not_measured"]:
            del out["not_measured"]
    out["sources"] = sorted({s for r in regions for s in r.sources})
    return out
