"""One logging setup for jobs and scripts; the library itself only creates loggers."""

from __future__ import annotations

import logging
import os

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str | int | None = None) -> None:
    """Log to stderr at `level` (default: $STEERREC_LOG_LEVEL or INFO). Call once, in a job."""
    level = level or os.environ.get("STEERREC_LOG_LEVEL", "INFO")
    logging.basicConfig(level=level, format=FORMAT, datefmt="%H:%M:%S", force=True)
