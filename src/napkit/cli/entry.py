"""``main``: runs the app and maps every error to its exit code and one line on stderr."""

from __future__ import annotations

import re
import sys

import typer

from napkit.cli.common import INTERRUPTED, Interrupted, app
from napkit.errors import NapkitError


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the app and maps errors to exit codes."""
    try:
        rv = app(args=argv, standalone_mode=False, prog_name="napkit")
        if rv == INTERRUPTED:  # typer's answer to Ctrl-C; no command returns this code itself
            print("napkit: interrupted", file=sys.stderr)
        return int(rv) if isinstance(rv, int) else 0
    except NapkitError as exc:
        print(f"napkit: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        print(f"napkit: interrupted; {_one_line(exc)}", file=sys.stderr)
        return INTERRUPTED
    except typer.Exit as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except typer.Abort as exc:
        if isinstance(exc.__cause__, EOFError):  # a file that ended too early, not the user
            print(
                f"napkit: error: an input file ended too early ({_one_line(exc.__cause__)})", file=sys.stderr
            )
            return 2
        print("napkit: interrupted", file=sys.stderr)
        return INTERRUPTED
    except typer.TyperException as exc:
        msg = " ".join(str(exc.format_message() if hasattr(exc, "format_message") else exc).split())
        ctx = getattr(exc, "ctx", None)
        if msg == "Missing command." and ctx is not None:  # a bare `napkit` (or `napkit lm`)
            msg = f"missing command: `{ctx.command_path} --help` lists the commands"
        print(f"napkit: error: {msg or 'bad command line'}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("napkit: interrupted", file=sys.stderr)
        return INTERRUPTED


def _one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line, without terminal colour codes."""
    return " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).split()) or type(exc).__name__


def run() -> None:
    """Console-script wrapper."""
    sys.exit(main())
