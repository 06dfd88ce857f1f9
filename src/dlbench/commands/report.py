from __future__ import annotations

DEFAULT_OUT = "RECORDS/report"


def register(sub) -> None:
    from dlbench.cli import add_command

    p = add_command(
        sub,
        "report",
        "gather every record of a run into report.html, report.md, tables and figures",
        description="Read every record.json below --records (data, train, svm, profile, onnx steps) and "
        "write report.md, a self-contained report.html (figures embedded, no network needed), "
        "tables/*.csv, figures/*.png, summary.json (headline numbers) and record.json. A step that "
        'failed or was not run shows as "not run" with its reason. Prints the path of report.html.',
        epilog="example: dlbench report --records runs/quick --out runs/quick/report",
    )
    p.add_argument(
        "--records",
        nargs="+",
        default="runs/quick",
        metavar="DIR",
        help="folder searched recursively for record.json files, e.g. a study folder runs/<spec name>; "
        "several folders (study folders, pipeline runs, fetched runs, one machine each) make one report "
        "with each machine named (then --out is needed)",
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="output folder (default: DIR/report, the study's own report folder). A folder holding "
        "other files, or the report of other records, is refused without --overwrite",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="write into --out even when it holds something else"
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from dlbench.cli import refuse_empty_paths
    from dlbench.errors import DataError
    from dlbench.io import check_out_dir
    from dlbench.log import get_logger
    from dlbench.report import run_report

    refuse_empty_paths(args, "records", "out")
    folders = [Path(r) for r in ([args.records] if isinstance(args.records, str) else args.records)]
    for records in folders:  # the same words as run_report's own check, before the output check
        if not records.is_dir():
            raise DataError(
                f"records folder {records} "
                + ("is a file, not a folder" if records.exists() else "does not exist"),
                "point --records at a study folder, e.g. runs/quick",
            )
    default = args.out in (None, DEFAULT_OUT)
    if default and len(folders) > 1:
        raise DataError(
            f"{len(folders)} --records folders make one merged report, which belongs in none of them",
            "add --out DIR, e.g. --out runs/merged-report",
        )
    records = folders[0]
    out = records / "report" if default else Path(args.out)
    inputs = {"--records": records} if len(folders) == 1 else {f"--records {f}": f for f in folders}
    check_out_dir(
        out,
        "--out" if not default else "the report folder",
        inputs,
        may_be_inside=("--records",),  # a single study's report/ (its default); a merged one lies outside
    )
    if not args.overwrite:
        check_report_out(out, folders if len(folders) > 1 else records)
    roots = [str(f) for f in folders] if len(folders) > 1 else str(records)
    html = run_report(roots, out, log=get_logger("dlbench.report").info)
    print(html)
    return 0


def check_report_out(out, records) -> None:
    """A report folder may be written again for the same records; anything else needs --overwrite."""
    import json

    from dlbench.errors import DlbenchError

    if not out.is_dir() or not any(out.iterdir()):
        return
    try:
        rec = json.loads((out / "record.json").read_text())
    except (OSError, ValueError):
        rec = {}
    if rec.get("step") != "report":
        raise DlbenchError(
            f"--out {out} is not empty and holds no report", "choose another --out, or add --overwrite"
        )
    config = rec.get("config") or {}
    held = config.get("records_roots") or config.get("records_root")
    if held and not _same_folders(held, records):
        raise DlbenchError(
            f"--out {out} holds the report of other records ({held})",
            "choose another --out, or add --overwrite to replace it",
        )


def _same_folders(a, b) -> bool:
    """The same folder, or the same folders in the same order (a merged report's)."""
    a_list, b_list = (list(x) if isinstance(x, list | tuple) else [x] for x in (a, b))
    return len(a_list) == len(b_list) and all(_same_folder(x, y) for x, y in zip(a_list, b_list, strict=True))


def _same_folder(a, b) -> bool:
    from pathlib import Path

    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False
