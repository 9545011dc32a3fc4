"""napkit: neural activation patterns — capture, mine, monitor and verify them.

Rooms: :mod:`napkit.network` (the ReluNetwork IR), :mod:`napkit.capture` (activations and
stores), :mod:`napkit.patterns` (NAPs, mining, metrics, monitor), :mod:`napkit.verify`,
:mod:`napkit.codes`, :mod:`napkit.geometry`, :mod:`napkit.report`.
"""

from napkit.errors import NapkitError

__version__ = "0.1.0"
__all__ = ["NapkitError", "__version__"]
