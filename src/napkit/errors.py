"""The one exception type napkit raises for bad input.

The CLI turns a :class:`NapkitError` into a single line on stderr and exit code 2;
library users can catch it (it is a ``ValueError``) without catching napkit's bugs.
"""

from __future__ import annotations


class NapkitError(ValueError):
    """Bad input or a refused operation, with a message meant for the user."""
