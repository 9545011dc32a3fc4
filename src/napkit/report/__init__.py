"""Figures and a static HTML report of a model and its NAPs (`napkit report`; the demo uses it)."""

from napkit.report.build import build_report
from napkit.report.fmt import fmt, rounded
from napkit.report.html import staged_output, table_html
from napkit.report.plots import plot_delta_sweep, plot_naps
from napkit.report.verification import verify_for_report

__all__ = [
    "build_report",
    "fmt",
    "plot_delta_sweep",
    "plot_naps",
    "rounded",
    "staged_output",
    "table_html",
    "verify_for_report",
]
