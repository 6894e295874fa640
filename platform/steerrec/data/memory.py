"""Handing freed memory back to the OS between the batches of a streaming step.

Arrow's allocator (mimalloc by default, or jemalloc) keeps freed pages for reuse, and
glibc's malloc keeps the holes numpy's temporaries leave in its heap. With batches of
varying sizes coming and going, the process held several times its live data
(benchmarks/prepare_memory.py measures the peak).
"""

from __future__ import annotations

import ctypes
import functools
import logging
from collections.abc import Callable

import pyarrow as pa

logger = logging.getLogger(__name__)


def release_memory() -> None:
    """Return the free pages of Arrow's default pool and of the C heap to the OS."""
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library has none (musl, macOS)."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        logger.debug("no glibc malloc_trim here: memory freed by numpy stays with the process")
        return None
