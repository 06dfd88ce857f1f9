from __future__ import annotations


def register(sub) -> None:
    from dlbench.cli import add_command

    p = add_command(
        sub, "study", "run every step of a study spec in this process, into one folder",
        description="Run a whole study (data, then each step the spec asks for) here, without KFP. "
                    "A step that fails is recorded; the rest go on.",
        epilog="example: dlbench study --spec quick --out runs/quick")
    p.add_argument("--spec", default="quick", help="preset name (quick, reference) or a YAML file")
    p.add_argument("--out", default="runs/quick", help="study output folder")
    from dlbench.commands.pipeline import SMOKE_HELP

    p.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from dlbench.io import check_out_dir
    from dlbench.spec import check_local_inputs, load_spec, require_runs
    from dlbench.study import run_study

    spec = load_spec(args.spec)
    if args.smoke:
        from dlbench.spec import smoke_spec

        spec = smoke_spec(spec)
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
