"""The zygote of tests/cli_fork.py: imports the libraries dlbench's commands load (never dlbench itself, never
running any of them), then reads one JSON request per line on stdin and forks a child per request, which
runs ``python -m dlbench`` with the request's argv, folder and environment. Replies, one JSON line each on
stdout: ``{"pid": N}`` when the child started, ``{"returncode": N}`` when it ended."""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading

# What the commands import (torch first: the rest load parts of it), the KFP SDK where installed.
PRELOAD = (
    "numpy",
    "torch",
    "torchvision",
    "pandas",
    "pydantic",
    "yaml",
    "jinja2",
    "sklearn.svm",
    "sklearn.metrics",
    "onnx",
    "onnxruntime",
    "PIL.Image",
    "tqdm",
    "kfp.dsl",
    "kfp.compiler",
)
for name in PRELOAD:
    try:
        importlib.import_module(name)
    except ImportError:  # an extra that is not installed: the commands that need it say so themselves
        pass

PROTO_IN, PROTO_OUT = os.dup(0), os.dup(1)


def reply(obj: dict) -> None:
    os.write(PROTO_OUT, json.dumps(obj).encode() + b"\n")


def child(req: dict) -> None:
    """In the forked child: become ``python -m dlbench ARGV`` and exit with its code."""
    os.close(PROTO_IN)
    os.close(PROTO_OUT)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, path in ((1, req["stdout"]), (2, req["stderr"])):
        f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(f, fd)
        os.close(f)
    os.chdir(req["cwd"])
    os.environ.clear()
    os.environ.update(req["env"])
    sys.argv = [sys.executable, *req["argv"]]
    sys.path[0] = os.getcwd()  # as `python -m` puts the working folder first
    code = 0
    try:
        import runpy

        runpy.run_module("dlbench", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    try:
        import atexit

        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def main() -> None:
    # Python threads: one (the native pools of OpenBLAS and ONNX Runtime idle, as when multiprocessing or a
    # DataLoader forks its workers)
    reply({"ready": True, "threads": threading.active_count()})
    buf = b""
    while True:
        chunk = os.read(PROTO_IN, 65536)
        if not chunk:
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            req = json.loads(line)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                child(req)
            reply({"pid": pid})
            _, status = os.waitpid(pid, 0)
            reply({"returncode": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    main()
