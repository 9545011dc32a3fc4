"""Binary activation codes: networks as hash encoders (Lei et al.).

The on/off pattern of an input's hidden units is its code. This room makes codes
(bit-packed, constant units dropped), measures their determinism (redundancy ratio) and
how well plain methods categorise them (k-NN on Hamming distance, k-means, logistic
regression), and sweeps width, depth, epochs and sample size for the phase chart.
"""

from napkit.codes.binary import (
    CodeEncoder,
    network_on_off,
    on_off,
    on_off_and_predictions,
    pack_codes,
    unpack_codes,
)
from napkit.codes.categorise import (
    greedy_accuracy,
    kmeans_accuracy,
    logistic_accuracy,
    matched_accuracy,
)
from napkit.codes.hamming import HammingKNN, hamming_distances, hamming_kneighbors
from napkit.codes.redundancy import distinct_codes, redundancy_ratio
from napkit.codes.report import codes_report
from napkit.codes.sweep import phase_sweep, phase_table, plot_phase_chart
from napkit.codes.training import make_mlp, to_relu_network, train_checkpoints, train_mlp

__all__ = [
    "CodeEncoder",
    "HammingKNN",
    "codes_report",
    "distinct_codes",
    "greedy_accuracy",
    "hamming_distances",
    "hamming_kneighbors",
    "kmeans_accuracy",
    "logistic_accuracy",
    "make_mlp",
    "matched_accuracy",
    "network_on_off",
    "on_off",
    "on_off_and_predictions",
    "pack_codes",
    "phase_sweep",
    "phase_table",
    "plot_phase_chart",
    "redundancy_ratio",
    "to_relu_network",
    "train_checkpoints",
    "train_mlp",
    "unpack_codes",
]
