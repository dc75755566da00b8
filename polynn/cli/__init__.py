"""The ``polynn`` command: train, predict, gradcheck, backends.

``main(argv)`` returns the exit status: 0 on success, 1 when training fails (divergence), a
gradient check exceeds its tolerance or something unexpected breaks, 2 for bad input (options,
files, a backend or optional extra that is missing, a label a model never saw), 130 when
interrupted (Ctrl-C during training: after reporting and saving what was trained).
Every failure prints one line ``polynn: error: ...`` to stderr and no traceback; set the
environment variable ``POLYNN_TRACEBACK=1`` to get the traceback as well.

Output paths (``--save``, ``--history``, ``--plot``, ``--plot-history``, ``--out``) are checked
before any work: the directory exists and is writable, the path is not a directory, an existing
file is writable, and a plot's suffix names a format matplotlib writes.

Modules: ``parser`` (the options, one subcommand per module), ``train`` (and ``report``: what
it prints and writes), ``predict``, ``check`` (gradcheck), ``info`` (backends); ``options``
(option types and shared option groups) and ``common`` (the usage error, datasets by name,
output paths).
"""

from __future__ import annotations

import os
import sys
import traceback
import warnings

from polynn.cli.common import UsageError
from polynn.cli.parser import build_parser
from polynn.train import DivergenceError

__all__ = ["TRACEBACK_VAR", "UsageError", "build_parser", "main"]

#: Set to 1 to see the Python traceback of a failing command as well as its one-line message.
TRACEBACK_VAR = "POLYNN_TRACEBACK"


def _format_warning(message, category, filename, lineno, line=None):
    return f"polynn: warning: {message}\n"


def _one_line(e: BaseException) -> str:
    message = str(e) or ("" if isinstance(e, MemoryError) else type(e).__name__)
    if isinstance(e, OSError) and e.filename and e.strerror:
        message = f"{e.strerror}: {e.filename}"
    return " ".join(message.split())


def _silence_stdout():
    """After a broken pipe (``polynn predict ... | head``): send what is left to /dev/null, so
    that the interpreter's final flush does not report the same error again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (captured, replaced)
        pass


def _show_traceback() -> bool:
    return os.environ.get(TRACEBACK_VAR, "") not in ("", "0") or bool(
        os.environ.get("POLYNN_DEBUG"))


def main(argv=None) -> int:
    """Run the ``polynn`` command with ``argv`` (default: ``sys.argv[1:]``); return the exit
    status. No exception escapes: each failure is one ``polynn: error: ...`` line on stderr
    (``POLYNN_TRACEBACK=1`` prints the traceback before it)."""
    from polynn.backend import BackendUnavailableError

    out, err = sys.stdout, sys.stderr
    show_traceback = _show_traceback()

    def fail(e: BaseException, code: int, prefix: str = "") -> int:
        if show_traceback:
            traceback.print_exception(type(e), e, e.__traceback__, file=err)
        print(f"polynn: error: {prefix}{_one_line(e)}", file=err)
        return code

    with warnings.catch_warnings():
        warnings.formatwarning = _format_warning
        try:
            args = build_parser().parse_args(argv)
            code = args.run(args, out, err)
            out.flush()  # a broken pipe shows here, where it is handled, not at exit
            return code
        except SystemExit as exit_:  # --help, --version
            return exit_.code if isinstance(exit_.code, int) else 0
        except DivergenceError as e:
            return fail(e, 1)
        except KeyboardInterrupt:
            print("polynn: interrupted", file=err)
            return 130
        except BrokenPipeError:
            _silence_stdout()
            return 1
        except (UsageError, BackendUnavailableError, ImportError, ValueError, TypeError,
                OSError) as e:
            return fail(e, 2)
        except MemoryError as e:
            return fail(e, 1, "out of memory: " if str(e) else "out of memory")
        except Exception as e:  # anything unforeseen: still one line, with its type
            return fail(e, 1, f"{type(e).__name__}: ")
        finally:
            warnings.formatwarning = _original_formatwarning


_original_formatwarning = warnings.formatwarning
