"""NAPs: the type and file format, streaming mining, metrics and the run-time monitor.

Names load lazily: reading a NAP file needs only numpy; mining and metrics load torch,
the monitor scikit-learn, when first used.
"""

from napkit._lazy import lazy_exports

_WHERE = {
    "pack_signs": "membership",
    "violations_for": "membership",
    "violations_per_class": "membership",
    "NAPStats": "metrics",
    "StatsAccumulator": "metrics",
    "delta_sweep": "metrics",
    "evaluate_many": "metrics",
    "nap_stats": "metrics",
    "syntactic_disjoint": "metrics",
    "NAPMiner": "mining",
    "check_delta": "mining",
    "check_labels": "mining",
    "count_patterns": "mining",
    "mine": "mining",
    "mine_store": "mining",
    "count_store_rows": "mining",
    "MonitorReport": "monitor",
    "NAPMonitor": "monitor",
    "NAP": "nap",
    "NAP_FORMAT": "nap",
    "NAPSet": "nap",
}
__all__ = sorted(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
