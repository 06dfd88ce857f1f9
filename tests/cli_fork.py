"""`python -m dlbench ARGS` as a process of its own, without paying the interpreter's and torch's start-up on
every call: the tests run the CLI several hundred times, and most of each call was importing torch, pandas,
scikit-learn and onnx.

A zygote process per test worker (started on first use) imports those libraries once and never runs them
(one thread: safe to fork), then forks one child per call. The child takes the call's working folder,
environment, argv and stdin (/dev/null), sends stdout and stderr to files, runs ``python -m dlbench`` by
``runpy`` (so dlbench itself, its settings and everything it imports, starts fresh in every child), runs
the exit handlers and exits with the CLI's code. The caller gets a ``subprocess.CompletedProcess`` as from
``subprocess.run(..., capture_output=True, text=True)``, or ``subprocess.TimeoutExpired`` (the child
killed).

One difference from a fresh interpreter: the libraries the zygote imported read their environment when it
started. A call whose environment differs in a variable such a library reads at import (thread counts,
torch/CUDA settings, PYTHONPATH, HOME, TMPDIR, ...) runs in a fresh interpreter instead, as does a call
with a command prefix (another user) or ``DLBENCH_TEST_NO_FORK=1``.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Environment variables a library the zygote imports may read at import time (prefixes).
IMPORT_TIME_ENV = (
    "OMP_",
    "MKL_",
    "KMP_",
    "GOMP_",
    "OPENBLAS_",
    "NUMEXPR_",
    "TORCH",
    "PYTORCH_",
    "CUDA_",
    "NVIDIA_",
    "ONEDNN_",
    "DNNL_",
    "ATEN_",
    "ORT_",
    "PYTHON",
    "LD_",
    "MPL",
    "SKLEARN",
    "SCIKIT",
    "HOME",
    "TMPDIR",
    "XDG_",
    "LANG",
    "LC_",
)

_zygote: dict = {}


def _base_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _import_time_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(IMPORT_TIME_ENV)}


def _start() -> dict:
    env = _base_env()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.cli_zygote"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=None,
        env=env,
        cwd=REPO,
    )
    line = proc.stdout.readline()
    hello = json.loads(line or b"{}")
    if hello.get("ready") is not True:
        raise RuntimeError(f"tests/cli_zygote.py did not start: {line!r}")
    # forking is safe only from a process of one thread; with more, every call takes a fresh interpreter
    return {"proc": proc, "env": _import_time_env(env), "forks": hello.get("threads") == 1}


def _zygote_for(env: dict[str, str]) -> dict | None:
    z = _zygote.get("z")
    if z is None or z["proc"].poll() is not None:
        z = _zygote["z"] = _start()
    return z if z["forks"] and _import_time_env(env) == z["env"] else None


def _read_line(proc: subprocess.Popen, deadline: float | None) -> dict | None:
    """One JSON line from the zygote, or None when the deadline passed first."""
    fd = proc.stdout.fileno()
    buf = b""
    while not buf.endswith(b"\n"):
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            raise RuntimeError("tests/cli_zygote.py ended unexpectedly")
        buf += chunk
    return json.loads(buf)


def run(
    args: list[str],
    cwd: Path | str | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = 300,
    prefix: list[str] | tuple = (),
) -> subprocess.CompletedProcess:
    """``python -m dlbench *args`` with ``env`` (default: this process's, PYTHONPATH the checkout) in ``cwd``;
    stdout and stderr captured as text, as ``subprocess.run(..., capture_output=True, text=True)``."""
    env = _base_env() if env is None else {k: str(v) for k, v in env.items()}
    argv = [str(a) for a in args]
    z = None if prefix or os.environ.get("DLBENCH_TEST_NO_FORK") == "1" else _zygote_for(env)
    if z is None:
        return subprocess.run(
            [*prefix, sys.executable, "-m", "dlbench", *argv],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
            timeout=timeout,
        )
    with tempfile.TemporaryDirectory(prefix="dlbench-cli-") as tmp:
        out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
        request = {
            "argv": argv,
            "cwd": str(cwd or os.getcwd()),
            "env": env,
            "stdout": str(out),
            "stderr": str(err),
        }
        proc = z["proc"]
        proc.stdin.write(json.dumps(request).encode() + b"\n")
        proc.stdin.flush()
        pid = _read_line(proc, None)["pid"]
        deadline = None if timeout is None else time.monotonic() + timeout
        done = _read_line(proc, deadline)
        if done is None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _read_line(proc, None)
            raise subprocess.TimeoutExpired(["dlbench", *argv], timeout, out.read_bytes(), err.read_bytes())
        return subprocess.CompletedProcess(
            ["dlbench", *argv],
            done["returncode"],
            out.read_text(errors="replace"),
            err.read_text(errors="replace"),
        )
