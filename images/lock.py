"""Write the images' pinned requirements from one pip resolution of dlbench[kfp].

    .venv/bin/python images/lock.py          # rewrites images/{cpu,cuda,rapids}/requirements.txt

pip resolves dlbench's runtime dependencies plus the kfp extra (``pip install --dry-run --report``,
nothing is installed), constrained to the versions in the current virtualenv so the images run what
the tests ran. Each image gets every resolved package pinned with ``==``, except:
- torch's CUDA libraries (nvidia-*, cuda-*, triton): torch's own metadata pins them exactly when the
  CUDA build is installed, and the CPU build (PyTorch's CPU index) has none;
- what a kind leaves out (``left_out`` in components/images.py, which its pip check allows missing):
  onnxruntime in the cuda image, which gets onnxruntime-gpu (CUDA 13 line) instead; torch, torchvision
  and onnxruntime in the rapids image, which runs the SVM step only and gets cuML instead:
  a second resolution of cuML for that image's Python (3.12, Ubuntu 24.04) pins cuML's whole tree,
  constrained to the common pins except where cuML needs other versions (pandas: cuDF 26.10 wants < 3.1).
dlbench itself is installed from the source tree with --no-deps after these.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from dlbench_kfp.components.images import KINDS  # noqa: E402

ONNXRUNTIME_GPU = "onnxruntime-gpu==1.31.1"  # first CUDA 13 line is 1.27; 1.31.1 is the newest on PyPI
# NVML's Python bindings (dlbench.energy: the GPU's energy counter); "nvidia-" names are left to torch's pins
# below, and torch does not pin this one, so the cuda image gets it here
NVML = "nvidia-ml-py==13.615.71"
CUML = "cuml-cu13==26.10.0"
RAPIDS_PYTHON = "3.12"  # python3 of the rapids image's base (nvidia/cuda:*-ubuntu24.04)
CUML_DECIDES = {"pandas"}  # common pins cuML's tree needs at other versions
PLATFORMS = [f"manylinux_2_{v}_x86_64" for v in (28, 27, 26, 25, 24, 18, 17, 12, 5)] + [
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
    "any",
]
TORCH_CUDA_LIBS = re.compile(r"^(nvidia-.*|cuda-.*|triton)$")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def resolve() -> dict[str, str]:
    freeze = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    constraints = ROOT / ".cache" / "lock-constraints.txt"
    constraints.parent.mkdir(exist_ok=True)
    constraints.write_text("\n".join(line for line in freeze.splitlines() if "==" in line) + "\n")
    report = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            "-",
            "-c",
            str(constraints),
            f"{ROOT}[kfp]",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    pins = {}
    for item in json.loads(report)["install"]:
        name = _canonical(item["metadata"]["name"])
        if name != "dlbench":
            pins[name] = item["metadata"]["version"]
    return pins


def resolve_cuml(common: dict[str, str]) -> dict[str, str]:
    """cuML and its dependencies for the rapids image's Python, constrained to the common pins."""
    constraints = ROOT / ".cache" / "lock-rapids-constraints.txt"
    constraints.write_text("".join(f"{n}=={v}\n" for n, v in common.items() if n not in CUML_DECIDES))
    target = ROOT / ".cache" / "lock-rapids-target"
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            "-",
            "--only-binary=:all:",
            "--python-version",
            RAPIDS_PYTHON,
            *platforms,
            "--target",
            str(target),
            "-c",
            str(constraints),
            CUML,
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        sys.exit(f"resolving {CUML} for Python {RAPIDS_PYTHON} failed:\n{proc.stderr[-3000:]}")
    return {
        _canonical(i["metadata"]["name"]): i["metadata"]["version"]
        for i in json.loads(proc.stdout)["install"]
    }


def write(kind: str, lines: list[str], note: str) -> None:
    path = ROOT / "images" / kind / "requirements.txt"
    header = [
        f"# {kind} image: pinned by images/lock.py from one resolution of dlbench[kfp]; do not edit.",
        f"# {note}",
        "",
    ]
    path.write_text("\n".join(header + lines) + "\n")
    print(f"{path.relative_to(ROOT)}: {len(lines)} pins")


def main() -> None:
    pins = resolve()
    common = {n: v for n, v in pins.items() if not TORCH_CUDA_LIBS.match(n)}
    fmt = [f"{n}=={v}" for n, v in sorted(common.items())]
    write("cpu", fmt, "torch's CUDA libraries are left to torch's own pins (the CPU build has none).")
    write(
        "cuda",
        [f"{n}=={v}" for n, v in sorted(common.items()) if n not in KINDS["cuda"].left_out]
        + [ONNXRUNTIME_GPU, NVML],
        "onnxruntime-gpu (CUDA 13) replaces onnxruntime; torch's CUDA libraries come with torch's pins.",
    )
    rapids = {n: v for n, v in common.items() if n not in KINDS["rapids"].left_out}
    rapids.update(resolve_cuml(rapids))
    write(
        "rapids",
        [f"{n}=={v}" for n, v in sorted(rapids.items())],
        f"cuML (CUDA 13) and its tree, resolved for Python {RAPIDS_PYTHON}; no torch, no onnxruntime.",
    )


if __name__ == "__main__":
    main()
