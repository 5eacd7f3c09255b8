"""flopcast command line: train, plan, infer, serve, reason, validate, calibrate, profile,
catalog, web (one module each).

Every user error ends as one line on stderr naming the option and what is allowed, with exit
status 2 and no traceback.
"""

from __future__ import annotations

import sys

import typer
from pydantic import ValidationError

from flopcast.api.common import one_line
from flopcast.cli import (  # noqa: F401  (register commands)
    catalog,
    infer,
    measure,
    plan,
    profile,
    reason,
    reason_plan,
    serve,
    train,
    web,
)
from flopcast.cli.common import app
from flopcast.errors import FlopcastError


def _is_usage_error(exc: BaseException) -> bool:
    """Click/typer usage errors (bad option value, unknown option) carry ``format_message``."""
    return hasattr(exc, "format_message") and hasattr(exc, "exit_code")


def _one_line(exc: BaseException) -> str:
    if _is_usage_error(exc):
        return " ".join(exc.format_message().split())
    return one_line(exc)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: runs the app, turns user errors into one line and exit status 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        args = ["--help"]
    try:
        code = app(args=args, prog_name="flopcast", standalone_mode=False)
    except (FlopcastError, ValidationError, OSError) as exc:
        # OSError: a path the OS refuses (too long, unreadable, a full disk)
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(getattr(exc, "exit_code", 0))
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            # A group without its subcommand (`flopcast plan`): its help, as `flopcast` alone.
            # (Matched by name: typer ≥ 0.16 raises its vendored click's class.)
            print(exc.format_message())
            sys.exit(0)
        if not _is_usage_error(exc):
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


