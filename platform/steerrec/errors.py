"""The errors a person running a job can fix: bad config, a missing file, a table of the
wrong shape, an unreachable cluster. `steerrec.cli` turns them into one line on stderr
and exit status 2; every other exception is a bug and keeps its traceback.

Each message starts with where the problem is (a file, a flag, an address), then the
field, then what is wrong: ``<file>: <field>: <what>``.
"""

from __future__ import annotations


class UserError(Exception):
    """Input the user can fix; the message names the file (or flag) and the field."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that a job unwinds as on Ctrl-C."""


def raise_terminated(signum: int, frame: object) -> None:
    """A SIGTERM handler: unwind like Ctrl-C (finally blocks, Serve and Ray shut down)."""
    raise Terminated()
