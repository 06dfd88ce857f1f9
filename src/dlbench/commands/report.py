from __future__ import annotations

DEFAULT_OUT = "RECORDS/report"


def register(sub) -> None:
    from dlbench.cli import add_command

    p = add_command(
        sub, "report", "gather every record of a run into report.html, report.md, tables and figures",
        description="Read every record.json below --records (data, train, svm, profile, onnx steps) and write "
                    "report.md, a self-contained report.html (figures embedded, no network needed), "
                    "tables/*.csv, figures/*.png, summary.json (headline numbers) and record.json. A step that "
                    "failed or was not run shows as \"not run\" with its reason. Prints the path of report.html.",
        epilog="example: dlbench report --records runs/quick --out runs/quick/report")
    p.add_argument("--records", default="runs/quick", help="folder searched recursively for record.json files")
    p.add_argument("--out", default=DEFAULT_OUT, help="output folder (created)")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from dlbench.errors import DataError
    from dlbench.io import check_out_dir
    from dlbench.log import get_logger
    from dlbench.report import run_report

    records = Path(args.records)
    if not records.is_dir():  # the same words as run_report's own check, before the output check
        raise DataError(f"records folder {records} " + ("is a file, not a folder" if records.exists() else
                                                        "does not exist"),
                        "point --records at a study folder, e.g. runs/quick")
    out = records / "report" if args.out == DEFAULT_OUT else Path(args.out)
    check_out_dir(out, "--out" if args.out != DEFAULT_OUT else "the report folder")
    html = run_report(args.records, out, log=get_logger("dlbench.report").info)
    print(html)
    return 0
