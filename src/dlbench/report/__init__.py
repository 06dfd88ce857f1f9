"""The report step: gather every record of a run into report.md, a self-contained report.html,
tables/*.csv, summary.json (headline numbers) and figures/*.png."""

from dlbench.report.step import run_report

__all__ = ["run_report"]
