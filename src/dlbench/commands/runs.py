from __future__ import annotations

DEFAULT_ROOT = "runs"


def register(sub) -> None:
    from dlbench.cli import add_command

    p = add_command(
        sub,
        "runs",
        "list the studies and pipeline runs in a folder or a store",
        description="List every study folder (dlbench study) and pipeline run (dlbench run --local, or a "
        "cluster run published to a store) below a folder or an S3 store: its name, spec, date, "
        "status (from its records) and report. Newest first.",
        epilog="examples:\n  dlbench runs                       # everything under ./runs\n"
        "  dlbench runs runs/pipeline         # the local pipeline runs\n"
        "  dlbench runs s3://dlbench/runs     # a store (DLBENCH_S3_ENDPOINT and keys from the environment)",
    )
    p.add_argument(
        "where",
        nargs="?",
        default=DEFAULT_ROOT,
        metavar="STORE_OR_FOLDER",
        help=f"a folder or s3://bucket/prefix (default: {DEFAULT_ROOT})",
    )
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from dlbench.cli import refuse_empty_paths
    from dlbench.io import check_in_dir
    from dlbench.runs import format_runs, is_local, list_runs
    from dlbench.store import open_store

    refuse_empty_paths(args, positional={"where": "STORE_OR_FOLDER"})
    if is_local(args.where):
        check_in_dir(
            str(args.where).removeprefix("file://"),
            hint="give a folder that holds studies or runs (e.g. runs), or a store URL",
        )
    rows = list_runs(open_store(args.where))
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"no studies or runs under {args.where}")
    else:
        print(format_runs(rows))
    return 0
