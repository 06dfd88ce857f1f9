"""dlbench's core knows nothing about KFP or the minio SDK: its help works without them, the pipeline
verbs say what is missing in one line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BLOCK = (
    "import sys; sys.modules.update(kfp=None, minio=None); from dlbench.cli import main; "
    "sys.exit(main({args!r}))"
)


def run_without_kfp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCK.format(args=list(args))],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_src_imports_neither_kfp_nor_minio():
    pattern = re.compile(r"^\s*(import|from)\s+(kfp|minio)\b", re.M)
    offenders = [str(p) for p in (REPO / "src" / "dlbench").rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []


def test_help_works_without_kfp():
    result = run_without_kfp("--help")
    assert result.returncode == 0, result.stderr
    for verb in ("compile", "submit", "run", "fetch"):
        assert re.search(rf"^\s+{verb}\s", result.stdout, re.M), verb


def test_pipeline_verbs_without_kfp_are_one_line(tmp_path):
    result = run_without_kfp("compile", "--out", str(tmp_path / "p.yaml"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "needs the KFP edge packages" in result.stderr and "pip install 'dlbench[kfp]'" in result.stderr
    result = run_without_kfp("fetch", "some-run", "--store", "s3://bucket/runs", "--to", str(tmp_path / "x"))
    assert result.returncode == 2 and "s3:// store needs the minio SDK" in result.stderr
