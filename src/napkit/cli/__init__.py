"""The ``napkit`` command: parses arguments, calls the library, prints. No logic of its own.

Exit codes: 0 success, 1 a verification failure it was asked to detect, 2 bad input
(one line on stderr, no traceback). ``--json`` prints one JSON object as the last line.

One module per group of commands (``naps``, ``verification``, ``vnnlib_cmds``, ``analysis``),
sharing the app and option types of ``common``; ``napkit lm`` lives in ``napkit.lm.cli``.
"""

from __future__ import annotations

import importlib

from napkit.cli.common import app
from napkit.cli.entry import main, run
from napkit.lm.cli import app as _lm_app

# Importing a command module registers its commands; `napkit --help` lists them in this order.
for _module in ("naps", "verification", "vnnlib_cmds", "analysis"):
    importlib.import_module(f"napkit.cli.{_module}")
app.add_typer(_lm_app, name="lm", no_args_is_help=False)  # the LM pillar: napkit lm ...; bare: as napkit

__all__ = ["app", "main", "run"]
