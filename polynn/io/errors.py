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


#: Longest detail a message quotes from a file (a file controls its names and values; a
#: message the size of the file helps no one).
MAX_DETAIL_CHARS = 1000
#: Most names a message lists.
MAX_LISTED = 10


def bounded(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """``text`` cut to about ``limit`` characters, saying how many were left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def listed(names) -> str:
    """A sorted list of names as text, at most :data:`MAX_LISTED` of them (each bounded)."""
    names = sorted(names)
    shown = [bounded(repr(n), 100) for n in names[:MAX_LISTED]]
    more = f", ... and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
    return f"[{', '.join(shown)}{more}]"


def differences(present, expected) -> str:
    """'lacks [...]; has unknown [...]' for two collections of names (a few of each named)."""
    parts = []
    if set(expected) - set(present):
        parts.append(f"lacks {listed(set(expected) - set(present))}")
    if set(present) - set(expected):
        parts.append(f"has unknown {listed(set(present) - set(expected))}")
    return "; ".join(parts)
