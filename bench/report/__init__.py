"""``bench report``: tables and plots of run folders, from their rows alone.

    from bench.report import build_report
    paths = build_report(["results/00001-cifar10-10m"])   # report.md, report.html, results.csv, ...
"""

from bench.report.build import build_report
from bench.report.load import ReportError

__all__ = ["ReportError", "build_report"]
