"""The garbage collector is held back only while a batch runs, and always handed back as it was."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from common.collector import fewer_collections


@pytest.fixture(autouse=True)
def _default_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_a_batch_collects_less_often_and_the_setting_comes_back() -> None:
    with fewer_collections(threshold=5000):
        assert gc.get_threshold() == (5000, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_the_setting_comes_back_when_the_batch_fails() -> None:
    with pytest.raises(RuntimeError), fewer_collections(threshold=5000):
        raise RuntimeError("the import failed")
    assert gc.get_threshold() == (700, 10, 10)


def test_a_higher_threshold_set_by_the_process_is_kept() -> None:
    gc.set_threshold(50_000, 10, 10)
    with fewer_collections(threshold=5000):
        assert gc.get_threshold() == (50_000, 10, 10)
    assert gc.get_threshold() == (50_000, 10, 10)


def test_overlapping_batches_restore_the_setting_once_the_last_ends() -> None:
    """Two imports in one process (threads): the first to finish must not cut the other's batch short."""
    first_inside, second_done = threading.Event(), threading.Event()
    seen: list[tuple[int, int, int]] = []

    def first() -> None:
        with fewer_collections(threshold=5000):
            first_inside.set()
            second_done.wait(5)
            seen.append(gc.get_threshold())

    thread = threading.Thread(target=first)
    thread.start()
    assert first_inside.wait(5)
    with fewer_collections(threshold=5000):
        pass
    second_done.set()
    thread.join(5)
    assert seen == [(5000, 10, 10)]
    assert gc.get_threshold() == (700, 10, 10)
