"""What the command-line tools share: checks on the files they read and write, and how they print values.

A file that is not text, or an output path whose directory does not exist, is reported before any work
is done, in one line that names the path; each tool wraps the message in its own error type.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

__all__ = ["binary_content", "decode_text", "exit_with", "output_path_problem", "print_fields"]

_GZIP_MAGIC = b"\x1f\x8b"


def binary_content(data: bytes) -> str | None:
    """Why ``data`` is not a text file (gzip, a NUL byte, or invalid UTF-8), or None when it is text."""
    if data[:2] == _GZIP_MAGIC:
        return "is gzip-compressed; decompress it first (gunzip)"
    nul = data.find(b"\0")
    if nul >= 0:
        return f"is binary, not a text file (NUL byte at offset {nul})"
    if data.isascii():  # ASCII is UTF-8; the check is much faster than decoding a long trace
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})"
    return None


def decode_text(data: bytes, path: str | os.PathLike) -> str:
    """``data`` as text; raises ValueError naming ``path`` when it is not a text file."""
    problem = binary_content(data)
    if problem is not None:
        raise ValueError(f"{str(path)!r} {problem}")
    return data.decode("utf-8")


def output_path_problem(path: str | os.PathLike, option: str) -> str | None:
    """Why ``path`` cannot receive an output file (given as ``option``), or None when it can."""
    path = Path(path)
    parent = path.parent
    if path.is_dir():
        return f"{option} {str(path)!r} is a directory; give a file name"
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        return f"{option} {str(path)!r}: directory {str(parent)!r} {what}; create it first"
    return None


def _shown(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_shown(v)}" for k, v in value.items() if v) or "none"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def print_fields(fields: dict, width: int) -> None:
    """One ``name: value`` line per field, names right-aligned to ``width``; floats to 6 significant
    digits and dicts as ``key value, ...`` (``--json`` prints the exact values)."""
    for key, value in fields.items():
        print(f"{key:>{width}}: {_shown(value)}")


INTERRUPTED = 130  # the shell's status for a command ended by Ctrl-C (128 + SIGINT)


def exit_with(main: Callable[[], int], note: str = "") -> None:
    """Exit with ``main()``'s status; Ctrl-C ends with one line (and ``note``: what was kept), not a traceback."""
    # After Ctrl-C in a parallel sweep, multiprocessing's resource tracker (a helper process started with
    # these warning options) frees the interrupted workers' semaphores and warns that it did; the one-line
    # note below says all a user needs.
    sys.warnoptions.append("ignore:resource_tracker:UserWarning")
    try:
        code = main()
    except KeyboardInterrupt:
        _stop_workers()
        # on a line of its own: a progress bar may have left the cursor at the end of its line
        print(f"\ninterrupted{'; ' + note if note else ''}", file=sys.stderr)
        code = INTERRUPTED
        # the interrupt may also reach finalizers that run while the interpreter shuts down (weakref
        # callbacks of the interrupted pool); Python would print each as "Exception ignored in ..." with a
        # traceback after the line above, which already says everything
        sys.unraisablehook = lambda unraisable: None
    sys.exit(code)


def _stop_workers() -> None:
    """Stop joblib's worker processes (parallel sweeps) so that they release their semaphores before exit."""
    if "joblib.externals.loky" not in sys.modules:
        return
    from joblib.externals.loky import get_reusable_executor

    try:
        get_reusable_executor().shutdown(wait=True, kill_workers=True)
    except Exception:  # noqa: BLE001 - already exiting; nothing to report beyond the interruption
        pass
