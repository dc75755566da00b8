"""The files a dataset reader opens: regular files only, refused with a message naming them."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


def regular_file(path, what: str) -> Path:
    """``path`` as a :class:`~pathlib.Path` once it is known to be a regular file (symlinks
    followed); ``what`` names the kind of file in the message ("IDX file", ".npy file").

    Raises FileNotFoundError when nothing is there, IsADirectoryError for a directory and
    ValueError for a FIFO, device or socket (reading one would block or never end), each
    naming the file."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, f"{what} not found", str(path)) from None
    except NotADirectoryError:
        raise FileNotFoundError(errno.ENOENT, f"{what} not found (a part of its path is not a "
                                "directory)", str(path)) from None
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, f"{what} expected, but this is a directory",
                                str(path))
    if not stat.S_ISREG(mode):
        raise ValueError(f"{path}: not a regular file (a FIFO, device or socket); the {what} "
                         "must be a regular file")
    return path
