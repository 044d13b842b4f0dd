"""Python's cyclic garbage collector held back while a batch job allocates many short-lived, acyclic objects."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Allocations between young-generation collections while a batch runs (Python's default is 700).
BATCH_THRESHOLD = 10_000

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def fewer_collections(threshold: int = BATCH_THRESHOLD) -> Iterator[None]:
    """Collect cycles every ``threshold`` allocations instead of every 700 until the block ends.

    An import builds a few objects per row (cells, the row, its dicts) and drops them a chunk later:
    no cycles, so the collector frees nothing, but with the default threshold it ran ~900 young and
    7 full collections per 100,000 rows, each full one walking every object of the process (Django's
    too) with the GIL held, so the writer threads and their database connections waited: 0.8 s of an
    import's ~3 s of Python time (docs/benchmarks.md). Refcounting still frees every acyclic object at
    once; cycles wait at most ``threshold`` allocations. Nested and concurrent blocks share one setting,
    restored when the last one ends.
    """
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(max(threshold, _saved[0]), *_saved[1:])
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None
