"""``bench report``: tables and plots of run folders, from their rows alone (no torch).

    from bench.report import build_report
    paths = build_report(["results/00001-cifar10-10m"])   # report.md, report.html, results.csv, ...

``load`` reads run folders (through ``bench.store``) and their column table, ``comparable``
decides which runs are one comparison, ``best`` finds each trial's best FID so far, ``stats``
summarizes across seeds, ``timing`` tells a run's estimated and actual wall time, ``sections``
and ``plots`` write each comparison, ``render`` renders markdown and HTML, ``format`` writes
numbers; ``build`` orchestrates.
"""

from bench.report.build import build_report
from bench.report.load import ReportError

__all__ = ["ReportError", "build_report"]
