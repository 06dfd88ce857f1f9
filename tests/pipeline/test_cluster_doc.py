"""docs/cluster.md, the walkthrough to a cluster run, stays runnable as written.

Its steps that need a cluster cannot run here; these checks keep every ``dlbench`` and ``make`` command
of it accepted by the CLI as it is now, and run the ones that need no cluster (making the spec). What the
commands do is tested elsewhere: test_push.py / test_container.py (make push), test_preflight.py (compile
--pin-digests --check, submit's pre-flight), test_data_store.py (data push, data.root: s3://).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from dlbench.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "cluster.md"
VALUES = {
    "$REGISTRY": "registry.example.com/you",
    "${REGISTRY%%/*}": "registry.example.com",
    "$RUN_ID": "7c1e0000",
    "$NS": "kubeflow",
}


def commands() -> list[str]:
    """Every command line of the doc's bash blocks (continuations joined), with the doc's variables set."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", DOC.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #", 1)[0].strip()
            for var, value in VALUES.items():
                line = line.replace(f'"{var}"', value).replace(var, value)
            if line:
                lines.append(line)
    return lines


def dlbench_argv(line: str) -> list[str] | None:
    words = shlex.split(line.split("|", 1)[0])
    while words and re.match(r"^[A-Z_]+=", words[0]):
        words.pop(0)
    return words[1:] if words and words[0] == "dlbench" else None


def test_every_dlbench_command_of_the_walkthrough_parses():
    parser = build_parser()
    seen = set()
    for line in commands():
        argv = dlbench_argv(line)
        if argv is None:
            continue
        args = parser.parse_args(argv)  # exits (SystemExit) on an unknown option or a wrong value
        assert hasattr(args, "func"), line
        seen.add(argv[0] + (f" {argv[1]}" if argv[0] == "data" and argv[1] == "push" else ""))
    assert {"data push", "spec", "compile", "submit", "fetch"} <= seen, seen


def test_the_walkthrough_pushes_compiles_and_submits_with_digests_and_the_pre_flight():
    lines = commands()
    compile_line = next(line for line in lines if "dlbench compile" in line)
    submit_line = next(line for line in lines if "dlbench submit" in line)
    assert "--pin-digests" in compile_line and "--check" in compile_line
    assert "--pin-digests" in submit_line and "--wait" in submit_line and "--no-preflight" not in submit_line
    dry = subprocess.run(
        ["make", "-n", "push", "REGISTRY=registry.example.com/you"], cwd=REPO, capture_output=True, text=True
    )
    assert dry.returncode == 0 and "images/push.sh cpu cuda rapids" in dry.stdout, dry.stderr
    assert any(line.startswith("make push REGISTRY=") for line in lines)


def test_the_walkthroughs_spec_command_makes_a_spec_reading_the_store(tmp_path):
    (line,) = [line for line in commands() if line.startswith("dlbench spec show")]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    made = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    spec = yaml.safe_load((tmp_path / "cluster-quick.yaml").read_text())
    assert spec["data"]["root"] == "s3://dlbench/datasets" and spec["name"] == "cluster-quick"
    check = subprocess.run(
        ["bash", "-c", "dlbench spec validate cluster-quick.yaml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
