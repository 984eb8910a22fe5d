"""The compact key set of the importers: the same answers as Python's set, in a fraction of the memory."""

from __future__ import annotations

import random
import tracemalloc

from hypothesis import given
from hypothesis import strategies as st

from healthapp.keyset import KeySet

KEYS = st.integers(min_value=0, max_value=2**64 - 1)


@given(st.lists(st.one_of(KEYS, st.integers(min_value=0, max_value=3))), st.lists(KEYS))
def test_add_and_membership_answer_as_a_python_set_does(added, probed):
    keys, reference = KeySet(), set()
    for key in added:
        assert keys.add(key) is (key not in reference)  # False: listed before (a duplicate row)
        reference.add(key)
    assert len(keys) == len(reference)
    for key in [*added, *probed]:
        assert (key in keys) is (key in reference)


def test_keys_sharing_low_bits_and_growth_past_many_doublings_lose_nothing():
    colliding = [n << 40 for n in range(1, 3000)]  # every one in slot 0 of the first tables
    spread = [random.getrandbits(64) | 1 for _ in range(20_000)]
    keys = KeySet(colliding + spread)
    assert all(k in keys for k in colliding + spread) and 0 not in keys and 5 << 40 | 7 not in keys
    assert len(keys) == len(set(colliding + spread))


def test_a_hundred_thousand_keys_take_under_a_third_of_what_a_set_of_them_takes():
    fresh = [random.getrandbits(64) for _ in range(100_000)]
    tracemalloc.start()
    keys = KeySet(fresh)
    compact = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    tracemalloc.start()
    as_set = {int(str(k)) for k in fresh}  # new int objects, as an import's fingerprints are
    plain = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(keys) == len(as_set)
    assert compact * 3 < plain and compact < 2_300_000  # 16-32 bytes per key (a set: ~75)
