"""The two errors of polynn's files: :class:`ModelFileError` for a file that cannot be read, and
:class:`Refused`, raised by one check inside the io package and reported by its caller."""

from __future__ import annotations


class ModelFileError(ValueError):
    """A model or checkpoint file cannot be loaded: it is not a polynn file, it is truncated or
    corrupted, it exceeds polynn's limits, or its tensors do not match its configuration."""


class Refused(Exception):
    """One check failed; ``detail`` says which. Reading reports it as a :class:`ModelFileError`
    naming the file (``corrupt``: "truncated or corrupted"); writing as a ValueError saying it
    would write a file that reading refuses (``unsaveable``: a record no file can hold)."""

    def __init__(self, detail: str, *, corrupt: bool = False, unsaveable: bool = False):
        super().__init__(detail)
        self.detail, self.corrupt, self.unsaveable = detail, corrupt, unsaveable


def differences(present, expected) -> str:
    """'lacks [...]; has unknown [...]' for two collections of names."""
    parts = []
    if set(expected) - set(present):
        parts.append(f"lacks {sorted(set(expected) - set(present))}")
    if set(present) - set(expected):
        parts.append(f"has unknown {sorted(set(present) - set(expected))}")
    return "; ".join(parts)
