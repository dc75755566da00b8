"""polynn's environment switches: which values of a variable such as ``POLYNN_MALLOC`` or
``POLYNN_JAX_CACHE`` turn its feature off."""

from __future__ import annotations

OFF_VALUES = ("0", "off", "false", "no")


def switched_off(value: str | None) -> bool:
    """Whether an environment variable's ``value`` turns its feature off (``0``, ``off``,
    ``false`` or ``no``, in any case, spaces around ignored); None (unset) does not."""
    return value is not None and value.strip().lower() in OFF_VALUES
