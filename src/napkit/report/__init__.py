"""Figures and a static HTML report of a napkit run."""

from napkit.report.html import table_html, write_report
from napkit.report.plots import plot_delta_sweep, plot_naps

__all__ = ["plot_delta_sweep", "plot_naps", "table_html", "write_report"]
