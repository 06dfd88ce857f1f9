from __future__ import annotations

import argparse


def register(sub) -> None:
    from dlbench.cli import add_command

    p = add_command(
        sub, "study", "run every step of a study spec in this process, into one folder",
        description="Run a whole study (data, then each step the spec asks for) here, without KFP. "
                    "A step that fails is recorded; the rest go on.",
        epilog="example: dlbench study --spec quick --out runs/quick")
    p.add_argument("--spec", default="quick", help="preset name (quick, reference) or a YAML file")
    p.add_argument("--out", default="runs/quick", help="study output folder")
    p.add_argument("--fuse", action=argparse.BooleanOptionalAction, default=None,
                   help="train compatible GPU runs as fused groups, one model per group (default: the spec's "
                        "train.fuse); CPU runs and grids that compare timings stay solo")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from dlbench.io import check_out_dir
    from dlbench.spec import check_local_inputs, load_spec, require_runs, with_fuse
    from dlbench.study import run_study

    spec = with_fuse(load_spec(args.spec), args.fuse)
    require_runs(spec)
    check_local_inputs(spec, args.spec)
    check_out_dir(args.out)
    summary = run_study(spec, args.out)
    failed = sum(len(v["failed"]) for v in summary.values())
    for step, v in summary.items():
        print(f"{step}: {v['ok']} ok" + (f", {len(v['failed'])} failed" if v["failed"] else ""))
    print(f"results: {args.out}")
    report = Path(args.out) / "report" / "report.html"
    print(f"report: {report}" if report.is_file() else "report: not written (see the errors above)")
    return 1 if failed else 0
