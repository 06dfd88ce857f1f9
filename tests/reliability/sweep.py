"""A sweep over every command: each path it reads or writes replaced by every kind of bad path, plus the
table of bad inputs of tests/reliability/test_reliability.py, through the real command line
(tests/test_bad_input.py's table runs under pytest with inputs of its own). It reports every case that ended
in a traceback, was accepted (exit 0), printed more than one line on stderr, or changed a file in the inputs
or the output area.

    .venv/bin/python -m tests.reliability.sweep            # everything (about 260 cases, 10 minutes)
    .venv/bin/python -m tests.reliability.sweep --paths    # only the bad-path sweep
    .venv/bin/python -m tests.reliability.sweep --match fetch   # only the cases named with "fetch"

Exit status 0 when nothing was found, 1 otherwise. Not a pytest module (the tables run under pytest already);
this is the sweep the issue asks for, to run by hand after a change to a command.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# Each command with its path slots: {name} is filled with a good value unless the slot is the one being swept.
# (template, {slot: "in" | "out" | "out-file"})
COMMANDS = [
    ("data --dataset fashion-mnist --root {root} --out {out}", {"root": "in", "out": "out"}),
    ("data push --dataset fashion-mnist --root {root} --store {store}", {"root": "in", "store": "out"}),
    ("train --split {split} --out {out} --max-steps-per-epoch 1", {"split": "in", "out": "out"}),
    ("svm --split {split} --out {out} --n-train 50", {"split": "in", "out": "out"}),
    (
        "classical --split {split} --out {out} --estimator logistic_regression --n-train 50",
        {"split": "in", "out": "out"},
    ),
    ("profile --models resnet18 --out {out}", {"out": "out"}),
    ("onnx --model resnet18 --checkpoint {ckpt} --out {out}", {"ckpt": "in-file", "out": "out"}),
    ("report --records {records} --out {out}", {"records": "in", "out": "out"}),
    ("study --spec {spec} --out {out}", {"spec": "in-file", "out": "out"}),
    ("spec validate {spec}", {"spec": "in-file"}),
    ("spec show {spec}", {"spec": "in-file"}),
    ("spec expand quick --compare {records}", {"records": "in"}),
    ("spec expand quick --estimate --calibration {cal}", {"cal": "in-file"}),
    ("compile --spec {spec} --out {outfile}", {"spec": "in-file", "outfile": "out-file"}),
    ("fetch R1 --store {store} --to {out}", {"store": "in", "out": "out"}),
    ("publish earlier --work {work} --store {store}", {"work": "in", "store": "out"}),
    ("run --local --spec quick --work {out} --store {store}", {"out": "out", "store": "out"}),
    ("run --local --spec {spec} --work {out} --store {store}", {"spec": "in-file"}),
    ("submit --spec {spec} --host http://127.0.0.1:9", {"spec": "in-file"}),
    ("runs {records}", {"records": "in"}),
]
# (command, bad value) pairs that are good input there: an empty folder holds no runs, which runs says.
GOOD_THERE = {("runs", "empty-dir")}


def _bad_values(kind: str, world: Path, work: Path) -> dict[str, str]:
    loop = world / "loop"
    common = {"empty": "", "loop": str(loop)}
    if kind == "in":
        return {
            **common,
            "missing": str(world / "nope"),
            "a-file": str(world / "a-file"),
            "empty-dir": str(world / "a-dir"),
        }
    if kind == "in-file":
        return {
            **common,
            "missing": str(world / "nope.yaml"),
            "a-folder": str(world / "a-dir"),
            "garbage": str(world / "garbage.yaml"),
            "empty-file": str(world / "empty.yaml"),
        }
    if kind == "out":
        return {
            **common,
            "a-file": str(world / "a-file"),
            "under-a-file": str(world / "a-file" / "x"),
            "proc": "/proc/x",
            "the-inputs": str(world),
        }
    return {**common, "a-folder": str(world / "a-dir"), "under-a-file": str(world / "a-file" / "x.yaml")}


def _good(world: Path, work: Path) -> dict[str, str]:
    return {
        "root": str(world / "idx"),
        "split": str(world / "split"),
        "ckpt": str(world / "ckpt" / "best.pt"),
        "records": str(world / "rec-good"),
        "spec": "quick",
        "cal": str(world / "cal-good.json"),
        "store": str(work / "store"),
        "work": str(work),
        "out": str(work / "out"),
        "outfile": str(work / "p.yaml"),
    }


def path_cases(world: Path, work: Path) -> list[tuple[str, list[str]]]:
    cases = []
    good = _good(world, work)
    for template, slots in COMMANDS:
        reads = any(k.startswith("in") for k in slots.values())
        for slot, kind in slots.items():
            for bad_name, bad in _bad_values(kind, world, work).items():
                if bad_name == "the-inputs" and not reads:
                    continue  # a command with no input (profile) may write into any folder it is given
                if (template.split(" ")[0], bad_name) in GOOD_THERE:
                    continue
                values = {**good, slot: bad}
                args = [part.format(**values) for part in template.split(" ")]
                cases.append((f"{template.split(' {')[0]} {slot}={bad_name}", args))
    return cases


def table_cases(world: Path, work: Path) -> list[tuple[str, list[str], dict]]:
    from tests.reliability import test_reliability

    return [
        (c, [a.replace("{I}", str(world)).replace("{O}", str(work)) for a in t.split(" ")], env)
        for c, t, env, _expect in test_reliability.CASES
    ]


def build_world(root: Path) -> Path:
    """The reliability table's inputs, plus a symlink loop, a folder, a good calibration and good records."""
    import shutil

    from tests.reliability import test_reliability as rel

    world = rel.build_inputs(root / "inputs")
    (world / "a-dir").mkdir(exist_ok=True)
    shutil.copy(rel.CALIBRATION, world / "cal-good.json")
    rel._put(world / "rec-good" / "t" / "record.json", rel._record())
    (world / "empty.yaml").write_text("# nothing here\n")
    (world / "garbage.yaml").write_bytes(
        bytes(range(256)) * 4
    )  # not text, not YAML, not JSON, not a checkpoint
    return world


def main(argv: list[str] | None = None) -> int:
    from tests.test_bad_input import run_cli, tree_hash

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paths", action="store_true", help="only the bad-path sweep")
    parser.add_argument("--match", metavar="TEXT", help="only the cases whose name holds TEXT (a part of it)")
    args = parser.parse_args(argv)
    top = Path(tempfile.mkdtemp(prefix="dlbench-sweep-"))
    world = build_world(top)
    work = top / "work"
    cases = [(c, a, {}) for c, a in path_cases(world, work)]
    if not args.paths:
        cases += table_cases(world, work)
    if args.match:
        cases = [c for c in cases if args.match in c[0]]
    found = []
    for i, (case, cmd, env) in enumerate(cases, 1):
        if work.exists():
            import shutil

            shutil.rmtree(work)
        (work / "earlier").mkdir(parents=True)
        (work / "earlier" / "record.json").write_text('{"status": "ok"}\n')
        before = (tree_hash(work), tree_hash(world))
        try:
            r = run_cli(cmd, cwd=work, env=env)
        except subprocess.TimeoutExpired:
            found.append((case, " ".join(cmd), ["hang (no answer in 300 s)"], ""))
            print(f"[{i}/{len(cases)}] {case}: PROBLEM: hang", flush=True)
            continue
        lines = r.stderr.splitlines()
        problems = []
        if "Traceback" in r.stderr + r.stdout:
            problems.append("traceback")
        if r.returncode == 0:
            problems.append("accepted")
        if r.returncode != 0 and len(lines) != 1:
            problems.append(f"{len(lines)} lines on stderr")
        if (tree_hash(work), tree_hash(world)) != before:
            problems.append("changed files")
        status = "ok" if not problems else "PROBLEM: " + ", ".join(problems)
        print(
            f"[{i}/{len(cases)}] {case}: exit {r.returncode} {status} | {(lines or [''])[-1][:160]}",
            flush=True,
        )
        if problems:
            found.append((case, " ".join(cmd), problems, r.stderr[-600:]))
    print(f"\n{len(cases)} commands, {len(found)} with problems")
    for case, cmd, problems, err in found:
        print(f"- {case}: {', '.join(problems)}\n  {cmd}\n  {err.strip()[-300:]}")
    return 1 if found else 0


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    sys.exit(main())
