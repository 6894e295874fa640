"""What every script in jobs/, tune/ and benchmarks/ shares: parse, log, run, fail well.

    def run(args: argparse.Namespace) -> None: ...

    if __name__ == "__main__":
        main(run, parser())

`main` adds `--debug`, sets up logging, and runs `run(args)`. An error the user can fix
(steerrec.errors.UserError: ConfigError, SchemaError, DataError, ClusterError, ...;
and a missing file or folder) ends with one line on stderr,

    error: /abs/data/world/sequences.parquet: not found (no folder /abs/data/world)

and exit status 2 (as argparse does for a bad flag); `--debug` (or STEERREC_DEBUG=1)
prints the full traceback above that line. Any other exception is a bug and keeps its
traceback. Ctrl-C exits with 130 and SIGTERM with 143, both after unwinding (finally
blocks run, Ray shuts down at exit).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from steerrec.errors import Terminated, UserError, raise_terminated
from steerrec.logging_utils import setup_logging

logger = logging.getLogger(__name__)

USER_ERRORS: tuple[type[BaseException], ...] = (UserError, FileNotFoundError, NotADirectoryError, PermissionError)
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


def main(
    run: Callable[[argparse.Namespace], int | None],
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None = None,
    exit: bool = True,
) -> int:
    """Parse `argv`, run `run(args)`, turn user errors into one line; exits (or returns) the status."""
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    args = parser.parse_args(argv)
    setup_logging()
    status = run_guarded(run, args, debug=args.debug or os.environ.get("STEERREC_DEBUG", "") not in ("", "0"))
    if exit:
        sys.exit(status)
    return status


def run_guarded(run: Callable[[argparse.Namespace], int | None], args: argparse.Namespace, debug: bool) -> int:
    """`run(args)`'s status, or 2 after one `error:` line for a user error (130/143 when stopped)."""
    unwind_on_sigterm()
    try:
        return int(run(args) or 0)
    except USER_ERRORS as exc:
        if debug:
            traceback.print_exc()
        print(f"error: {describe(exc)}", file=sys.stderr, flush=True)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as exc:
        if debug:
            traceback.print_exc()
        terminated = isinstance(exc, Terminated)
        print("terminated (SIGTERM)" if terminated else "interrupted", file=sys.stderr, flush=True)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED


def describe(exc: BaseException) -> str:
    """One line: where (file or flag), then what. A missing file says which folder is missing."""
    cause = getattr(exc, "cause", None)  # a RayTaskError carries the worker's exception
    if isinstance(cause, USER_ERRORS):
        exc = cause
    if isinstance(exc, OSError) and exc.filename:
        path = Path(str(exc.filename))
        what = "not found" if isinstance(exc, FileNotFoundError) else (exc.strerror or type(exc).__name__).lower()
        if isinstance(exc, FileNotFoundError) and "://" not in str(path) and not path.parent.exists():
            what += f" (no folder {path.parent})"
        return f"{path}: {what}"
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and not isinstance(exc, UserError):
        text = text.removeprefix(f"[Errno {exc.errno}] ") if exc.errno else text
    return text


def unwind_on_sigterm() -> None:
    """SIGTERM raises Terminated (a KeyboardInterrupt) in the main thread: the job unwinds as
    on Ctrl-C. steerrec.cluster.init_ray calls this again, because ray.init replaces the
    handler with one that kills Ray's processes under the running driver (a C++ abort)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, raise_terminated)
