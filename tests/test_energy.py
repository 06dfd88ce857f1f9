"""Energy counters read around timed regions: recorded counter sequences through fake readers (RAPL's wrap
included), and "not measured" with a reason where the hardware exposes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlbench.energy import EnergyMeter, counter_delta, rapl_counters, summarize


def powercap(root: Path, zones: dict[str, tuple[int, int]]) -> Path:
    """A /sys/class/powercap lookalike: zone -> (energy_uj, max_energy_range_uj)."""
    for name, (uj, wrap) in zones.items():
        z = root / name
        z.mkdir(parents=True, exist_ok=True)
        (z / "energy_uj").write_text(f"{uj}\n")
        (z / "max_energy_range_uj").write_text(f"{wrap}\n")
    return root


def set_uj(root: Path, zone: str, uj: int) -> None:
    (root / zone / "energy_uj").write_text(f"{uj}\n")


def test_a_counter_that_wraps_adds_its_range_back():
    assert counter_delta(10.0, 25.0, 100.0) == 15.0
    assert counter_delta(90.0, 5.0, 100.0) == 15.0
    with pytest.raises(ValueError, match="no wrap range"):
        counter_delta(90.0, 5.0, None)


def test_rapl_packages_are_summed_across_a_wrap_and_sub_zones_are_not_counted_twice(tmp_path):
    wrap = 262_143_328_850  # a real package's max_energy_range_uj
    root = powercap(
        tmp_path,
        {
            "intel-rapl:0": (wrap - 2_000_000, wrap),  # 2 J before its wrap
            "intel-rapl:1": (5_000_000, wrap),
            "intel-rapl:0:0": (1_000_000, wrap),  # core, inside package 0's count
        },
    )
    meter = EnergyMeter.for_device("cpu", powercap=root)
    assert [c.name for c in meter.counters] == ["rapl:intel-rapl:0", "rapl:intel-rapl:1"]
    # a recorded sequence: three epochs; package 0 wraps during the second
    sequence = [
        (wrap - 2_000_000, 5_000_000),
        (wrap - 1_000_000, 8_000_000),
        (500_000, 9_000_000),
        (3_500_000, 9_500_000),
    ]
    regions = []
    for (b0, b1), (a0, a1) in zip(sequence, sequence[1:], strict=False):
        set_uj(root, "intel-rapl:0", b0)
        set_uj(root, "intel-rapl:1", b1)
        set_uj(root, "intel-rapl:0:0", 0)
        with meter.measure() as e:
            set_uj(root, "intel-rapl:0", a0)
            set_uj(root, "intel-rapl:1", a1)
            set_uj(root, "intel-rapl:0:0", 10**9)
        regions.append(e)
    assert [round(r.joules["cpu"], 6) for r in regions] == [4.0, 2.5, 3.5]
    s = summarize(regions, "epoch")
    assert s["cpu_joules"] == [4.0, 2.5, 3.5] and s["cpu_joules_per_epoch"] == pytest.approx(10 / 3, abs=1e-3)
    assert "not_measured" not in s


class FakeNvml:
    """pynvml's three calls over a recorded millijoule sequence."""

    def __init__(self, mj: list[int], supported: bool = True):
        self.mj, self.supported, self.reads = list(mj), supported, 0

    def nvmlInit(self):
        pass

    def nvmlDeviceGetHandleByIndex(self, index):
        return ("gpu", index)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        if not self.supported:
            raise RuntimeError("Not Supported")
        value = self.mj[min(self.reads, len(self.mj) - 1)]
        self.reads += 1
        return value


def test_nvml_joules_per_1000_inferences_and_the_cpu_said_not_measured(tmp_path):
    nvml = FakeNvml([0, 1_000_000, 1_250_000, 1_500_000, 2_000_000])  # probe, then two regions
    meter = EnergyMeter.for_device("cuda:0", nvml=nvml, powercap=tmp_path / "none")
    regions = []
    for _ in range(2):
        with meter.measure() as e:
            pass
        regions.append(e)
    assert [r.joules["gpu"] for r in regions] == [250.0, 500.0]
    s = summarize(regions, "1000_inferences", counts=[500, 500], scale=1000)
    assert s["gpu_joules_per_1000_inferences"] == 750.0
    assert "no RAPL package zone" in s["not_measured"]["cpu"] and s["sources"] == ["nvml:0"]


def test_without_counters_every_kind_is_not_measured_with_its_reason(tmp_path):
    meter = EnergyMeter.for_device("cuda", nvml=FakeNvml([0], supported=False), powercap=tmp_path)
    with meter.measure() as e:
        pass
    s = summarize([e], "epoch")
    assert set(s["not_measured"]) == {"cpu", "gpu"}
    assert "NVML has no energy counter for GPU 0" in s["not_measured"]["gpu"]
    assert not any(k.endswith("_joules") for k in s)


def test_an_unreadable_rapl_counter_says_run_as_root(tmp_path, monkeypatch):
    root = powercap(tmp_path, {"intel-rapl:0": (1, 10)})

    def denied(self, *a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_text", denied)
    counters, why = rapl_counters(root)
    assert counters == [] and "readable by root only" in why
