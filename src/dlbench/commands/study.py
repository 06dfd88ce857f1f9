from __future__ import annotations


def register(sub) -> None:
    from dlbench.cli import add_command

    p = add_command(
        sub,
        "study",
        "run every step of a study spec in this process, into one folder",
        description="Run a whole study (data, then each step the spec asks for) here, without KFP. "
        "A step that fails is recorded; the rest go on. A folder that already holds a study is "
        "refused unless --resume or --overwrite says what to do with it.",
        epilog="examples:\n  dlbench study --spec quick                 # into runs/quick\n"
        "  dlbench study --spec quick --resume        # again: skip the runs already done\n"
        "  dlbench study --spec my-study.yaml --out runs/try2",
    )
    from dlbench.commands.pipeline import add_spec_options

    add_spec_options(p, "one model per group")
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="study output folder (default: runs/<the spec's name>, e.g. runs/quick)",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--resume",
        action="store_true",
        help="continue the same study in --out: runs whose record says ok are kept and skipped "
        "(matched by run id); profile, ONNX and the report run again",
    )
    mode.add_argument(
        "--overwrite", action="store_true", help="delete the study already in --out and start again"
    )
    from dlbench.commands.pipeline import SMOKE_HELP

    p.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from dlbench.cli import refuse_empty_paths
    from dlbench.io import check_out_dir
    from dlbench.layout import StudyLayout
    from dlbench.plan import require_runs, with_fuse
    from dlbench.spec import check_local_inputs, load_spec
    from dlbench.study import default_out, prepare_out, run_study

    refuse_empty_paths(args, "out")
    spec = with_fuse(load_spec(args.spec), args.fuse)
    if args.smoke:
        from dlbench.plan import smoke_spec

        spec = smoke_spec(spec)
    require_runs(spec)
    check_local_inputs(spec, args.spec)
    out = Path(args.out) if args.out else default_out(spec)
    check_out_dir(out, inputs={"data.root": spec.data.root})
    mode = prepare_out(spec, out, resume=args.resume, overwrite=args.overwrite)
    summary = run_study(spec, out, resume=mode == "resume")
    failed = sum(len(v["failed"]) for v in summary.values())
    for step, v in summary.items():
        print(
            f"{step}: {v['ok']} ok"
            + (f", {len(v['failed'])} failed" if v["failed"] else "")
            + (f", {v['skipped']} kept from before" if v.get("skipped") else "")
        )
    lay = StudyLayout(out)
    print(f"results: {out}")
    print(f"runs by id: {lay.index}")
    report = lay.report_html
    print(f"report: {report}" if report.is_file() else "report: not written (see the errors above)")
    return 1 if failed else 0
