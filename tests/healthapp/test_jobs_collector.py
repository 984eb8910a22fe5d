"""A job's bulk loops pause Python's cyclic garbage collector; a worker must get it back afterwards."""

from __future__ import annotations

import gc

import pytest

from healthapp import jobs


@pytest.fixture
def collector_on():
    gc.enable()
    yield
    gc.enable()


def test_the_collector_is_paused_inside_and_back_after_the_loop_even_when_it_fails(collector_on):
    with jobs.collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), jobs.collector_paused():
        raise RuntimeError("a failed dry run")
    assert gc.isenabled()


def test_cycles_a_chunk_leaves_behind_are_freed_chunk_by_chunk(collector_on):
    class Node:
        pass

    with jobs.collector_paused():
        for _chunk in range(3):
            for _ in range(1000):
                a, b = Node(), Node()
                a.other, b.other = b, a  # a cycle: reference counting alone never frees it
            del a, b
            jobs.chunk_done()
            assert not [o for o in gc.get_objects(generation=0) + gc.get_objects(generation=1) if type(o) is Node]
        assert not gc.isenabled()


def test_a_collector_turned_off_by_the_process_stays_off(collector_on):
    gc.disable()
    with jobs.collector_paused():
        pass
    assert not gc.isenabled()
