"""``polynn backends``: which array backends are usable here, and why not."""

from __future__ import annotations

from polynn.backend import available_backends, default_backend_name


def add_parser(commands):
    """Register ``backends`` on the ``commands`` subparsers."""
    p = commands.add_parser("backends", help="which backends are usable here, and why not",
                            description="List the array backends: usable here, or why not and "
                                        "what to install.")
    p.set_defaults(run=cmd_backends)


def cmd_backends(args, out, err) -> int:
    default = default_backend_name()
    for name, reason in available_backends().items():
        mark = " (default)" if name == default else ""
        print(f"{name:<17} {'usable' if reason is None else 'not usable: ' + reason}{mark}",
              file=out)
    return 0
