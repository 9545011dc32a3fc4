"""NAPs: the type and file format, streaming mining, metrics and the run-time monitor."""

from napkit.patterns.membership import pack_signs, violations_for, violations_per_class
from napkit.patterns.metrics import (
    NAPStats,
    StatsAccumulator,
    delta_sweep,
    evaluate_many,
    nap_stats,
    syntactic_disjoint,
)
from napkit.patterns.mining import (
    NAPMiner,
    check_delta,
    check_labels,
    count_patterns,
    mine,
    mine_store,
)
from napkit.patterns.monitor import MonitorReport, NAPMonitor
from napkit.patterns.nap import NAP, NAP_FORMAT, NAPSet

__all__ = [
    "NAP",
    "NAP_FORMAT",
    "MonitorReport",
    "NAPMiner",
    "NAPMonitor",
    "NAPSet",
    "NAPStats",
    "StatsAccumulator",
    "check_delta",
    "check_labels",
    "count_patterns",
    "delta_sweep",
    "evaluate_many",
    "mine",
    "mine_store",
    "nap_stats",
    "pack_signs",
    "syntactic_disjoint",
    "violations_for",
    "violations_per_class",
]
