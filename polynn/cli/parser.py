"""The ``polynn`` argument parser: the program's options, then one subcommand per module."""

from __future__ import annotations

import argparse

from polynn.cli import check, info, predict, train
from polynn.cli.common import Parser
from polynn.version import __version__

#: The modules that define a subcommand (``add_parser(commands)``), in the order of ``--help``.
COMMANDS = (train, predict, check, info)


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``polynn`` command; each subcommand sets ``args.run(args, out, err)``."""
    parser = Parser(prog="polynn", description="Multilayer perceptrons from scratch on NumPy, "
                    "JAX, PyTorch, CuPy or array-api-strict.")
    parser.add_argument("--version", action="version", version=f"polynn {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    for command in COMMANDS:
        command.add_parser(commands)
    return parser
