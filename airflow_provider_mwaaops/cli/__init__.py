"""The ``mwaaops`` command line: one argparse parser whose sub-commands live in sibling modules.

Adding a sub-command is one module in this package that defines ``register(subparsers)`` (add its
parser and ``set_defaults(handler=run)``, where ``run(args) -> int``) plus its name in ``COMMANDS``.
Command modules are imported every time the parser is built, so they must import nothing heavy
(Airflow, boto3) at module level: the CLI is run by hand and by scripts and has to start fast.
Commands report user-facing failures by raising :class:`CliError`; ``main`` turns that into a
one-line message and an exit code instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: Sub-command modules of this package, in the order ``mwaaops --help`` lists them.
COMMANDS: tuple[str, ...] = ("plugins_zip", "metadata")

PROG = "mwaaops"


class CliError(Exception):
    """A failure the user can act on, reported as ``mwaaops: error: <message>`` without a traceback.

    ``exit_code`` is 2 for bad input (the argparse convention, so scripts can tell it from a tool
    failure) and 1 for anything else, such as a wheel build that failed.
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every registered sub-command attached."""
    from airflow_provider_mwaaops import __version__

    parser = argparse.ArgumentParser(
        prog=PROG, description="Operations tooling for airflow-provider-mwaaops on Amazon MWAA."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (rather than exiting) so tests can call it in-process."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 2
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(handler(args) or 0)
    except CliError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
