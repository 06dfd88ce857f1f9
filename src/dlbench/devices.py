"""The device catalog: the hardware a study may run on, by name, with what a cluster needs to schedule it.

A spec names its devices under ``devices:``; ``cpu`` and ``cuda`` are built in (so every spec without the
section, and every run id, is what it was)::

    devices:
      h100: {kind: cuda, accelerator: nvidia.com/gpu, price_per_hour: 4.5,
             node_selector: {nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3}}
      l4:   {kind: cuda, accelerator: nvidia.com/gpu, price_per_hour: 0.8,
             node_selector: {nvidia.com/gpu.product: NVIDIA-L4}}
      vm:   {kind: cpu, price_per_hour: 0.1}

``kind`` is what the step runs on (torch's ``cpu`` or ``cuda``); ``accelerator`` / ``accelerator_limit`` /
``node_selector`` are what the compiled pipeline puts on each task of the device (the built-in ``cuda``
without them keeps the pipeline's GPU defaults, ``components/gpu.py``); ``price_per_hour`` (dollars per
hour of the node) turns a run's seconds into dollars in the estimate and the report. A catalog entry named
``cpu`` or ``cuda`` replaces the built-in one (a price for the built-in GPU, say) and keeps the run ids.

A run on a catalog device keeps ``device`` as its kind and names the entry in ``device_name`` (left out of
the run id when it is a built-in name), so the step code that asks ``config.device == "cuda"`` is unchanged
and two runs of the same settings on two pools have two run ids.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from dlbench.configs import _Strict

Kind = Literal["cpu", "cuda"]
BUILTIN_NAMES = ("cpu", "cuda")
# a Kubernetes label key: optional DNS prefix "/", then a name of at most 63 characters
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")


class DeviceEntry(_Strict):
    """One device of the catalog."""

    kind: Kind = Field(description="what the step runs on: cpu or cuda")
    accelerator: str | None = Field(
        default=None,
        description="the extended resource a task requests, e.g. nvidia.com/gpu (cuda default: the "
        "pipeline's, components/gpu.py)",
    )
    accelerator_limit: int = Field(default=1, ge=1, description="accelerators per task")
    node_selector: dict[str, str | None] | None = Field(
        default=None, description="node labels a task of this device is scheduled on"
    )
    price_per_hour: float | None = Field(
        default=None, description="dollars per node hour (default: unknown; the report then gives hours only)"
    )

    @field_validator("price_per_hour")
    @classmethod
    def _price(cls, v):
        if v is not None and v < 0:
            raise ValueError(f"price_per_hour must be 0 or more (got {v:g})")
        return v

    @field_validator("node_selector")
    @classmethod
    def _selector(cls, v):
        for key, value in (v or {}).items():
            if not _LABEL_KEY.match(str(key)):
                raise ValueError(f"node_selector key {key!r} is not a Kubernetes label key")
            if value is None or str(value) == "":
                raise ValueError(
                    f"node_selector {key!r} has no value; give the label value the nodes carry, "
                    f"e.g. {{{key}: NVIDIA-L4}}"
                )
            if not _LABEL_VALUE.match(str(value)):
                raise ValueError(f"node_selector {key}: {value!r} is not a Kubernetes label value")
        return v

    @property
    def builtin_gpu(self) -> bool:
        """A cuda entry that says nothing of scheduling: the pipeline's GPU defaults apply."""
        return self.kind == "cuda" and self.accelerator is None and self.node_selector is None


BUILTIN: dict[str, DeviceEntry] = {"cpu": DeviceEntry(kind="cpu"), "cuda": DeviceEntry(kind="cuda")}


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(
            f"device name {name!r}: use lower-case letters, digits, '-', '_' or '.' (at most 40), e.g. h100"
        )
    return name


def catalog(devices: dict[str, DeviceEntry] | None) -> dict[str, DeviceEntry]:
    """The built-in devices, then the spec's (which may replace a built-in one)."""
    return {**BUILTIN, **(devices or {})}


def device_name_of(config) -> str:
    """The catalog name a run (train or SVM config, or its dict) ran on: ``device_name``, else its built-in
    device (an SVM run: cuda for cuML, else cpu)."""
    get = config.get if isinstance(config, dict) else lambda k, d=None: getattr(config, k, d)
    name = get("device_name")
    if name:
        return str(name)
    if get("device") in BUILTIN_NAMES:
        return str(get("device"))
    return "cuda" if get("backend") == "cuml" else "cpu"


def describe(name: str, entry: DeviceEntry) -> str:
    """One line: ``h100 (cuda, nvidia.com/gpu x1, nvidia.com/gpu.product=NVIDIA-H100..., $4.50/h)``."""
    bits = [entry.kind]
    if entry.accelerator:
        bits.append(f"{entry.accelerator} x{entry.accelerator_limit}")
    bits += [f"{k}={v}" for k, v in (entry.node_selector or {}).items()]
    bits.append(f"${entry.price_per_hour:.2f}/h" if entry.price_per_hour is not None else "no price")
    return f"{name} ({', '.join(bits)})"
